"""Speed of hwsim against the peers, measured in the same run, with the agreement of each layer.

`run(out_lines, quick)` times the same layers through
- hwsim: compile + simulate of a one-layer ONNX model (the whole pipeline), and the closed-form
  systolic model alone (`compiler.lowering.systolic.gemm_cost`, uncached);
- SCALE-Sim 3.0.0 (its `run_scale` for the layer, and the whole subprocess) if its venv exists;
- ZigZag 3.9.1 (`get_hardware_performance_zigzag`, mapping search included) if its venv exists;
and a whole Conv4-64 forward (tests/data/compiler/conv4_infer_torch.onnx) on edge-npu. It appends
a Markdown section to `out_lines`. Times are measured, never asserted. hwsim's are the median
of repeated runs of the whole pipeline after a few untimed ones, with every memo cache emptied
before each run (`_median`): each timed run compiles and simulates its layer from scratch.

    .venv/bin/python benchmarks/peers/speed.py [--quick]     # prints the section
    .venv/bin/python benchmarks/run.py --peers                # adds it to BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from benchmarks.peers.mirror import layer_of, run_hwsim, scalesim_mirror  # noqa: E402

CONV4 = REPO / "tests" / "data" / "compiler" / "conv4_infer_torch.onnx"
# SCALE-Sim golden case ids (stall-free) timed layer by layer; the quick set runs in seconds.
QUICK = ["conv4_l2_16x16_ws", "conv4_l3_dw_b5_8x8_is", "sine_10x40x40_8x8_ws"]
FULL = QUICK + ["conv4_l1_16x16_os", "conv4_l2_dx_b5_128x128_os", "alexnet_conv2_128x128_ws",
                "alexnet_conv1_32x32_ws"]
# ZigZag golden case ids timed on their own mirror (a WS array with a global buffer).
ZIGZAG_QUICK = ["conv4_l2_16x16_256k", "sine_10x40x40_8x8_16k"]
ZIGZAG_FULL = ZIGZAG_QUICK + ["alexnet_conv2_64x64_2m", "conv4_l2_dx_b5_16x16_256k"]


# Untimed runs of the same work before the timed ones: Python specialises its bytecode and the
# CPU caches fill during the first few calls, as they have for every layer of a model but its
# first. Memo caches are emptied before every run (`_memo_caches`): no result is reused.
WARMUP = 5


def _memo_caches() -> list:
    """Every `functools.lru_cache`d function of the compiler and the simulator (the systolic
    closed form, vector-unit cycles, ...) among the modules imported so far."""
    found = {}
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in ("compiler", "hwsim"):
            continue
        for obj in vars(module).values():
            if callable(getattr(obj, "cache_clear", None)) and \
                    getattr(obj, "__module__", "").partition(".")[0] in ("compiler", "hwsim"):
                found[id(obj)] = obj
    return list(found.values())


def _median(fn, repeat: int) -> tuple[float, object]:
    """Median wall time of `repeat` runs of `fn` after `WARMUP` untimed ones, and the last
    run's result. Every memo cache is emptied before each run after the first (which imports
    whatever the pipeline uses), so each timed run computes its layer from scratch."""
    times, out, caches = [], None, []
    for i in range(WARMUP + repeat):
        for cache in caches:
            cache.cache_clear()
        t0 = time.perf_counter()
        out = fn()
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
        if i == 0:
            caches = _memo_caches()
    return statistics.median(times), out


def _fmt(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _scalesim_rows(ids: list[str]) -> list[dict[str, str]]:
    import csv

    with open(REPO / "tests" / "data" / "scalesim" / "goldens.csv", newline="") as f:
        rows = {r["case_id"]: r for r in csv.DictReader(f)}
    return [rows[i] for i in ids]


def _closed_form(row: dict[str, str]) -> tuple[float, int]:
    """Time of the closed form alone (its memo cache bypassed) and its cycle count."""
    from compiler.lowering.systolic import conv_to_gemm, gemm_cost

    if row["kind"] == "gemm":
        sr, sc, t = int(row["gemm_m"]), int(row["gemm_n"]), int(row["gemm_k"])
    else:
        p = int(row["pad"])
        sr, sc, t, _ = conv_to_gemm(1, int(row["channels"]), int(row["ifmap_h"]), int(row["ifmap_w"]),
                                    int(row["num_filters"]), int(row["filter_h"]),
                                    int(row["filter_w"]), int(row["stride"]), int(row["stride"]), p, p)
    args = (sr, sc, t, int(row["array_rows"]), int(row["array_cols"]), row["dataflow"])
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        cost = gemm_cost.__wrapped__(*args)
    return (time.perf_counter() - t0) / n, cost.cycles


def _scalesim_live(row: dict[str, str]) -> dict | None:
    python = os.environ.get("SCALESIM_PYTHON", str(REPO / ".venv-peers" / "scalesim" / "bin" / "python"))
    if not Path(python).exists():
        return None
    import scalesim_goldens as sg

    fields = {f: row[f] for f in sg.Case.__dataclass_fields__}
    case = sg.Case(**{k: (v if k in ("case_id", "kind", "dataflow", "bandwidth_mode") else int(v))
                      for k, v in fields.items()})
    return sg.run_case(case, python)


def _zigzag_live(case_ids: list[str]) -> dict[str, dict] | None:
    python = os.environ.get("ZIGZAG_PYTHON", str(REPO / ".venv-peers" / "zigzag" / "bin" / "python"))
    if not Path(python).exists():
        return None
    import zigzag_goldens as zg

    wanted = [c for c in zg.cases() if c.case_id in case_ids]
    return zg.run(wanted, python, jobs=1)


def run(out_lines: list[str], quick: bool) -> None:
    repeat = 11 if quick else 21
    ids = QUICK if quick else FULL
    lines = ["", "## hwsim vs SCALE-Sim and ZigZag: speed and agreement per layer", ""]
    lines.append(
        f"Measured {time.strftime('%Y-%m-%d')} in one run of `benchmarks/peers/speed.py` "
        f"({'quick' if quick else 'full'} set), Python {platform.python_version()}, "
        f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores shared with other work. hwsim: "
        f"median of {repeat} runs after {WARMUP} untimed ones, every memo cache emptied before each "
        "run; SCALE-Sim and ZigZag: one run each, in their own venvs (subprocess). "
        "*pipeline* = compile a one-layer ONNX model + simulate it; *closed form* = the systolic "
        "fold model alone. Cycle agreement: hwsim's array busy cycles vs SCALE-Sim's stall-free "
        "compute cycles (its last-cycle index + 1).")
    lines += ["", "| layer (SCALE-Sim case) | hwsim pipeline | closed form | SCALE-Sim run_scale | "
              "SCALE-Sim process | speed-up (pipeline) | speed-up (closed form) | cycles hwsim | "
              "cycles SCALE-Sim | diff |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ratios = []
    for row in _scalesim_rows(ids):
        hw = scalesim_mirror(row).hardware()
        model = layer_of(row)
        pipe_s, h = _median(lambda: run_hwsim(model, hw), repeat)
        closed_s, closed_cycles = _closed_form(row)
        live = _scalesim_live(row)
        if live is None:
            ss_s = ss_proc = None
            ss_cycles = int(row["total_cycles"]) + 1
            note = " (SCALE-Sim not installed: golden CSV cycles)"
        else:
            ss_s, ss_proc, ss_cycles, note = live["wall_s"], live["process_wall_s"], live["total_cycles"] + 1, ""
            ratios.append(ss_s / pipe_s)
        diff = 100 * (h.array_cycles - ss_cycles) / ss_cycles
        sp = f"{ss_s / pipe_s:,.0f}×" if ss_s else "—"
        sc = f"{ss_s / closed_s:,.0f}×" if ss_s else "—"
        lines.append(f"| {row['case_id']}{note} | {_fmt(pipe_s)} | {_fmt(closed_s)} | {_fmt(ss_s)} | "
                     f"{_fmt(ss_proc)} | {sp} | {sc} | {h.array_cycles:,.0f} | {ss_cycles:,} | "
                     f"{diff:+.2f} % |")
    if ratios:
        lines += ["", f"Speed-up of the hwsim pipeline over SCALE-Sim's run_scale: min "
                  f"{min(ratios):,.0f}×, median {statistics.median(ratios):,.0f}×, max {max(ratios):,.0f}× "
                  "(goal ≥ 100× per layer)."]
    else:
        lines += ["", "SCALE-Sim is not installed (.venv-peers/scalesim, or SCALESIM_PYTHON): "
                  "no live timing; see benchmarks/peers/README.md to install it."]

    zz_ids = ZIGZAG_QUICK if quick else ZIGZAG_FULL
    zz = _zigzag_live(zz_ids)
    lines += ["", "| layer (ZigZag case) | hwsim pipeline | ZigZag (LOMA search + cost model) | "
              "speed-up | energy hwsim | energy ZigZag | diff | DRAM bytes hwsim | DRAM bytes ZigZag |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if zz is None:
        lines += ["", "ZigZag is not installed (.venv-peers/zigzag, or ZIGZAG_PYTHON): skipped."]
    else:
        import zigzag_goldens as zg

        from benchmarks.peers.mirror import zigzag_prices

        for case in [c for c in zg.cases() if c.case_id in zz_ids]:
            r = zz[case.case_id]
            row = {k: str(v) for k, v in {**case.__dict__, **r}.items()}
            hw = zg.mirror(case).hardware()
            model = layer_of(row)
            prices = zigzag_prices(row)
            pipe_s, h = _median(lambda: run_hwsim(model, hw, prices), repeat)
            zz_dram = sum(float(r[f"{op}_dram_{d}_bytes"]) for op in ("I", "W")
                          for d in ("rd_low",)) + float(r["O_dram_wr_low_bytes"]) + \
                float(r["O_dram_rd_low_bytes"])
            e_diff = 100 * (h.energy_pj - r["energy_total_pj"]) / r["energy_total_pj"]
            lines.append(f"| {case.case_id} | {_fmt(pipe_s)} | {_fmt(r['wall_s'])} | "
                         f"{r['wall_s'] / pipe_s:,.0f}× | {h.energy_pj / 1e6:,.2f} µJ | "
                         f"{r['energy_total_pj'] / 1e6:,.2f} µJ | {e_diff:+.1f} % | "
                         f"{h.dram_read_bytes + h.dram_write_bytes:,.0f} | {zz_dram:,.0f} |")

    from compiler.compile import compile_model
    from hwsim.config import load_hardware
    from hwsim.energy import energy_table
    from hwsim.engine import simulate

    hw = load_hardware("edge-npu")
    comp_s, compiled = _median(lambda: compile_model(CONV4, hw), repeat)
    sim_s, result = _median(lambda: simulate(compiled.program, energy_table=energy_table(hw),
                                             static_power_mw=hw.technology.static_power_mw), repeat)
    lines += ["", f"Whole Conv4-64 forward (`tests/data/compiler/conv4_infer_torch.onnx`, "
              f"{len(compiled.graph.nodes)} nodes, {len(compiled.program.tasks)} tasks) on edge-npu: "
              f"compile {_fmt(comp_s)} + simulate {_fmt(sim_s)} = {_fmt(comp_s + sim_s)} "
              f"(goal ≤ 20 ms), {result.cycles:,.0f} cycles.", ""]
    out_lines += lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    lines: list[str] = []
    run(lines, args.quick)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

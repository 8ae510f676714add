"""Simulator speed and fidelity at realistic scale (issue: meta-training at realistic scale).

Prints a Markdown section for BENCHMARKS.md, measured in one run:

1. MAML Conv4-64 5-way 1-shot (15 queries) meta_train, k=5, B=4 and B=25, on edge-npu: front
   end, lowering and simulation time, tasks, and peak RSS of a fresh process doing it all;
2. how the cost grows: B in {1, 4, 16, 25} x k in {1, 3, 5};
3. the closed-form streaming against the tile-level reference on every NPU preset (cycles,
   MACs, SRAM and DRAM counts, peak memory, tasks, time);
4. `hwsim simulate` of the Conv4 forward as a whole process, timed from the shell like a user
   would, against SCALE-Sim 3.0.0's process on the same five layers (if its venv exists).

Times are wall-clock medians on a machine that may be shared (stated in the output); CPU times
of this process are given beside them. Nothing here is asserted: tests check behaviour, this
measures it.

    .venv/bin/python benchmarks/simulator_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from algorithms.spec import PhaseSpec  # noqa: E402
from compiler.compile import front_end, lower  # noqa: E402
from hwsim import pipeline  # noqa: E402
from hwsim.config import load_hardware, presets  # noqa: E402
from hwsim.energy import energy_table  # noqa: E402
from hwsim.collector import paused_gc  # noqa: E402
from hwsim.engine import simulate  # noqa: E402

CONV4_FORWARD = ROOT / "tests" / "data" / "compiler" / "conv4_infer_torch.onnx"
SCALESIM_PYTHON = Path(os.environ.get("SCALESIM_PYTHON", ROOT / ".venv-peers" / "scalesim" / "bin" / "python"))


def maml_conv4(k: int, b: int) -> PhaseSpec:
    return PhaseSpec(algorithm="maml", phase="meta_train", backbone="conv4_64_28x28x1", way=5, shot=1,
                     query=15, inner_steps=k, meta_batch=b)


def fmt(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"


def stages(model, hw, detail: str = "node") -> dict:
    """Wall and CPU seconds of each stage, as the pipeline runs them (garbage collector paused)."""
    out: dict = {}
    w0, c0 = time.perf_counter(), time.process_time()
    with paused_gc():
        front = front_end(model)
        w1, c1 = time.perf_counter(), time.process_time()
        options = {"detail": detail} if hw.kind == "npu" else {}
        program = lower(front, hw, **options)
        w2, c2 = time.perf_counter(), time.process_time()
        result = simulate(program, energy_table=energy_table(hw), static_power_mw=hw.technology.static_power_mw)
    w3, c3 = time.perf_counter(), time.process_time()
    out.update(nodes=len(front.graph.nodes), tasks=len(program.tasks), front=w1 - w0, lower=w2 - w1,
               simulate=w3 - w2, total=w3 - w0, cpu=c3 - c0, result=result)
    return out


def peak_rss_mb(onnx_path: Path, hw_name: str) -> float:
    """Peak RSS of a fresh process that prepares and simulates the model (MB)."""
    code = ("import resource, sys; from hwsim import pipeline; from hwsim.config import load_hardware;"
            f"pipeline.simulate(pipeline.prepare({str(onnx_path)!r}), load_hardware({hw_name!r}));"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def scaling(lines: list[str], quick: bool, cache: Path) -> dict[tuple[int, int], Path]:
    hw = load_hardware("edge-npu")
    grid = [(1, 1), (5, 4)] if quick else [(k, b) for b in (1, 4, 16, 25) for k in (1, 3, 5)]
    files: dict[tuple[int, int], Path] = {}
    lines += ["### How the cost grows with the meta-batch B and the inner steps k", "",
              "MAML Conv4-64 5-way 1-shot, 15 queries, meta_train on edge-npu (closed-form streaming); "
              "front end = load + shape inference + passes + workloads; export not included (cached).", "",
              "| B | k | ONNX nodes | tasks | front end | lowering | simulation | total | CPU s | simulated cycles |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k, b in grid:
        print(f"[bench] export maml conv4 k={k} B={b}", file=sys.stderr, flush=True)
        model = pipeline.export(maml_conv4(k, b), cache_dir=cache)
        path = cache / f"maml_conv4_k{k}_b{b}.onnx"
        path.write_bytes(model.SerializeToString())
        files[(k, b)] = path
        s = stages(path, hw)
        lines.append(f"| {b} | {k} | {s['nodes']:,} | {s['tasks']:,} | {fmt(s['front'])} | {fmt(s['lower'])} | "
                     f"{fmt(s['simulate'])} | {fmt(s['total'])} | {s['cpu']:.2f} | {s['result'].cycles:,.0f} |")
    return files


def headline(lines: list[str], files: dict[tuple[int, int], Path]) -> None:
    hw = load_hardware("edge-npu")
    lines += ["", "### The targets: k=5 on edge-npu", "",
              "| graph | tasks (closed form) | tasks (tiles) | compile + simulate | target | peak RSS (fresh process) | target |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for (k, b), target in (((5, 4), 1.0), ((5, 25), 5.0)):
        if (k, b) not in files:
            continue
        runs = [stages(files[(k, b)], hw) for _ in range(3)]
        best = statistics.median(r["total"] for r in runs)
        tiles = len(lower(front_end(files[(k, b)]), hw, detail="tiles").tasks)
        rss = peak_rss_mb(files[(k, b)], "edge-npu")
        lines.append(f"| MAML Conv4 k={k} B={b} | {runs[0]['tasks']:,} | {tiles:,} | {fmt(best)} (median of 3) | "
                     f"≤ {target:g} s | {rss:,.0f} MB | ≤ 2,048 MB |")


def agreement(lines: list[str], path: Path) -> None:
    lines += ["", "### Closed-form streaming against the tile-level reference", "",
              f"`{path.name}` (MAML Conv4 k=5 B=4 meta_train) on every NPU preset. Targets: cycles within 1 %, "
              "MACs and SRAM counts exact, DRAM bytes within 0.5 %, peak on-chip memory within 1 %.", "",
              "| preset | tasks tiles → closed form | cycles diff | MACs | SRAM bytes | DRAM bytes diff | "
              "peak SRAM diff | time tiles → closed form |", "|---|---:|---:|---|---|---:|---:|---:|"]
    for name in presets():
        hw = load_hardware(name)
        if hw.kind != "npu":
            continue
        t, n = stages(path, hw, "tiles"), stages(path, hw, "node")
        rt, rn = t["result"], n["result"]
        at, an = rt.action_totals(), rn.action_totals()
        sram_equal = all(abs(at.get(a, 0) - an.get(a, 0)) <= 1e-9 * max(1.0, at.get(a, 0))
                         for a in set(at) | set(an) if not a.startswith(("dram", "mac", "vector", "noc")))
        dram = lambda a: sum(v for k, v in a.items() if k.startswith("dram."))  # noqa: E731
        lines.append(f"| {name} | {t['tasks']:,} → {n['tasks']:,} | {100 * (rn.cycles / rt.cycles - 1):+.3f} % | "
                     f"{'equal' if rn.macs == rt.macs else 'DIFFER'} | {'equal' if sram_equal else 'DIFFER'} | "
                     f"{100 * (dram(an) / dram(at) - 1):+.3f} % | "
                     f"{100 * (rn.peak_memory['sram'] / rt.peak_memory['sram'] - 1):+.2f} % | "
                     f"{fmt(t['total'])} → {fmt(n['total'])} |")


def process_time(lines: list[str], repeat: int) -> None:
    hwsim_cmd = [str(ROOT / ".venv" / "bin" / "hwsim"), "simulate", str(CONV4_FORWARD), "--hw", "edge-npu"]
    ours = _median_process(hwsim_cmd, repeat)
    lines += ["", "### A command that starts fast", "",
              f"`hwsim simulate tests/data/compiler/conv4_infer_torch.onnx --hw edge-npu` as a whole process "
              f"(Python start, imports, load, compile, simulate, print): median of {repeat} runs "
              f"{fmt(ours)}. It does not import torch (`hwsim.pipeline` imports the exporter only for a PhaseSpec)."]
    if not SCALESIM_PYTHON.exists():
        lines.append("SCALE-Sim is not installed (.venv-peers/scalesim or SCALESIM_PYTHON): no process comparison.")
        return
    with tempfile.TemporaryDirectory() as tmp:
        cmd = _scalesim_conv4(Path(tmp))
        theirs = _median_process(cmd, max(3, repeat // 2))
    lines.append(f"SCALE-Sim 3.0.0 as a process on the same five layers (the four 3×3 convolutions on padded "
                 f"inputs 30×30×1, 16×16×64, 9×9×64, 5×5×64 and the 64→5 head as a GEMM; 32×32 WS array, "
                 f"stall-free, `save_disk_space`): median {fmt(theirs)}. hwsim is {theirs / ours:.1f}× quicker "
                 "(goal ≥ 5×).")


def _median_process(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _scalesim_conv4(folder: Path) -> list[str]:
    """A SCALE-Sim run of Conv4's five layers in one process (its Python API, no traces)."""
    topo = folder / "conv4.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nconv1, 30, 30, 3, 3, 1, 64, 1,\nconv2, 16, 16, 3, 3, 64, 64, 1,\n"
                    "conv3, 9, 9, 3, 3, 64, 64, 1,\nconv4, 5, 5, 3, 3, 64, 64, 1,\nhead, 1, 1, 1, 1, 64, 5, 1,\n")
    cfg = folder / "edge.cfg"
    # the same sections as benchmarks/peers/scalesim_goldens.py writes (stall-free: CALC bandwidth)
    cfg.write_text("[general]\nrun_name = conv4\n\n[run_presets]\nInterfaceBandwidth = CALC\n"
                   "UseRamulatorTrace = False\n\n[architecture_presets]\nArrayHeight = 32\nArrayWidth = 32\n"
                   "IfmapSramSzkB = 256\nFilterSramSzkB = 128\nOfmapSramSzkB = 128\nIfmapOffset = 0\n"
                   "FilterOffset = 10000000\nOfmapOffset = 20000000\nBandwidth = 10\nDataflow = ws\n"
                   "ReadRequestBuffer = 32\nWriteRequestBuffer = 32\n\n[layout]\nIfmapCustomLayout = False\n"
                   "FilterCustomLayout = False\nIfmapSRAMBankBandwidth = 10\nIfmapSRAMBankNum = 1\n"
                   "IfmapSRAMBankPort = 2\nFilterSRAMBankBandwidth = 10\nFilterSRAMBankNum = 1\n"
                   "FilterSRAMBankPort = 2\n\n[sparsity]\nSparsitySupport = false\n")
    layout = folder / "layout.csv"
    layout.write_text("")
    code = ("from scalesim.scale_sim import scalesim\n"
            f"s = scalesim(save_disk_space=True, verbose=False, config={str(cfg)!r}, topology={str(topo)!r}, "
            f"layout={str(layout)!r})\n"
            f"s.run_scale(top_path={str(folder)!r})\n")
    return [str(SCALESIM_PYTHON), "-c", code]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two graph sizes only")
    ap.add_argument("--cache", type=Path, default=ROOT / ".hwsim-cache")
    ap.add_argument("--out", type=Path, help="also write the section to this file")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    lines = ["## Meta-training at realistic scale: the simulator", "",
             f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/simulator_bench.py`{' --quick' if args.quick else ''}: "
             f"Python {platform.python_version()}, {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
             f"load average {load:.1f} at the start (other work shares the cores when it is above ~1).", ""]
    files = scaling(lines, args.quick, args.cache)
    headline(lines, files)
    agreement(lines, files[(5, 4)])
    process_time(lines, 7)
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

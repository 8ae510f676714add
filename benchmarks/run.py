"""`make bench`: time every stage of the pipeline on the graphs users run, and write BENCHMARKS.md.

Measured, never asserted: wall-clock times go here, not into tests. Each timing is the median
of several repetitions (the cold export once, since it is slow and its cache must be empty).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from algorithms.export import PhaseSpec, export_phase  # noqa: E402
from compiler.compile import compile_model  # noqa: E402
from hwsim.config import load_hardware  # noqa: E402
from hwsim.energy import energy_table  # noqa: E402
from hwsim.engine import simulate  # noqa: E402

CONV4 = ROOT / "tests" / "data" / "compiler" / "conv4_infer_torch.onnx"


@dataclass
class Row:
    workload: str
    nodes: int
    tasks: int
    export_cold_s: float | None
    export_warm_s: float | None
    compile_s: float
    simulate_s: float
    cycles: float
    energy_uj: float


def median_time(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_model(name: str, model: onnx.ModelProto | Path, hw, repeat: int,
                cold: float | None = None, warm: float | None = None) -> Row:
    compile_s, compiled = median_time(lambda: compile_model(model, hw), repeat)
    sim_s, result = median_time(lambda: simulate(compiled.program, energy_table=energy_table(hw),
                                                 static_power_mw=hw.technology.static_power_mw), repeat)
    return Row(name, len(compiled.graph.nodes), len(compiled.program.tasks), cold, warm,
               compile_s, sim_s, result.cycles, result.energy_pj * 1e-6)


def bench_export(spec: PhaseSpec, repeat: int) -> tuple[float, float, onnx.ModelProto]:
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        model = export_phase(spec, cache_dir=cache)
        cold = time.perf_counter() - t0
        warm, _ = median_time(lambda: export_phase(spec, cache_dir=cache), repeat)
    return cold, warm, model


def fmt(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "—"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--peers", action="store_true", help="also time SCALE-Sim/ZigZag (benchmarks/peers/speed.py)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    hw = load_hardware("edge-npu")
    rows: list[Row] = []
    for algo in ("maml", "fomaml"):
        for k in (1, 5):
            spec = PhaseSpec(algo, "meta_train", inner_steps=k, meta_batch=25)
            print(f"[bench] export {algo} meta_train B=25 k={k} ...", file=sys.stderr, flush=True)
            cold, warm, model = bench_export(spec, args.repeat)
            rows.append(bench_model(f"sinusoid {algo} meta_train B=25 k={k}", model, hw, args.repeat, cold, warm))
    print("[bench] Conv4 inference", file=sys.stderr, flush=True)
    rows.append(bench_model("Conv4-64 inference 1×1×28×28 (torch.onnx export)", CONV4, hw, args.repeat))

    lines = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` (benchmarks/run.py) on {time.strftime('%Y-%m-%d')}: "
        f"Python {platform.python_version()}, torch {torch.__version__}, onnx {onnx.__version__}, "
        f"{platform.machine()}, {_cores()} cores. Median of {args.repeat} runs; the cold export runs "
        "once with an empty cache, the warm one reads the cache. Hardware: edge-npu.",
        "",
        "| workload | ONNX nodes | tasks | export cold | export warm | compile | simulate | simulated cycles | energy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.workload} | {r.nodes:,} | {r.tasks:,} | {fmt(r.export_cold_s)} | "
                     f"{fmt(r.export_warm_s)} | {fmt(r.compile_s)} | {fmt(r.simulate_s)} | "
                     f"{r.cycles:,.0f} | {r.energy_uj:,.1f} µJ |")
    lines += ["", "Compile = ONNX load + shape inference + passes + workloads + NPU lowering; "
              "simulate = the SimPy engine on the lowered Program (one event per task).", ""]
    if args.peers:
        from benchmarks.peers.speed import run as run_peers

        run_peers(lines, quick=False)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: measure every stage on the graphs users run, beside the peer tools, and write
BENCHMARKS.md.

Measured, never asserted: wall-clock times go here, not into tests. This script times the
pipeline's stages itself (the first section) and runs each subject's benchmark in its own
process (`SECTIONS`: the simulator at realistic scale, export, exploration, co-design knobs, the
peers), each writing a Markdown section that is assembled in order. Each timing is the median
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

from algorithms.export import export_phase  # noqa: E402
from algorithms.spec import PhaseSpec  # noqa: E402
from compiler.compile import compile_model  # noqa: E402
from hwsim.config import load_hardware  # noqa: E402
from hwsim.energy import energy_table  # noqa: E402
from hwsim.engine import simulate  # noqa: E402

CONV4 = ROOT / "tests" / "data" / "compiler" / "conv4_infer_torch.onnx"


@dataclass
class Row:
    workload: str
    target: str
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
    return Row(name, hw.name, len(compiled.graph.nodes), len(compiled.program.tasks), cold, warm,
               compile_s, sim_s, result.cycles, result.energy_pj * 1e-6)


def bench_export(spec: PhaseSpec, repeat: int) -> tuple[float, float, onnx.ModelProto]:
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        model = export_phase(spec, cache_dir=cache)
        cold = time.perf_counter() - t0
        warm, _ = median_time(lambda: export_phase(spec, cache_dir=cache), repeat)
    return cold, warm, model


def plan_time(model: onnx.ModelProto, hw) -> float:
    """Seconds to partition the graph into configurations and fold every stage (no Program)."""
    from compiler.frontend import load_graph
    from compiler.lowering.fabric import plan_cgra, plan_fpga
    from compiler.passes import run_pipeline
    from compiler.workload import graph_workloads

    graph = run_pipeline(load_graph(model))
    workloads = graph_workloads(graph)
    plan = plan_fpga if hw.kind == "fpga" else plan_cgra
    t0 = time.perf_counter()
    plan(graph, workloads, hw)
    return time.perf_counter() - t0


def fmt(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "—"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--peers", action="store_true", help="also time SCALE-Sim/ZigZag (benchmarks/peers/speed.py)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run after the stage table ({', '.join(SECTIONS)})")
    args = ap.parse_args()
    torch.set_num_threads(2)
    hw = load_hardware("edge-npu")
    rows: list[Row] = []
    for algo in ("maml", "fomaml"):
        for k in (1, 5):
            spec = PhaseSpec(algorithm=algo, phase="meta_train", inner_steps=k, meta_batch=25)
            print(f"[bench] export {algo} meta_train B=25 k={k} ...", file=sys.stderr, flush=True)
            cold, warm, model = bench_export(spec, args.repeat)
            rows.append(bench_model(f"sinusoid {algo} meta_train B=25 k={k}", model, hw, args.repeat, cold, warm))
    print("[bench] Conv4 inference", file=sys.stderr, flush=True)
    rows.append(bench_model("Conv4-64 inference 1×1×28×28 (torch.onnx export)", CONV4, hw, args.repeat))

    # The heaviest training graph users ask about, on an NPU and on both fabrics.
    spec = PhaseSpec(algorithm="maml", phase="meta_train", backbone="conv4_64_28x28x1", way=5, shot=1, query=15,
                     inner_steps=5, meta_batch=4)
    print("[bench] export MAML Conv4 5-way 1-shot k=5 B=4 ...", file=sys.stderr, flush=True)
    cold, warm, conv_model = bench_export(spec, args.repeat)
    label = "MAML Conv4-64 5-way 1-shot (15 queries) meta_train B=4 k=5"
    plans: list[tuple[str, float]] = []
    for i, name in enumerate(("edge-npu", "zcu102-like", "cgra-8x8")):
        target = load_hardware(name)
        print(f"[bench] {label} on {name}", file=sys.stderr, flush=True)
        rows.append(bench_model(label, conv_model, target, 1, cold if i == 0 else None,
                                warm if i == 0 else None))
        if target.kind in ("fpga", "cgra"):
            plans.append((name, plan_time(conv_model, target)))

    lines = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` (benchmarks/run.py) on {time.strftime('%Y-%m-%d')}: "
        f"Python {platform.python_version()}, torch {torch.__version__}, onnx {onnx.__version__}, "
        f"{platform.machine()}, {_cores()} cores. Median of {args.repeat} runs; the cold export runs "
        "once with an empty cache, the warm one reads the cache. Hardware: edge-npu.",
        "",
        "| workload | target | ONNX nodes | tasks | export cold | export warm | compile | simulate | simulated cycles | energy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.workload} | {r.target} | {r.nodes:,} | {r.tasks:,} | {fmt(r.export_cold_s)} | "
                     f"{fmt(r.export_warm_s)} | {fmt(r.compile_s)} | {fmt(r.simulate_s)} | "
                     f"{r.cycles:,.0f} | {r.energy_uj:,.1f} µJ |")
    lines += ["", "Compile = ONNX load + shape inference + passes + workloads + lowering onto the "
              "target; simulate = the SimPy engine on the lowered Program (one event per task). The "
              "Conv4 training rows are timed once (median of 1).", "",
              "## Fabric planning (partition + folding) of the Conv4 k=5 meta_train graph", "",
              "| target | partition + fold |", "|---|---:|"]
    lines += [f"| {name} | {fmt(t)} |" for name, t in plans]
    wanted = [n for n in args.sections.split(",") if n]
    for name in wanted:
        if name not in SECTIONS:
            raise SystemExit(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        lines += ["", run_section(name).strip(), ""]
    if args.peers:
        from benchmarks.peers.speed import run as run_peers

        run_peers(lines, quick=False)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


# Section scripts, in BENCHMARKS.md order: name -> command after the interpreter. Each prints
# and writes its Markdown section (`--out`); a section that needs a peer tool not installed
# says so in its own text.
SECTIONS = {
    "simulator": ["benchmarks/simulator_bench.py"],
    "export": ["benchmarks/export_bench.py"],
    "explore": ["benchmarks/explore_bench.py"],
}
SECTION_DIR = ROOT / "benchmarks" / "sections"


def run_section(name: str) -> str:
    """Run one section script in its own process and return the section it wrote."""
    import subprocess

    out = SECTION_DIR / f"{name}.md"
    print(f"[bench] section {name} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, *SECTIONS[name], "--out", str(out)], cwd=ROOT, check=True)
    return out.read_text(encoding="utf-8")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())

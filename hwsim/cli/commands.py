"""The `hwsim` sub-commands. Each is a short chain of stages: export -> compile -> simulate ->
report. This module (with `hwsim.dse`) is where the layers are wired together."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import onnx

from algorithms.export import PhaseSpec, export_phase
from algorithms.frameworks import KerasPhaseSpec, export_keras_phase
from compiler.compile import Compiled, compile_model
from hwsim.config import NPU, load_hardware
from hwsim.energy import energy_table
from hwsim.engine import simulate as run_program
from hwsim.files import write_atomic
from hwsim.result import SimResult
from reports.compare import Run, comparison_markdown, phases_frame, totals_frame
from reports.fabric import configuration_table
from reports.tables import phase_table, summary_table
from reports.trace import perfetto_trace

from . import UsageError, default_cache_dir


def simulate_compiled(compiled: Compiled, hw: NPU) -> SimResult:
    return run_program(compiled.program, static_power_mw=hw.technology.static_power_mw,
                       energy_table=energy_table(hw))


def _spec(args: argparse.Namespace, phase: str) -> PhaseSpec:
    return PhaseSpec(algorithm=args.algo, phase=phase, backbone=args.backbone, way=args.way,
                     shot=args.shot, query=args.query, inner_steps=args.inner_steps,
                     meta_batch=args.meta_batch if phase == "meta_train" else 1,
                     inner_lr=args.inner_lr, seed=args.seed)


# ---- export -------------------------------------------------------------------------------------

def export(args: argparse.Namespace) -> int:
    if args.framework == "tensorflow":
        spec = KerasPhaseSpec(args.model or args.backbone, args.phase, args.algo, args.way, args.shot,
                              args.query, args.inner_steps, args.inner_lr, args.seed)
    elif args.model:
        raise UsageError("--model: only with --framework tensorflow")
    else:
        spec = _spec(args, args.phase)
    if args.output.exists() and args.output.is_dir():
        raise UsageError(f"-o {args.output}: is a directory; give an .onnx file path")
    exporter = export_keras_phase if args.framework == "tensorflow" else export_phase
    model = exporter(spec, cache_dir=None if args.no_cache else default_cache_dir())
    write_atomic(args.output, model.SerializeToString())
    print(f"wrote {args.output}: {spec.algorithm} {spec.phase}, {len(model.graph.node)} nodes")
    return 0


# ---- simulate -----------------------------------------------------------------------------------

def _dims(pairs: list[str]) -> dict[str, int]:
    dims = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name or not value.isdigit() or int(value) < 1:
            raise UsageError(f"--dim {p!r}: expected NAME=VALUE with an integer VALUE >= 1")
        dims[name] = int(value)
    return dims


def simulate(args: argparse.Namespace) -> int:
    if not args.model.is_file():
        raise UsageError(f"{args.model}: no such file (expected an ONNX model)")
    hw = load_hardware(args.hw)
    compiled = compile_model(args.model, hw, dims=_dims(args.dim))
    result = simulate_compiled(compiled, hw)
    print(f"{args.model}  ({compiled.graph.metadata.get('algorithm', 'model')} "
          f"{compiled.graph.metadata.get('phase', '')}, {len(compiled.graph.nodes)} nodes, "
          f"{len(compiled.program.tasks)} tasks)")
    print(summary_table(result))
    if compiled.graph.metadata.get("phase"):
        print()
        print(phase_table(result))
    if "fabric.configurations" in result.metadata:
        print()
        print(configuration_table(result))
    if args.json:
        write_atomic(args.json, result.to_json(timeline=not args.no_timeline))
        print(f"\nwrote {args.json}")
    if args.trace:
        write_atomic(args.trace, perfetto_trace(result))
        print(f"wrote {args.trace} (open in ui.perfetto.dev)")
    return 0


# ---- demo ---------------------------------------------------------------------------------------

DEMO_ALGORITHMS = ("maml", "fomaml")
DEMO_PHASES = ("infer", "adapt", "meta_train")


@dataclass
class _DemoArgs:
    algo: str
    inner_steps: int
    meta_batch: int
    backbone: str = "sine_mlp"
    way: int = 1
    shot: int = 10     # K = 10 (Finn et al. 2017, sinusoid)
    query: int = 10
    inner_lr: float = 0.01  # α = 0.01 (Finn et al. 2017, sinusoid)
    seed: int = 0


def _run_matrix(label: str, base: argparse.Namespace, algos: list[str], phases: list[str],
                hws: list, out: Path) -> tuple[list[Run], dict[Path, bytes | str]]:
    """Export each (algorithm, phase) once, then compile and simulate it on every target."""
    runs: list[Run] = []
    files: dict[Path, bytes | str] = {}
    specs = [(algo, phase, _spec(_with_algo(base, algo), phase)) for algo in algos for phase in phases]
    for algo, phase, spec in specs:
        print(f"[{label}] {algo:8s} {phase:10s} export ...", end="", flush=True, file=sys.stderr)
        model = export_phase(spec, cache_dir=default_cache_dir())
        print(f" {len(model.graph.node)} nodes", file=sys.stderr)
        files[out / "models" / f"{algo}_{phase}.onnx"] = model.SerializeToString()
        for hw in hws:
            compiled = compile_model(model, hw)
            result = simulate_compiled(compiled, hw)
            print(f"[{label}]   on {hw.name}: {len(compiled.program.tasks)} tasks, "
                  f"{result.cycles:,.0f} cycles", file=sys.stderr)
            runs.append(Run(algo, phase, result, {"inner_steps": str(spec.inner_steps),
                                                  "meta_batch": str(spec.meta_batch)}))
            files[out / "results" / f"{algo}_{phase}_{hw.name}.json"] = result.to_json(timeline=False)
    return runs, files


def _with_algo(base: argparse.Namespace, algo: str) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(base), "algo": algo})


def _write_report(out: Path, runs: list[Run], files: dict[Path, bytes | str], title: str,
                  notes: list[str]) -> None:
    files[out / "comparison.csv"] = phases_frame(runs).to_csv(index=False)
    files[out / "totals.csv"] = totals_frame(runs).to_csv(index=False)
    files[out / "report.md"] = comparison_markdown(runs, title=title, notes=notes)
    for path, data in files.items():  # everything computed first: nothing is half-written
        write_atomic(path, data)
    print(comparison_markdown(runs, title=title).split("## Phase by phase")[0])
    print(f"wrote {out}/report.md, comparison.csv, totals.csv, models/, results/")


def _names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--{what}: expected a comma-separated list, got {text!r}")
    return list(dict.fromkeys(names))


def compare(args: argparse.Namespace) -> int:
    algos, phases = _names(args.algos, "algos"), _names(args.phases, "phases")
    hws = [load_hardware(h) for h in _names(args.hw, "hw")]
    for algo in algos:  # validate every spec before the first (slow) export
        for phase in phases:
            _spec(_with_algo(args, algo), phase)
    runs, files = _run_matrix("compare", args, algos, phases, hws, args.report)
    notes = [f"{', '.join(algos)} × {', '.join(phases)} on {', '.join(h.name for h in hws)}; "
             f"backbone {args.backbone}, way {args.way}, shot {args.shot}, query {args.query}, "
             f"k={args.inner_steps}, α={args.inner_lr}, meta-batch {args.meta_batch}, seed {args.seed}.",
             "Produced by `hwsim compare`."]
    _write_report(args.report, runs, files, "hwsim comparison", notes)
    return 0


def demo(args: argparse.Namespace) -> int:
    hw = load_hardware(args.hw)
    out: Path = args.out
    base = _DemoArgs("maml", args.inner_steps, args.meta_batch)
    runs, files = _run_matrix("demo", argparse.Namespace(**vars(base)), list(DEMO_ALGORITHMS),
                              list(DEMO_PHASES), [hw], out)
    notes = [f"Sinusoid regression (Finn et al. 2017): MLP 1-40-40-1 ReLU, K=10 support and 10 query "
             f"points, α=0.01, {args.inner_steps} inner step(s); meta_train with a meta-batch of "
             f"{args.meta_batch} tasks and an Adam outer update; fp32.",
             f"Hardware: {hw.name} — {hw.description}.",
             "Produced by `hwsim demo`; every number comes from the exported ONNX graphs simulated by "
             "the SimPy engine."]
    _write_report(out, runs, files, "MAML vs FOMAML on the sinusoid task", notes)
    return 0

"""`hwsim export | simulate | compare | demo`. Each is a short chain of `hwsim.pipeline` stages:
export -> front end -> lower + simulate + price -> report. Outputs are checked before the work
starts and written when it is done."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import check_output, check_output_dir, write_atomic
from . import UsageError

if TYPE_CHECKING:
    from algorithms.spec import PhaseSpec
    from reports.compare import Run

    from ..config import HardwareConfig


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export one phase of a meta-learning algorithm to ONNX")
    _spec_args(p)
    p.add_argument("--phase", default="meta_train", help="infer, adapt or meta_train")
    p.add_argument("-o", "--output", required=True, type=Path, help="ONNX file to write")
    p.add_argument("--no-cache", action="store_true", help="re-export even if cached")
    p.add_argument("--framework", choices=("pytorch", "tensorflow"), default="pytorch",
                   help="tensorflow: a Keras model (--model, or the Keras --backbone) converted by "
                        "tf2onnx in .venv-tf (make tf); phases infer and adapt")
    p.add_argument("--model", metavar="FILE.py:FUNCTION",
                   help="with --framework tensorflow: a function returning your keras.Model")
    p.set_defaults(run=export)

    p = sub.add_parser("simulate", help="compile an ONNX model onto hardware and simulate it")
    p.add_argument("model", type=Path, help="ONNX file")
    p.add_argument("--hw", default="edge-npu", help="preset name or YAML file")
    p.add_argument("--json", type=Path, help="write the full SimResult as JSON")
    p.add_argument("--no-timeline", action="store_true", help="leave the event timeline out of --json")
    p.add_argument("--trace", type=Path, help="write a Perfetto/Chrome trace of the timeline")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a symbolic input dimension (repeatable)")
    limit_args(p)
    lowering_args(p)
    p.set_defaults(run=simulate)

    p = sub.add_parser("compare", help="several algorithms x hardware targets, phase by phase")
    _spec_args(p)
    p.add_argument("--algos", default="maml,fomaml", help="comma-separated algorithms")
    p.add_argument("--phases", default="infer,adapt,meta_train", help="comma-separated phases")
    p.add_argument("--hw", default="edge-npu", help="comma-separated presets or YAML files")
    p.add_argument("--report", type=Path, required=True, help="output folder (report.md, CSVs)")
    p.add_argument("--accuracy", nargs="+", type=Path, default=[], metavar="TRAIN_JSON",
                   help="`hwsim train --out` results to set beside the simulated cost")
    lowering_args(p)
    p.set_defaults(run=compare)

    p = sub.add_parser("demo", help="MAML vs FOMAML on the sinusoid task, every phase, on edge-npu")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--hw", default="edge-npu")
    p.add_argument("--meta-batch", type=int, default=25)
    p.add_argument("--inner-steps", type=int, default=1, help="k (the paper meta-trains the sinusoid with 1)")
    p.set_defaults(run=demo)


def lowering_args(p: argparse.ArgumentParser) -> None:
    """The NPU lowering's options (`compiler.options`: streaming detail and the co-design knobs);
    each is passed on only when given."""
    from compiler.options import OPTIONS

    helps = {"detail": "streaming: node (closed form, the default) or tiles (every streamed tile a task: "
                       "the slower reference)",
             "precision": "store and compute floating tensors at this type (float32 master weights and "
                          "updates under bf16/fp16; int8 for infer/adapt); default: the graph's types",
             "fusion": "fuse layers so intermediates stay on chip: layer (conv-bn-relu-pool groups) or "
                       "depth_first (across layers over row bands of the feature map)",
             "halo": "fused row bands keep the rows they share on chip (cache) or recompute them",
             "recompute": "inner-loop checkpointing: stash_all (keep every activation), per_step "
                          "(recompute each step's activations in the backward) or all"}
    for name, (values, default) in OPTIONS.items():
        p.add_argument(f"--{name}", choices=[v for v in values if v is not None], default=None,
                       help=f"NPU lowering: {helps[name]}" + (f" (default {default})" if default else ""))


def lowering_options(args: argparse.Namespace, hw: "HardwareConfig") -> dict[str, str]:
    """The lowering options given on the command line, for `hw` (only NPUs take them)."""
    from compiler.options import OPTIONS

    chosen = {name: getattr(args, name) for name in OPTIONS if getattr(args, name, None) is not None}
    if chosen and hw.kind != "npu":
        flags = ", ".join(f"--{k}" for k in chosen)
        raise UsageError(f"{flags}: applies to NPU targets; {hw.name} is a {hw.kind}")
    return chosen


def limit_args(p: argparse.ArgumentParser) -> None:
    """The flags of `compiler.limits.Limits`: how large a model the frontend accepts."""
    from compiler.limits import Limits

    for name, flag in Limits.FLAGS.items():
        p.add_argument(flag, type=_positive_int(flag), default=getattr(Limits(), name), metavar="N",
                       help=f"largest model accepted: {name.replace('_', ' ')} (default %(default)s)")


def limits_of(args: argparse.Namespace):
    from compiler.limits import Limits

    return Limits(**{name: getattr(args, name) for name in Limits.FLAGS})


def _positive_int(flag: str):
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{flag} takes an integer >= 1, got {text!r}")
        return int(text)
    return parse


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algo", default="maml", help="algorithm (maml, fomaml, reptile, metasgd, protonet, metalstm, anil)")
    p.add_argument("--backbone", default="sine_mlp", help="sine_mlp or conv4_{32,64}_{28x28x1,84x84x3}")
    p.add_argument("--way", type=int, default=1, help="classes per task (1 for regression)")
    p.add_argument("--shot", type=int, default=10, help="support examples per class (K)")
    p.add_argument("--query", type=int, default=10, help="query examples per class")
    p.add_argument("--inner-steps", type=int, default=1, help="inner-loop steps k")
    p.add_argument("--inner-lr", type=float, default=0.01, help="inner-loop learning rate α")
    p.add_argument("--meta-batch", type=int, default=25, help="tasks per meta-batch B (meta_train)")
    p.add_argument("--seed", type=int, default=0)


# The spec fields the command line sets (`_spec_args`), by PhaseSpec field name.
SPEC_FIELDS = ("backbone", "way", "shot", "query", "inner_steps", "inner_lr", "meta_batch", "seed")


def phase_spec(fields: dict[str, Any], algorithm: str, phase: str) -> "PhaseSpec":
    """The one place the CLI builds a PhaseSpec (the meta-batch only matters for meta_train)."""
    from algorithms.spec import PhaseSpec

    values = {k: fields[k] for k in SPEC_FIELDS if k in fields}
    if phase != "meta_train":
        values["meta_batch"] = 1
    return PhaseSpec(algorithm=algorithm, phase=phase, **values)


# ---- export -------------------------------------------------------------------------------------

def export(args: argparse.Namespace) -> int:
    from .. import pipeline

    check_output(args.output, "-o")
    if args.framework == "tensorflow":
        from algorithms.frameworks import KerasPhaseSpec, export_keras_phase

        spec = KerasPhaseSpec(args.model or args.backbone, args.phase, args.algo, args.way, args.shot,
                              args.query, args.inner_steps, args.inner_lr, args.seed)
        model = export_keras_phase(spec, cache_dir=None if args.no_cache else pipeline.default_cache_dir())
    elif args.model:
        raise UsageError("--model: only with --framework tensorflow")
    else:
        spec = phase_spec(vars(args), args.algo, args.phase)
        model = pipeline.export(spec, use_cache=not args.no_cache)
    write_atomic(args.output, model.SerializeToString())
    print(f"wrote {args.output}: {spec.algorithm} {spec.phase}, {len(model.graph.node)} nodes")
    return 0


# ---- simulate -----------------------------------------------------------------------------------

def parse_dims(pairs: list[str]) -> dict[str, int]:
    dims = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name or not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 1 << 31:
            raise UsageError(f"--dim {p!r}: expected NAME=VALUE with an integer VALUE from 1 to {1 << 31}")
        dims[name] = int(value)
    return dims


def simulate(args: argparse.Namespace) -> int:
    from reports.fabric import configuration_table
    from reports.tables import phase_table, summary_table
    from reports.trace import perfetto_trace

    from .. import pipeline
    from ..config import load_hardware

    if not args.model.is_file():
        raise UsageError(f"{args.model}: no such file (expected an ONNX model)")
    for out, flag in ((args.json, "--json"), (args.trace, "--trace")):
        if out is not None:
            check_output(out, flag)
    hw = load_hardware(args.hw)
    options = lowering_options(args, hw)
    model = pipeline.prepare(args.model, dims=parse_dims(args.dim), limits=limits_of(args))
    run = pipeline.simulate(model, hw, **options)
    result, graph = run.result, run.model.graph
    print(f"{args.model}  ({graph.metadata.get('algorithm', 'model')} "
          f"{graph.metadata.get('phase', '')}, {len(graph.nodes)} nodes, {len(run.program.tasks)} tasks)")
    print(summary_table(result))
    if graph.metadata.get("phase"):
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


# ---- compare and demo ---------------------------------------------------------------------------

DEMO_ALGORITHMS = ("maml", "fomaml")
DEMO_PHASES = ("infer", "adapt", "meta_train")


def run_matrix(label: str, specs: dict[tuple[str, str], "PhaseSpec"], hws: list["HardwareConfig"],
               out: Path, options: dict[str, dict[str, str]] | None = None) -> tuple[list["Run"], dict[Path, bytes | str]]:
    """Export each (algorithm, phase) once and run its front end once, then lower and simulate
    it on every target. Returns the runs and the files to write (nothing is written here)."""
    from reports.compare import Run

    from .. import pipeline
    from ..files import safe_name

    runs: list[Run] = []
    files: dict[Path, bytes | str] = {}
    for (algo, phase), spec in specs.items():
        print(f"[{label}] {algo:8s} {phase:10s} export ...", end="", flush=True, file=sys.stderr)
        model = pipeline.export(spec)
        print(f" {len(model.graph.node)} nodes", file=sys.stderr)
        files[out / "models" / f"{safe_name(algo)}_{safe_name(phase)}.onnx"] = model.SerializeToString()
        front = pipeline.prepare(model)
        for hw in hws:
            run = pipeline.simulate(front, hw, **(options or {}).get(hw.name, {}))
            print(f"[{label}]   on {hw.name}: {len(run.program.tasks)} tasks, "
                  f"{run.result.cycles:,.0f} cycles", file=sys.stderr)
            runs.append(Run(algo, phase, run.result, {"inner_steps": str(spec.inner_steps),
                                                      "meta_batch": str(spec.meta_batch)}))
            name = f"{safe_name(algo)}_{safe_name(phase)}_{safe_name(hw.name)}.json"
            files[out / "results" / name] = run.result.to_json(timeline=False)
    return runs, files


def _write_report(out: Path, runs: list["Run"], files: dict[Path, bytes | str], title: str,
                  notes: list[str], accuracy: list[dict] | None = None) -> None:
    from reports.cells import csv_text
    from reports.compare import comparison_markdown, phases_frame, totals_frame

    files[out / "comparison.csv"] = csv_text(phases_frame(runs))
    files[out / "totals.csv"] = csv_text(totals_frame(runs))
    files[out / "report.md"] = comparison_markdown(runs, title=title, notes=notes, accuracy=accuracy)
    for path, data in files.items():  # everything computed first: nothing is half-written
        write_atomic(path, data)
    print(comparison_markdown(runs, title=title).split("## Phase by phase")[0])
    print(f"wrote {out}/report.md, comparison.csv, totals.csv, models/, results/"
          + (", report.html" if out / "report.html" in files else ""))


def _names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--{what}: expected a comma-separated list, got {text!r}")
    return list(dict.fromkeys(names))


def _unique_targets(hws: list["HardwareConfig"]) -> None:
    from ..files import safe_name

    seen: dict[str, str] = {}
    for hw in hws:
        key = safe_name(hw.name)
        if key in seen:
            raise UsageError(f"--hw: two targets are named {hw.name!r} (and {seen[key]!r}); "
                             "give each config its own name")
        seen[key] = hw.name


def compare(args: argparse.Namespace) -> int:
    from ..config import load_hardware
    from . import report

    algos, phases = _names(args.algos, "algos"), _names(args.phases, "phases")
    check_output_dir(args.report, "--report")
    hws = [load_hardware(h) for h in _names(args.hw, "hw")]
    _unique_targets(hws)
    # every spec is validated before the first (slow) export
    specs = {(algo, phase): phase_spec(vars(args), algo, phase) for algo in algos for phase in phases}
    trains = report.accuracy_inputs(args.accuracy, vars(args), algos, phases)
    options = {hw.name: lowering_options(args, hw) for hw in hws}
    runs, files = run_matrix("compare", specs, hws, args.report, options)
    accuracy = report.accuracy_files(trains, runs, args.inner_steps, args.report, files)
    notes = [f"{', '.join(algos)} × {', '.join(phases)} on {', '.join(h.name for h in hws)}; "
             f"backbone {args.backbone}, way {args.way}, shot {args.shot}, query {args.query}, "
             f"k={args.inner_steps}, α={args.inner_lr}, meta-batch {args.meta_batch}, seed {args.seed}.",
             "Produced by `hwsim compare`."]
    _write_report(args.report, runs, files, "hwsim comparison", notes, accuracy)
    return 0


@dataclass(frozen=True)
class DemoSetting:
    """The sinusoid setup of Finn et al. (2017): K = 10 support and 10 query points, α = 0.01."""

    backbone: str = "sine_mlp"
    way: int = 1
    shot: int = 10
    query: int = 10
    inner_lr: float = 0.01


def demo(args: argparse.Namespace) -> int:
    from ..config import load_hardware

    check_output_dir(args.out, "--out")
    hw = load_hardware(args.hw)
    fields = {**vars(DemoSetting()), "inner_steps": args.inner_steps, "meta_batch": args.meta_batch, "seed": 0}
    specs = {(a, p): phase_spec(fields, a, p) for a in DEMO_ALGORITHMS for p in DEMO_PHASES}
    runs, files = run_matrix("demo", specs, [hw], args.out)
    notes = [f"Sinusoid regression (Finn et al. 2017): MLP 1-40-40-1 ReLU, K=10 support and 10 query "
             f"points, α=0.01, {args.inner_steps} inner step(s); meta_train with a meta-batch of "
             f"{args.meta_batch} tasks and an Adam outer update; fp32.",
             f"Hardware: {hw.name} — {hw.description}.",
             "Produced by `hwsim demo`; every number comes from the exported ONNX graphs simulated by "
             "the SimPy engine."]
    from reports.html import comparison_page

    title = "MAML vs FOMAML on the sinusoid task"
    files[args.out / "report.html"] = comparison_page(runs, title=title, notes=notes)
    _write_report(args.out, runs, files, title, notes)
    return 0

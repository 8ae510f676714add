"""The `hwsim` command. It reads as the pipeline: export -> compile -> simulate -> report.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback, nothing written),
1 internal error (set HWSIM_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from .. import __version__

CACHE_ENV = "HWSIM_CACHE"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, ".hwsim-cache"))


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    from algorithms.export import SpecError
    from compiler.frontend import ModelError
    from compiler.lowering import LoweringError
    from compiler.workload import UnsupportedOpError
    from hwsim.config import ConfigError
    from hwsim.dse import SweepError
    from algorithms.data import DataError
    from algorithms.training import TrainingError

    return (SpecError, ModelError, UnsupportedOpError, LoweringError, ConfigError, UsageError,
            DataError, TrainingError, SweepError)


class UsageError(ValueError):
    """A command-line argument that cannot be used (a missing input file, a bad --dim)."""


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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hwsim", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

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

    p = sub.add_parser("simulate", help="compile an ONNX model onto hardware and simulate it")
    p.add_argument("model", type=Path, help="ONNX file")
    p.add_argument("--hw", default="edge-npu", help="preset name or YAML file")
    p.add_argument("--json", type=Path, help="write the full SimResult as JSON")
    p.add_argument("--no-timeline", action="store_true", help="leave the event timeline out of --json")
    p.add_argument("--trace", type=Path, help="write a Perfetto/Chrome trace of the timeline")
    p.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a symbolic input dimension (repeatable)")

    p = sub.add_parser("compare", help="several algorithms x hardware targets, phase by phase")
    _spec_args(p)
    p.add_argument("--algos", default="maml,fomaml", help="comma-separated algorithms")
    p.add_argument("--phases", default="infer,adapt,meta_train", help="comma-separated phases")
    p.add_argument("--hw", default="edge-npu", help="comma-separated presets or YAML files")
    p.add_argument("--report", type=Path, required=True, help="output folder (report.md, CSVs)")

    p = sub.add_parser("demo", help="MAML vs FOMAML on the sinusoid task, every phase, on edge-npu")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--hw", default="edge-npu")
    p.add_argument("--meta-batch", type=int, default=25)
    p.add_argument("--inner-steps", type=int, default=1, help="k (the paper meta-trains the sinusoid with 1)")

    from . import explore, train
    train.add_parser(sub)
    explore.add_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad_input: tuple[type[BaseException], ...] = (UsageError,)
    try:
        bad_input = _bad_input_errors()
        from . import commands, explore, train

        return {"export": commands.export, "simulate": commands.simulate,
                "compare": commands.compare, "demo": commands.demo, "train": train.run,
                "sweep": explore.sweep, "report": explore.report}[args.command](args)
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`hwsim ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # noqa: BLE001 - the one place errors become exit codes
        if isinstance(e, bad_input):
            print(f"hwsim {args.command}: error: {e}", file=sys.stderr)
            return 2
        if os.environ.get("HWSIM_DEBUG"):
            traceback.print_exc()
        print(f"hwsim {args.command}: internal error: {e.__class__.__name__}: {e} "
              "(set HWSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

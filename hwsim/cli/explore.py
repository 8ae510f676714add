"""`hwsim sweep`: design-space exploration (its HTML report is `hwsim report STORE`)."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from ..files import check_output_dir, write_atomic
from . import UsageError


def add_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="sweep hardware parameters (YAML space) and keep the Pareto set")
    p.add_argument("space", type=Path, help="space YAML: base, models, grid")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--store", type=Path, required=True, help="output folder (points.csv, pareto.csv)")
    p.set_defaults(run=sweep)


def _csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def sweep(args: argparse.Namespace) -> int:
    from ..dse import load_space, pareto, run_sweep

    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: must be >= 1")
    if not args.space.is_file():
        raise UsageError(f"{args.space}: no such file (expected a sweep space YAML)")
    check_output_dir(args.store, "--store")
    space = load_space(args.space)
    rows = run_sweep(space, args.space.parent, workers=args.workers)
    front = pareto(rows)
    write_atomic(args.store / "points.csv", _csv(rows))
    write_atomic(args.store / "pareto.csv", _csv(front))
    write_atomic(args.store / "space.json", space.model_dump_json(indent=1))
    print(f"{len(rows)} results ({len(space.points())} points × {len(space.models)} models); "
          f"{len(front)} on the Pareto front; wrote {args.store}/points.csv, pareto.csv")
    return 0

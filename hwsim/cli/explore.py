"""`hwsim explore` (alias `sweep`): design-space exploration (its HTML report is `hwsim report STORE`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..files import check_output_dir
from . import UsageError


def add_parsers(sub) -> None:
    p = sub.add_parser("explore", aliases=["sweep"],
                       help="search hardware parameters (YAML space) for the Pareto set; resumable, on Dask")
    p.add_argument("space", type=Path, help="space YAML: base, models, parameters, objectives, constraints, search")
    p.add_argument("--store", type=Path, required=True,
                   help="store folder; rerun the same command to resume it (points.csv, pareto.csv, journal)")
    p.add_argument("--sampler", choices=["grid", "random", "tpe", "nsga2"], help="overrides search.sampler")
    p.add_argument("--trials", type=int, help="points to evaluate (overrides search.trials)")
    p.add_argument("--seed", type=int, help="overrides search.seed")
    p.add_argument("--batch", type=int, help="proposals per batch (overrides search.batch)")
    p.add_argument("--workers", type=int, help="local worker processes (default: the CPU count; "
                   "capped at it unless --force; 1 runs in this process)")
    p.add_argument("--force", action="store_true", help="allow more workers than CPUs")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this dask.distributed cluster")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (none is drawn when not a TTY)")
    p.set_defaults(run=explore)


def explore(args: argparse.Namespace) -> int:
    from ..explore import explore as run, load_space

    if not args.space.is_file():
        raise UsageError(f"{args.space}: no such file (expected an exploration space YAML)")
    check_output_dir(args.store, "--store")
    space = load_space(args.space).with_search(sampler=args.sampler, trials=args.trials, seed=args.seed,
                                               batch=args.batch)
    s = run(space, args.space.parent, args.store, workers=args.workers, force=args.force,
            scheduler=args.scheduler, progress=not args.no_progress)
    for note in s.notes:
        print(f"hwsim {args.command}: note: {note}", file=sys.stderr)
    done = s.kept + s.evaluated + s.reused
    print(f"{done} of {s.points} points in {args.store} ({s.kept} kept from before, {s.evaluated} simulated, "
          f"{s.reused} duplicates copied, {s.infeasible} infeasible); {len(s.front)} on the Pareto front; "
          f"{s.seconds:.1f} s")
    if s.interrupted:
        print(f"hwsim {args.command}: interrupted; what finished is kept: rerun the same command to continue",
              file=sys.stderr)
        return 130
    return 0

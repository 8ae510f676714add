"""`hwsim explore` (alias `sweep`) and `hwsim report`: design-space exploration and its HTML report."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..files import check_output, check_output_dir, write_atomic
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

    p = sub.add_parser("report", help="HTML report of an exploration store (a partial one too)")
    p.add_argument("store", type=Path, help="folder written by `hwsim explore`")
    p.add_argument("--html", type=Path, required=True, help="HTML file to write")
    p.set_defaults(run=report)


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


def _read_rows(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append({k: _number(v) for k, v in r.items()})
    return rows


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def report(args: argparse.Namespace) -> int:
    from reports.html import sweep_html

    from ..explore import MANIFEST, open_store, pareto_front, rows

    if (args.store / MANIFEST).exists():
        store = open_store(args.store)
        check_output(args.html, "--html")
        labels = store.manifest["objectives"]
        recs = [store.records[p] for p in sorted(store.records)]
        ok = [r for r in rows(recs, labels) if r["status"] == "ok"]
        notes = [f"{len(recs)} points in the store ({sum(r.status != 'ok' for r in recs)} infeasible)",
                 f"objectives: {', '.join(labels)}; area in {store.manifest.get('area_unit')}"]
        write_atomic(args.html, sweep_html(ok, rows(pareto_front(recs), labels),
                                           title=f"hwsim explore: {args.store.name}", notes=notes))
        print(f"wrote {args.html}")
        return 0
    points, front = args.store / "points.csv", args.store / "pareto.csv"
    if not points.is_file() or not front.is_file():
        raise UsageError(f"{args.store}: not a sweep store (expected {MANIFEST} written by "
                         "`hwsim explore`, or points.csv and pareto.csv of an older `hwsim sweep`)")
    check_output(args.html, "--html")
    rows, best = _read_rows(points), _read_rows(front)
    missing = {"model", "seconds", "energy_pj"} - set(rows[0] if rows else {})
    if missing:
        raise UsageError(f"{points}: missing columns {', '.join(sorted(missing))}")
    space = args.store / "space.json"
    notes = [f"space: {json.loads(space.read_text())}"] if space.is_file() else []
    write_atomic(args.html, sweep_html(rows, best, title=f"hwsim sweep: {args.store.name}", notes=notes))
    print(f"wrote {args.html}")
    return 0

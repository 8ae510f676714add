"""`hwsim sweep` and `hwsim report`: design-space exploration and its HTML report."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from ..files import check_output, check_output_dir, write_atomic
from . import UsageError


def add_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="sweep hardware parameters (YAML space) and keep the Pareto set")
    p.add_argument("space", type=Path, help="space YAML: base, models, grid")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--store", type=Path, required=True, help="output folder (points.csv, pareto.csv)")
    p.set_defaults(run=sweep)

    p = sub.add_parser("report", help="HTML report of a sweep store")
    p.add_argument("store", type=Path, help="folder written by `hwsim sweep`")
    p.add_argument("--html", type=Path, required=True, help="HTML file to write")
    p.set_defaults(run=report)


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

    points, front = args.store / "points.csv", args.store / "pareto.csv"
    if not points.is_file() or not front.is_file():
        raise UsageError(f"{args.store}: not a sweep store (expected points.csv and pareto.csv "
                         "written by `hwsim sweep`)")
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

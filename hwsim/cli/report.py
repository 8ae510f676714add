"""`hwsim report` and `hwsim reprice`: pages and prices from saved results, no re-simulation.

    hwsim report  out/r.json --html out/r.html      # one run (`hwsim simulate --json`)
    hwsim report  out/cmp    --html out/cmp.html    # a comparison folder (`hwsim compare --report`)
    hwsim report  out/sweep  --html out/sweep.html  # a sweep store (`hwsim sweep --store`)
    hwsim reprice out/r.json --energy-table eyeriss [--node-nm 7] [--json out/r7.json]

Also the inputs of `hwsim compare --accuracy` (train results, checked before any export) and
the files it adds to the comparison folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import check_output, write_atomic
from . import UsageError

if TYPE_CHECKING:
    from reports.accuracy import TrainResult
    from reports.compare import Run

    from ..result import SimResult

# A result, a train result or a store table is read whole; bigger than this is not one.
MAX_INPUT_BYTES = 2 << 30


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="self-contained HTML report of a result, a comparison or a sweep")
    p.add_argument("source", type=Path,
                   help="result JSON (simulate --json), comparison folder (compare --report) or sweep store")
    p.add_argument("--html", type=Path, required=True, help="HTML file to write")
    p.add_argument("--title", help="page title (default: from the input)")
    p.set_defaults(run=report)

    p = sub.add_parser("reprice", help="price a saved result with another energy table (no re-simulation)")
    p.add_argument("result", type=Path, help="result JSON written by `hwsim simulate --json`")
    p.add_argument("--energy-table", required=True, help="energy table name (e.g. horowitz45, eyeriss)")
    p.add_argument("--node-nm", type=int, help="process node for the table's on-chip rows (default: the config's)")
    p.add_argument("--hw", help="hardware config (preset or YAML) when the result carries none, or to replace it")
    p.add_argument("--json", type=Path, help="write the re-priced result as JSON")
    p.set_defaults(run=reprice)


# ---- report -------------------------------------------------------------------------------------

def report(args: argparse.Namespace) -> int:
    from reports.html import comparison_page, run_page, sweep_page

    src: Path = args.source
    if not src.exists():
        raise UsageError(f"{src}: no such file or folder")
    check_output(args.html, "--html")
    if src.is_dir():
        if is_store(src):
            rows, front, notes = read_sweep_store(src)
            page = sweep_page(rows, front, title=args.title or f"hwsim explore: {src.name}", notes=notes)
        elif (src / "results").is_dir():
            runs, accuracy = read_comparison(src)
            page = comparison_page(runs, title=args.title or f"hwsim comparison: {src.name}",
                                   notes=[f"Read from {src}: {len(runs)} saved results."], accuracy=accuracy)
        else:
            raise UsageError(f"{src}: not an exploration store (from `hwsim explore`) nor a comparison "
                             "folder (results/*.json from `hwsim compare`)")
    elif src.is_file():
        page = run_page(load_result(src), title=args.title)
    else:
        raise UsageError(f"{src}: not a regular file or a folder")
    write_atomic(args.html, page)
    print(f"wrote {args.html} ({len(page.encode()) / 1024:,.0f} KiB)")
    return 0


def load_result(path: Path) -> "SimResult":
    from ..result import SimResult

    return SimResult.from_json(_read_text(path), str(path))


def read_comparison(folder: Path) -> tuple[list["Run"], list[dict] | None]:
    """The runs of a comparison folder (results/*.json), in the order of its totals.csv when
    there is one, and its accuracy points (accuracy.json) if `--accuracy` was given."""
    from reports.compare import Run

    files = sorted((folder / "results").glob("*.json"))
    if not files:
        raise UsageError(f"{folder}/results: no result JSON files")
    runs = []
    for f in files:
        r = load_result(f)
        runs.append(Run(r.metadata.get("algorithm", f.stem), r.metadata.get("phase", "model"), r,
                        {k: r.metadata[k] for k in ("inner_steps", "meta_batch") if k in r.metadata}))
    order = _totals_order(folder / "totals.csv")
    runs.sort(key=lambda run: (order.get((run.algorithm, run.phase, run.result.target), len(order)),
                               run.algorithm, run.phase, run.result.target))
    accuracy = None
    acc = folder / "accuracy.json"
    if acc.is_file():
        data = _json(acc)
        if not isinstance(data, dict) or not isinstance(data.get("points"), list):
            raise UsageError(f"{acc}: expected the accuracy.json written by `hwsim compare --accuracy`")
        accuracy = data["points"] or None
    return runs, accuracy


def _totals_order(path: Path) -> dict[tuple[str, str, str], int]:
    import csv

    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {(r.get("algorithm", ""), r.get("phase", ""), r.get("target", "")): i
                for i, r in enumerate(csv.DictReader(f))}


def is_store(folder: Path) -> bool:
    from ..explore import MANIFEST

    return (folder / MANIFEST).exists() or (folder / "points.csv").is_file() or (folder / "pareto.csv").is_file()


def read_sweep_store(store: Path) -> tuple[list[dict], list[dict], list[str]]:
    """(feasible rows, Pareto set, notes) of an exploration store — a partial one too, through
    `hwsim.explore.open_store` (a damaged store is a one-line error naming the file) — or of a
    folder written by the grid `hwsim sweep` of earlier versions (points.csv, pareto.csv)."""
    from ..explore import MANIFEST, open_store, pareto_front, rows as store_rows

    if (store / MANIFEST).exists():
        opened = open_store(store)
        labels = opened.manifest["objectives"]
        recs = [opened.records[p] for p in sorted(opened.records)]
        ok = [r for r in store_rows(recs, labels) if r["status"] == "ok"]
        notes = [f"{len(recs)} points in the store ({sum(r.status != 'ok' for r in recs)} infeasible)",
                 f"objectives: {', '.join(labels)}; area in {opened.manifest.get('area_unit')}"]
        return ok, store_rows(pareto_front(recs), labels), notes
    points, front = store / "points.csv", store / "pareto.csv"
    if not points.is_file() or not front.is_file():
        raise UsageError(f"{store}: not an exploration store (expected store.json, or points.csv and pareto.csv "
                         "written by `hwsim sweep`)")
    rows, best = _read_rows(points), _read_rows(front)
    missing = {"model", "seconds", "energy_pj"} - set(rows[0] if rows else {})
    if missing:
        raise UsageError(f"{points}: missing columns {', '.join(sorted(missing))}")
    space = store / "space.json"
    notes = [f"space: {json.dumps(_json(space), sort_keys=True)}"] if space.is_file() else []
    return rows, best, notes


def _read_rows(path: Path) -> list[dict]:
    import csv
    import io

    return [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(_read_text(path)))]


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except (TypeError, ValueError):
            pass
    return text


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file")
    with path.open("rb") as f:
        data = f.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{path}: larger than {MAX_INPUT_BYTES >> 30} GiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except ValueError as e:
        raise UsageError(f"{path}: not JSON ({e})") from None


# ---- reprice ------------------------------------------------------------------------------------

def reprice(args: argparse.Namespace) -> int:
    from reports.tables import render, si
    from reports.target import Target

    from ..config import load_hardware
    from ..energy import action_price, energy_table, known_tables

    if args.json is not None:
        check_output(args.json, "--json")
    result = load_result(args.result)
    if args.hw is not None:
        hw = load_hardware(args.hw)
    elif result.hardware:
        from reports.target import target_of

        hw = target_of(result).config
    else:
        raise UsageError(f"{args.result}: the result carries no hardware config (saved by an older "
                         "hwsim); give it with --hw")
    if args.node_nm is not None:
        hw = _at_node(hw, args.node_nm)
    if args.energy_table not in known_tables():
        raise UsageError(f"--energy-table {args.energy_table!r}: unknown; known: {', '.join(known_tables())}")
    table = energy_table(hw, args.energy_table)
    for action in result.action_totals():
        try:
            action_price(action, table)
        except KeyError:
            raise UsageError(f"--energy-table {args.energy_table}: has no price for {action!r} of this "
                             f"{hw.kind} result (tables are made for one kind of target)") from None
    new = result.repriced(table)
    new.hardware = hw.model_dump(mode="json")
    before, after = result.energy_by_component(), new.energy_by_component()
    rows = [(c, si(before.get(c, 0.0) * 1e-12, "J"), si(after.get(c, 0.0) * 1e-12, "J"),
             f"{after.get(c, 0.0) / before[c]:.3f}" if before.get(c) else "—")
            for c in sorted(set(before) | set(after))]
    rows.append(("total", si(result.energy_pj * 1e-12, "J"), si(new.energy_pj * 1e-12, "J"),
                 f"{new.energy_pj / result.energy_pj:.3f}" if result.energy_pj else "—"))
    old_name = (result.hardware.get("technology") or {}).get("energy_table", "as saved")
    print(f"{args.result}: {result.target}, {result.cycles:,.0f} cycles (not re-simulated)")
    print(render(("component", f"energy ({old_name})",
                  f"energy ({args.energy_table}, {hw.technology.node_nm} nm)", "ratio"), rows))
    target = Target(hw)
    print()
    print(render(("area" if hw.kind == "npu" else "resource", "amount", "source"), target.area_rows()))
    if args.json is not None:
        write_atomic(args.json, new.to_json(timeline=bool(result.timeline)))
        print(f"\nwrote {args.json}")
    return 0


def _at_node(hw, node_nm: int):
    from pydantic import TypeAdapter, ValidationError

    from ..config import ConfigError, HardwareConfig

    data = hw.model_dump(mode="json")
    data["technology"] = {**data["technology"], "node_nm": node_nm}
    try:
        return TypeAdapter(HardwareConfig).validate_python(data)
    except ValidationError as e:
        raise ConfigError(f"--node-nm {node_nm}: {e.errors()[0]['msg']}") from None


# ---- compare --accuracy -------------------------------------------------------------------------

def accuracy_inputs(paths: list[Path], setting: dict[str, Any], algorithms: list[str],
                    phases: list[str]) -> list["TrainResult"]:
    """The train results given to `compare --accuracy`, read and matched against the settings
    to simulate before anything is exported (a mismatch is one line naming the flags)."""
    from reports.accuracy import check_match, read_train_result

    if not paths:
        return []
    missing = {"adapt", "meta_train"} - set(phases)
    if missing:
        raise UsageError(f"--accuracy needs --phases to include {' and '.join(sorted(missing))} "
                         "(the cost of a meta-training step and of adapting to a task)")
    simulated = {**{k: setting[k] for k in ("backbone", "way", "shot", "query", "inner_steps", "meta_batch")},
                 "algorithms": algorithms}
    trains = []
    for path in paths:
        if not path.is_file():
            raise UsageError(f"--accuracy {path}: no such file (expected `hwsim train --out` JSON)")
        t = read_train_result(_json(path), path.stem, str(path))
        check_match(t, simulated, str(path))
        trains.append(t)
    if len({t.metric for t in trains}) > 1:
        raise UsageError("--accuracy: results mix accuracy and MSE; give results of one task family")
    return trains


def accuracy_files(trains: list["TrainResult"], runs: list["Run"], inner_steps: int,
                   out: Path, files: dict[Path, bytes | str]) -> list[dict] | None:
    """Join the train results with the simulated runs; add accuracy.json and accuracy.csv to
    `files` (written with the rest). Returns the points (None without train results)."""
    import pandas as pd

    from reports.accuracy import MATCH_FIELDS, join
    from reports.cells import csv_text

    if not trains:
        return None
    points = join(trains, runs, inner_steps)
    files[out / "accuracy.json"] = json.dumps({"metric": trains[0].metric, "matched_on": list(MATCH_FIELDS),
                                               "points": points}, indent=1, sort_keys=True)
    files[out / "accuracy.csv"] = csv_text(pd.DataFrame(points))
    return points

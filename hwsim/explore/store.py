"""The exploration store: a folder that survives being killed.

    STORE/
      store.json      manifest: format, the space, the fingerprints of its base config and models
      journal.jsonl   one JSON object per finished point, appended as each point finishes
      points.csv      one row per point x model (derived from the journal after each run)
      pareto.csv      the Pareto set's rows (derived likewise)

The journal is the truth. A point is appended (one `write` of a whole line, flushed to the
kernel) the moment its result reaches the driver, so a SIGKILL loses at most the points still
in flight; a torn last line (no newline) is what such a kill can leave and is dropped on the
next open. Any other unreadable line is damage and a one-line error naming the file and line.
When a run ends the journal is rewritten in point order (atomically), so a finished store's
bytes depend on the space and seed alone, not on the workers or on interruptions.

A store written by another space (or another base config, or other models) is refused, as is
a folder holding files but no manifest: nothing is ever mixed into it.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import BadInput
from ..files import check_output_dir, write_atomic

FORMAT = "hwsim-explore/1"
MANIFEST = "store.json"
JOURNAL = "journal.jsonl"
DERIVED = ("points.csv", "pareto.csv")
MAX_MANIFEST_BYTES = 4 << 20
# A journal line holds one point (its parameters and a few numbers per model); anything this
# long is not one.
MAX_LINE_BYTES = 1 << 20


class StoreError(BadInput):
    """A store that cannot be used: damaged, foreign, written by another space, or locked."""


class Record(BaseModel):
    """One finished point as the journal keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    point: int
    params: dict[str, Any]
    status: str                                  # "ok" | "infeasible"
    reason: str | None = None                    # why a point is infeasible
    area: float | None = None
    models: dict[str, dict[str, float]] = {}
    objectives: list[float] | None = None
    violations: list[float] = []                 # constraint value - bound (<= 0: satisfied)
    same_as: int | None = None                   # a duplicate of an earlier point: copied, not re-run
    trial: dict[str, Any] | None = None          # the sampler's view (its params, system attrs)

    @field_validator("params", "models")
    @classmethod
    def _by_name(cls, v: dict) -> dict:
        # one order whether a record was just made or read back from the journal (sorted keys),
        # so the derived tables do not depend on which it was
        return {k: (dict(sorted(x.items())) if isinstance(x, dict) else x) for k, x in sorted(v.items())}

    @property
    def feasible(self) -> bool:
        return self.status == "ok" and all(v <= 0 for v in self.violations)

    def line(self) -> str:
        return json.dumps(self.model_dump(exclude_defaults=True), sort_keys=True,
                          separators=(",", ":"), allow_nan=False) + "\n"


class Store:
    """An open store: its manifest and the records it holds (by point)."""

    def __init__(self, path: Path, manifest: dict[str, Any], records: dict[int, Record]):
        self.path = Path(path)
        self.manifest = manifest
        self.records = records
        self._fd: int | None = None
        self._lock: int | None = None

    # ---- opening -------------------------------------------------------------------------------
    @classmethod
    def create_or_resume(cls, path: Path, manifest: dict[str, Any], n_points: int) -> "Store":
        """Open `path` for a run of the exploration `manifest` describes: a new store is made; an
        existing one must be of the same exploration (`identity`), else it is refused."""
        path = Path(path)
        check_output_dir(path, "--store")
        if path.is_dir() and not (path / MANIFEST).exists() and any(path.iterdir()):
            raise StoreError(f"{path}: not an exploration store (no {MANIFEST}) and not empty; "
                             "give a new or empty folder")
        path.mkdir(parents=True, exist_ok=True)
        lock = _lock(path)
        try:
            if (path / MANIFEST).exists():
                old = read_manifest(path)
                if old.get("identity") != manifest["identity"]:
                    raise StoreError(f"{path / MANIFEST}: this store holds another exploration "
                                     f"({_differs(old, manifest)}); give a new --store or the same space")
                records = read_journal(path / JOURNAL, n_points=None)
            else:
                records = {}
            write_atomic(path / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            store = cls(path, manifest, records)
            store._lock = lock
            store._fd = os.open(path / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            _drop_torn_tail(path / JOURNAL, store._fd)
            return store
        except BaseException:
            os.close(lock)
            raise

    # ---- writing -------------------------------------------------------------------------------
    def append(self, records: Iterable[Record]) -> None:
        """Commit finished points: one write of whole lines, visible to a rerun once it returns."""
        lines = []
        for r in records:
            if r.point in self.records:
                raise RuntimeError(f"point {r.point} committed twice")   # a driver bug, never input
            self.records[r.point] = r
            lines.append(r.line())
        if lines and self._fd is not None:
            data = "".join(lines).encode("utf-8")
            while data:
                data = data[os.write(self._fd, data):]

    def close(self, *, objectives_labels: list[str]) -> None:
        """Sync, rewrite the journal in point order and derive the CSVs; release the lock."""
        try:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            ordered = [self.records[p] for p in sorted(self.records)]
            write_atomic(self.path / JOURNAL, "".join(r.line() for r in ordered))
            write_derived(self.path, ordered, objectives_labels)
        finally:
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None


# ---- reading ---------------------------------------------------------------------------------------
def open_store(path: Path) -> Store:
    """A store to read (a report, a partial store of a killed run): its manifest and records."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise StoreError(f"{path}: not an exploration store (no {MANIFEST} written by `hwsim explore`)")
    manifest = read_manifest(path)
    records = read_journal(path / JOURNAL, n_points=None) if (path / JOURNAL).exists() else {}
    return Store(path, manifest, records)


def read_manifest(path: Path) -> dict[str, Any]:
    f = path / MANIFEST
    try:
        with f.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise StoreError(f"{f}: larger than {MAX_MANIFEST_BYTES >> 20} MiB; not a store manifest")
        data = json.loads(raw.decode("utf-8"))
    except OSError as e:
        raise StoreError(f"{f}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise StoreError(f"{f}: damaged (not the JSON manifest of an exploration store)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("identity"), str):
        raise StoreError(f"{f}: not a manifest of this store format (expected format {FORMAT!r})")
    return data


def read_journal(f: Path, n_points: int | None) -> dict[int, Record]:
    """Every record of a journal, by point. The last line may be torn by a kill (no newline): it
    is not a record. Any other bad line is damage."""
    try:
        raw = f.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise StoreError(f"{f}: cannot read ({e.strerror or e})") from None
    lines = raw.split(b"\n")
    lines.pop()                      # after the last newline: empty, or a torn write
    out: dict[int, Record] = {}
    for no, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_BYTES:
            raise StoreError(f"{f}: line {no}: damaged (longer than any record)")
        try:
            rec = Record.model_validate(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, ValidationError, RecursionError):
            raise StoreError(f"{f}: line {no}: damaged (not a point record); the store cannot be "
                             "used as it is") from None
        if rec.point in out or rec.point < 0 or (n_points is not None and rec.point >= n_points):
            raise StoreError(f"{f}: line {no}: damaged (point {rec.point} repeated or out of range)")
        out[rec.point] = rec
    return out


def _drop_torn_tail(f: Path, fd: int) -> None:
    """Cut a torn last line (left by a kill mid-write) so the next append starts a fresh line."""
    raw = f.read_bytes()
    if raw and not raw.endswith(b"\n"):
        os.ftruncate(fd, raw.rfind(b"\n") + 1)


def _lock(path: Path) -> int:
    """An exclusive lock on the store folder, released by the kernel when the process dies."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"{path}: another `hwsim explore` is writing this store") from None
    return fd


def _differs(old: dict[str, Any], new: dict[str, Any]) -> str:
    for key, what in (("space", "another space"), ("base", "another base config"), ("models", "other models")):
        if old.get(key) != new.get(key):
            return f"written by {what}"
    return "another exploration"


# ---- derived tables ---------------------------------------------------------------------------------
def rows(records: Iterable[Record], objectives_labels: list[str]) -> list[dict[str, Any]]:
    """One row per point x model (an infeasible point: one row with its reason)."""
    out = []
    for r in records:
        head: dict[str, Any] = {"point": r.point, "status": r.status, **r.params}
        if r.status != "ok":
            out.append({**head, "reason": r.reason})
            continue
        objs = dict(zip(objectives_labels, r.objectives or []))
        for model, m in r.models.items():
            out.append({**head, "feasible": r.feasible, "model": model, **m, "area": r.area,
                        **{f"objective:{k}": v for k, v in objs.items()}})
    return out


def pareto_front(records: Iterable[Record]) -> list[Record]:
    """The records no other feasible record dominates on the objectives (all minimised), by point.
    Sorted lexicographically, a point can only be dominated by one before it, and only a point
    on the front needs checking against."""
    import numpy as np

    # a duplicate (same_as) is its original's configuration again: the front lists it once
    cands = sorted((r for r in records if r.feasible and r.objectives and r.same_as is None),
                   key=lambda r: (tuple(r.objectives), r.point))
    front: list[Record] = []
    vals = np.empty((0, len(cands[0].objectives) if cands else 0))
    for r in cands:
        v = np.asarray(r.objectives)
        if len(front) and np.any(np.all(vals <= v, axis=1) & np.any(vals < v, axis=1)):
            continue
        front.append(r)
        vals = np.vstack([vals, v])
    return sorted(front, key=lambda r: r.point)


def write_derived(path: Path, ordered: list[Record], objectives_labels: list[str]) -> None:
    write_atomic(path / "points.csv", to_csv(rows(ordered, objectives_labels)))
    write_atomic(path / "pareto.csv", to_csv(rows(pareto_front(ordered), objectives_labels)))


def to_csv(table: list[dict[str, Any]]) -> str:
    if not table:
        return ""
    keys = list(dict.fromkeys(k for r in table for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows({k: (repr(v) if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()}
                for r in table)
    return buf.getvalue()


__all__ = ["Store", "Record", "StoreError", "open_store", "read_journal", "read_manifest", "rows",
           "pareto_front", "to_csv", "FORMAT", "MANIFEST", "JOURNAL"]

"""Running an exploration: models once, points in batches, each result into the store as it lands.

    summary = explore(space, space_dir, store, workers=2)

1. The base config is loaded, every `hw.` path and `compile.` option checked against it, and
   each model exported (cached) and run through the hardware-independent front end — once.
2. The store is opened: a new one is made, or a store of the same exploration is resumed.
3. Batch by batch, points not yet in the store are proposed (`search.propose`), evaluated on
   the workers in chunks, and committed as their chunk returns. A point with the same
   parameters as an earlier one is copied from it, not simulated again. A sampler's batch is
   finished before the next is proposed (the next depends on its results); grid batches flow.
4. On the way out (done, Ctrl-C, SIGTERM or an error) the workers are stopped and the store is
   closed: synced, its journal put in point order, points.csv and pareto.csv derived.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .cluster import executor, worker_count
from .cost import AREA_UNIT
from .point import Job, Models, check_parameters
from .search import batches, check_same, propose
from .space import ModelRef, Objective, Space, SpaceError, check_cap, digest
from .store import FORMAT, Record, Store, pareto_front

# Chunks in flight per worker: one running, one queued, so a worker never waits for the driver.
IN_FLIGHT_PER_WORKER = 2
MAX_CHUNK = 16


@dataclass
class Summary:
    """What a run did. `evaluated` counts simulations run by this call: a resumed run that
    finds every point in the store evaluates none."""

    store: Path
    points: int                     # points of the exploration
    kept: int = 0                   # already in the store when the run started
    evaluated: int = 0              # simulated now
    reused: int = 0                 # duplicates of an earlier point, copied
    infeasible: int = 0             # in the whole store
    complete: bool = False
    interrupted: bool = False       # stopped by Ctrl-C or SIGTERM; what finished is in the store
    seconds: float = 0.0            # the whole call
    evaluation_seconds: float = 0.0  # from the workers being ready to the last point committed
    front: list[Record] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def explore(space: Space, space_dir: Path, store: Path, *, workers: int | None = None, force: bool = False,
            scheduler: str | None = None, progress: bool = False,
            export: Callable[[ModelRef], Any] | None = None) -> Summary:
    """Run (or resume) the exploration `space` into the folder `store`."""
    from compiler.lowering import LOWERINGS

    from ..config import load_hardware

    t0 = time.perf_counter()
    check_cap(space, "space")
    n_workers, note = worker_count(workers, force=force) if scheduler is None else (1, None)
    base = load_hardware(space.base if not space.base.endswith((".yaml", ".yml")) else space_dir / space.base)
    base_data = json.loads(base.model_dump_json())
    names = list(space.domains())
    check_parameters(base_data, names, LOWERINGS.lookup(base.kind))
    fronts, fingerprints = _prepare(space, space_dir, export)
    manifest = {
        "format": FORMAT, "space": space.model_dump(mode="json"), "base": base_data, "models": fingerprints,
        "objectives": [o.label for o in space.objectives], "constraints": [c.label for c in space.constraints],
        "area_unit": AREA_UNIT[base.kind],
        "identity": digest(space.identity() + json.dumps([base_data, fingerprints], sort_keys=True)),
    }
    n = space.n_points()
    # a cluster given by address is reached before the store is touched: an unreachable one is
    # an error that leaves nothing behind (a local cluster starts only if a point needs it)
    ex = executor(Models(base_data, fronts), workers=1, scheduler=scheduler) if scheduler else None
    try:
        st = Store.create_or_resume(store, manifest, n)
    except BaseException:
        if ex is not None:
            ex.close()
        raise
    summary = Summary(store=Path(store), points=n, kept=sum(1 for p in st.records if p < n))
    if note:
        summary.notes.append(note)
    runner = _Runner(space, st, Models(base_data, fronts), summary, n_workers, scheduler)
    runner.ex = ex
    if ex is not None:
        runner.workers = ex.workers
    try:
        try:
            with _sigterm_as_interrupt():
                runner.run(progress)
        except KeyboardInterrupt:
            summary.interrupted = True
        summary.complete = all(p in st.records for p in range(n))
    finally:
        runner.close()
        st.close(objectives_labels=manifest["objectives"])
        summary.infeasible = sum(1 for r in st.records.values() if r.status != "ok")
        summary.front = pareto_front(st.records.values())
        summary.seconds = time.perf_counter() - t0
    return summary


def _prepare(space: Space, space_dir: Path, export) -> tuple[tuple[tuple[str, Any], ...], dict[str, str]]:
    """Each model's front end (built once per run) and a fingerprint of what it was built from."""
    from .. import pipeline

    fronts, prints = [], {}
    for i, ref in enumerate(space.models):
        if ref.onnx:
            path = space_dir / ref.onnx
            if not path.is_file():
                raise SpaceError(f"models.{i}.onnx: no such file {str(path)!r}")
            prints[ref.label] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
            fronts.append((ref.label, pipeline.prepare(path)))
        else:
            model = export(ref) if export is not None else pipeline.export(_phase_spec(ref))
            prints[ref.label] = "sha256:" + hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
            fronts.append((ref.label, pipeline.prepare(model)))
    return tuple(fronts), prints


def _phase_spec(ref: ModelRef):
    from algorithms.spec import PhaseSpec

    return PhaseSpec(algorithm=ref.algo, phase=ref.phase, backbone=ref.backbone, way=ref.way,
                     shot=ref.shot, query=ref.query, inner_steps=ref.inner_steps,
                     meta_batch=ref.meta_batch, inner_lr=ref.inner_lr, seed=ref.seed)


class _Runner:
    """The driver loop: proposals in, chunks out, results committed as they return."""

    def __init__(self, space: Space, store: Store, models: Models, summary: Summary, workers: int,
                 scheduler: str | None):
        self.space, self.store, self.models, self.summary = space, store, models, summary
        self.workers, self.scheduler = workers, scheduler
        self.ex = None
        self.trials: dict[int, dict | None] = {}
        self.params: dict[int, dict] = {}
        # parameters (as canonical JSON) -> the first point that has them, and the points waiting
        # for that point's result
        self.first: dict[str, int] = {}
        self.waiting: dict[str, list[int]] = {}
        for p in sorted(store.records):
            self.first.setdefault(_key(store.records[p].params), p)
        self.chunk: list[Job] = []
        self.bar = None
        self.ready: float | None = None
        self.batch_left = 0

    def run(self, progress: bool) -> None:
        n = self.summary.points
        if progress:
            from tqdm import tqdm

            # disable=None: drawn on a terminal, silent when stderr is a file or a pipe
            self.bar = tqdm(total=n, initial=self.summary.kept, unit="pt", disable=None, file=sys.stderr,
                            dynamic_ncols=True, desc="explore")
        for b, points in enumerate(batches(self.space)):
            todo = [p for p in points if p not in self.store.records]
            if not todo:
                continue
            proposed = propose(self.space, b, points, self.store.records)
            check_same(proposed, self.store.records, str(self.store.path / "journal.jsonl"))
            self.batch_left = len(todo)
            for p, params, trial in proposed:
                if p in self.store.records:
                    continue
                self.params[p], self.trials[p] = params, trial
                self._schedule(p, params)
            if self.space.search.sampler != "grid":
                self._drain()     # the next batch is proposed from this one's results
        self._drain()
        if self.ready is not None:
            self.summary.evaluation_seconds = time.perf_counter() - self.ready

    def _schedule(self, p: int, params: dict) -> None:
        key = _key(params)
        first = self.first.get(key)
        if first is not None and first in self.store.records:
            self._commit_copy(p, self.store.records[first])
            return
        if first is not None:
            self.waiting.setdefault(key, []).append(p)
            return
        self.first[key] = p
        self.chunk.append(Job(p, params))
        if len(self.chunk) >= self._chunk_size():
            self._submit()

    def _chunk_size(self) -> int:
        if self.scheduler is None and self.workers <= 1:
            return 1
        # a sampler's batch must finish before the next: spread it over every worker
        left = (self.summary.points - len(self.store.records) if self.space.search.sampler == "grid"
                else self.batch_left)
        return max(1, min(MAX_CHUNK, left // (IN_FLIGHT_PER_WORKER * self.workers)))

    def _submit(self) -> None:
        if not self.chunk:
            return
        if self.ex is None:
            self.ex = executor(self.models, workers=self.workers, scheduler=self.scheduler)
            self.workers = self.ex.workers
        if self.ready is None:
            self.ready = time.perf_counter()
        while self.ex.pending() >= IN_FLIGHT_PER_WORKER * self.workers:
            self._collect()
        self.ex.submit(self.chunk)
        self.chunk = []

    def _drain(self) -> None:
        self._submit()
        while self.ex is not None and self.ex.pending():
            self._collect()

    def _collect(self) -> None:
        try:
            outcomes = self.ex.next_result()
        except Exception:
            # a bug on a worker: commit whatever else finished, then let the bug surface
            for done in self.ex.finished():
                self._commit(done)
            raise
        self._commit(outcomes)

    def _commit(self, outcomes: list[dict[str, Any]]) -> None:
        records = [self._record(o) for o in outcomes]
        self.store.append(records)
        self.summary.evaluated += len(records)
        self._tick(len(records))
        for r in records:
            for q in self.waiting.pop(_key(r.params), []):
                self._commit_copy(q, r)

    def _record(self, o: dict[str, Any], *, point: int | None = None) -> Record:
        p = o["point"] if point is None else point
        if o["status"] != "ok":
            return Record(point=p, params=self.params[p], status=o["status"], reason=o["reason"],
                          trial=self.trials.get(p))
        models, area = o["models"], o["area"]
        return Record(point=p, params=self.params[p], status="ok", area=area, models=models,
                      objectives=[objective(x, area, models) for x in self.space.objectives],
                      violations=[objective(c, area, models) - c.max for c in self.space.constraints],
                      trial=self.trials.get(p))

    def _commit_copy(self, p: int, source: Record) -> None:
        rec = source.model_copy(update={"point": p, "same_as": source.same_as if source.same_as is not None
                                        else source.point, "trial": self.trials.get(p)})
        self.store.append([rec])
        self.summary.reused += 1
        self._tick(1)

    def _tick(self, k: int) -> None:
        if self.bar is not None:
            self.bar.update(k)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.ex is not None:
            self.ex.close()
            self.ex = None


def objective(o: Objective, area: float, models: dict[str, dict[str, float]]) -> float:
    """The value of an objective (or a constraint's metric) from a point's measurements."""
    if o.metric == "area":
        return area
    ms = [models[o.model]] if o.model else list(models.values())
    if o.metric == "peak_memory":
        return float(max(m["peak_onchip_bytes"] for m in ms))
    column = {"latency": "seconds", "energy": "energy_pj", "dram_traffic": "dram_bytes"}[o.metric]
    return float(sum(m[column] for m in ms))


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


class _sigterm_as_interrupt:
    """SIGTERM stops a run like Ctrl-C: the workers are stopped and what finished is kept."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


__all__ = ["explore", "Summary", "objective"]

"""Where points run: in this process (one worker), or on a dask.distributed cluster — a local one
started for the run, or the user's (`--scheduler tcp://HOST:PORT`).

The models (each front end and the base config) are scattered to every worker once; a task
carries only a chunk of points (index and parameter values). Chunks keep the scheduler's
per-task cost (about a millisecond) small next to the points' own (a few milliseconds each for
a small CNN); results still reach the store chunk by chunk, as they finish.

A local cluster's worker processes are children of this one and watch it: dask's process
wrapper closes them when the parent goes away, even by SIGKILL (tested).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any

from ..errors import BadInput
from .point import Job, Models, evaluate, evaluate_on_worker

# Workers beyond the cores only time-share them; more than this needs --force.
MAX_WORKERS_FORCED = 256


class ClusterError(BadInput):
    """A scheduler that cannot be reached or a worker count that cannot be used."""


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not Linux
        return os.cpu_count() or 1


def worker_count(requested: int | None, *, force: bool) -> tuple[int, str | None]:
    """The workers to start, and a note when the request was capped."""
    cores = cpu_count()
    if requested is None:
        return cores, None
    if requested < 1:
        raise ClusterError(f"--workers {requested}: must be >= 1")
    if requested > MAX_WORKERS_FORCED:
        raise ClusterError(f"--workers {requested}: at most {MAX_WORKERS_FORCED}")
    if requested > cores and not force:
        return cores, f"--workers {requested} capped to the {cores} CPUs here (--force to start more)"
    return requested, None


class InProcess:
    """One worker: the points run here, a chunk at a time, when their result is asked for."""

    workers = 1

    def __init__(self, models: Models):
        self.models = models
        self._queue: deque[list[Job]] = deque()

    def submit(self, jobs: list[Job]) -> None:
        self._queue.append(jobs)

    def pending(self) -> int:
        return len(self._queue)

    def next_result(self) -> list[dict[str, Any]]:
        return evaluate(self.models, self._queue.popleft())

    def finished(self) -> list[list[dict[str, Any]]]:
        """Results that are done but not yet collected (none here: nothing runs ahead)."""
        return []

    def close(self) -> None:
        self._queue.clear()


class Dask:
    """A dask.distributed cluster: a LocalCluster of `workers` processes, or a scheduler's."""

    def __init__(self, models: Models, *, workers: int, scheduler: str | None = None):
        import dask
        from distributed import Client, LocalCluster

        self.cluster = None
        self._futures: set = set()
        try:
            if scheduler is None:
                # The workers' statistical profiler samples the running task every 10 ms: a
                # dashboard feature that costs CPU short tasks cannot spare (~15 % here). Spawned
                # workers inherit the config in force when they start. The scheduler's HTTP
                # endpoints go on a free loopback port: not exposed, no clash with another 8787.
                with dask.config.set({"distributed.worker.profile.enabled": False}):
                    self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
            else:
                self.client = Client(scheduler, timeout="5s")
        except (OSError, TimeoutError, ValueError) as e:
            self.close()
            if scheduler is None:
                raise              # a local cluster that cannot start is not the user's input
            raise ClusterError(f"--scheduler {scheduler}: cannot connect ({' '.join(str(e).split())[:200]})") \
                from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})) or workers)
        # Broadcast: each worker holds its own copy, so no task waits for a transfer of models.
        [self.models] = self.client.scatter([models], broadcast=True)
        from distributed import as_completed

        self._ac = as_completed([], with_results=True)

    def submit(self, jobs: list[Job]) -> None:
        fut = self.client.submit(evaluate_on_worker, self.models, jobs, pure=False)
        self._futures.add(fut)
        self._ac.add(fut)

    def pending(self) -> int:
        return len(self._futures)

    def next_result(self) -> list[dict[str, Any]]:
        fut, result = next(self._ac)      # raises the worker's exception if the task failed
        self._futures.discard(fut)
        return result

    def finished(self) -> list[list[dict[str, Any]]]:
        """Results of chunks that finished without error but were not collected yet (used when
        another chunk failed: what finished is still committed)."""
        out = []
        for fut in list(self._futures):
            if fut.status == "finished":
                out.append(fut.result())
                self._futures.discard(fut)
        return out

    def close(self) -> None:
        """Cancel what is in flight and stop the workers this run started."""
        client = getattr(self, "client", None)
        if client is not None:
            try:
                if self._futures:
                    client.cancel(list(self._futures))
            except Exception:  # noqa: BLE001 - closing after a failure must not hide it
                pass
            client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def executor(models: Models, *, workers: int, scheduler: str | None):
    if scheduler is None and workers <= 1:
        return InProcess(models)
    return Dask(models, workers=workers, scheduler=scheduler)


__all__ = ["InProcess", "Dask", "executor", "worker_count", "cpu_count", "ClusterError"]

"""The discrete-event engine: runs a `Program` in SimPy and returns a `SimResult`.

A handful of SimPy events per task, nothing loops per cycle. A task waits for its dependencies
(one event, triggered when the last one finishes), then acquires the resources on its path in
one global order (so two tasks can never deadlock by grabbing resources in opposite orders),
holds them for its duration (a timeout), releases them and signals its end (one event).
DMA/compute overlap, contention for DRAM channels and links, and parallelism across units and
cores all follow from that. The engine knows nothing of ONNX or of the hardware kind.

Each task is driven by callbacks on its own events (`_TaskRun`) rather than by a generator
process: the events, and the order in which SimPy processes them, are exactly those of one
process per task (tests/hwsim/test_engine_reference.py), minus events that would be processed
without effect: the start and end of each process, the end of a task no other task waits for,
and the releases of a resource that is never contended (no more requests in the whole program
than it has slots). Resources are SimPy `Resource`s: requests queue first-come first-served;
a resource that is never contended needs no queue, its requests are granted at once. A striped
resource (DRAM channels with interleaved addresses) is a SimPy `Container` of slots, from which
a transfer takes its `width` slots in one atomic get, first come, first served.

A compute task that streams from transfers (`Task.streams`) waits for the first of them to
start instead of for their end, then for its first chunk to land (a timeout computed from the
transfers' start times and durations), and after its own cycles for the last of them to end
plus one chunk's compute (see `Task`). Programs without streams run exactly as before.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import simpy

from .program import Program, ResourceSpec, Task, TaskKind
from .result import ActionRow, SimResult, TaskRecord


def simulate(program: Program, *, static_power_mw: float = 0.0, energy_table=None) -> SimResult:
    """Run `program` to completion. `energy_table` (action -> Price) prices the action counts;
    `static_power_mw` is charged over the whole latency."""
    program.validate()
    tasks = program.tasks
    env = simpy.Environment()
    memory = _Memory(env, program.initial_memory)
    runs = _task_runs(program, env, memory)
    # What each process did when SimPy started it, at time 0 and in task order.
    for run in runs:
        run.wait_for_deps()
    env.run()

    unfinished = [t.name for t, r in zip(tasks, runs) if r.end is None]
    if unfinished:  # cannot happen for a validated DAG; guard against engine bugs
        raise RuntimeError(f"{len(unfinished)} tasks never ran, first: {unfinished[0]}")

    ends = [r.end for r in runs]
    records = [
        TaskRecord(t.id, t.name, t.kind.value, t.resources[0], r.ready, r.start, r.end, t.scope,
                   t.op_type,
                   # when the task would have been ready had every transfer been instantaneous:
                   # the gap to `ready` is time spent waiting on data (see SimResult.stalls)
                   max((ends[d] for d in t.deps if tasks[d].kind is not TaskKind.TRANSFER),
                       default=0.0) if t.deps else 0.0,
                   r.stalled)
        for t, r in zip(tasks, runs)]
    actions: dict[tuple[str, str, str], float] = defaultdict(float)
    for t in tasks:
        for action, count in t.actions.items():
            actions[(action, t.op_type, t.scope)] += count
    busy: dict[str, float] = defaultdict(float)
    for r in records:
        busy[r.unit] += r.end - r.start - r.stalled
    return SimResult.build(
        program=program,
        cycles=max(ends, default=0.0),
        actions=[ActionRow(a, op, sc, c) for (a, op, sc), c in sorted(actions.items())],
        timeline=records,
        busy=dict(sorted(busy.items())),
        peak_memory=dict(sorted(memory.peak.items())),
        memory_trace={k: v for k, v in sorted(memory.trace.items())},
        static_power_mw=static_power_mw,
        energy_table=energy_table,
    )


def _task_runs(program: Program, env: simpy.Environment, memory: "_Memory") -> list["_TaskRun"]:
    """One `_TaskRun` per task, wired to its dependencies' end events and to its resources.

    A task's end is an event only if another task waits for it. A resource with at least as
    many slots as requests over the whole program is never contended: each request would be
    granted at once and each release processed without effect, nobody ever being queued. Such
    a resource gets no SimPy `Resource` (None in a path): its request is an event triggered at
    once, and nothing is released."""
    tasks = program.tasks
    waited = {d for t in tasks for d in (*t.deps, *t.streams)}
    finished = [env.event() if i in waited else None for i in range(len(tasks))]
    streamed = {d for t in tasks for d in t.streams}
    started = [env.event() if i in streamed else None for i in range(len(tasks))]
    specs = program.resources
    requests: dict[str, int] = defaultdict(int)   # slots asked for over the whole program
    for task in tasks:
        for name in task.resources:
            requests[name] += task.width if specs[name].striped else 1
    # A striped resource is a Container of slots, so that a task takes its `width` slots in one
    # atomic get (taking them one by one could deadlock two tasks holding some each).
    resources = {name: (simpy.Container(env, capacity=specs[name].capacity, init=specs[name].capacity)
                        if specs[name].striped else simpy.Resource(env, capacity=specs[name].capacity))
                 for name, n in requests.items() if n > specs[name].capacity}
    # per distinct path and width: its resources in the global acquisition order, by name
    paths: dict[tuple[tuple[str, ...], int], tuple] = {}
    links: dict[tuple[tuple[str, ...], int], tuple[float, float]] = {}
    runs = []
    for task in tasks:
        key = (task.resources, task.width)
        path = paths.get(key)
        if path is None:
            path = paths[key] = tuple(
                (resources.get(name), task.width if isinstance(resources.get(name), simpy.Container) else 0)
                for name in sorted(task.resources))
        runs.append(_TaskRun(env, task, path, _duration(task, program.resources, links), memory,
                             finished[task.id], [finished[d] for d in task.deps]))
        if task.id in streamed:   # its first chunk lands after the path latency
            runs[-1].latency = links[key][0]
        if task.streams:   # it may start once the first of its streams has started
            run = runs[-1]
            run.streams = [runs[d] for d in task.streams]
            run.pending += 1
        runs[-1].started = started[task.id]
    return runs


def _duration(task: Task, specs: Mapping[str, ResourceSpec],
              links: dict[tuple[tuple[str, ...], int], tuple[float, float]]) -> float:
    """Cycles a task holds its resources: a compute task its cycles; a transfer the largest
    latency on its path plus bytes over the narrowest bandwidth (a striped resource's times the
    task's width), plus any cycles it states. `links` memoises (latency, bandwidth) per path
    and width within one simulation."""
    if task.kind is TaskKind.COMPUTE:
        return task.cycles
    key = (task.resources, task.width)
    link = links.get(key)
    if link is None:
        path = [specs[r] for r in task.resources]
        link = links[key] = (max(p.latency_cycles for p in path),
                             min(p.bytes_per_cycle * (task.width if p.striped else 1)
                                 for p in path if p.bytes_per_cycle))
    latency, bandwidth = link
    return latency + task.bytes / bandwidth + task.cycles


class _Memory:
    """Bytes in use per memory level: current, peak, and the trace over time (one point per
    instant, the last value at that instant)."""

    def __init__(self, env: simpy.Environment, initial: Mapping[str, int]) -> None:
        self.env = env
        self.now: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.trace: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for level, nbytes in sorted(initial.items()):
            self.now[level] = self.peak[level] = nbytes
            self.trace[level].append((0.0, nbytes))

    def change(self, delta: Mapping[str, int], sign: int) -> None:
        now = self.env.now
        for level, nbytes in delta.items():
            self.now[level] += sign * nbytes
            if self.now[level] > self.peak[level]:
                self.peak[level] = self.now[level]
            trace = self.trace[level]
            if trace and trace[-1][0] == now:
                trace[-1] = (now, self.now[level])
            else:
                trace.append((now, self.now[level]))


class _TaskRun:
    """One task in flight: wait for its dependencies' `finished` events (and the first of its
    streams' `started`), acquire its path resource by resource, hold it for `duration` (a
    streaming task: until its streamed data is in, `_computed`), release it and trigger its own
    `finished` (None when no task waits for it). Each step is a callback of the SimPy event
    that ends the previous one."""

    __slots__ = ("env", "task", "path", "duration", "memory", "finished", "deps", "pending",
                 "gate", "held", "ready", "start", "end", "started", "streams", "stalled", "latency",
                 "stream_begun")

    def __init__(self, env: simpy.Environment, task: Task, path: tuple[tuple[object, int], ...],
                 duration: float, memory: _Memory, finished: simpy.Event | None,
                 deps: list[simpy.Event]) -> None:
        self.env, self.task, self.path, self.duration = env, task, path, duration
        self.memory, self.finished, self.deps = memory, finished, deps
        self.pending = len(deps)
        self.gate: simpy.Event | None = None
        self.held: list[simpy.resources.resource.Request] = []
        self.ready = self.start = 0.0
        self.end: float | None = None
        self.started: simpy.Event | None = None   # triggered at start when a task streams from it
        self.streams: list[_TaskRun] = []          # transfers this compute consumes as they land
        self.stalled = 0.0                         # cycles held waiting on streamed data
        self.latency = 0.0                         # a streamed transfer's path latency
        self.stream_begun = False                  # one of this task's streams has started

    def wait_for_deps(self) -> None:
        """At time 0: start now, or once every dependency has finished (the gate event)."""
        if not self.pending:
            self._acquire(None)
            return
        self.gate = self.env.event()
        self.gate.callbacks.append(self._acquire)
        for dep in self.deps:
            dep.callbacks.append(self._dep_finished)
        for stream in self.streams:
            stream.started.callbacks.append(self._stream_started)

    def _stream_started(self, _event: simpy.Event) -> None:
        """The first of the task's streams has started (later ones are ignored)."""
        if not self.stream_begun:
            self.stream_begun = True
            self._dep_finished(None)

    def _dep_finished(self, _event: simpy.Event | None) -> None:
        self.pending -= 1
        if not self.pending:
            self.gate.succeed()

    def _acquire(self, _event: simpy.Event | None) -> None:
        now = self.env.now
        if self.streams:
            # The DMA interleaves the streams chunk by chunk: the first chunk of all of them has
            # landed one latency plus 1/chunks of their combined transfer time after the first
            # one started (streams still queued count from then too).
            begun = [s.start for s in self.streams if s.started.triggered]
            first = (min(begun) + max(s.latency for s in self.streams)
                     + sum(s.duration - s.latency for s in self.streams) / self.task.stream_chunks)
            if first > now:
                self.ready = first
                self.env.timeout(first - now).callbacks.append(self._request_next)
                return
        self.ready = now
        self._request_next(None)

    def _request_next(self, _event: simpy.Event | None) -> None:
        if len(self.held) < len(self.path):
            resource, width = self.path[len(self.held)]
            req = (self.env.event().succeed() if resource is None
                   else resource.get(width) if width else resource.request())
            self.held.append(req)
            req.callbacks.append(self._request_next)
            return
        self.start = self.env.now
        if self.started is not None:
            self.started.succeed()
        self.memory.change(self.task.mem_alloc, +1)
        self.env.timeout(self.duration).callbacks.append(self._computed if self.streams else self._release)

    def _computed(self, _event: simpy.Event | None) -> None:
        """A streaming task's compute time is over: it ends once its last streamed transfer
        has landed and the last chunk is computed (cycles / stream_chunks after that landing)."""
        waiting = [s.finished for s in self.streams if s.end is None]
        if waiting:
            self.env.all_of(waiting).callbacks.append(self._computed)
            return
        now = self.env.now
        end = max(now, max(s.end for s in self.streams) + self.duration / self.task.stream_chunks)
        self.stalled = end - self.start - self.duration
        if end > now:
            self.env.timeout(end - now).callbacks.append(self._release)
        else:
            self._release(None)

    def _release(self, _event: simpy.Event | None) -> None:
        self.memory.change(self.task.mem_free, -1)
        for req, (resource, width) in zip(self.held, self.path):
            if resource is None:
                continue
            if width:
                resource.put(width)
            else:
                resource.release(req)
        self.end = self.env.now
        if self.finished is not None:
            self.finished.succeed()

"""The discrete-event engine: runs a `Program` in SimPy and returns a `SimResult`.

SimPy keeps the clock and the event queue; every task is one timeout (its duration) on it, and
nothing loops per cycle. What happens between timeouts is decided in their callbacks, at the
instant they fire:

* a task is *ready* when its last dependency ends; it then asks for the resources of its path
  one by one in one global order (by name, so two tasks can never deadlock by taking resources
  in opposite orders), holding those it has while it waits for the next;
* a resource has `capacity` slots and one first-come, first-served queue: a request is granted
  at once when a slot is free and nobody waits, else it queues; a released slot passes at once
  to the head of the queue. A *striped* resource (DRAM channels with interleaved addresses)
  grants a transfer its `width` slots together, the head of the queue first (no overtaking);
* once it holds its whole path a task starts: its memory is allocated and its timeout set;
* when the timeout fires the task ends: its memory is freed, its resources are released in the
  order it took them (each passing to its queue's head, which goes on at once), then its dependents, in task
  order, are told; those whose last dependency it was become ready and go on at once.

Ties at one instant therefore resolve in a defined order: timeouts in the order they were set
(SimPy's queue), and within one, releases before dependents. `tests/hwsim/test_engine_reference.py`
checks this engine bit for bit against a plain, independently written simulator of the same
rules on random programs.

A compute task that streams from transfers (`Task.streams`) counts the *start* of the first of
them as a dependency instead of their ends; it starts once their first chunk has landed (one
path latency plus 1/stream_chunks of their combined transfer time after the first one started,
a timeout), and ends no earlier than one chunk's compute (cycles / stream_chunks) after the last
of them has ended; the time it holds its unit waiting for data is reported as stall.

Resources that are never contended (no more requests in the whole program than slots) are not
arbitrated at all. The cyclic garbage collector is paused while the engine runs: it allocates
hundreds of thousands of short-lived objects and nothing that needs collecting mid-run.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Mapping

import simpy

from .collector import paused_gc
from .program import Program, ResourceSpec, Task, TaskKind
from .result import ActionRow, SimResult, TaskRecord


def simulate(program: Program, *, static_power_mw: float = 0.0, energy_table=None) -> SimResult:
    """Run `program` to completion. `energy_table` (action -> Price) prices the action counts;
    `static_power_mw` is charged over the whole latency."""
    program.validate()
    with paused_gc():
        sim = _Simulation(program)
        runs = sim.run()
        return _result(program, runs, sim.memory, static_power_mw, energy_table)


# ---- resources ------------------------------------------------------------------------------------


class _Slots:
    """A resource's free slots and its first-come, first-served queue of (run, width)."""

    __slots__ = ("free", "queue")

    def __init__(self, capacity: int) -> None:
        self.free = capacity
        self.queue: deque[tuple["_Run", int]] = deque()

    def request(self, run: "_Run", width: int) -> bool:
        """Take `width` slots now (True) or queue for them (False)."""
        if not self.queue and self.free >= width:
            self.free -= width
            return True
        self.queue.append((run, width))
        return False

    def release(self, width: int) -> None:
        """Give `width` slots back; the queue's head takes them (in order) while they fit."""
        self.free += width
        queue = self.queue
        while queue and queue[0][1] <= self.free:
            run, w = queue.popleft()
            self.free -= w
            run.granted()


# ---- one task in flight -------------------------------------------------------------------------------


class _Run:
    """A task's state: dependencies left, resources held, times. Its steps are callbacks."""

    __slots__ = ("sim", "task", "path", "duration", "pending", "held", "dependents", "stream_users",
                 "streams", "streams_left", "computed", "begun", "ready", "start", "end", "stalled",
                 "latency", "stream_started")

    def __init__(self, sim: "_Simulation", task: Task, path: tuple, duration: float) -> None:
        self.sim, self.task, self.path, self.duration = sim, task, path, duration
        self.pending = len(task.deps) + (1 if task.streams else 0)   # a stream's start counts as one
        self.held = 0                         # resources of the path held so far
        self.dependents: list[_Run] = []      # tasks waiting for this one's end (repeats kept)
        self.stream_users: list[_Run] = []    # compute tasks streaming from this transfer
        self.streams: list[_Run] = []         # transfers this compute streams from
        self.streams_left = len(task.streams)
        self.computed = False                 # a streaming compute's own cycles are over
        self.begun = False
        self.ready = self.start = 0.0
        self.end: float | None = None
        self.stalled = 0.0
        self.latency = 0.0                    # a streamed transfer's path latency
        self.stream_started = False           # one of this task's streams has started

    # -- becoming ready ------------------------------------------------------------------------------
    def dependency_done(self) -> None:
        self.pending -= 1
        if not self.pending:
            self._ready()

    def _a_stream_began(self) -> None:
        """The first of the task's streams has begun (later ones are ignored)."""
        if not self.stream_started:
            self.stream_started = True
            self.dependency_done()

    def _ready(self) -> None:
        env = self.sim.env
        now = env.now
        if self.streams:
            # The DMA interleaves the streams chunk by chunk: the first chunk of all of them has
            # landed one latency plus 1/chunks of their combined transfer time after the first
            # one began (streams still queued count from then too).
            first = (min(s.start for s in self.streams if s.begun) + max(s.latency for s in self.streams)
                     + sum(s.duration - s.latency for s in self.streams) / self.task.stream_chunks)
            if first > now:
                self.ready = first
                env.timeout(first - now).callbacks.append(self._acquire_on_event)
                return
        self.ready = now
        self.acquire()

    # -- resources -------------------------------------------------------------------------------------
    def _acquire_on_event(self, _event: simpy.Event) -> None:
        self.acquire()

    def acquire(self) -> None:
        """Ask for the path's resources in order from where it stopped; begin once all are held."""
        path = self.path
        while self.held < len(path):
            slots, width = path[self.held]
            self.held += 1
            if slots is not None and not slots.request(self, width):
                return   # queued: the releasing task calls `acquire` again
        self._begin()

    granted = acquire

    def _begin(self) -> None:
        sim = self.sim
        self.begun = True
        self.start = sim.env.now
        sim.memory.change(self.task.mem_alloc, +1)
        for user in self.stream_users:
            user._a_stream_began()
        sim.env.timeout(self.duration).callbacks.append(self._computed if self.streams else self._end)

    # -- ending ------------------------------------------------------------------------------------------
    def _computed(self, _event: simpy.Event) -> None:
        """A streaming task's own cycles are over: it ends one chunk's compute after the last
        of its streams has ended (at once if that is already past)."""
        self.computed = True
        if not self.streams_left:
            self._finish_streaming()

    def _a_stream_ended(self) -> None:
        self.streams_left -= 1
        if self.computed and not self.streams_left:
            self._finish_streaming()

    def _finish_streaming(self) -> None:
        env = self.sim.env
        now = env.now
        end = max(now, max(s.end for s in self.streams) + self.duration / self.task.stream_chunks)
        self.stalled = end - self.start - self.duration
        if end > now:
            env.timeout(end - now).callbacks.append(self._end)
        else:
            self._end(None)

    def _end(self, _event: simpy.Event | None) -> None:
        sim = self.sim
        self.end = sim.env.now
        sim.memory.change(self.task.mem_free, -1)
        for slots, width in self.path:
            if slots is not None:
                slots.release(width)
        for user in self.stream_users:
            user._a_stream_ended()
        for run in self.dependents:
            run.dependency_done()


# ---- the simulation -------------------------------------------------------------------------------------


class _Simulation:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.env = simpy.Environment()
        self.memory = _Memory(self.env, program.initial_memory)
        self.runs = self._runs()

    def _runs(self) -> list[_Run]:
        """One `_Run` per task, wired to its dependencies, its streams and its resources.

        A resource with at least as many slots as requests over the whole program is never
        contended: it is not arbitrated (None in a path)."""
        program = self.program
        tasks, specs = program.tasks, program.resources
        requests: dict[str, int] = defaultdict(int)   # slots asked for over the whole program
        for task in tasks:
            for name in task.resources:
                requests[name] += task.width if specs[name].striped else 1
        slots = {name: _Slots(specs[name].capacity) for name, n in requests.items() if n > specs[name].capacity}
        # per distinct path and width: its arbitrated resources in the global order, by name
        paths: dict[tuple[tuple[str, ...], int], tuple] = {}
        links: dict[tuple[tuple[str, ...], int], tuple[float, float]] = {}
        runs: list[_Run] = []
        for task in tasks:
            key = (task.resources, task.width)
            path = paths.get(key)
            if path is None:
                path = paths[key] = tuple(
                    (slots.get(name), task.width if specs[name].striped else 1) for name in sorted(task.resources))
            run = _Run(self, task, path, _duration(task, specs, links))
            for d in task.deps:
                runs[d].dependents.append(run)
            if task.streams:
                for d in task.streams:
                    stream = runs[d]
                    stream.latency = links[(stream.task.resources, stream.task.width)][0]
                    stream.stream_users.append(run)
                    run.streams.append(stream)
            runs.append(run)
        return runs

    def run(self) -> list[_Run]:
        # At time 0, in task order, the tasks that wait for nothing go (chosen before any goes:
        # a transfer that begins at once may make its streaming users ready, and they go then).
        for run in [r for r in self.runs if not r.pending]:
            run._ready()
        self.env.run()
        unfinished = [r.task.name for r in self.runs if r.end is None]
        if unfinished:  # cannot happen for a validated DAG; guard against engine bugs
            raise RuntimeError(f"{len(unfinished)} tasks never ran, first: {unfinished[0]}")
        for run in self.runs:   # no reference cycles left: the runs go by reference counting
            run.sim = run.streams = run.stream_users = run.dependents = None
        return self.runs


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


def _result(program: Program, runs: list[_Run], memory: "_Memory", static_power_mw: float,
            energy_table) -> SimResult:
    tasks = program.tasks
    ends = [r.end for r in runs]
    transfer = TaskKind.TRANSFER
    records = []
    for t, r in zip(tasks, runs):
        # when the task would have been ready had every transfer been instantaneous: the gap to
        # `ready` is time spent waiting on data (see SimResult.stalls)
        without = 0.0
        if t.deps:
            without = max((ends[d] for d in t.deps if tasks[d].kind is not transfer), default=0.0)
        records.append(TaskRecord(t.id, t.name, t.kind.value, t.resources[0], r.ready, r.start, r.end, t.scope,
                                  t.op_type, without, r.stalled))
    actions: dict[tuple[str, str, str], float] = defaultdict(float)
    for t in tasks:
        if t.actions:
            op, scope = t.op_type, t.scope
            for action, count in t.actions.items():
                actions[(action, op, scope)] += count
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
        if not delta:
            return
        now = self.env.now
        cur, peak, traces = self.now, self.peak, self.trace
        for level, nbytes in delta.items():
            value = cur[level] + sign * nbytes
            cur[level] = value
            if value > peak[level]:
                peak[level] = value
            trace = traces[level]
            if trace and trace[-1][0] == now:
                trace[-1] = (now, value)
            else:
                trace.append((now, value))

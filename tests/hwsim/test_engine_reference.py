"""The engine must give exactly what a plain simulator of the same rules gives, ties at equal
times included: random programs with contention, striped resources, streaming computes,
zero-length tasks, repeated dependencies and memory traffic, compared bit for bit.

The reference below is written independently of `hwsim.engine` and as plainly as possible: no
SimPy, no callbacks, lists scanned linearly. Its rules are those of the engine's docstring:
timers fire in (time, order set); when a task ends it frees its memory, releases its resources
in the order it took them (each slot passing to the head of that resource's queue, which goes on at once),
then tells its stream users and its dependents in order; a ready task asks for its resources in
name order; a granted task that holds its path begins at once (memory allocated, timer set)."""

from __future__ import annotations

import random
from collections import defaultdict, deque

import pytest

from hwsim.engine import simulate
from hwsim.program import Program, ResourceSpec, Task, TaskKind


class Reference:
    def __init__(self, program: Program) -> None:
        self.p = program
        self.tasks = program.tasks
        n = len(self.tasks)
        self.time = 0.0
        self.timers: list[tuple[float, int, str, int]] = []   # (time, order set, what, task)
        self.order = 0
        self.ready = [0.0] * n
        self.start = [0.0] * n
        self.end: list[float | None] = [None] * n
        self.stalled = [0.0] * n
        self.begun = [False] * n
        self.held = [0] * n
        self.pending = [len(t.deps) + (1 if t.streams else 0) for t in self.tasks]
        self.stream_seen = [False] * n
        self.computed = [False] * n
        self.streams_left = [len(t.streams) for t in self.tasks]
        requests: dict[str, int] = defaultdict(int)
        for t in self.tasks:
            for r in t.resources:
                requests[r] += t.width if program.resources[r].striped else 1
        self.free = {r: s.capacity for r, s in program.resources.items()}
        self.arbitrated = {r for r, k in requests.items() if k > program.resources[r].capacity}
        self.queue: dict[str, deque] = {r: deque() for r in program.resources}
        self.now_mem: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.trace: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for level, nbytes in sorted(program.initial_memory.items()):
            self.now_mem[level] = self.peak[level] = nbytes
            self.trace[level].append((0.0, nbytes))

    # ---- helpers ----------------------------------------------------------------------------
    def latency(self, t: Task) -> float:
        return max(self.p.resources[r].latency_cycles for r in t.resources)

    def duration(self, t: Task) -> float:
        if t.kind is TaskKind.COMPUTE:
            return t.cycles
        specs = [self.p.resources[r] for r in t.resources]
        bw = min(s.bytes_per_cycle * (t.width if s.striped else 1) for s in specs if s.bytes_per_cycle)
        return self.latency(t) + t.bytes / bw + t.cycles

    def set_timer(self, at: float, what: str, i: int) -> None:
        self.timers.append((at, self.order, what, i))
        self.order += 1

    def mem(self, delta, sign) -> None:
        for level, nbytes in delta.items():
            self.now_mem[level] += sign * nbytes
            self.peak[level] = max(self.peak[level], self.now_mem[level])
            tr = self.trace[level]
            if tr and tr[-1][0] == self.time:
                tr[-1] = (self.time, self.now_mem[level])
            else:
                tr.append((self.time, self.now_mem[level]))

    def width(self, t: Task, r: str) -> int:
        return t.width if self.p.resources[r].striped else 1

    # ---- rules --------------------------------------------------------------------------------
    def dependency_done(self, i: int) -> None:
        self.pending[i] -= 1
        if self.pending[i] == 0:
            self.become_ready(i)

    def become_ready(self, i: int) -> None:
        t = self.tasks[i]
        if t.streams:
            starts = [self.start[s] for s in t.streams if self.begun[s]]
            first = (min(starts) + max(self.latency(self.tasks[s]) for s in t.streams)
                     + sum(self.duration(self.tasks[s]) - self.latency(self.tasks[s]) for s in t.streams)
                     / t.stream_chunks)
            if first > self.time:
                self.ready[i] = first
                self.set_timer(self.time + (first - self.time), "acquire", i)   # a delay, as timers take
                return
        self.ready[i] = self.time
        self.acquire(i)

    def acquire(self, i: int) -> None:
        t = self.tasks[i]
        path = sorted(t.resources)
        while self.held[i] < len(path):
            r = path[self.held[i]]
            self.held[i] += 1
            if r not in self.arbitrated:
                continue
            w = self.width(t, r)
            if not self.queue[r] and self.free[r] >= w:
                self.free[r] -= w
            else:
                self.queue[r].append((i, w))
                return
        self.begin(i)

    def begin(self, i: int) -> None:
        t = self.tasks[i]
        self.begun[i] = True
        self.start[i] = self.time
        self.mem(t.mem_alloc, +1)
        for j, u in enumerate(self.tasks):
            if i in u.streams and not self.stream_seen[j]:
                self.stream_seen[j] = True
                self.dependency_done(j)
        self.set_timer(self.time + self.duration(t), "computed" if t.streams else "end", i)

    def computed_over(self, i: int) -> None:
        self.computed[i] = True
        if self.streams_left[i] == 0:
            self.finish_streaming(i)

    def finish_streaming(self, i: int) -> None:
        t = self.tasks[i]
        at = max(self.time, max(self.end[s] for s in t.streams) + self.duration(t) / t.stream_chunks)
        self.stalled[i] = at - self.start[i] - self.duration(t)
        if at > self.time:
            self.set_timer(self.time + (at - self.time), "end", i)
        else:
            self.finish(i)

    def finish(self, i: int) -> None:
        t = self.tasks[i]
        self.end[i] = self.time
        self.mem(t.mem_free, -1)
        for r in sorted(t.resources):   # in the order they were taken
            if r not in self.arbitrated:
                continue
            self.free[r] += self.width(t, r)
            while self.queue[r] and self.queue[r][0][1] <= self.free[r]:
                j, w = self.queue[r].popleft()
                self.free[r] -= w
                self.acquire(j)
        for j, u in enumerate(self.tasks):
            if i in u.streams:
                self.streams_left[j] -= 1
                if self.computed[j] and self.streams_left[j] == 0:
                    self.finish_streaming(j)
        for j, u in enumerate(self.tasks):
            for d in u.deps:
                if d == i:
                    self.dependency_done(j)

    def run(self):
        for i in [i for i in range(len(self.tasks)) if self.pending[i] == 0]:
            self.become_ready(i)
        while self.timers:
            k = min(range(len(self.timers)), key=lambda x: self.timers[x][:2])
            at, _, what, i = self.timers.pop(k)
            self.time = at
            {"acquire": self.acquire, "computed": self.computed_over, "end": self.finish}[what](i)
        times = list(zip(self.ready, self.start, self.end))
        return times, self.stalled, dict(self.peak), dict(self.trace)


def random_program(rng: random.Random) -> Program:
    """Links (with a bandwidth; some striped) that transfers take, units that computes take.
    Half the programs let computes take links too; the others have streaming computes instead
    (which Program.validate allows only when computes and transfers share no resource)."""
    mixed = rng.random() < 0.5
    res = {}
    for i in range(rng.randint(1, 3)):
        res[f"u{i}"] = ResourceSpec(f"u{i}", capacity=rng.choice([1, 1, 2]))
    for i in range(rng.randint(1, 3)):
        striped = rng.random() < 0.3
        res[f"r{i}"] = ResourceSpec(f"r{i}", capacity=rng.choice([1, 1, 2, 3]) + (2 if striped else 0),
                                    bytes_per_cycle=rng.choice([1.0, 8.0, 3.5]),
                                    latency_cycles=rng.choice([0, 0, 5, 10.5]), striped=striped)
    units = [n for n in res if n.startswith("u")]
    links = [n for n in res if n.startswith("r")]
    levels = ["sram", "dram", "core0.sram"]
    tasks: list[Task] = []
    for i in range(rng.randint(1, 50)):
        deps = tuple(rng.sample(range(i), min(i, rng.randint(0, 3))))
        if deps and rng.random() < 0.1:
            deps += deps[:1]   # a repeated dependency
        mem = {"mem_alloc": {lv: rng.choice([0, 16, 100]) for lv in rng.sample(levels, rng.randint(0, 2))},
               "mem_free": {lv: rng.choice([0, 16, 100]) for lv in rng.sample(levels, rng.randint(0, 2))}}
        if rng.random() < 0.5:
            path = tuple(dict.fromkeys(rng.sample(links, rng.randint(1, len(links)))))
            width = rng.choice([1, 2]) if all(res[r].capacity >= 2 for r in path if res[r].striped) else 1
            tasks.append(Task(i, TaskKind.TRANSFER, f"t{i}", path, deps=deps,
                              bytes=rng.choice([0, 8, 64, 800]), width=width, **mem))
            continue
        transfers = [t.id for t in tasks if t.kind is TaskKind.TRANSFER]
        streams = tuple(rng.sample(transfers, min(len(transfers), rng.randint(1, 2)))) \
            if transfers and not mixed and rng.random() < 0.5 else ()
        pool = units + links if mixed else units
        path = tuple(dict.fromkeys(rng.sample(pool, rng.randint(1, min(2, len(pool))))))
        if streams:   # it waits for what its streams wait for (Program.validate)
            deps += tuple(d for s in streams for d in tasks[s].deps)
        tasks.append(Task(i, TaskKind.COMPUTE, f"c{i}", path, deps=deps,
                          cycles=rng.choice([0, 0, 1, 7, 100, 2.5]), streams=streams,
                          stream_chunks=rng.choice([1, 4, 16]) if streams else 1, **mem))
    return Program("p", "t", 1e9, res, tasks,
                   initial_memory={lv: 50 for lv in rng.sample(["dram", "sram"], rng.randint(0, 2))})


@pytest.mark.parametrize("seed", range(300))
def test_engine_matches_a_plain_simulator_of_the_same_rules(seed):
    program = random_program(random.Random(seed))
    program.validate()
    times, stalled, peak, trace = Reference(program).run()
    result = simulate(program)
    assert [(r.ready, r.start, r.end) for r in result.timeline] == times
    assert [r.stalled for r in result.timeline] == stalled
    assert result.peak_memory == dict(sorted(peak.items()))
    assert result.memory_trace == dict(sorted(trace.items()))
    assert result.cycles == max((t[2] for t in times), default=0.0)


def test_the_random_programs_exercise_contention_streams_and_stripes():
    """The generator is worth its 300 seeds only if the cases it makes happen."""
    seen = defaultdict(int)
    for seed in range(300):
        program = random_program(random.Random(seed))
        result = simulate(program)
        seen["streams"] += any(t.streams for t in program.tasks)
        seen["striped width 2"] += any(t.width == 2 for t in program.tasks)
        seen["queued"] += any(r.start > r.ready for r in result.timeline)
        seen["stalled"] += any(r.stalled > 0 for r in result.timeline)
        seen["ties"] += len({r.end for r in result.timeline}) < len(result.timeline)
    assert all(count >= 20 for count in seen.values()), dict(seen)

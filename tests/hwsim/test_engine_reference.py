"""The engine drives each task by callbacks on its SimPy events; it must give exactly what one
SimPy generator process per task gives (the straightforward formulation, kept here as the
reference), ties at equal times included: random programs with contention, zero-length tasks,
repeated dependencies and memory traffic, compared bit for bit."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import simpy

from hwsim.engine import simulate
from hwsim.program import Program, ResourceSpec, Task, TaskKind


def reference(program: Program):
    """One process per task: wait for all dependencies, acquire the path's resources one by one
    in name order, hold them for the duration, release them. Returns (ready, start, end) per
    task, peak memory and the memory trace."""
    env = simpy.Environment()
    resources = {n: simpy.Resource(env, capacity=s.capacity) for n, s in program.resources.items()}
    finished = [env.event() for _ in program.tasks]
    times: list[tuple[float, float, float] | None] = [None] * len(program.tasks)
    now: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    trace: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for level, nbytes in sorted(program.initial_memory.items()):
        now[level] = peak[level] = nbytes
        trace[level].append((0.0, nbytes))

    def change(delta, sign):
        for level, nbytes in delta.items():
            now[level] += sign * nbytes
            peak[level] = max(peak[level], now[level])
            if trace[level] and trace[level][-1][0] == env.now:
                trace[level][-1] = (env.now, now[level])
            else:
                trace[level].append((env.now, now[level]))

    def duration(task):
        if task.kind is TaskKind.COMPUTE:
            return task.cycles
        path = [program.resources[r] for r in task.resources]
        return (max(p.latency_cycles for p in path)
                + task.bytes / min(p.bytes_per_cycle for p in path if p.bytes_per_cycle) + task.cycles)

    def run(task):
        if task.deps:
            yield env.all_of([finished[d] for d in task.deps])
        ready = env.now
        held = []
        for name in sorted(task.resources):
            req = resources[name].request()
            yield req
            held.append((name, req))
        start = env.now
        change(task.mem_alloc, +1)
        yield env.timeout(duration(task))
        change(task.mem_free, -1)
        for name, req in held:
            resources[name].release(req)
        times[task.id] = (ready, start, env.now)
        finished[task.id].succeed()

    for task in program.tasks:
        env.process(run(task))
    env.run()
    return times, dict(peak), dict(trace)


def random_program(rng: random.Random) -> Program:
    res = {}
    for i in range(rng.randint(1, 5)):
        res[f"r{i}"] = ResourceSpec(f"r{i}", capacity=rng.choice([1, 1, 2, 3]),
                                    bytes_per_cycle=rng.choice([None, 1.0, 8.0, 3.5]),
                                    latency_cycles=rng.choice([0, 0, 5, 10.5]))
    links = [n for n, s in res.items() if s.bytes_per_cycle]
    levels = ["sram", "dram", "core0.sram"]
    tasks = []
    for i in range(rng.randint(1, 50)):
        deps = tuple(rng.sample(range(i), min(i, rng.randint(0, 3))))
        if deps and rng.random() < 0.1:
            deps += deps[:1]   # a repeated dependency
        mem = {"mem_alloc": {lv: rng.choice([0, 16, 100]) for lv in rng.sample(levels, rng.randint(0, 2))},
               "mem_free": {lv: rng.choice([0, 16, 100]) for lv in rng.sample(levels, rng.randint(0, 2))}}
        if links and rng.random() < 0.5:
            others = rng.sample(list(res), rng.randint(0, min(2, len(res))))
            path = tuple(dict.fromkeys([rng.choice(links), *others]))
            tasks.append(Task(i, TaskKind.TRANSFER, f"t{i}", path, deps=deps,
                              bytes=rng.choice([0, 8, 64, 800]), **mem))
        else:
            path = tuple(dict.fromkeys(rng.sample(list(res), rng.randint(1, min(2, len(res))))))
            tasks.append(Task(i, TaskKind.COMPUTE, f"c{i}", path, deps=deps,
                              cycles=rng.choice([0, 0, 1, 7, 100, 2.5]), **mem))
    return Program("p", "t", 1e9, res, tasks,
                   initial_memory={lv: 50 for lv in rng.sample(["dram", "sram"], rng.randint(0, 2))})


@pytest.mark.parametrize("seed", range(300))
def test_engine_matches_one_process_per_task(seed):
    program = random_program(random.Random(seed))
    times, peak, trace = reference(program)
    result = simulate(program)
    assert [(r.ready, r.start, r.end) for r in result.timeline] == times
    assert result.peak_memory == dict(sorted(peak.items()))
    assert result.memory_trace == dict(sorted(trace.items()))
    assert result.cycles == max((t[2] for t in times), default=0.0)

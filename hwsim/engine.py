"""The discrete-event engine: runs a `Program` in SimPy and returns a `SimResult`.

One SimPy process per task, one event per task start and end: nothing loops per cycle. A task
waits for its dependencies, then acquires the resources on its path in one global order (so
two tasks can never deadlock by grabbing resources in opposite orders), holds them for its
duration, and releases them. DMA/compute overlap, contention for DRAM channels and links, and
parallelism across units and cores all follow from that. The engine knows nothing of ONNX or
of the hardware kind.
"""

from __future__ import annotations

from collections import defaultdict

import simpy

from .program import Program, Task, TaskKind
from .result import ActionRow, SimResult, TaskRecord


def simulate(program: Program, *, static_power_mw: float = 0.0, energy_table=None) -> SimResult:
    """Run `program` to completion. `energy_table` (action -> Price) prices the action counts;
    `static_power_mw` is charged over the whole latency."""
    program.validate()
    env = simpy.Environment()
    resources = {name: simpy.Resource(env, capacity=spec.capacity)
                 for name, spec in program.resources.items()}
    order = {name: i for i, name in enumerate(sorted(program.resources))}
    finished = [env.event() for _ in program.tasks]
    records: list[TaskRecord | None] = [None] * len(program.tasks)
    mem_now: dict[str, int] = defaultdict(int)
    mem_peak: dict[str, int] = defaultdict(int)
    mem_trace: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for level, nbytes in sorted(program.initial_memory.items()):
        mem_now[level] = mem_peak[level] = nbytes
        mem_trace[level].append((0.0, nbytes))

    def change_memory(delta: dict, sign: int) -> None:
        for level, nbytes in delta.items():
            mem_now[level] += sign * nbytes
            if mem_now[level] > mem_peak[level]:
                mem_peak[level] = mem_now[level]
            trace = mem_trace[level]
            if trace and trace[-1][0] == env.now:
                trace[-1] = (env.now, mem_now[level])
            else:
                trace.append((env.now, mem_now[level]))

    def duration(task: Task) -> float:
        if task.kind is TaskKind.COMPUTE:
            return task.cycles
        path = [program.resources[r] for r in task.resources]
        bandwidth = min(p.bytes_per_cycle for p in path if p.bytes_per_cycle)
        return max(p.latency_cycles for p in path) + task.bytes / bandwidth + task.cycles

    def run(task: Task):
        if task.deps:
            yield env.all_of([finished[d] for d in task.deps])
        ready = env.now
        # when the task would have been ready had every transfer been instantaneous: the gap
        # to `ready` is time spent waiting on data (see SimResult.stalls)
        ready_without_transfers = max((records[d].end for d in task.deps
                                       if program.tasks[d].kind is not TaskKind.TRANSFER), default=0.0)
        held = []
        for name in sorted(task.resources, key=order.__getitem__):
            req = resources[name].request()
            yield req
            held.append((name, req))
        start = env.now
        change_memory(task.mem_alloc, +1)
        yield env.timeout(duration(task))
        change_memory(task.mem_free, -1)
        for name, req in held:
            resources[name].release(req)
        records[task.id] = TaskRecord(task.id, task.name, task.kind.value, task.resources[0],
                                      ready, start, env.now, task.scope, task.op_type,
                                      ready_without_transfers)
        finished[task.id].succeed()

    for task in program.tasks:
        env.process(run(task))
    env.run()

    unfinished = [t.name for t, r in zip(program.tasks, records) if r is None]
    if unfinished:  # cannot happen for a validated DAG; guard against engine bugs
        raise RuntimeError(f"{len(unfinished)} tasks never ran, first: {unfinished[0]}")

    actions: dict[tuple[str, str, str], float] = defaultdict(float)
    for t in program.tasks:
        for action, count in t.actions.items():
            actions[(action, t.op_type, t.scope)] += count
    busy: dict[str, float] = defaultdict(float)
    for r in records:
        busy[r.unit] += r.end - r.start
    return SimResult.build(
        program=program,
        cycles=max((r.end for r in records), default=0.0),
        actions=[ActionRow(a, op, sc, c) for (a, op, sc), c in sorted(actions.items())],
        timeline=records,
        busy=dict(sorted(busy.items())),
        peak_memory=dict(sorted(mem_peak.items())),
        memory_trace={k: v for k, v in sorted(mem_trace.items())},
        static_power_mw=static_power_mw,
        energy_table=energy_table,
    )

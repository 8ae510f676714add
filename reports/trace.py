"""A SimResult's timeline as a Chrome/Perfetto trace (the JSON "Trace Event Format").

Open the file at ui.perfetto.dev or chrome://tracing: one process per unit, one track per slot
of the unit, one slice per task (named by its op and scope), and a counter track per memory
level. Time is in microseconds of simulated time, as the format defines `ts` and `dur`.

A unit with several slots — a fabric whose stages all compute at once, DMA engines, DRAM
channels — runs overlapping tasks; on one track they would overlap without nesting, which
trace viewers draw wrongly. Each task is put on a slot track where it is alone: the track its
previous chunk used if that one is free (so a node's chunks, or a fabric stage's consecutive
work, stay on one track), else the lowest free one. No more tracks than the unit's slots are
ever needed, because no more tasks than slots hold a unit at once.

Times are rounded to whole nanoseconds first, so slices that touch in cycles still touch after
the viewer converts microseconds back to nanoseconds; nothing overlaps by rounding.
"""

from __future__ import annotations

import heapq
import json
import re

from hwsim.result import SimResult, TaskRecord

_CHUNK = re.compile(r" \[\d+/\d+\]$")


def perfetto_trace(result: SimResult) -> str:
    ns_per_cycle = 1e9 / result.clock_hz
    units = sorted({r.unit for r in result.timeline})
    events: list[dict] = []
    counters_pid = len(units) + 1
    for pid, unit in enumerate(units, start=1):
        recs = [r for r in result.timeline if r.unit == unit]
        lanes = assign_lanes(recs, ns_per_cycle)
        events.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": unit}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}})
        for lane in sorted(set(lanes.values())):
            name = unit if result.unit_capacity.get(unit, 1) == 1 else f"{unit} slot {lane}"
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": lane + 1, "args": {"name": name}})
        for r in recs:
            t0, t1 = _ns(r.start, ns_per_cycle), _ns(r.end, ns_per_cycle)
            if t1 <= t0:
                continue
            events.append({"ph": "X", "pid": pid, "tid": lanes[r.id] + 1, "name": r.name, "cat": r.kind,
                           "ts": t0 / 1000, "dur": (t1 - t0) / 1000,
                           "args": {"scope": r.scope, "op": r.op_type, "ready_us": _ns(r.ready, ns_per_cycle) / 1000,
                                    "stalled_cycles": r.stalled}})
    events.append({"ph": "M", "name": "process_name", "pid": counters_pid,
                   "args": {"name": f"memory: {result.program} on {result.target}"}})
    for level, trace in result.memory_trace.items():
        events += [{"ph": "C", "pid": counters_pid, "name": f"{level} bytes", "ts": _ns(t, ns_per_cycle) / 1000,
                    "args": {"bytes": b}} for t, b in trace]
    for level, trace in result.memory_demand.items():
        events += [{"ph": "C", "pid": counters_pid, "name": f"{level} demand bytes",
                    "ts": _ns(t, ns_per_cycle) / 1000, "args": {"bytes": b}} for t, b in trace]
    return json.dumps({"traceEvents": events})


def _ns(cycles: float, ns_per_cycle: float) -> int:
    return round(cycles * ns_per_cycle)


def assign_lanes(records: list[TaskRecord], ns_per_cycle: float = 1.0) -> dict[int, int]:
    """Task id -> slot track, such that the tasks on one track never overlap (in whole ns)."""
    lanes: dict[int, int] = {}
    free_at: list[int] = []                 # per lane: when its last task ends (ns)
    last_lane: dict[str, int] = {}          # node name -> lane of its previous chunk
    idle: list[int] = []                    # heap of lanes free now
    busy: list[tuple[int, int]] = []        # heap of (end, lane)
    for r in sorted(records, key=lambda r: (r.start, r.end, r.id)):
        t0 = _ns(r.start, ns_per_cycle)
        while busy and busy[0][0] <= t0:
            heapq.heappush(idle, heapq.heappop(busy)[1])
        node = _CHUNK.sub("", r.name)
        lane = last_lane.get(node)
        if lane is not None and free_at[lane] <= t0 and lane in idle:
            idle.remove(lane)
            heapq.heapify(idle)
        elif idle:
            lane = heapq.heappop(idle)
        else:
            lane = len(free_at)
            free_at.append(0)
        end = max(t0, _ns(r.end, ns_per_cycle))
        free_at[lane] = end
        heapq.heappush(busy, (end, lane))
        lanes[r.id] = lane
        last_lane[node] = lane
    return lanes


def overlapping_slices(trace_json: str) -> int:
    """Slices that overlap another slice on their track without nesting inside it (0 for a
    trace every viewer draws correctly)."""
    events = [e for e in json.loads(trace_json)["traceEvents"] if e.get("ph") == "X"]
    by_track: dict[tuple, list[tuple[int, int]]] = {}
    for e in events:
        t0 = round(e["ts"] * 1000)
        by_track.setdefault((e["pid"], e.get("tid")), []).append((t0, t0 + round(e["dur"] * 1000)))
    bad = 0
    for spans in by_track.values():
        stack: list[int] = []
        for t0, t1 in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= t0:
                stack.pop()
            if stack and t1 > stack[-1]:
                bad += 1
                continue
            stack.append(t1)
    return bad

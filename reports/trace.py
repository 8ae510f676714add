"""A SimResult's timeline as a Chrome/Perfetto trace (the JSON "Trace Event Format").

Open the file at ui.perfetto.dev or chrome://tracing: one track per hardware unit, one slice
per task (named by its op and scope), and a counter track per memory level. Time is shown in
microseconds of simulated time.
"""

from __future__ import annotations

import json

from hwsim.result import SimResult


def perfetto_trace(result: SimResult) -> str:
    to_us = 1e6 / result.clock_hz
    units = sorted({r.unit for r in result.timeline})
    tid = {u: i + 1 for i, u in enumerate(units)}
    events: list[dict] = [{"ph": "M", "name": "process_name", "pid": 1,
                           "args": {"name": f"{result.program} on {result.target}"}}]
    events += [{"ph": "M", "name": "thread_name", "pid": 1, "tid": tid[u], "args": {"name": u}}
               for u in units]
    for r in result.timeline:
        if r.end <= r.start:
            continue
        events.append({"ph": "X", "pid": 1, "tid": tid[r.unit], "name": r.name,
                       "cat": r.kind, "ts": r.start * to_us, "dur": (r.end - r.start) * to_us,
                       "args": {"scope": r.scope, "op": r.op_type, "ready_us": r.ready * to_us}})
    for level, trace in result.memory_trace.items():
        events += [{"ph": "C", "pid": 1, "name": f"{level} bytes", "ts": t * to_us,
                    "args": {"bytes": b}} for t, b in trace]
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ns"})

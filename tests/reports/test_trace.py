"""Perfetto traces: slices on a track never overlap without nesting; a fabric's stages get
their own tracks."""

import json

from reports.trace import assign_lanes, overlapping_slices, perfetto_trace


def test_fabric_stages_get_tracks_that_nest(simulated):
    r = simulated("sine_maml", "zcu102-like")
    text = perfetto_trace(r)
    assert overlapping_slices(text) == 0
    events = json.loads(text)["traceEvents"]
    fabric_pid = next(e["pid"] for e in events if e.get("name") == "process_name" and e["args"]["name"] == "fabric")
    tracks = {e["tid"] for e in events if e["ph"] == "X" and e["pid"] == fabric_pid}
    assert 1 < len(tracks) <= r.unit_capacity["fabric"]
    # every task is in the trace once
    assert len([e for e in events if e["ph"] == "X"]) == len([t for t in r.timeline if t.end > t.start])
    assert "displayTimeUnit" not in json.loads(text)   # ts and dur are microseconds, as specified


def test_one_track_per_unit_would_overlap(simulated):
    # the check itself can fail: the same fabric timeline on one track per unit overlaps
    r = simulated("sine_maml", "zcu102-like")
    events = [{"ph": "X", "pid": 1, "tid": t.unit, "ts": t.start, "dur": t.end - t.start}
              for t in r.timeline if t.end > t.start]
    assert overlapping_slices(json.dumps({"traceEvents": events})) > 0


def test_chunks_of_one_node_stay_on_their_track():
    from hwsim.result import TaskRecord

    recs = [TaskRecord(0, "mm [1/2]", "compute", "f", 0, 0, 10, "forward", "MatMul"),
            TaskRecord(1, "add", "compute", "f", 0, 0, 30, "forward", "Add"),
            TaskRecord(2, "mul", "compute", "f", 0, 10, 12, "forward", "Mul"),
            TaskRecord(3, "mm [2/2]", "compute", "f", 0, 12, 20, "forward", "MatMul")]
    lanes = assign_lanes(recs)
    assert lanes[0] == lanes[3] != lanes[1]
    assert len(set(lanes.values())) == 2


def test_npu_trace_has_memory_counters(simulated):
    r = simulated("sine_maml", "edge-npu")
    events = json.loads(perfetto_trace(r))["traceEvents"]
    assert {e["name"] for e in events if e["ph"] == "C"} >= {"sram bytes", "dram bytes"}
    assert overlapping_slices(perfetto_trace(r)) == 0

"""SimResult: back from JSON, the work of each task, demand, spills and phase spans."""

import json

import pytest

from hwsim.engine import simulate
from hwsim.program import Program, ResourceSpec, Task, TaskKind
from hwsim.result import ResultFormatError, SimResult, decimate
from hwsim.technology import Price

PRICES = {"mac.float32": Price(4.6, "MAC", "t"), "vector.float32": Price(0.9, "op", "t"),
          "dram.read": Price(160.0, "byte", "t"), "dram.write": Price(160.0, "byte", "t")}
RES = {"array": ResourceSpec("array"), "vector": ResourceSpec("vector"),
       "dma": ResourceSpec("dma", bytes_per_cycle=8.0)}


def _program(**extra):
    tasks = [
        Task(0, TaskKind.TRANSFER, "load x", ("dma",), bytes=64, actions={"dram.read": 64}, scope="task0/inner0/update"),
        Task(1, TaskKind.COMPUTE, "mm", ("array",), deps=(0,), cycles=100, actions={"mac.float32": 1600},
             scope="task0/inner0/forward", op_type="MatMul", mem_alloc={"sram": 500}),
        Task(2, TaskKind.TRANSFER, "spill y", ("dma",), deps=(1,), bytes=32, actions={"dram.write": 32},
             scope="task0/inner0/forward", op_type="dma", mem_free={"sram": 500}),
        Task(3, TaskKind.COMPUTE, "relu", ("vector",), deps=(1,), cycles=50, actions={"vector.float32": 40},
             scope="query", op_type="Relu"),
        Task(4, TaskKind.COMPUTE, "upd", ("vector",), deps=(3,), cycles=10, actions={"vector.float32": 8},
             scope="task0/inner0/update", op_type="Sub"),
    ]
    return Program("p", "npu-x", 1e9, dict(RES), tasks, **extra)


def test_tasks_carry_their_work_and_the_dram_bytes_that_fed_them():
    r = simulate(_program(), energy_table=PRICES)
    mm, relu = r.timeline[1], r.timeline[3]
    assert (mm.macs, mm.ops, mm.dram_bytes) == (1600, 0, 64 + 32)   # its load and the spill of its result
    assert (relu.macs, relu.ops, relu.dram_bytes) == (0, 40, 0)
    assert r.timeline[0].bytes == 64 and r.timeline[2].bytes == 32


def test_spill_traffic_counts_spill_and_writeback_transfers():
    r = simulate(_program(), energy_table=PRICES)
    assert r.spill_traffic() == {"bytes": 32.0, "transfers": 1.0}
    assert r.summary()["spill_bytes"] == 32.0


def test_phase_span_is_the_union_of_its_own_tasks():
    r = simulate(_program(), energy_table=PRICES)
    rows = {p["phase_part"]: p for p in r.phase_breakdown()}
    upd = rows["inner0/update"]   # one task at the start (the load), one at the end
    load, last = r.timeline[0], r.timeline[4]
    assert upd["first_start"] == load.start and upd["last_end"] == last.end
    assert upd["span_cycles"] == pytest.approx((load.end - load.start) + (last.end - last.start))
    assert upd["span_cycles"] < upd["last_end"] - upd["first_start"]


def test_memory_demand_is_put_on_the_simulated_clock():
    r = simulate(_program(memory_demand={"sram": [(1, 900), (3, 200), (3, 250)]}), energy_table=PRICES)
    t1, t3 = r.timeline[1].start, r.timeline[3].start
    assert r.memory_demand == {"sram": [(t1, 900), (t3, 250)]}   # the last value at an instant
    assert r.peak_memory_demand() == {"sram": 900}
    assert r.peak_memory["sram"] == 500                           # what was held stays apart


def test_round_trip_through_json():
    r = simulate(_program(memory_demand={"sram": [(1, 900)]}), energy_table=PRICES)
    r.hardware = {"kind": "npu", "name": "x"}
    back = SimResult.from_json(r.to_json())
    assert json.loads(back.to_json()) == json.loads(r.to_json())
    assert back.energy_pj == r.energy_pj and back.stalls() == r.stalls()


def test_without_timeline_the_traces_keep_their_peaks():
    trace = [(float(t), (t * 37) % 1000) for t in range(5000)]
    small = decimate(trace, 300)
    assert len(small) <= 300 and max(b for _, b in small) == 999
    assert small[0] == trace[0] and small[-1] == trace[-1]
    r = simulate(_program(), energy_table=PRICES)
    r.memory_trace["sram"] = trace
    back = SimResult.from_json(r.to_json(timeline=False))
    assert back.timeline == [] and len(back.memory_trace["sram"]) <= 512
    assert max(b for _, b in back.memory_trace["sram"]) == 999


@pytest.mark.parametrize("text, fragment", [("[1, 2]", "not a hwsim result"), ("{\"program\": 1}", "missing"),
                                            ("nope", "not JSON")])
def test_not_a_result_is_one_clear_error(text, fragment):
    with pytest.raises(ResultFormatError, match=fragment):
        SimResult.from_json(text, "r.json")

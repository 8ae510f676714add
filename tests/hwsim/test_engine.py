"""The SimPy engine on hand-built Programs: timing, overlap, contention, memory, determinism."""

import pytest

from hwsim.technology import Price
from hwsim.engine import simulate
from hwsim.program import Program, ResourceSpec, Task, TaskKind

RES = {
    "array": ResourceSpec("array", component="array"),
    "vector": ResourceSpec("vector", component="vector"),
    "dma": ResourceSpec("dma", capacity=2, bytes_per_cycle=64.0, component="dma"),
    "dram": ResourceSpec("dram", capacity=1, bytes_per_cycle=8.0, latency_cycles=10, component="dram"),
}
PRICES = {"mac.float32": Price(4.6, "MAC", "test"), "dram.read": Price(100.0, "byte", "test"),
          "sram.write": Price(1.0, "byte", "test"), "vector.float32": Price(0.9, "op", "test")}


def compute(i, unit, cycles, deps=(), **kw):
    return Task(i, TaskKind.COMPUTE, f"c{i}", (unit,), deps=deps, cycles=cycles, **kw)


def load(i, nbytes, deps=(), **kw):
    return Task(i, TaskKind.TRANSFER, f"t{i}", ("dma", "dram"), deps=deps, bytes=nbytes,
                actions={"dram.read": nbytes, "sram.write": nbytes}, **kw)


def run(tasks, **kw):
    return simulate(Program("p", "test", 1e9, dict(RES), tasks), energy_table=PRICES, **kw)


def test_single_compute_task_takes_its_cycles():
    r = run([compute(0, "array", 100, actions={"mac.float32": 1000})])
    assert r.cycles == 100
    assert r.macs == 1000
    assert r.seconds == pytest.approx(100e-9)
    assert r.energy_pj == pytest.approx(4600)


def test_transfer_time_is_latency_plus_bytes_over_narrowest_link():
    r = run([load(0, 800)])
    assert r.cycles == 10 + 800 / 8


def test_independent_units_overlap_and_one_unit_serialises():
    overlap = run([compute(0, "array", 100), compute(1, "vector", 70)])
    assert overlap.cycles == 100
    serial = run([compute(0, "array", 100), compute(1, "array", 70)])
    assert serial.cycles == 170


def test_dma_overlaps_compute_and_dependencies_are_respected():
    tasks = [load(0, 80), compute(1, "array", 50, deps=(0,)), load(2, 80), compute(3, "array", 50, deps=(2,))]
    r = run(tasks)
    rec = {t.id: t for t in r.timeline}
    assert rec[1].start >= rec[0].end and rec[3].start >= rec[2].end
    # the second load runs while the first compute does (DRAM is the only shared link)
    assert rec[2].start < rec[1].end
    assert r.cycles < sum(t.end - t.start for t in r.timeline)


def test_dram_contention_serialises_transfers():
    r = run([load(0, 80), load(1, 80)])  # dma has 2 engines, dram 1 channel
    assert r.cycles == 2 * (10 + 10)
    assert r.utilization()["dma"] == pytest.approx(0.5)


def test_peak_memory_follows_alloc_and_free():
    tasks = [load(0, 100, mem_alloc={"sram": 100}),
             compute(1, "array", 10, deps=(0,), mem_alloc={"sram": 50}, mem_free={"sram": 100}),
             compute(2, "vector", 10, deps=(1,), mem_free={"sram": 50})]
    r = run(tasks)
    assert r.peak_memory["sram"] == 150
    assert r.memory_trace["sram"][-1][1] == 0


def test_repricing_needs_no_resimulation():
    r = run([compute(0, "array", 100, actions={"mac.float32": 1000}), load(1, 64)], static_power_mw=10)
    doubled = {k: Price(2 * p.pj, p.unit, p.source) for k, p in PRICES.items()}
    r2 = r.repriced(doubled)
    assert r2.cycles == r.cycles and r2.timeline is r.timeline
    dyn = r.energy_pj - r.static_energy_pj
    assert r2.energy_pj - r2.static_energy_pj == pytest.approx(2 * dyn)
    assert r.static_energy_pj == pytest.approx(10e-3 * r.seconds * 1e12)


def test_same_program_same_result_bit_for_bit():
    tasks = [load(0, 100), compute(1, "array", 30, deps=(0,)), load(2, 50), compute(3, "vector", 7, deps=(1, 2))]
    assert run(tasks).to_json() == run(tasks).to_json()


def test_program_validation_rejects_forward_deps_and_unknown_resources():
    with pytest.raises(ValueError, match="not earlier"):
        Program("p", "t", 1e9, dict(RES), [compute(0, "array", 1, deps=(1,)), compute(1, "array", 1)]).validate()
    with pytest.raises(ValueError, match="unknown resource"):
        Program("p", "t", 1e9, dict(RES), [compute(0, "npu", 1)]).validate()
    with pytest.raises(ValueError, match="no link"):
        Program("p", "t", 1e9, dict(RES), [Task(0, TaskKind.TRANSFER, "x", ("array",), bytes=4)]).validate()


def test_phase_breakdown_groups_tasks_by_scope_without_task_index():
    tasks = [compute(0, "array", 10, scope="task0/inner0/forward", actions={"mac.float32": 5}),
             compute(1, "array", 10, scope="task1/inner0/forward", actions={"mac.float32": 5}),
             compute(2, "vector", 4, deps=(0, 1), scope="outer_update")]
    rows = {p["phase_part"]: p for p in run(tasks).phase_breakdown()}
    assert rows["inner0/forward"]["macs"] == 10
    assert rows["inner0/forward"]["compute_busy_cycles"] == 20
    assert rows["outer_update"]["span_cycles"] == 4


def test_stall_is_idle_time_waiting_on_data_not_on_other_compute():
    # c1 waits 90 cycles for its load after the array is free: a stall. c3 waits for c2 on
    # the vector unit: not a stall. c4 waits for its load while c3 runs: no idle, no stall.
    tasks = [load(0, 720),                                   # 10 + 90 cycles
             compute(1, "array", 20, deps=(0,)),
             compute(2, "vector", 150),
             compute(3, "array", 10, deps=(2,)),
             load(4, 80, deps=(1,)),
             compute(5, "array", 5, deps=(4, 3))]
    r = run(tasks)
    s = r.stalls()
    assert s["array"]["stall_cycles"] == 100        # only c1's wait for the first load
    assert s["array"]["busy_cycles"] == 35
    assert s["vector"]["stall_cycles"] == 0
    assert r.summary()["stall_cycles"] == {"array": 100, "vector": 0}
    rec = {t.id: t for t in r.timeline}
    assert rec[3].ready_without_transfers == 150 and rec[1].ready_without_transfers == 0


def test_initial_memory_starts_the_trace_at_time_zero():
    prog = Program("p", "test", 1e9, dict(RES),
                   [compute(0, "array", 5), load(1, 100, deps=(0,), mem_alloc={"dram": 100})],
                   initial_memory={"dram": 1000})
    r = simulate(prog)
    assert r.memory_trace["dram"] == [(0.0, 1000), (5, 1100)]
    assert r.peak_memory["dram"] == 1100


def test_streaming_compute_starts_on_the_first_chunk_and_ends_one_chunk_after_the_last():
    # load: 10 latency + 800/8 = 110 cycles. Compute 200 cycles in 4 chunks: it starts when the
    # first quarter has landed (10 + 100/4 = 35) and, being slower than the load, ends at 235.
    r = run([load(0, 800), compute(1, "array", 200, streams=(0,), stream_chunks=4)])
    rec = {t.id: t for t in r.timeline}
    assert rec[1].start == 35 and rec[1].end == 235 and rec[1].stalled == 0
    # Compute faster than the load: it waits for the last byte, then computes the last chunk
    # (10 / 4 = 2.5). Waiting for the first chunk and, holding the unit, for the rest are stall.
    r = run([load(0, 800), compute(1, "array", 10, streams=(0,), stream_chunks=4)])
    rec = {t.id: t for t in r.timeline}
    assert rec[1].start == 35 and rec[1].end == 110 + 2.5
    assert rec[1].stalled == pytest.approx(112.5 - 35 - 10)
    s = r.stalls()["array"]
    assert s["busy_cycles"] == 10 and s["stall_cycles"] == pytest.approx(35 + 67.5)
    assert r.busy["array"] == 10
    # Without streaming the same compute waits for the whole load.
    assert run([load(0, 800), compute(1, "array", 10, deps=(0,))]).cycles == 120


def test_streams_queued_behind_each_other_count_as_one_interleaved_stream():
    # One DRAM channel: the second load starts when the first ends (110, then 110 + 110). The
    # compute starts after a quarter of their combined transfer time from the first start
    # (10 + 200/4 = 60) and ends one chunk after the last byte (220 + 100/4).
    r = run([load(0, 800), load(1, 800), compute(2, "array", 100, streams=(0, 1), stream_chunks=4)])
    rec = {t.id: t for t in r.timeline}
    assert rec[1].start == 110 and rec[2].start == 60 and rec[2].end == 245


def test_program_validation_rejects_bad_streams():
    bad = [[compute(0, "array", 5), compute(1, "array", 5, streams=(0,))],     # from a compute task
           [load(0, 8, streams=()), Task(1, TaskKind.TRANSFER, "t", ("dma", "dram"), bytes=8, streams=(0,))],
           [compute(0, "array", 5, streams=(1,)), load(1, 8)],                   # not earlier
           [load(0, 8), compute(1, "array", 5, streams=(0,), stream_chunks=0)]]
    for tasks in bad:
        with pytest.raises(ValueError, match="stream"):
            Program("p", "test", 1e9, dict(RES), tasks).validate()


def test_striped_dram_spreads_a_transfer_over_channels():
    res = dict(RES, dram=ResourceSpec("dram", capacity=4, bytes_per_cycle=8.0, latency_cycles=10,
                                      component="dram", striped=True))

    def t(i, width, nbytes=800):
        return Task(i, TaskKind.TRANSFER, f"t{i}", ("dram",), bytes=nbytes, width=width)

    def go(tasks):
        r = simulate(Program("p", "test", 1e9, res, tasks))
        return r.cycles, {x.id: x for x in r.timeline}

    assert go([t(0, 4)])[0] == 10 + 800 / 32                # four channels' bandwidth
    cycles, rec = go([t(0, 4), t(1, 4)])                     # both want every channel: in turn
    assert rec[1].start == rec[0].end and cycles == 2 * 35
    cycles, rec = go([t(0, 2), t(1, 2)])                     # two channels each: side by side
    assert rec[0].start == rec[1].start == 0 and cycles == 10 + 800 / 16
    cycles, rec = go([t(0, 3), t(1, 2), t(2, 1)])            # first come, first served, atomically
    assert rec[1].start == rec[0].end and rec[2].start == rec[0].end
    with pytest.raises(ValueError, match="width"):
        Program("p", "test", 1e9, res, [t(0, 5)]).validate()

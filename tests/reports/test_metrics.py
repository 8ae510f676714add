"""Figures that mean what they say, checked on real results and hand-worked programs."""

import dataclasses

import pytest

from reports import metrics
from reports.target import target_of


def test_mac_efficiency_is_not_busy_time(simulated):
    # Conv4 inference on a 256x256 array: the array is busy most of the run, yet a tiny
    # layer uses a sliver of its 65,536 MACs per cycle
    r = simulated("conv4_infer_torch", "tpu-v1-like")
    t = target_of(r)
    eff, busy = metrics.mac_efficiency(r, t), metrics.compute_busy(r)
    assert eff == pytest.approx(r.macs / (256 * 256 * r.cycles))
    assert busy > 0.5 and eff < busy / 10


def test_time_per_unit_accounts_for_every_slot_cycle(simulated):
    r = simulated("sine_maml", "zcu102-like")
    rows = metrics.time_by_unit(r)
    assert {u.unit for u in rows} == set(r.busy)
    for u in rows:
        assert u.total == pytest.approx(r.cycles * u.slots, rel=1e-9)
        assert min(u.compute, u.transfer, u.reconfig, u.stall, u.idle) >= 0


def test_roofline_points_hold_all_the_arithmetic(simulated):
    r = simulated("sine_maml", "edge-npu")
    pts = metrics.roofline_points(r)
    vector = sum(c for a, c in r.action_totals().items() if a.startswith("vector."))
    assert sum(p.ops for p in pts) == pytest.approx(2 * r.macs + vector)
    assert sum(p.dram_bytes for p in pts) <= sum(v for k, v in r.traffic().items() if k.startswith("dram.")) + 1e-6
    assert len(pts) < len(r.timeline)


def test_memory_levels_give_capacity_and_demand_and_say_when_demand_is_unknown(simulated):
    r = simulated("sine_maml", "edge-npu")
    levels = {m.level: m for m in metrics.memory_levels(r)}
    assert levels["sram"].capacity == 512 * 1024 and 0 < levels["sram"].demand <= 512 * 1024
    assert levels["dram"].capacity is None and levels["dram"].demand is None
    wanting = dataclasses.replace(r, memory_demand={"sram": [(0.0, 10), (5.0, 2_000_000)]})
    assert {m.level: m.demand for m in metrics.memory_levels(wanting)}["sram"] == 2_000_000
    unknown = dataclasses.replace(r, memory_demand={})
    assert {m.level: m.demand for m in metrics.memory_levels(unknown)}["sram"] is None


def test_the_second_order_stash_shows_as_demand_beyond_the_buffer(simulated):
    """A Conv4 adaptation keeps every inner step's activations for the backward: the lowering's
    demand exceeds the 512 KiB buffer (what spilled and streamed), the held memory never does."""
    r = simulated("conv4_train", "edge-npu")
    levels = {m.level: m for m in metrics.memory_levels(r)}
    assert levels["sram"].demand > 512 * 1024 >= levels["sram"].peak


def test_phase_bands_and_peak_per_part(simulated):
    r = simulated("sine_maml", "edge-npu")
    bands = metrics.phase_bands(r)
    groups = {g for g, _, _ in bands}
    assert {"inner step 1", "query", "meta_grad", "outer_update"} <= groups
    assert all(lo < hi for _, lo, hi in bands)
    peaks = metrics.peak_by_phase(r, r.memory_trace["sram"])
    assert max(peaks.values()) == r.peak_memory["sram"]


def test_peak_by_phase_reads_the_value_holding_in_each_interval():
    from hwsim.engine import simulate
    from hwsim.program import Program, ResourceSpec, Task, TaskKind

    tasks = [Task(0, TaskKind.COMPUTE, "a", ("u",), cycles=10, scope="query", mem_alloc={"sram": 100}),
             Task(1, TaskKind.COMPUTE, "b", ("u",), deps=(0,), cycles=10, scope="meta_grad",
                  mem_alloc={"sram": 50}, mem_free={"sram": 150})]
    r = simulate(Program("p", "t", 1e9, {"u": ResourceSpec("u")}, tasks))
    assert metrics.peak_by_phase(r, r.memory_trace["sram"]) == {"query": 100, "meta_grad": 150}

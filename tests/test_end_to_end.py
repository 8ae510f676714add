"""Whole pipeline (ONNX -> compiler -> engine) invariants on several real graphs and machines."""

from pathlib import Path

import pytest

from hwsim import pipeline

from .goldens import CONV4_64_MACS
from compiler.lowering.npu import compulsory_dram_bytes
from hwsim.config import load_hardware, parse_hardware
from hwsim.energy import energy_table

DATA = Path(__file__).resolve().parent / "data" / "compiler"
GRAPHS = ["conv4_infer_torch", "conv4_train", "sine_maml", "sine_fomaml"]

SMALL = """kind: npu
name: small-{cores}c
clock_mhz: 500
cores: {cores}
array: {{rows: 8, cols: 8, dataflow: {df}}}
vector: {{lanes: 8}}
sram: {{size_kib: {kib}, bytes_per_cycle: 32}}
dram: {{type: DDR4, bandwidth_gbps: 4, latency_ns: 80, channels: 2}}
interconnect: {{bytes_per_cycle: 16}}
"""


SPLIT = """kind: npu
name: split-2c
clock_mhz: 500
cores: 2
array: {rows: 16, cols: 8, dataflow: OS}
vector: {lanes: 16}
buffers: {ifmap: {size_kib: 24, bytes_per_cycle: 32}, filter: {size_kib: 8, bytes_per_cycle: 32},
          ofmap: {size_kib: 16, bytes_per_cycle: 32, double_buffered: false}}
dram: {type: HBM2, bandwidth_gbps: 16, latency_ns: 60, channels: 2}
interconnect: {bytes_per_cycle: 16}
"""


def machines():
    yield load_hardware("edge-npu")
    yield parse_hardware(SPLIT)
    yield parse_hardware(SMALL.format(cores=1, kib=32, df="WS"))
    yield parse_hardware(SMALL.format(cores=4, kib=96, df="OS"))
    yield parse_hardware(SMALL.format(cores=2, kib=16, df="IS"))


def run(name, hw):
    r = pipeline.simulate(DATA / f"{name}.onnx", hw)
    return r.model, r.result


@pytest.mark.parametrize("name", GRAPHS)
def test_latency_energy_and_traffic_bounds(name):
    for hw in machines():
        compiled, r = run(name, hw)
        macs = compiled.macs
        comp = compulsory_dram_bytes(compiled.graph)
        assert r.macs == macs
        assert r.cycles >= macs / hw.peak_macs_per_cycle
        assert r.cycles >= comp / hw.dram_bytes_per_cycle
        prices = energy_table(hw)
        floor = macs * prices["mac.float32"].pj + comp * prices["dram.read"].pj
        assert r.energy_pj >= floor
        t = r.traffic()
        assert t.get("dram.read", 0) + t.get("dram.write", 0) >= comp
        for c in range(hw.cores):   # every buffer of every core
            for buf, spec in hw.on_chip_buffers.items():
                assert r.peak_memory.get(f"core{c}.{buf}", 0) <= spec.size_bytes, (hw.name, c, buf)
        assert r.peak_memory["sram"] <= hw.cores * hw.on_chip_bytes
        assert r.peak_memory["dram"] >= compulsory_dram_bytes(compiled.graph, hw) - sum(
            compiled.graph.tensor(o).nbytes for o in set(compiled.graph.outputs))
        stalls = r.stalls()
        assert all(s["stall_cycles"] + s["busy_cycles"] <= r.cycles + 1e-6 for s in stalls.values())
        assert all(0 <= u <= 1 + 1e-9 for u in r.utilization().values())


@pytest.mark.parametrize("name", GRAPHS)
def test_deterministic_bit_for_bit(name):
    hw = parse_hardware(SMALL.format(cores=2, kib=16, df="WS"))
    assert run(name, hw)[1].to_json() == run(name, hw)[1].to_json()


def test_conv4_inference_reports_exactly_the_hand_counted_macs():
    compiled, r = run("conv4_infer_torch", load_hardware("edge-npu"))
    assert compiled.macs == r.macs == CONV4_64_MACS


def test_more_dram_bandwidth_never_slower():
    slow = parse_hardware(SMALL.format(cores=1, kib=32, df="WS"))
    fast = parse_hardware(SMALL.format(cores=1, kib=32, df="WS").replace("bandwidth_gbps: 4", "bandwidth_gbps: 40"))
    for name in GRAPHS:
        assert run(name, fast)[1].cycles <= run(name, slow)[1].cycles


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Real exports of every phase of both algorithms (small B and k), through the cache."""
    from algorithms.export import export_phase
    from algorithms.spec import PhaseSpec

    cache = tmp_path_factory.mktemp("exports")
    return {(a, p): export_phase(PhaseSpec(algorithm=a, phase=p, inner_steps=2, meta_batch=2 if p == "meta_train" else 1),
                                 cache_dir=cache)
            for a in ("maml", "fomaml") for p in ("infer", "adapt", "meta_train")}


def test_exported_phases_simulate_within_bounds_and_per_part(exported):
    hw = load_hardware("edge-npu")
    prices = energy_table(hw)
    for (algo, phase), model in exported.items():
        run = pipeline.simulate(model, hw)
        compiled, r = run.model, run.result
        comp = compulsory_dram_bytes(compiled.graph)
        assert r.cycles >= max(compiled.macs / hw.peak_macs_per_cycle, comp / hw.dram_bytes_per_cycle)
        assert r.energy_pj >= compiled.macs * prices["mac.float32"].pj + comp * prices["dram.read"].pj
        parts = {p["phase_part"] for p in r.phase_breakdown()}
        if phase == "meta_train":
            assert {"inner0/forward", "inner1/backward", "query", "meta_grad", "meta_reduce", "outer_update"} <= parts
        if phase == "adapt":
            assert {"inner0/backward", "inner1/update"} <= parts
        assert "other" not in parts


def test_second_order_costs_more_than_first_order(exported):
    hw = load_hardware("edge-npu")
    cost = {}
    for algo in ("maml", "fomaml"):
        r = pipeline.simulate(exported[(algo, "meta_train")], hw).result
        meta = sum(p["macs"] for p in r.phase_breakdown() if p["phase_part"] == "meta_grad")
        cost[algo] = (r.cycles, r.energy_pj, meta)
    assert all(m > f for m, f in zip(cost["maml"], cost["fomaml"]))


@pytest.mark.parametrize("preset", ["tpu-v1-like", "eyeriss-like", "server-npu"])
def test_presets_run_conv4_training(preset):
    hw = load_hardware(preset)
    compiled, r = run("conv4_train", hw)
    assert r.macs == compiled.macs and r.cycles >= compiled.macs / hw.peak_macs_per_cycle
    for buf, spec in hw.on_chip_buffers.items():
        assert r.peak_memory.get(f"core0.{buf}", 0) <= spec.size_bytes
    dt = hw.datatype or "float32"
    assert r.action_totals()[f"mac.{dt}"] == compiled.macs

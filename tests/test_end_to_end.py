"""Whole pipeline (ONNX -> compiler -> engine) invariants on several real graphs and machines."""

from pathlib import Path

import pytest

from compiler.compile import compile_model
from compiler.lowering.npu import compulsory_dram_bytes
from hwsim.config import load_hardware, parse_hardware
from hwsim.energy import energy_table
from hwsim.engine import simulate

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


def machines():
    yield load_hardware("edge-npu")
    yield parse_hardware(SMALL.format(cores=1, kib=32, df="WS"))
    yield parse_hardware(SMALL.format(cores=4, kib=96, df="OS"))
    yield parse_hardware(SMALL.format(cores=2, kib=16, df="IS"))


def run(name, hw):
    compiled = compile_model(DATA / f"{name}.onnx", hw)
    return compiled, simulate(compiled.program, energy_table=energy_table(hw),
                              static_power_mw=hw.technology.static_power_mw)


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
        assert r.peak_memory["sram"] <= hw.sram.size_bytes, hw.name
        assert all(0 <= u <= 1 + 1e-9 for u in r.utilization().values())


@pytest.mark.parametrize("name", GRAPHS)
def test_deterministic_bit_for_bit(name):
    hw = parse_hardware(SMALL.format(cores=2, kib=16, df="WS"))
    assert run(name, hw)[1].to_json() == run(name, hw)[1].to_json()


def test_conv4_inference_reports_exactly_9815360_macs():
    compiled, r = run("conv4_infer_torch", load_hardware("edge-npu"))
    assert compiled.macs == r.macs == 9_815_360


def test_more_dram_bandwidth_never_slower():
    slow = parse_hardware(SMALL.format(cores=1, kib=32, df="WS"))
    fast = parse_hardware(SMALL.format(cores=1, kib=32, df="WS").replace("bandwidth_gbps: 4", "bandwidth_gbps: 40"))
    for name in GRAPHS:
        assert run(name, fast)[1].cycles <= run(name, slow)[1].cycles

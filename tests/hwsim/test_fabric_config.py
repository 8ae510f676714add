"""Fabric hardware configs (FPGA, CGRA): presets with sources, validation naming the field,
energy tables with a source on every row."""

import pytest

from hwsim.config import ConfigError, load_hardware, parse_hardware, presets
from hwsim.energy import energy_table
from hwsim.config import CGRA, FPGA

FPGA_YAML = """kind: fpga
name: t
clock_mhz: 200
resources: {dsp: 100, bram18: 50, uram: 0, lut: 20000, ff: 40000}
dram: {type: DDR4, bandwidth_gbps: 10, latency_ns: 50}
config_port: {width_bits: 32, clock_mhz: 100}
bitstream: {full_bytes: 1000000, partial_regions: 2, partial_bytes: 400000}
"""


def test_fpga_presets_carry_datasheet_counts_and_sources():
    z = load_hardware("zcu102-like")
    assert isinstance(z, FPGA) and {"zcu102-like", "u250-like", "cgra-8x8"} <= set(presets())
    assert z.resources.as_dict() == {"dsp": 2520, "bram18": 1824, "uram": 0, "lut": 274080, "ff": 548160}
    assert z.config_port.bytes_per_second == pytest.approx(400e6)           # 32 bit x 100 MHz
    assert z.reconfiguration_seconds(z.bitstream.full_bytes) == pytest.approx(26.5e6 / 400e6)
    u = load_hardware("u250-like")
    assert (u.resources.dsp, u.resources.bram18, u.resources.uram) == (12288, 2 * 2688, 1280)
    assert u.dram.bandwidth_gbps == pytest.approx(4 * 19.2)
    for hw in (z, u):
        for key in ("resources", "config_port", "bitstream.full_bytes", "technology.static_power_mw"):
            assert hw.sources[key]
        assert hw.budget(1)["dsp"] <= hw.resources.dsp


def test_cgra_preset():
    c = load_hardware("cgra-8x8")
    assert isinstance(c, CGRA) and c.grid.pes == 64 and c.peak_macs_per_cycle == 64
    assert c.context_bytes(3) == 3 * 64 * 8
    assert "HyCUBE" in c.sources["grid"]


@pytest.mark.parametrize("name", ["zcu102-like", "u250-like", "cgra-8x8"])
def test_energy_tables_price_every_action_with_a_source(name):
    hw = load_hardware(name)
    table = energy_table(hw)
    assert "reconfig.byte" in table and "dram.read" in table and "mac.float32" in table
    for action, price in table.items():
        assert price.pj > 0 and price.source, action


@pytest.mark.parametrize("text, fragment", [
    (FPGA_YAML.replace("dsp: 100", "dsp: -1"), "resources.dsp"),
    (FPGA_YAML.replace("lut: 20000", "lut: 0"), "resources.lut"),
    (FPGA_YAML.replace("lut: 20000", "lut: 2.5"), "resources.lut"),
    (FPGA_YAML.replace("partial_bytes: 400000", "partial_bytes: 600000"), "bitstream"),
    (FPGA_YAML.replace("partial_bytes: 400000", "partial_bytes: 0"), "bitstream"),
    (FPGA_YAML.replace("width_bits: 32", "width_bits: 0"), "config_port.width_bits"),
    (FPGA_YAML + "usable_fraction: 1.5\n", "usable_fraction"),
    (FPGA_YAML + "bogus: 1\n", "bogus"),
    (FPGA_YAML + "lanes: {float32: {dsp_per_mac: 5, lut_per_mac: 1, ff_per_mac: 1, dsp_per_op: 0, "
     "lut_per_op: 1, ff_per_op: 1, lut_per_move: 1}}\n", "lanes"),
])
def test_impossible_fpga_configs_name_the_field(text, fragment):
    with pytest.raises(ConfigError) as e:
        parse_hardware(text, "f.yaml")
    assert fragment in str(e.value) and str(e.value).startswith("f.yaml")


def test_impossible_cgra_configs_name_the_field():
    base = open(load_hardware.__globals__["PRESET_DIR"] / "cgra-8x8.yaml").read()
    for old, new, fragment in [("rows: 8", "rows: 0", "grid.rows"),
                               ("memory_pes: 16", "memory_pes: 65", "grid"),
                               ("slots: 32", "slots: 0", "contexts.slots"),
                               ("banks: 8", "banks: 0", "scratchpad.banks")]:
        with pytest.raises(ConfigError, match=fragment):
            parse_hardware(base.replace(old, new), "c.yaml")

"""Hardware configs: presets, YAML loading, validation messages with the field's path."""

import pytest

from hwsim.config import ConfigError, load_hardware, parse_hardware, presets
from hwsim.energy import energy_table, sram_pj_per_byte

EDGE = (
    "kind: npu\nname: t\nclock_mhz: 500\narray: {rows: 8, cols: 8}\nvector: {lanes: 8}\n"
    "sram: {size_kib: 64, bytes_per_cycle: 32}\ndram: {type: DDR4, bandwidth_gbps: 10, latency_ns: 50}\n"
)


def test_edge_npu_preset_is_documented_and_sane():
    hw = load_hardware("edge-npu")
    assert "edge-npu" in presets()
    assert hw.array.rows * hw.array.cols == hw.peak_macs_per_cycle == 1024
    assert hw.dram_bytes_per_cycle == pytest.approx(12.8)
    assert hw.dram_latency_cycles == 100
    for key in ("dram.bandwidth_gbps", "array", "technology.static_power_mw"):
        assert hw.sources[key]
    for action, price in energy_table(hw).items():
        assert price.pj > 0 and price.source, action


def test_yaml_file_loads(tmp_path):
    f = tmp_path / "hw.yaml"
    f.write_text(EDGE)
    hw = load_hardware(f)
    assert hw.clock_hz == 500e6 and hw.array.dataflow.value == "WS"


@pytest.mark.parametrize("text, fragment", [
    (EDGE.replace("rows: 8", "rows: 0"), "array.rows"),
    (EDGE.replace("rows: 8", "rows: 2.5"), "array.rows"),
    (EDGE + "bogus: 1\n", "bogus"),
    (EDGE.replace("lanes: 8", "lanes: 8, warp: 2"), "vector.warp"),
    (EDGE.replace("DDR4", "SDRAM9"), "dram.type"),
    (EDGE.replace("kind: npu", "kind: gpu"), "kind"),
    (EDGE.replace("name: t\n", "name: t\ncores: 4\n"), "interconnect"),
    ("- a list\n", "mapping"),
    ("kind: [npu\n", "not valid YAML"),
])
def test_invalid_configs_name_the_field(text, fragment):
    with pytest.raises(ConfigError) as e:
        parse_hardware(text, "hw.yaml")
    msg = str(e.value)
    assert fragment in msg and msg.startswith("hw.yaml") and "\n" not in msg


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match="edge-npu"):
        load_hardware("tpu-v9")


def test_yaml_is_loaded_safely(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_hardware(f)


def test_sram_energy_grows_with_size_through_horowitz_points():
    assert sram_pj_per_byte(8 * 1024) == pytest.approx(10 / 8)
    assert sram_pj_per_byte(32 * 1024) == pytest.approx(20 / 8)
    assert sram_pj_per_byte(1024 * 1024) == pytest.approx(100 / 8)
    assert sram_pj_per_byte(8 * 1024) < sram_pj_per_byte(512 * 1024) < sram_pj_per_byte(1024 * 1024)

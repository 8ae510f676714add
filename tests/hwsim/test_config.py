"""Hardware configs: presets, YAML loading, validation messages with the field's path."""

import pytest

from hwsim.config import ConfigError, load_hardware, parse_hardware, presets
from hwsim.energy import energy_table
from hwsim.technology import sram_pj_per_byte

from .configs import EDGE


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


SPLIT = EDGE.replace(
    "sram: {size_kib: 64, bytes_per_cycle: 32}",
    "buffers: {ifmap: {size_kib: 64, bytes_per_cycle: 32}, filter: {size_kib: 16, bytes_per_cycle: 32},"
    " ofmap: {size_kib: 32, bytes_per_cycle: 64, double_buffered: false}}")


@pytest.mark.parametrize("preset", ["edge-npu", "tpu-v1-like", "eyeriss-like", "server-npu"])
def test_npu_presets_load_and_cite_their_sources(preset):
    hw = load_hardware(preset)
    assert hw.sources and all(len(v) > 10 for v in hw.sources.values())
    assert hw.description


def test_tpu_and_eyeriss_presets_follow_their_papers():
    tpu = load_hardware("tpu-v1-like")
    assert (tpu.array.rows, tpu.array.cols, tpu.clock_mhz, tpu.datatype) == (256, 256, 700, "int8")
    assert tpu.buffers.ifmap.size_bytes == 24 * 2**20 and tpu.buffers.ofmap.size_bytes == 4 * 2**20
    assert tpu.dram.type.value == "DDR3" and tpu.dram.bandwidth_gbps == 34
    assert any("assumption" in v for v in tpu.sources.values())   # unsourced figures say so
    # 92 TOPS = 65,536 MACs x 2 x 700 MHz
    assert 2 * tpu.peak_macs_per_cycle * tpu.clock_hz == pytest.approx(92e12, rel=0.01)
    eye = load_hardware("eyeriss-like")
    assert eye.array.pes == 168 and eye.sram.size_kib == 108 and eye.technology.node_nm == 65
    assert "row-stationary" in eye.description
    server = load_hardware("server-npu")
    assert server.cores > 1 and server.dram.type.value == "HBM2"


def test_split_buffers_load():
    hw = parse_hardware(SPLIT)
    assert list(hw.on_chip_buffers) == ["ifmap", "filter", "ofmap"]
    assert hw.on_chip_bytes == (64 + 16 + 32) * 1024 and hw.sram is None


@pytest.mark.parametrize("text, fragment", [
    (EDGE.replace("size_kib: 64", "size_kib: 0"), "sram.size_kib"),
    (EDGE.replace("size_kib: 64", "size_kib: -4"), "sram.size_kib"),
    (EDGE.replace("size_kib: 64", "size_kib: 1e12"), "sram.size_kib"),
    (EDGE.replace("size_kib: 64", "size_kib: 0.01"), "sram"),           # 10 bytes: no tile fits
    (EDGE.replace("size_kib: 64", "size_kib: 0.1001"), "not a whole number of bytes"),   # 102.5 bytes
    (EDGE.replace("bytes_per_cycle: 32", "bytes_per_cycle: 0"), "sram.bytes_per_cycle"),
    (EDGE.replace("bytes_per_cycle: 32", "bytes_per_cycle: 32, banks: 2.5"), "sram.banks"),
    (SPLIT.replace("size_kib: 16", "size_kib: -1"), "buffers.filter.size_kib"),
    (SPLIT.replace(", ofmap: {size_kib: 32, bytes_per_cycle: 64, double_buffered: false}", ""), "buffers.ofmap"),
    (SPLIT.replace("dram:", "sram: {size_kib: 8, bytes_per_cycle: 8}\ndram:"), "exactly one of 'sram'"),
    (EDGE.replace("sram: {size_kib: 64, bytes_per_cycle: 32}\n", ""), "exactly one of 'sram'"),
    (EDGE.replace("latency_ns: 50", "latency_ns: 50, channels: 0"), "dram.channels"),
    (EDGE.replace("latency_ns: 50", "latency_ns: 50, energy_pj_per_bit: 0"), "dram.energy_pj_per_bit"),
    (EDGE.replace("bandwidth_gbps: 10", "bandwidth_gbps: 1e9"), "dram.bandwidth_gbps"),
    (EDGE + "datatype: int4\n", "datatype"),
    (EDGE + "technology: {node_nm: 11}\n", "technology.node_nm"),
    (EDGE + "technology: {energy_table: nope}\n", "energy table"),
])
def test_invalid_new_fields_name_the_field(text, fragment):
    with pytest.raises(ConfigError) as e:
        parse_hardware(text, "hw.yaml")
    msg = str(e.value)
    assert fragment in msg and msg.startswith("hw.yaml") and "\n" not in msg


def test_unknown_dram_type_and_node_list_the_known_ones():
    with pytest.raises(ConfigError) as e:
        parse_hardware(EDGE.replace("DDR4", "GDDR7"), "hw.yaml")
    assert all(k in str(e.value) for k in ("DDR3", "DDR4", "LPDDR4", "HBM2"))
    with pytest.raises(ConfigError, match="known nodes: .*7.*45"):
        parse_hardware(EDGE + "technology: {node_nm: 11}\n", "hw.yaml")

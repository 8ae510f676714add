"""Energy and area tables: every row sourced, Eyeriss ratios, DRAM by type, node scaling,
re-pricing without re-simulation, unknown names listing the known ones."""

import pytest

from compiler.compile import compile_model
from hwsim.config import ConfigError, load_hardware, parse_hardware, presets
from hwsim.energy import UnknownTable, action_price, area, energy_table
from hwsim.technology import DRAM_PJ_PER_BIT, EYERISS_ANCHOR_PJ, node_factor
from hwsim.engine import simulate
from .configs import EDGE

NPU_PRESETS = [p for p in presets() if load_hardware(p).kind == "npu"]
# Every price names a paper or datasheet it comes from, or says it is an assumption.
SOURCES = ("Horowitz", "Eyeriss", "O'Connor", "Accelergy", "Jouppi", "Kuon & Rose", "assumption", "config ")


@pytest.mark.parametrize("preset", NPU_PRESETS)
@pytest.mark.parametrize("table", ["horowitz45", "eyeriss"])
def test_every_row_is_positive_and_names_its_source(preset, table):
    hw = load_hardware(preset)
    for action, price in energy_table(hw, table).items():
        assert price.pj > 0 and any(ref in price.source for ref in SOURCES), (action, price.source)
    for part, a in area(hw).items():
        assert a.mm2 > 0 and a.source, part


def test_eyeriss_table_keeps_the_published_ratios():
    hw = parse_hardware(EDGE)
    t = energy_table(hw, "eyeriss")
    mac16 = t["mac.int16"].pj
    assert mac16 == pytest.approx(EYERISS_ANCHOR_PJ) == pytest.approx(0.85)
    # per 16-bit access: buffer 6x, DRAM 200x, inter-PE 2x -> per byte half that
    assert t["sram.read"].pj == pytest.approx(3 * mac16)
    assert t["dram.read"].pj == pytest.approx(100 * mac16)
    assert t["noc.transfer"].pj == pytest.approx(1 * mac16)
    assert t["mac.float32"].pj == pytest.approx(4 * mac16)


def test_dram_energy_follows_the_type_and_an_explicit_override():
    per_byte = {}
    for kind in DRAM_PJ_PER_BIT:
        hw = parse_hardware(EDGE.replace("DDR4", kind))
        per_byte[kind] = energy_table(hw)["dram.read"].pj
        assert per_byte[kind] == pytest.approx(8 * DRAM_PJ_PER_BIT[kind][0])
        assert kind in energy_table(hw)["dram.read"].source
    assert per_byte["HBM2"] < per_byte["LPDDR4"] < per_byte["DDR4"] < per_byte["DDR3"]
    hw = parse_hardware(EDGE.replace("latency_ns: 50", "latency_ns: 50, energy_pj_per_bit: 2.5"))
    assert energy_table(hw)["dram.write"].pj == pytest.approx(20.0)


def test_smaller_node_scales_on_chip_rows_but_not_dram():
    base = parse_hardware(EDGE)
    small = parse_hardware(EDGE + "technology: {node_nm: 7}\n")
    t45, t7 = energy_table(base), energy_table(small)
    f = node_factor(45, 7)
    assert 0 < f < 1
    for a in ("mac.float32", "vector.float32", "sram.read", "noc.transfer"):
        assert t7[a].pj == pytest.approx(f * t45[a].pj)
        assert "scaled 45->7 nm" in t7[a].source
    assert t7["dram.read"].pj == t45["dram.read"].pj
    assert area(small)["array"].mm2 < area(base)["array"].mm2


def test_split_buffers_are_priced_by_their_own_size():
    hw = load_hardware("tpu-v1-like")
    t = energy_table(hw)
    assert t["filter.read"].pj < t["ofmap.read"].pj < t["ifmap.read"].pj   # 256 KiB < 4 MiB < 24 MiB


def test_area_grows_with_pes_and_buffer_size():
    a = area(parse_hardware(EDGE))
    b = area(parse_hardware(EDGE.replace("rows: 8, cols: 8", "rows: 16, cols: 8").replace("size_kib: 64", "size_kib: 128")))
    assert b["array"].mm2 == pytest.approx(2 * a["array"].mm2)
    assert b["sram"].mm2 == pytest.approx(2 * a["sram"].mm2)


@pytest.mark.parametrize("preset", ["edge-npu", "eyeriss-like"])
def test_repricing_with_another_table_needs_no_resimulation(preset):
    from tests.compiler.graphs import conv4_hand

    hw = load_hardware(preset)
    compiled = compile_model(conv4_hand(), hw)
    r = simulate(compiled.program, energy_table=energy_table(hw), static_power_mw=hw.technology.static_power_mw)
    for name in ("horowitz45", "eyeriss"):
        prices = energy_table(hw, name)
        r2 = r.repriced(prices)
        assert r2.timeline is r.timeline and r2.cycles == r.cycles
        expected = sum(c * action_price(a, prices).pj for a, c in r.action_totals().items())
        assert r2.energy_pj - r2.static_energy_pj == pytest.approx(expected)
        again = simulate(compiled.program, energy_table=prices, static_power_mw=hw.technology.static_power_mw)
        assert again.energy_pj == pytest.approx(r2.energy_pj)


def test_unknown_energy_table_lists_the_known_ones():
    with pytest.raises(UnknownTable, match="eyeriss.*horowitz45"):
        energy_table(parse_hardware(EDGE), "accelergy-99")
    with pytest.raises(ConfigError) as e:
        parse_hardware(EDGE + "technology: {energy_table: nope}\n", "hw.yaml")
    assert "eyeriss" in str(e.value) and "horowitz45" in str(e.value)

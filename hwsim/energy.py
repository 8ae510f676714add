"""Energy and area tables: prices for action counts (the Accelergy split).

The engine counts actions; a table prices them. Actions are named `<component>.<what>`:

| action                 | unit        | counted by                                          |
|------------------------|-------------|-----------------------------------------------------|
| `mac.<dtype>`          | one MAC     | systolic array                                      |
| `vector.<dtype>`       | one lane op | vector unit (transcendentals count several)         |
| `<buffer>.read/write`  | one byte    | on-chip buffer accesses; `<buffer>` is `sram` for a |
|                        |             | unified buffer, else `ifmap`, `filter`, `ofmap`     |
| `dram.read/write`      | one byte    | off-chip transfers                                  |
| `noc.transfer`         | one byte    | core <-> DRAM-controller interconnect               |

`energy_table(hw)` builds the named table for a hardware config (SRAM energy depends on each
buffer's size, DRAM energy on the DRAM type, on-chip rows on the process node);
`action_price(action, table)` returns picojoules per action. Re-pricing a result with another
table needs no re-simulation (`SimResult.repriced`). Every row names its source; a figure that
could not be traced to a published source says so ("assumption: ...", with what was searched).

Tables (a `Registry`, `TABLES`): `horowitz45` (absolute, 45 nm), `eyeriss` (Eyeriss's
normalised access energies, anchored to an absolute 16-bit MAC), `fpga45` and `cgra45` (the
reconfigurable fabrics). `area(hw)` estimates silicon area per PE and per KiB. The numbers and
their sources live in `hwsim.technology`; this module only builds tables from them and imports
no config (configs are duck-typed here, so `hwsim.config` can check table names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from .errors import BadInput
from .registry import Registry
from .technology import (BRAM18_BYTES, DRAM_PJ_PER_BIT, DTYPE_ALIAS, DTYPE_BITS, EYERISS, EYERISS_ANCHOR_PJ,
                         EYERISS_RELATIVE, FPGA_HARD_GAP, FPGA_SOFT_GAP, H45_ADD, H45_DRAM_64B_PJ, H45_MULT,
                         H45_SRAM_64B, HARD_GAP_SOURCE, HOROWITZ, INT16_MULT_SOURCE, PRICED_DTYPES,
                         SCALING_SOURCE, SOFT_GAP_SOURCE, TPU, AREA_PER_INT8_MAC_MM2_28NM,
                         AREA_PER_KIB_SRAM_MM2_28NM, Area, Price, node_factor, sram_pj_per_byte)

if TYPE_CHECKING:
    from .config import CGRA, FPGA, NPU, HardwareConfig


class UnknownTable(BadInput):
    """An energy table name no target family provides."""


# Energy tables by name: a builder takes the hardware config and returns action -> Price.
TABLES: Registry[Callable[[Any], dict[str, Price]]] = Registry("energy table", error=UnknownTable)


def dram_pj_per_byte(hw: NPU) -> Price:
    if hw.dram.energy_pj_per_bit is not None:
        return Price(8 * hw.dram.energy_pj_per_bit, "byte",
                     f"config {hw.name}: dram.energy_pj_per_bit = {hw.dram.energy_pj_per_bit:g}, x8")
    pj_bit, src = DRAM_PJ_PER_BIT[hw.dram.type.value]
    return Price(8 * pj_bit, "byte", f"{hw.dram.type.value}: {src}; {pj_bit:g} pJ/bit x 8")


def _scaled(p: Price, factor: float, from_nm: int, to_nm: int) -> Price:
    if from_nm == to_nm:
        return p
    return Price(p.pj * factor, p.unit,
                 f"{p.source}; scaled {from_nm}->{to_nm} nm x{factor:.3g} by {SCALING_SOURCE}")


def _on_chip(hw: NPU, rows: dict[str, Price], native_nm: int) -> dict[str, Price]:
    """Scale the on-chip rows (everything but DRAM) from the table's node to the config's."""
    to = hw.technology.node_nm
    f = node_factor(native_nm, to)
    return {a: (p if a.startswith("dram.") else _scaled(p, f, native_nm, to)) for a, p in rows.items()}


# ---- the tables -------------------------------------------------------------------------------------

def _h45_arithmetic() -> dict[str, Price]:
    """The MAC and vector-op rows of the Horowitz table (the same for every config)."""
    t: dict[str, Price] = {}
    for dt in PRICED_DTYPES:
        src = INT16_MULT_SOURCE if dt == "int16" else HOROWITZ
        t[f"mac.{dt}"] = Price(H45_MULT[dt] + H45_ADD[dt], "MAC", f"{src}: {dt} mult + add")
        t[f"vector.{dt}"] = Price(H45_ADD[dt], "op", f"{HOROWITZ}: {dt} add (one lane op)")
    return t


_H45_ARITHMETIC = _h45_arithmetic()


@TABLES.register("horowitz45")
def horowitz45(hw: NPU) -> dict[str, Price]:
    t = dict(_H45_ARITHMETIC)
    for name, buf in hw.on_chip_buffers.items():
        sram = sram_pj_per_byte(buf.size_bytes)
        src = f"{HOROWITZ}: 64-bit SRAM access, log-interpolated to {buf.size_kib:g} KiB, /8"
        t[f"{name}.read"] = Price(sram, "byte", src)
        t[f"{name}.write"] = Price(sram, "byte", src)
    dram = dram_pj_per_byte(hw)
    t["dram.read"] = dram
    t["dram.write"] = dram
    # Moving a byte across the chip costs about as much as reading it from a large buffer;
    # Horowitz's slide gives no wire figure, so the 1 MB SRAM access energy stands in.
    t["noc.transfer"] = Price(H45_SRAM_64B[-1][1] / 8.0, "byte",
                              f"{HOROWITZ}: 1 MB SRAM 64-bit access /8 as a proxy for a chip-crossing byte")
    return _on_chip(hw, t, 45)


@TABLES.register("eyeriss")
def eyeriss(hw: NPU) -> dict[str, Price]:
    """Eyeriss-normalised table. Buffer rows are per byte (a 16-bit access is two bytes); MACs of
    other widths scale with the square of the width (as the multiplier does); a vector lane op
    is priced as one register-file access of its width (operands live in the lane's RF)."""
    a = EYERISS_ANCHOR_PJ
    anchor = f"1x = {a:.3g} pJ, a 16-bit MAC at 45 nm ({INT16_MULT_SOURCE} + int16 add 0.05 pJ)"
    t: dict[str, Price] = {}
    for dt in PRICED_DTYPES:
        w = DTYPE_BITS[dt] / 16
        t[f"mac.{dt}"] = Price(a * w * w, "MAC", f"{EYERISS}: MAC 1x, x({DTYPE_BITS[dt]}/16)^2; {anchor}")
        t[f"vector.{dt}"] = Price(a * EYERISS_RELATIVE["rf"] * w, "op",
                                  f"{EYERISS}: RF access 1x per lane op, x{DTYPE_BITS[dt]}/16; {anchor}")
    gb = a * EYERISS_RELATIVE["global_buffer"] / 2
    for name in hw.on_chip_buffers:
        src = f"{EYERISS}: global buffer 6x per 16-bit access, /2 per byte; {anchor}"
        t[f"{name}.read"] = Price(gb, "byte", src)
        t[f"{name}.write"] = Price(gb, "byte", src)
    dram = Price(a * EYERISS_RELATIVE["dram"] / 2, "byte",
                 f"{EYERISS}: DRAM 200x per 16-bit access, /2 per byte; {anchor}")
    t["dram.read"] = dram
    t["dram.write"] = dram
    t["noc.transfer"] = Price(a * EYERISS_RELATIVE["inter_pe"] / 2, "byte",
                              f"{EYERISS}: inter-PE network 2x per 16-bit word, /2 per byte "
                              f"(a chip-crossing link costs more: a lower bound); {anchor}")
    # The anchor is a 45 nm figure, so the whole table scales from 45 nm, DRAM included: the
    # normalised DRAM row is relative to the on-chip MAC and is kept so.
    to = hw.technology.node_nm
    f = node_factor(45, to)
    return {k: _scaled(p, f, 45, to) for k, p in t.items()}


# ---- reconfigurable fabrics ---------------------------------------------------------------------

def _configuration_byte() -> Price:
    # A configuration byte is fetched from external memory and written into configuration SRAM:
    # one DRAM byte read plus one small-SRAM byte write (Horowitz 45 nm).
    pj = H45_DRAM_64B_PJ / 8 + sram_pj_per_byte(8 * 1024)
    return Price(pj, "byte", f"{HOROWITZ}: DRAM byte read + 8 KB SRAM byte write per configuration byte")


def _dram_prices() -> dict[str, Price]:
    dram = Price(H45_DRAM_64B_PJ / 8, "byte", f"{HOROWITZ}: DRAM 1.3 nJ per 64-bit access, /8")
    return {"dram.read": dram, "dram.write": dram}


@TABLES.register("fpga45")
def fpga45(hw: FPGA) -> dict[str, Price]:
    t: dict[str, Price] = {}
    for dt in ("float32", "float16", "int32", "int8"):
        t[f"mac.{dt}"] = Price((H45_MULT[dt] + H45_ADD[dt]) * FPGA_HARD_GAP, "MAC",
                               f"{HOROWITZ}: {dt} mult + add, x{FPGA_HARD_GAP} ({HARD_GAP_SOURCE})")
        t[f"lut.{dt}"] = Price(H45_ADD[dt] * FPGA_SOFT_GAP, "op",
                               f"{HOROWITZ}: {dt} add, x{FPGA_SOFT_GAP} ({SOFT_GAP_SOURCE})")
    bram = sram_pj_per_byte(BRAM18_BYTES) * FPGA_HARD_GAP
    src = (f"{HOROWITZ}: 64-bit SRAM access extrapolated to one BRAM18 (2.25 KB), /8, "
           f"x{FPGA_HARD_GAP} ({HARD_GAP_SOURCE})")
    t["sram.read"] = Price(bram, "byte", src)
    t["sram.write"] = Price(bram, "byte", src)
    t.update(_dram_prices())
    t["reconfig.byte"] = _configuration_byte()
    return t


@TABLES.register("cgra45")
def cgra45(hw: CGRA) -> dict[str, Price]:
    t: dict[str, Price] = {}
    for dt in ("float32", "float16", "int32", "int8"):
        t[f"mac.{dt}"] = Price(H45_MULT[dt] + H45_ADD[dt], "MAC", f"{HOROWITZ}: {dt} mult + add")
        t[f"pe.{dt}"] = Price(H45_ADD[dt], "op", f"{HOROWITZ}: {dt} add (one PE ALU op)")
    bank = max(1, hw.scratchpad.size_bytes // hw.scratchpad.banks)
    sp = sram_pj_per_byte(bank)
    src = f"{HOROWITZ}: 64-bit SRAM access log-interpolated to one {bank / 1024:g} KiB bank, /8"
    t["sram.read"] = Price(sp, "byte", src)
    t["sram.write"] = Price(sp, "byte", src)
    t.update(_dram_prices())
    t["reconfig.byte"] = _configuration_byte()
    t["context.switch"] = Price(hw.contexts.switch_pj, "switch", f"{hw.name} config contexts.switch_pj: "
                                + hw.sources.get("contexts.switch_pj", "no source given"))
    return t


def known_tables() -> list[str]:
    return TABLES.names()


def energy_table(hw: HardwareConfig, name: str | None = None) -> dict[str, Price]:
    """The table `name` (default: the config's `technology.energy_table`) built for `hw`."""
    return TABLES.lookup(name or hw.technology.energy_table)(hw)


def action_price(action: str, table: Mapping[str, Price]) -> Price:
    if action in table:
        return table[action]
    comp, _, what = action.partition(".")
    alias = DTYPE_ALIAS.get(what)
    if alias and f"{comp}.{alias}" in table:
        return table[f"{comp}.{alias}"]
    raise KeyError(f"energy table has no price for action {action!r}")


def component_of(action: str) -> str:
    return action.partition(".")[0]


# ---- area -------------------------------------------------------------------------------------------

def area(hw: NPU) -> dict[str, Area]:
    """Silicon area of the arrays and buffers of all cores, mm^2, scaled to `technology.node_nm`
    by (L/28)^2 (constant-field area scaling; optimistic for FinFET nodes). A MAC of b bits
    costs (b/8)^2 int8 MACs (multiplier area grows with the square of its width)."""
    node = hw.technology.node_nm
    s = (node / 28) ** 2
    bits = DTYPE_BITS.get(hw.datatype or "float32", 32)
    per_pe = AREA_PER_INT8_MAC_MM2_28NM * (bits / 8) ** 2 * s
    out = {"array": Area(hw.cores * hw.array.pes * per_pe,
                         f"{TPU}: 0.24 x 331 mm^2 / 65,536 int8 MACs, x({bits}/8)^2, x({node}/28)^2")}
    for name, buf in hw.on_chip_buffers.items():
        out[name] = Area(hw.cores * buf.size_kib * AREA_PER_KIB_SRAM_MM2_28NM * s,
                         f"{TPU}: 0.29 x 331 mm^2 / 24 MiB unified buffer, x({node}/28)^2")
    return out

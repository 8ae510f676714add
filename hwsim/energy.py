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

Tables: `horowitz45` (absolute, 45 nm) and `eyeriss` (Eyeriss's normalised access energies,
anchored to an absolute 16-bit MAC). `area(hw)` estimates silicon area per PE and per KiB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .config import ConfigError, NPU, hardware_kinds

HOROWITZ = "Horowitz, 'Computing's Energy Problem', ISSCC 2014, 45 nm 0.9 V"
EYERISS = "Chen, Emer, Sze, 'Eyeriss', ISCA 2016, normalised energy per access (16-bit)"


@dataclass(frozen=True)
class Price:
    pj: float     # picojoules per unit
    unit: str
    source: str


# ---- arithmetic -----------------------------------------------------------------------------------

# Horowitz 2014, arithmetic (pJ per operation, 45 nm). A MAC = one multiply + one add.
H45_MULT = {"float32": 3.7, "float16": 1.1, "int32": 3.1, "int8": 0.2}
H45_ADD = {"float32": 0.9, "float16": 0.4, "int32": 0.1, "int16": 0.05, "int8": 0.03}
# Horowitz gives no 16-bit integer multiply. A multiplier's energy grows with the square of its
# width; his two integer points agree on that (0.2 pJ x (16/8)^2 = 0.8, 3.1 pJ x (16/32)^2 = 0.78).
H45_MULT["int16"] = 0.2 * (16 / 8) ** 2
_INT16_MULT_SOURCE = (f"{HOROWITZ}: int16 mult = int8 mult 0.2 pJ x (16/8)^2 (quadratic in width, "
                      "consistent with the int32 point 3.1 pJ x (16/32)^2)")
# bfloat16 has no row in Horowitz's table; priced as float16 (same multiplier width class).
_DTYPE_ALIAS = {"bfloat16": "float16", "float64": "float32", "int64": "int32",
                "uint8": "int8", "bool": "int8"}
DTYPE_BITS = {"float32": 32, "float16": 16, "bfloat16": 16, "int32": 32, "int16": 16, "int8": 8}
PRICED_DTYPES = ("float32", "float16", "int32", "int16", "int8")

# ---- on-chip memory -------------------------------------------------------------------------------

# Horowitz 2014, 64-bit cache/SRAM access by capacity (pJ): the memory rows of his Fig. 1.1.9
# (8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ). The figure is an image in the paper; these are the
# values as reproduced in secondary tables (e.g. the energy-per-operation helper in GitHub gist
# V0XNIHILI/2b6fa61edd4c06d9ffce5551065124c1 uses the same 10/20/100 pJ at 8/32/1000 KB).
H45_SRAM_64B = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))


def sram_pj_per_byte(size_bytes: int) -> float:
    """Horowitz's three SRAM points interpolated linearly in log(size); extrapolated with the
    nearest segment's slope outside 8 KB..1 MB (a documented approximation)."""
    pts = [(math.log(s), math.log(e)) for s, e in H45_SRAM_64B]
    x = math.log(max(size_bytes, 1))
    (x0, y0), (x1, y1) = (pts[0], pts[1]) if x <= pts[1][0] else (pts[1], pts[2])
    y = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return math.exp(y) / 8.0


# Horowitz 2014: DRAM 1.3-2.6 nJ per 64-bit access; the low end (kept for target families that
# price DRAM without a type).
H45_DRAM_64B_PJ = 1300.0


# ---- DRAM by type ---------------------------------------------------------------------------------

# Energy per bit transferred (array access + I/O), pJ/bit. DRAM is a separate part: these rows
# do not scale with the logic node. `Dram.energy_pj_per_bit` overrides them per config.
DRAM_PJ_PER_BIT: dict[str, tuple[float, str]] = {
    "DDR3": (H45_DRAM_64B_PJ / 64, f"{HOROWITZ}: DRAM 1.3 nJ per 64-bit access (low end of 1.3-2.6 nJ)"),
    "DDR4": (15.0, "assumption: ~15 pJ/bit incl. I/O for a DDR4 DIMM access; no published per-bit "
                   "DDR4 figure found (searched: Micron TN-40-07 copies, Accelergy/CACTI plug-in, "
                   "DRAMPower, Ramulator, O'Connor et al. MICRO 2017); lies between HBM2 3.97 and "
                   "Horowitz's 20 pJ/bit DDR3-era figure"),
    "LPDDR4": (8.0, "Accelergy CACTI plug-in DRAM table (Accelergy-Project/accelergy-cacti-plug-in, "
                    "cacti_wrapper.py, DRAM_estimate_energy): LPDDR4 8 pJ/bit, labelled 'public data' "
                    "there (no primary source given)"),
    "HBM2": (3.97, "O'Connor et al., 'Fine-Grained DRAM', MICRO 2017, Sec. 1-2: HBM2 access energy "
                   "~3.97 pJ/bit (row activation + on-die data movement + I/O); GDDR5 ~14 pJ/bit "
                   "(Fig. 1a)"),
}


def dram_pj_per_byte(hw: NPU) -> Price:
    if hw.dram.energy_pj_per_bit is not None:
        return Price(8 * hw.dram.energy_pj_per_bit, "byte",
                     f"config {hw.name}: dram.energy_pj_per_bit = {hw.dram.energy_pj_per_bit:g}, x8")
    pj_bit, src = DRAM_PJ_PER_BIT[hw.dram.type.value]
    return Price(8 * pj_bit, "byte", f"{hw.dram.type.value}: {src}; {pj_bit:g} pJ/bit x 8")


# ---- technology scaling -----------------------------------------------------------------------------

# Dynamic energy per operation scales as C·V^2 with C proportional to the feature size
# (constant-field scaling, Dennard et al., IEEE JSSC 1974). 45 nm is Horowitz's 0.9 V (the table's
# operating point). The other nominal core supply voltages are an assumption (typical values per
# node); checked where a source was found: 14 nm 0.8 V, 10 nm 0.75 V, 7 nm 0.7 V are the PTM
# nominal VDDs used with Stillmaker & Baas's scaling equations (Integration 58, 2017) in public
# scaling scripts; their worked example (Sec. 4.2.1, corrigendum) uses 32 nm HP at 0.9 V (as here)
# and 130 nm at 1.3 V (here 1.2 V); PTM's 45 nm nominal is 1.0 V, not Horowitz's 0.9 V. Stillmaker &
# Baas's own nominal-VDD table was not found in the searched copies. Below ~22 nm (FinFETs)
# capacitance shrinks more slowly than the node name, so these factors are optimistic there.
# Factor relative to 45 nm = (L/45)·(V/0.9)^2.
NOMINAL_VDD = {180: 1.8, 130: 1.2, 90: 1.0, 65: 1.0, 45: 0.9, 40: 0.9, 32: 0.9, 28: 0.9,
               22: 0.8, 16: 0.8, 14: 0.8, 10: 0.75, 7: 0.7, 5: 0.65}
NODE_SCALING: dict[int, float] = {n: (n / 45) * (v / 0.9) ** 2 for n, v in NOMINAL_VDD.items()}
SCALING_SOURCE = ("constant-field scaling E ~ C·V^2, C ~ L (Dennard et al., JSSC 1974), "
                  "nominal VDD per node: assumption, 14/10/7 nm match PTM nominal VDDs")


def node_factor(from_nm: int, to_nm: int) -> float:
    for n in (from_nm, to_nm):
        if n not in NODE_SCALING:
            raise ConfigError(f"no scaling data for {n} nm; known nodes: "
                              f"{', '.join(str(k) for k in sorted(NODE_SCALING))} nm")
    return NODE_SCALING[to_nm] / NODE_SCALING[from_nm]


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
        src = _INT16_MULT_SOURCE if dt == "int16" else HOROWITZ
        t[f"mac.{dt}"] = Price(H45_MULT[dt] + H45_ADD[dt], "MAC", f"{src}: {dt} mult + add")
        t[f"vector.{dt}"] = Price(H45_ADD[dt], "op", f"{HOROWITZ}: {dt} add (one lane op)")
    return t


_H45_ARITHMETIC = _h45_arithmetic()


def _horowitz45(hw: NPU) -> dict[str, Price]:
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


# Eyeriss's normalised energy per 16-bit access (REFERENCE.md §1), relative to one 16-bit MAC.
EYERISS_RELATIVE = {"mac": 1.0, "rf": 1.0, "inter_pe": 2.0, "global_buffer": 6.0, "dram": 200.0}
# The absolute anchor: a 16-bit integer MAC at 45 nm (Horowitz int16 mult 0.8 + add 0.05 pJ).
EYERISS_ANCHOR_PJ = H45_MULT["int16"] + H45_ADD["int16"]


def _eyeriss(hw: NPU) -> dict[str, Price]:
    """Eyeriss-normalised table. Buffer rows are per byte (a 16-bit access is two bytes); MACs of
    other widths scale with the square of the width (as the multiplier does); a vector lane op
    is priced as one register-file access of its width (operands live in the lane's RF)."""
    a = EYERISS_ANCHOR_PJ
    anchor = f"1x = {a:.3g} pJ, a 16-bit MAC at 45 nm ({_INT16_MULT_SOURCE} + int16 add 0.05 pJ)"
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


# Energy tables by name: a builder takes the hardware config and returns action -> Price.
# Target families with their own actions (e.g. reconfiguration) register theirs with
# `register_table` from their own module.
TABLES: dict[str, Callable[[Any], dict[str, Price]]] = {"horowitz45": _horowitz45, "eyeriss": _eyeriss}


def register_table(name: str) -> Callable[[Callable[[Any], dict[str, Price]]], Callable[[Any], dict[str, Price]]]:
    def add(builder):
        if name in TABLES and TABLES[name] is not builder:
            raise RuntimeError(f"two energy tables named {name!r}")
        TABLES[name] = builder
        return builder
    return add


def known_tables() -> list[str]:
    hardware_kinds()   # imports the target families, which register their tables
    return sorted(TABLES)


def energy_table(hw: Any, name: str | None = None) -> dict[str, Price]:
    name = name or hw.technology.energy_table
    if name not in TABLES and name not in known_tables():   # the first check spares the import scan
        raise ConfigError(f"unknown energy table {name!r}; known: {', '.join(known_tables())}")
    return TABLES[name](hw)


def action_price(action: str, table: Mapping[str, Price]) -> Price:
    if action in table:
        return table[action]
    comp, _, what = action.partition(".")
    alias = _DTYPE_ALIAS.get(what)
    if alias and f"{comp}.{alias}" in table:
        return table[f"{comp}.{alias}"]
    raise KeyError(f"energy table has no price for action {action!r}")


def component_of(action: str) -> str:
    return action.partition(".")[0]


# ---- area -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Area:
    mm2: float
    source: str


# TPUv1 (Jouppi et al., ISCA 2017): 28 nm and a die <= 331 mm^2 (Table 2: at most half of the
# 662 mm^2 Haswell die, so 331 is an upper bound); 65,536 int8 MACs (Sec. 2). Floor plan (Fig. 2,
# Sec. 2): the 24 MiB unified buffer is "almost a third" of the die and the matrix unit "a quarter".
# The 29 % and 24 % are the Fig. 2 labels as recalled: the figure is an image, not legible in the
# text copies searched; both agree with the Sec. 2 text. Per int8 MAC and per KiB:
TPU = "Jouppi et al., ISCA 2017 (TPUv1, 28 nm, die <= 331 mm^2 in Table 2; Fig. 2 floor plan)"
AREA_PER_INT8_MAC_MM2_28NM = 0.24 * 331 / 65536
AREA_PER_KIB_SRAM_MM2_28NM = 0.29 * 331 / (24 * 1024)


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


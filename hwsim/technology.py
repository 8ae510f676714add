"""Technology data: energy and area per action from papers and datasheets, and node scaling.

Numbers only, each next to its source; no hardware config is imported here (the tables that
price a config's actions are built from these in `hwsim.energy`). A figure that could not be
traced to a published source says so ("assumption: ...", with what was searched).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
INT16_MULT_SOURCE = (f"{HOROWITZ}: int16 mult = int8 mult 0.2 pJ x (16/8)^2 (quadratic in width, "
                      "consistent with the int32 point 3.1 pJ x (16/32)^2)")
# bfloat16 has no row in Horowitz's table; priced as float16 (same multiplier width class).
DTYPE_ALIAS = {"bfloat16": "float16", "float64": "float32", "int64": "int32",
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
            raise ValueError(f"no scaling data for {n} nm; known nodes: "
                              f"{', '.join(str(k) for k in sorted(NODE_SCALING))} nm")
    return NODE_SCALING[to_nm] / NODE_SCALING[from_nm]



# Eyeriss's normalised energy per 16-bit access (REFERENCE.md §1), relative to one 16-bit MAC.
EYERISS_RELATIVE = {"mac": 1.0, "rf": 1.0, "inter_pe": 2.0, "global_buffer": 6.0, "dram": 200.0}
# The absolute anchor: a 16-bit integer MAC at 45 nm (Horowitz int16 mult 0.8 + add 0.05 pJ).
EYERISS_ANCHOR_PJ = H45_MULT["int16"] + H45_ADD["int16"]



# ---- area ------------------------------------------------------------------------------------------

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



# ---- reconfigurable fabrics ----------------------------------------------------------------------

BRAM18_BYTES = 18 * 1024 // 8      # one BRAM18: 18 Kib (UG573)
URAM_BYTES = 288 * 1024 // 8       # one URAM288: 288 Kib (UG573)

# Kuon & Rose, "Measuring the Gap Between FPGAs and ASICs", IEEE TCAD 26(2), 2007 (90 nm),
# abstract: for LUT logic and flip-flops the FPGA/ASIC dynamic-power ratio is ~14x (area ~35x,
# ~18x with hard blocks; critical-path delay ~3-4x); with hard multipliers and block memories the
# power gap is smaller, but the abstract gives no figure. The 7.1x hard-block ratio is therefore
# an assumption: no figure for it was found in the searched copies (abstract and first page only).
# The FPGA table is Horowitz 45 nm (the NPU's table) times these ratios, so that NPU and fabric
# results are priced on one technology basis; no process scaling is applied.
KUON_ROSE = "Kuon & Rose, IEEE TCAD 2007, FPGA/ASIC dynamic-power gap"
FPGA_HARD_GAP = 7.1
FPGA_SOFT_GAP = 14.0
HARD_GAP_SOURCE = (f"assumption: hard-block FPGA/ASIC dynamic-power gap, below the {FPGA_SOFT_GAP:g}x "
                    f"soft-logic figure of {KUON_ROSE} (abstract)")
SOFT_GAP_SOURCE = f"{KUON_ROSE} (abstract), soft logic"

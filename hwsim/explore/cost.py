"""What a design point costs to build: the `area` objective, one number per hardware kind.

* NPU — silicon mm^2 of the arrays and buffers of all cores (`hwsim.energy.area`, TPUv1-derived
  per-MAC and per-KiB figures scaled to the config's process node).
* CGRA — silicon mm^2 by the same figures: each PE as one fp32-class MAC (the ALU of a PE
  computes one fused multiply-add per operation slot, `grid.ops_per_pe` of them), its context
  memory (`contexts.slots x bytes_per_pe`) and the scratchpad as SRAM.
* FPGA — the device, in LUT-equivalents. A fabric's silicon is fixed by the part you buy, so its
  cost is the device's resources, each hard block weighted by the logic tiles it displaces. In
  the VTR flagship 40 nm architecture (k6_frac_N10_mem32K_40nm, Luu, Goeders, Betz, in
  verilog-to-routing `vtr_flow/arch/timing/`), a logic tile holds 10 fracturable 6-LUTs (with
  their flip-flops), a 36x36 multiplier block is 4 tiles high and a 32 Kbit RAM block 6 tiles,
  in columns of one tile's width: so one hard multiplier = 40 LUT-eq and 32 Kbit of block RAM =
  60 LUT-eq. We take one DSP slice as one such multiplier block (assumption: a DSP48E2 is
  27x18 plus a 48-bit ALU, between the 36x36 block and one of its 18x18 halves), a BRAM18
  (18 Kbit) as 18/32 of a RAM block = 33.75 LUT-eq and a URAM (288 Kbit) as nine = 540 LUT-eq.
  Flip-flops ride in the logic tiles (two per LUT in both the VTR tile and an UltraScale+ CLB),
  so they add nothing.

Units differ by kind (mm^2 vs LUT-eq); a space has one base config, so one kind and one unit.
"""

from __future__ import annotations

from ..config import CGRA, FPGA, NPU
from ..energy import area as npu_area
from ..technology import AREA_PER_INT8_MAC_MM2_28NM, AREA_PER_KIB_SRAM_MM2_28NM, DTYPE_BITS

# LUT-equivalents per hard block, from the VTR flagship architecture's tile heights (see above).
LUT_EQ_PER_DSP = 40.0
LUT_EQ_PER_BRAM18 = 60.0 * 18 / 32
LUT_EQ_PER_URAM = 60.0 * 288 / 32

AREA_UNIT = {"npu": "mm^2", "cgra": "mm^2", "fpga": "LUT-eq"}


def area(hw: NPU | FPGA | CGRA) -> float:
    """The `area` objective of a config (units: `AREA_UNIT[hw.kind]`)."""
    if isinstance(hw, NPU):
        return sum(a.mm2 for a in npu_area(hw).values())
    if isinstance(hw, FPGA):
        r = hw.resources
        return r.lut + LUT_EQ_PER_DSP * r.dsp + LUT_EQ_PER_BRAM18 * r.bram18 + LUT_EQ_PER_URAM * r.uram
    return cgra_area(hw)


def cgra_area(hw: CGRA) -> float:
    scale = (hw.technology.node_nm / 28) ** 2      # the constant-field scaling of hwsim.energy.area
    mac = AREA_PER_INT8_MAC_MM2_28NM * (DTYPE_BITS["float32"] / 8) ** 2
    pes = hw.grid.pes * hw.grid.ops_per_pe * mac
    context_kib = hw.grid.pes * hw.contexts.slots * hw.contexts.bytes_per_pe / 1024
    sram = (context_kib + hw.scratchpad.size_kib) * AREA_PER_KIB_SRAM_MM2_28NM
    return (pes + sram) * scale


__all__ = ["area", "cgra_area", "AREA_UNIT", "LUT_EQ_PER_DSP", "LUT_EQ_PER_BRAM18", "LUT_EQ_PER_URAM"]

"""Reconfigurable fabrics: FPGA and CGRA hardware configs.

* `FPGA` (`kind: fpga`) — DSP, BRAM18, URAM, LUT and FF counts, a clock, external DRAM, a
  configuration port (ICAP class) and full / partial bitstream sizes. Per element type, the
  cost of one MAC lane and one ALU lane in DSPs, LUTs and FFs (`lanes`) — what folding trades.
* `CGRA` (`kind: cgra`) — a PE grid (rows x cols, operations per PE per cycle), context memory
  (slots per PE, bytes per context word, switch cycles and energy), a banked scratchpad, DRAM
  and a configuration port through which contexts are loaded.

The lowering onto both is `compiler.lowering.fabric`; docs/fabric.md explains the model; their
energy tables (`fpga45`, `cgra45`) are in `hwsim.energy`.
Units follow `hwsim.config`: `_mhz`, `_kib`, `_gbps` (GB/s), `_ns`, `_mw`, `_pj`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import Clocked, Dram, Strict, Technology

# Element types the lane tables know; other ONNX types are priced as their nearest class.
LANE_DTYPE = {"float32": "float32", "float64": "float32", "float16": "float16", "bfloat16": "float16",
              "int32": "int32", "int64": "int32", "int16": "int32", "int8": "int8", "uint8": "int8",
              "bool": "int8"}


# ---- FPGA ---------------------------------------------------------------------------------------


class FpgaResources(Strict):
    """Device resources. BRAM is counted in BRAM18 halves (one BRAM36 = two BRAM18)."""

    dsp: Annotated[int, Field(ge=0, le=100_000)]
    bram18: Annotated[int, Field(ge=0, le=100_000)]
    uram: Annotated[int, Field(ge=0, le=100_000)] = 0
    lut: Annotated[int, Field(ge=1, le=100_000_000)]
    ff: Annotated[int, Field(ge=1, le=200_000_000)]

    def as_dict(self) -> dict[str, int]:
        return {"dsp": self.dsp, "bram18": self.bram18, "uram": self.uram, "lut": self.lut, "ff": self.ff}


class LaneCost(Strict):
    """Resources of one lane of one element type: a MAC lane (multiply + accumulate, the
    matrix-vector units) and an ALU lane (one add / compare / select per cycle, every other op).
    A move lane (copies, gathers) costs `lut_per_move` LUTs and as many FFs."""

    dsp_per_mac: Annotated[float, Field(ge=0, le=64)]
    lut_per_mac: Annotated[float, Field(ge=0, le=100_000)]
    ff_per_mac: Annotated[float, Field(ge=0, le=100_000)]
    dsp_per_op: Annotated[float, Field(ge=0, le=64)]
    lut_per_op: Annotated[float, Field(ge=0, le=100_000)]
    ff_per_op: Annotated[float, Field(ge=0, le=100_000)]
    lut_per_move: Annotated[float, Field(ge=0, le=100_000)]
    transcendental_ops: Annotated[int, Field(ge=1, le=1024)] = 8   # ALU-lane ops per exp/log/sqrt/div


# Default lane costs on UltraScale+ (DSP48E2). Floating point: assumption, "full DSP usage"
# configurations of the Xilinx Floating-Point Operator (PG060) as commonly used: a single-precision
# multiplier 3 DSP48E2 and an adder 2 (a MAC lane 5), half precision 1 + 1. PG060's per-device
# resource tables (Xilinx "floating-point" resource-utilization pages) were not reachable in the
# searched copies beyond their 7-series rows, so these counts are not checked against them.
# int8: one DSP48E2 computes two concurrent INT8 multiply-accumulates that share a weight
# (Xilinx WP486, "Deep Learning with INT8 Optimization on Xilinx Devices", abstract; WP487 gives
# 1.75-2 INT8 MACs per DSP on average), so 0.5 DSP per int8 MAC lane. int32: a 32x32 multiply
# tiles onto 27x18 multipliers as 2x2 = 4 DSPs (assumption from the DSP48E2 widths, UG579).
# LUT/FF counts per lane are assumptions (round figures, not taken from PG060); a move lane is one
# LUT per bit of the element (a 2:1 mux per bit).
DEFAULT_LANES: dict[str, LaneCost] = {
    "float32": LaneCost(dsp_per_mac=5, lut_per_mac=350, ff_per_mac=600, dsp_per_op=2, lut_per_op=250,
                        ff_per_op=400, lut_per_move=32),
    "float16": LaneCost(dsp_per_mac=2, lut_per_mac=200, ff_per_mac=300, dsp_per_op=1, lut_per_op=150,
                        ff_per_op=200, lut_per_move=16),
    "int32": LaneCost(dsp_per_mac=4, lut_per_mac=80, ff_per_mac=120, dsp_per_op=0, lut_per_op=40,
                      ff_per_op=40, lut_per_move=32),
    "int8": LaneCost(dsp_per_mac=0.5, lut_per_mac=20, ff_per_mac=30, dsp_per_op=0, lut_per_op=10,
                     ff_per_op=10, lut_per_move=8),
}


class ConfigPort(Strict):
    """The port configuration data enters through (ICAP on an FPGA; the context bus of a CGRA)."""

    width_bits: Annotated[int, Field(ge=1, le=4096)]
    clock_mhz: Annotated[float, Field(gt=0, le=10_000)]
    latency_ns: Annotated[float, Field(ge=0, le=1e9)] = 0.0   # fixed set-up time per load

    @property
    def bytes_per_second(self) -> float:
        return self.width_bits / 8 * self.clock_mhz * 1e6


class Bitstream(Strict):
    """Full-device bitstream, and optionally `partial_regions` equal reconfigurable partitions
    whose partial bitstreams are `partial_bytes` each. A configuration that fits in one region
    is loaded by partial reconfiguration while the other regions keep running."""

    full_bytes: Annotated[int, Field(gt=0, le=10**11)]
    partial_regions: Annotated[int, Field(ge=0, le=64)] = 0
    partial_bytes: Annotated[int, Field(ge=0, le=10**11)] = 0

    @model_validator(mode="after")
    def _regions_fit_in_the_device(self) -> "Bitstream":
        if self.partial_regions and not self.partial_bytes:
            raise ValueError("partial_regions > 0 needs partial_bytes > 0")
        if self.partial_regions * self.partial_bytes > self.full_bytes:
            raise ValueError(f"{self.partial_regions} regions x {self.partial_bytes} partial bytes "
                             f"exceed the full bitstream ({self.full_bytes} bytes)")
        return self


class _Reconfigurable(Clocked):
    """Timing shared by the fabrics: the configuration port's bandwidth in cycles."""

    @property
    def config_bytes_per_cycle(self) -> float:
        return self.config_port.bytes_per_second / self.clock_hz


class FPGA(_Reconfigurable, Strict):
    kind: Literal["fpga"] = "fpga"
    name: str
    description: str = ""
    clock_mhz: Annotated[float, Field(gt=0, le=2_000)]
    resources: FpgaResources
    # Fraction of each resource a design may use: placement and routing rarely close above
    # ~80-90 % (a design choice per preset, see its sources).
    usable_fraction: Annotated[float, Field(gt=0, le=1)] = 0.85
    dram: Dram
    config_port: ConfigPort
    bitstream: Bitstream
    lanes: dict[str, LaneCost] = Field(default_factory=lambda: dict(DEFAULT_LANES))
    technology: Technology = Technology(energy_table="fpga45")
    sources: dict[str, str] = {}

    @model_validator(mode="after")
    def _lanes_cover_every_class(self) -> "FPGA":
        missing = sorted(set(LANE_DTYPE.values()) - set(self.lanes))
        if missing:
            raise ValueError(f"lanes: missing element types {', '.join(missing)}")
        return self

    def lane(self, dtype: str) -> LaneCost:
        return self.lanes[LANE_DTYPE.get(dtype, "float32")]

    def budget(self, regions: int = 1) -> dict[str, int]:
        """Resources one configuration may use (the whole device, or one of `regions`)."""
        return {k: int(math.floor(v * self.usable_fraction / regions))
                for k, v in self.resources.as_dict().items()}

    @property
    def peak_macs_per_cycle(self) -> float:
        """MAC lanes the whole device could hold (fp32), the DSP or LUT bound whichever binds."""
        lane = self.lane("float32")
        by_dsp = self.resources.dsp / lane.dsp_per_mac if lane.dsp_per_mac else math.inf
        by_lut = self.resources.lut / lane.lut_per_mac if lane.lut_per_mac else math.inf
        return min(by_dsp, by_lut)


    def reconfiguration_seconds(self, nbytes: int) -> float:
        return self.config_port.latency_ns * 1e-9 + nbytes / self.config_port.bytes_per_second


# ---- CGRA ---------------------------------------------------------------------------------------


class PEGrid(Strict):
    rows: Annotated[int, Field(ge=1, le=256)]
    cols: Annotated[int, Field(ge=1, le=256)]
    ops_per_pe: Annotated[int, Field(ge=1, le=64)] = 1    # ALU operations per PE per cycle (a MAC is one)
    memory_pes: Annotated[int, Field(ge=1, le=65536)]      # PEs with a scratchpad port (loads / stores)
    transcendental_ops: Annotated[int, Field(ge=1, le=1024)] = 8   # ALU ops per exp/log/sqrt/div

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @model_validator(mode="after")
    def _memory_pes_exist(self) -> "PEGrid":
        if self.memory_pes > self.rows * self.cols:
            raise ValueError(f"memory_pes ({self.memory_pes}) exceeds the {self.rows}x{self.cols} grid")
        return self


class Contexts(Strict):
    """Configuration memory: `slots` context words per PE (a modulo schedule of initiation
    interval II occupies II slots), `bytes_per_pe` per word; switching between resident
    contexts costs `switch_cycles` and `switch_pj`."""

    slots: Annotated[int, Field(ge=1, le=65536)]
    bytes_per_pe: Annotated[int, Field(ge=1, le=4096)]
    switch_cycles: Annotated[int, Field(ge=0, le=1_000_000)]
    switch_pj: Annotated[float, Field(ge=0, le=1e9)]


class Scratchpad(Strict):
    size_kib: Annotated[float, Field(gt=0, le=1024 * 1024)]
    banks: Annotated[int, Field(ge=1, le=1024)]
    bytes_per_cycle: Annotated[float, Field(gt=0, le=1e6)]   # total over all banks

    @property
    def size_bytes(self) -> int:
        return int(self.size_kib * 1024)


class CGRA(_Reconfigurable, Strict):
    kind: Literal["cgra"] = "cgra"
    name: str
    description: str = ""
    clock_mhz: Annotated[float, Field(gt=0, le=10_000)]
    grid: PEGrid
    contexts: Contexts
    scratchpad: Scratchpad
    dram: Dram
    config_port: ConfigPort
    technology: Technology = Technology(energy_table="cgra45")
    sources: dict[str, str] = {}

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.grid.pes * self.grid.ops_per_pe


    def context_bytes(self, ii: int) -> int:
        """Bytes of configuration for a kernel of initiation interval `ii` (every PE, ii words)."""
        return ii * self.grid.pes * self.contexts.bytes_per_pe

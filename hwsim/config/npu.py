"""The NPU: cores with a systolic array, a vector unit, DMA engines and on-chip buffers."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import Clocked, Datatype, Dram, Strict, Technology


class Dataflow(str, Enum):
    WS = "WS"   # weight stationary
    OS = "OS"   # output stationary
    IS = "IS"   # input stationary


class SystolicArray(Strict):
    rows: Annotated[int, Field(ge=1, le=4096)]
    cols: Annotated[int, Field(ge=1, le=4096)]
    dataflow: Annotated[Dataflow, Field(strict=False)] = Dataflow.WS
    # MACs one PE completes per cycle at a numeric type (e.g. {bfloat16: 2, int8: 4} for a PE that
    # splits its multiplier); a type not listed takes 1. The co-design `precision` option and
    # `datatype` read it (docs/codesign.md).
    macs_per_pe: dict[Datatype, Annotated[int, Field(ge=1, le=64)]] = {}

    @property
    def pes(self) -> int:
        return self.rows * self.cols


class VectorUnit(Strict):
    """SIMD unit for every non-GEMM op. One lane performs `ops_per_lane` simple operations
    (add, mul, compare, select) per cycle; a transcendental (exp, log, sqrt, div) costs
    `transcendental_cycles` lane-cycles."""

    lanes: Annotated[int, Field(ge=1, le=65536)]
    ops_per_lane: Annotated[int, Field(ge=1, le=64)] = 1
    transcendental_cycles: Annotated[int, Field(ge=1, le=1024)] = 4
    pipeline_depth: Annotated[int, Field(ge=0, le=1024)] = 8  # fill latency per op, cycles


class Buffer(Strict):
    """One on-chip SRAM buffer of a core. `bytes_per_cycle` is its total port bandwidth over all
    banks and ports (the rate at which the vector unit and the DMA engines can read or write
    it); `banks` is recorded for the area/energy models and documentation, bank conflicts are
    not modelled. `double_buffered`: tiles are loaded while the previous ones are in use."""

    size_kib: Annotated[float, Field(gt=0, le=1024 * 1024)]
    banks: Annotated[int, Field(ge=1, le=1024)] = 1
    bytes_per_cycle: Annotated[float, Field(gt=0, le=1e6)]
    double_buffered: bool = True

    @property
    def size_bytes(self) -> int:
        return int(self.size_kib * 1024)

    @model_validator(mode="after")
    def _at_least_a_word(self) -> "Buffer":
        if self.size_kib * 1024 != self.size_bytes:
            raise ValueError(f"size_kib: {self.size_kib:g} KiB is not a whole number of bytes")
        if self.size_bytes < 64:
            raise ValueError(f"size_kib: {self.size_kib:g} KiB is below 64 bytes, too small for any tile")
        return self


class SplitBuffers(Strict):
    """Separate operand buffers, SCALE-Sim style: `ifmap` holds activations loaded from DRAM,
    `filter` holds parameters (weights) loaded from DRAM, `ofmap` holds the results of the
    core's ops until they are consumed, spilled or stored (TPUv1: unified buffer, weight FIFO,
    accumulators)."""

    ifmap: Buffer
    filter: Buffer
    ofmap: Buffer


class Interconnect(Strict):
    """Link between cores and the shared DRAM controller (used when cores > 1)."""

    bytes_per_cycle: Annotated[float, Field(gt=0, le=1e6)]
    latency_cycles: Annotated[float, Field(ge=0, le=1e6)] = 0


class NPU(Clocked, Strict):
    """An NPU: `cores` identical cores, each with a systolic array, a vector unit, DMA engines
    and private on-chip buffers — either one unified buffer (`sram`) or separate
    ifmap/filter/ofmap buffers (`buffers`) — sharing DRAM through an interconnect.

    `datatype`: the numeric type the NPU computes and stores floating-point tensors in (e.g.
    `int8` for a TPUv1-like array running an fp32 graph quantised). When set, every floating
    tensor occupies datatype-width bytes in buffers and DRAM traffic, and MACs and vector ops are
    priced at that type; integer tensors (indices, shapes) keep their width. When unset the
    graph's own types are used."""

    kind: Literal["npu"] = "npu"
    name: str
    description: str = ""
    cores: Annotated[int, Field(ge=1, le=1024)] = 1
    clock_mhz: Annotated[float, Field(gt=0, le=10_000)]
    array: SystolicArray
    vector: VectorUnit
    sram: Buffer | None = None
    buffers: SplitBuffers | None = None
    dram: Dram
    interconnect: Interconnect | None = None
    dma_engines: Annotated[int, Field(ge=1, le=64)] = 1  # per core
    datatype: Datatype | None = None
    technology: Technology = Technology()
    sources: dict[str, str] = {}   # parameter -> where its value comes from

    @model_validator(mode="after")
    def _multi_core_needs_interconnect(self) -> "NPU":
        if self.cores > 1 and self.interconnect is None:
            raise ValueError("cores > 1 needs an 'interconnect' section")
        return self

    @model_validator(mode="after")
    def _one_buffer_organisation(self) -> "NPU":
        if (self.sram is None) == (self.buffers is None):
            raise ValueError("give exactly one of 'sram' (one unified buffer) or 'buffers' "
                             "(separate ifmap, filter and ofmap buffers)")
        return self

    @property
    def on_chip_buffers(self) -> dict[str, Buffer]:
        """Each core's buffers by name: {'sram': ...} or {'ifmap': ..., 'filter': ..., 'ofmap': ...}."""
        if self.sram is not None:
            return {"sram": self.sram}
        b = self.buffers
        return {"ifmap": b.ifmap, "filter": b.filter, "ofmap": b.ofmap}

    @property
    def on_chip_bytes(self) -> int:
        """On-chip buffer capacity of one core, all buffers together."""
        return sum(b.size_bytes for b in self.on_chip_buffers.values())

    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs per cycle of all arrays at their fastest numeric type."""
        return self.cores * self.array.pes * max(self.array.macs_per_pe.values(), default=1)

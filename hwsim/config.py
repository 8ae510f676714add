"""Hardware configurations: validated at the edge, loaded from YAML or a preset name.

`load_hardware("edge-npu")` or `load_hardware("my_npu.yaml")` returns a `HardwareConfig`.
Every field is checked by pydantic; unknown fields are rejected; errors carry the field's path
(`ConfigError: edge.yaml: npu.sram.size_kib: Input should be greater than 0`).

Units are in the field names (`_mhz`, `_kib`, `_gbps` = GB/s, `_ns`, `_mw`) so a YAML file reads
without a manual.
"""

from __future__ import annotations

import importlib
import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PRESET_DIR = Path(__file__).with_name("presets")


class ConfigError(ValueError):
    """A hardware config that cannot be used: unknown preset, bad YAML, invalid field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dataflow(str, Enum):
    WS = "WS"   # weight stationary
    OS = "OS"   # output stationary
    IS = "IS"   # input stationary


class SystolicArray(_Strict):
    rows: Annotated[int, Field(ge=1, le=4096)]
    cols: Annotated[int, Field(ge=1, le=4096)]
    dataflow: Dataflow = Dataflow.WS

    @property
    def pes(self) -> int:
        return self.rows * self.cols


class VectorUnit(_Strict):
    """SIMD unit for every non-GEMM op. One lane performs `ops_per_lane` simple operations
    (add, mul, compare, select) per cycle; a transcendental (exp, log, sqrt, div) costs
    `transcendental_cycles` lane-cycles."""

    lanes: Annotated[int, Field(ge=1, le=65536)]
    ops_per_lane: Annotated[int, Field(ge=1, le=64)] = 1
    transcendental_cycles: Annotated[int, Field(ge=1, le=1024)] = 4
    pipeline_depth: Annotated[int, Field(ge=0, le=1024)] = 8  # fill latency per op, cycles


class Buffer(_Strict):
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


class SplitBuffers(_Strict):
    """Separate operand buffers, SCALE-Sim style: `ifmap` holds activations loaded from DRAM,
    `filter` holds parameters (weights) loaded from DRAM, `ofmap` holds the results of the
    core's ops until they are consumed, spilled or stored (TPUv1: unified buffer, weight FIFO,
    accumulators)."""

    ifmap: Buffer
    filter: Buffer
    ofmap: Buffer


class DramType(str, Enum):
    DDR3 = "DDR3"
    DDR4 = "DDR4"
    LPDDR4 = "LPDDR4"
    HBM2 = "HBM2"


class Dram(_Strict):
    """Off-chip memory shared by all cores. `bandwidth_gbps` is the total over `channels`, each
    serving one transfer at a time at bandwidth/channels. Addresses interleave across channels
    every `interleave_bytes`, so a transfer of n bytes spreads over min(channels,
    ceil(n / interleave_bytes)) channels at once (and waits until that many are free); null:
    each transfer uses one channel (separate ports, as SCALE-Sim's per-operand DRAM ports).
    `energy_pj_per_bit` overrides the per-type figure of `hwsim.energy.DRAM_PJ_PER_BIT`."""

    type: DramType
    bandwidth_gbps: Annotated[float, Field(gt=0, le=100_000)]  # GB/s, 1e9 bytes per second
    latency_ns: Annotated[float, Field(ge=0, le=100_000)]
    channels: Annotated[int, Field(ge=1, le=256)] = 1
    # Assumption: 256-byte channel interleaving, a common memory-controller granularity (a few
    # DRAM bursts per channel before moving to the next).
    interleave_bytes: Annotated[int, Field(ge=64, le=1 << 20)] | None = 256
    energy_pj_per_bit: Annotated[float, Field(gt=0, le=10_000)] | None = None


class Interconnect(_Strict):
    """Link between cores and the shared DRAM controller (used when cores > 1)."""

    bytes_per_cycle: Annotated[float, Field(gt=0, le=1e6)]
    latency_cycles: Annotated[float, Field(ge=0, le=1e6)] = 0


class Technology(_Strict):
    """Which energy table prices the action counts, the process node its on-chip rows are
    scaled to (`hwsim.energy.NODE_SCALING`), and static power. See hwsim.energy."""

    energy_table: str = "horowitz45"
    node_nm: Annotated[int, Field(ge=3, le=250)] = 45
    static_power_mw: Annotated[float, Field(ge=0, le=1e6)] = 0.0

    # The scaling data live in hwsim.energy (which imports this module): looked up lazily.
    # Energy-table names are checked by the hardware model that uses them (tables are
    # registered by target families, possibly after their models are defined).
    @field_validator("node_nm")
    @classmethod
    def _known_node(cls, v: int) -> int:
        from .energy import NODE_SCALING

        if v not in NODE_SCALING:
            raise ValueError(f"no scaling data for {v} nm; known nodes: "
                             f"{', '.join(str(n) for n in sorted(NODE_SCALING))} nm")
        return v


# Numeric types an NPU may compute and store in (see `NPU.datatype`).
Datatype = Literal["int8", "int16", "float16", "bfloat16", "float32"]


class Clocked:
    """Derived timing of every hardware model with `clock_mhz` and a `dram` section."""

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_gbps * 1e9 / self.clock_hz

    @property
    def dram_latency_cycles(self) -> float:
        return math.ceil(round(self.dram.latency_ns * 1e-9 * self.clock_hz, 6))


class NPU(Clocked, _Strict):
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
    def _known_energy_table(self) -> "NPU":
        from .energy import known_tables

        if self.technology.energy_table not in known_tables():
            raise ValueError(f"technology.energy_table: unknown energy table "
                             f"{self.technology.energy_table!r}; known: {', '.join(known_tables())}")
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
        return self.cores * self.array.pes


# Hardware kinds by their `kind` field. A target family registers its top-level model here
# (`register_kind`); modules listed in `_KIND_MODULES` are imported on first use so that their
# kinds are known to the loader without the loader importing them eagerly.
_KINDS: dict[str, type[BaseModel]] = {}
_KIND_MODULES = ("hwsim.fabric",)


def register_kind(cls: type[BaseModel]) -> type[BaseModel]:
    kind = cls.model_fields["kind"].default
    if kind in _KINDS and _KINDS[kind] is not cls:
        raise RuntimeError(f"two hardware models for kind {kind!r}")
    _KINDS[kind] = cls
    return cls


register_kind(NPU)


def hardware_kinds() -> dict[str, type[BaseModel]]:
    for module in _KIND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    return dict(_KINDS)


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


# Every hardware model has `kind`, `name`, `clock_hz` and `technology`; the NPU is the first.
HardwareConfig = Any


def load_hardware(name_or_path: str | Path) -> HardwareConfig:
    """A preset name (`edge-npu`) or a YAML file path. Raises ConfigError with one clear line."""
    text_path = Path(name_or_path)
    if text_path.suffix.lower() in (".yaml", ".yml") or text_path.exists():
        where = str(text_path)
        try:
            text = text_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{where}: cannot read hardware config ({e.__class__.__name__}: {e})") from None
    else:
        name = str(name_or_path)
        if name not in presets():
            raise ConfigError(f"unknown hardware preset {name!r}; known presets: {', '.join(presets())}"
                              " (or give a path to a .yaml file)")
        where = f"preset {name}"
        text = (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    return parse_hardware(text, where)


def parse_hardware(text: str, where: str = "<string>") -> HardwareConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        pos = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{pos}") from None
    kinds = hardware_kinds()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'kind' field ({', '.join(kinds)}) at the top level")
    kind = data.get("kind")
    if kind not in kinds:
        raise ConfigError(f"{where}: kind: unknown hardware kind {kind!r}; known kinds: {', '.join(kinds)}")
    try:
        return kinds[kind].model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        extra = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise ConfigError(f"{where}: {loc or 'hardware'}: {err['msg']}{extra}") from None

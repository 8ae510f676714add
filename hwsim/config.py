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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    """On-chip SRAM. `bytes_per_cycle` is the total port bandwidth over all banks."""

    size_kib: Annotated[float, Field(gt=0, le=1024 * 1024)]
    banks: Annotated[int, Field(ge=1, le=1024)] = 1
    bytes_per_cycle: Annotated[float, Field(gt=0, le=1e6)]
    double_buffered: bool = True

    @property
    def size_bytes(self) -> int:
        return int(self.size_kib * 1024)


class DramType(str, Enum):
    DDR3 = "DDR3"
    DDR4 = "DDR4"
    LPDDR4 = "LPDDR4"
    HBM2 = "HBM2"


class Dram(_Strict):
    type: DramType
    bandwidth_gbps: Annotated[float, Field(gt=0, le=100_000)]  # GB/s, 1e9 bytes per second
    latency_ns: Annotated[float, Field(ge=0, le=100_000)]
    channels: Annotated[int, Field(ge=1, le=256)] = 1


class Interconnect(_Strict):
    """Link between cores and the shared DRAM controller (used when cores > 1)."""

    bytes_per_cycle: Annotated[float, Field(gt=0, le=1e6)]
    latency_cycles: Annotated[float, Field(ge=0, le=1e6)] = 0


class Technology(_Strict):
    """Which energy table prices the action counts, and static power. See hwsim.energy."""

    energy_table: str = "horowitz45"
    static_power_mw: Annotated[float, Field(ge=0, le=1e6)] = 0.0


class NPU(_Strict):
    kind: Literal["npu"] = "npu"
    name: str
    description: str = ""
    cores: Annotated[int, Field(ge=1, le=1024)] = 1
    clock_mhz: Annotated[float, Field(gt=0, le=10_000)]
    array: SystolicArray
    vector: VectorUnit
    sram: Buffer
    dram: Dram
    interconnect: Interconnect | None = None
    dma_engines: Annotated[int, Field(ge=1, le=64)] = 1  # per core
    technology: Technology = Technology()
    sources: dict[str, str] = {}   # parameter -> where its value comes from

    @model_validator(mode="after")
    def _multi_core_needs_interconnect(self) -> "NPU":
        if self.cores > 1 and self.interconnect is None:
            raise ValueError("cores > 1 needs an 'interconnect' section")
        return self

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.cores * self.array.pes

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_gbps * 1e9 / self.clock_hz

    @property
    def dram_latency_cycles(self) -> float:
        return math.ceil(round(self.dram.latency_ns * 1e-9 * self.clock_hz, 6))


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

"""What every hardware model shares: strict validation, DRAM, technology, derived timing."""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..energy import TABLES
from ..errors import BadInput
from ..technology import NODE_SCALING


class ConfigError(BadInput):
    """A hardware config that cannot be used: unknown preset, bad YAML, invalid field."""


class Strict(BaseModel):
    """Unknown fields are rejected, values are not coerced (no bool or str for a number), and a
    validated config is immutable. Enum fields opt out of strictness so YAML strings name them."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DramType(str, Enum):
    DDR3 = "DDR3"
    DDR4 = "DDR4"
    LPDDR4 = "LPDDR4"
    HBM2 = "HBM2"


class Dram(Strict):
    """Off-chip memory shared by all cores. `bandwidth_gbps` is the total over `channels`, each
    serving one transfer at a time at bandwidth/channels. Addresses interleave across channels
    every `interleave_bytes`, so a transfer of n bytes spreads over min(channels,
    ceil(n / interleave_bytes)) channels at once (and waits until that many are free); null:
    each transfer uses one channel (separate ports, as SCALE-Sim's per-operand DRAM ports).
    `energy_pj_per_bit` overrides the per-type figure of `hwsim.energy.DRAM_PJ_PER_BIT`."""

    type: Annotated[DramType, Field(strict=False)]
    bandwidth_gbps: Annotated[float, Field(gt=0, le=100_000)]  # GB/s, 1e9 bytes per second
    latency_ns: Annotated[float, Field(ge=0, le=100_000)]
    channels: Annotated[int, Field(ge=1, le=256)] = 1
    # Assumption: 256-byte channel interleaving, a common memory-controller granularity (a few
    # DRAM bursts per channel before moving to the next).
    interleave_bytes: Annotated[int, Field(ge=64, le=1 << 20)] | None = 256
    energy_pj_per_bit: Annotated[float, Field(gt=0, le=10_000)] | None = None


class Technology(Strict):
    """Which energy table prices the action counts, the process node its on-chip rows are
    scaled to (`hwsim.energy.NODE_SCALING`), and static power. See hwsim.energy."""

    energy_table: str = "horowitz45"
    node_nm: Annotated[int, Field(ge=3, le=250)] = 45
    static_power_mw: Annotated[float, Field(ge=0, le=1e6)] = 0.0

    @field_validator("node_nm")
    @classmethod
    def _known_node(cls, v: int) -> int:
        if v not in NODE_SCALING:
            raise ValueError(f"no scaling data for {v} nm; known nodes: "
                             f"{', '.join(str(n) for n in sorted(NODE_SCALING))} nm")
        return v

    @field_validator("energy_table")
    @classmethod
    def _known_table(cls, v: str) -> str:
        if v not in TABLES:
            raise ValueError(f"unknown energy table {v!r}; known: {', '.join(TABLES.names())}")
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

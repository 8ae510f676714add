"""Energy tables: prices for action counts (the Accelergy split).

The engine counts actions; a table prices them. Actions are named `<component>.<what>`:

| action            | unit          | counted by                                   |
|-------------------|---------------|----------------------------------------------|
| `mac.<dtype>`     | one MAC       | systolic array                               |
| `vector.<dtype>`  | one lane op   | vector unit (transcendentals count several)  |
| `sram.read/write` | one byte      | on-chip buffer accesses                      |
| `dram.read/write` | one byte      | off-chip transfers                           |
| `noc.transfer`    | one byte      | core <-> DRAM-controller interconnect        |

`energy_table(hw)` builds the table for a hardware config (SRAM energy depends on the buffer's
size); `price(actions, table)` returns picojoules per action. Re-pricing a result with another
table needs no re-simulation (`SimResult.repriced`). Every row names its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .config import ConfigError, NPU

HOROWITZ = "Horowitz, 'Computing's Energy Problem', ISSCC 2014, 45 nm 0.9 V"


@dataclass(frozen=True)
class Price:
    pj: float     # picojoules per unit
    unit: str
    source: str


# Horowitz 2014, arithmetic (pJ per operation, 45 nm). A MAC = one multiply + one add.
_H45_MULT = {"float32": 3.7, "float16": 1.1, "int32": 3.1, "int8": 0.2}
_H45_ADD = {"float32": 0.9, "float16": 0.4, "int32": 0.1, "int8": 0.03}
# bfloat16 has no row in Horowitz's table; priced as float16 (same multiplier width class).
_DTYPE_ALIAS = {"bfloat16": "float16", "float64": "float32", "int64": "int32", "int16": "int32",
                "uint8": "int8", "bool": "int8"}
# Horowitz 2014, 64-bit SRAM access by capacity (pJ). The 32 KB and 1 MB points are marked
# "verify" in REFERENCE.md; they are the figures quoted from the same ISSCC slide.
_H45_SRAM_64B = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
# Horowitz 2014: DRAM 1.3-2.6 nJ per 64-bit access; the low end is used.
_H45_DRAM_64B_PJ = 1300.0


def sram_pj_per_byte(size_bytes: int) -> float:
    """Horowitz's three SRAM points interpolated linearly in log(size); extrapolated with the
    nearest segment's slope outside 8 KB..1 MB (a documented approximation)."""
    pts = [(math.log(s), math.log(e)) for s, e in _H45_SRAM_64B]
    x = math.log(max(size_bytes, 1))
    (x0, y0), (x1, y1) = (pts[0], pts[1]) if x <= pts[1][0] else (pts[1], pts[2])
    y = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return math.exp(y) / 8.0


def _horowitz45(hw: NPU) -> dict[str, Price]:
    t: dict[str, Price] = {}
    for dt in ("float32", "float16", "int32", "int8"):
        t[f"mac.{dt}"] = Price(_H45_MULT[dt] + _H45_ADD[dt], "MAC", f"{HOROWITZ}: {dt} mult + add")
        t[f"vector.{dt}"] = Price(_H45_ADD[dt], "op", f"{HOROWITZ}: {dt} add (one lane op)")
    sram = sram_pj_per_byte(hw.sram.size_bytes)
    src = f"{HOROWITZ}: 64-bit SRAM access, log-interpolated to {hw.sram.size_kib:g} KiB, /8"
    t["sram.read"] = Price(sram, "byte", src)
    t["sram.write"] = Price(sram, "byte", src)
    dram = _H45_DRAM_64B_PJ / 8.0
    t["dram.read"] = Price(dram, "byte", f"{HOROWITZ}: DRAM 1.3 nJ per 64-bit access, /8")
    t["dram.write"] = Price(dram, "byte", f"{HOROWITZ}: DRAM 1.3 nJ per 64-bit access, /8")
    # Moving a byte across the chip costs about as much as reading it from a large buffer;
    # Horowitz's slide gives no wire figure, so the 1 MB SRAM access energy stands in.
    t["noc.transfer"] = Price(_H45_SRAM_64B[-1][1] / 8.0, "byte",
                              f"{HOROWITZ}: 1 MB SRAM 64-bit access /8 as a proxy for a chip-crossing byte")
    return t


# Energy tables by name: a builder takes the hardware config and returns action -> Price.
# Target families with their own actions (e.g. reconfiguration) register theirs with
# `register_table` from their own module.
TABLES: dict[str, Callable[[Any], dict[str, Price]]] = {"horowitz45": _horowitz45}


def register_table(name: str) -> Callable[[Callable[[Any], dict[str, Price]]], Callable[[Any], dict[str, Price]]]:
    def add(builder):
        if name in TABLES and TABLES[name] is not builder:
            raise RuntimeError(f"two energy tables named {name!r}")
        TABLES[name] = builder
        return builder
    return add


def energy_table(hw: Any, name: str | None = None) -> dict[str, Price]:
    name = name or hw.technology.energy_table
    if name not in TABLES:
        raise ConfigError(f"unknown energy table {name!r}; known: {', '.join(sorted(TABLES))}")
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

"""The target a result ran on, read back from the hardware record the result carries
(`SimResult.hardware`): its roofs (peak MACs and other ops per cycle, DRAM bandwidth), the
capacity of each memory level, and its silicon area (NPU) or resources (FPGA, CGRA).

Reading the record goes through one function, `target_of`; a result saved without it (older
JSON) gives None, and every figure that needs the target says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hwsim.config import CGRA, FPGA, NPU, HardwareConfig
from hwsim.result import SimResult
from hwsim.technology import BRAM18_BYTES, URAM_BYTES


@dataclass(frozen=True)
class Target:
    config: NPU | FPGA | CGRA

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def clock_hz(self) -> float:
        return self.config.clock_hz

    @property
    def peak_macs_per_cycle(self) -> float:
        return float(self.config.peak_macs_per_cycle)

    @property
    def peak_ops_per_cycle(self) -> float | None:
        """Non-MAC arithmetic per cycle: the NPU's vector lanes, the CGRA's PE ALUs. An FPGA
        builds its ALU lanes from LUTs per configuration, so it has no fixed figure (None)."""
        c = self.config
        if isinstance(c, NPU):
            return float(c.cores * c.vector.lanes * c.vector.ops_per_lane)
        if isinstance(c, CGRA):
            return float(c.grid.pes * c.grid.ops_per_pe)
        return None

    @property
    def dram_bytes_per_cycle(self) -> float:
        return float(self.config.dram_bytes_per_cycle)

    def capacity(self, level: str) -> tuple[int, str] | None:
        """Bytes a memory level holds and what they are, or None (DRAM, or unknown)."""
        return self._capacities.get(level)

    @cached_property
    def _capacities(self) -> dict[str, tuple[int, str]]:
        c = self.config
        out: dict[str, tuple[int, str]] = {}
        if isinstance(c, NPU):
            for core in range(c.cores):
                for name, buf in c.on_chip_buffers.items():
                    out[f"core{core}.{name}"] = (buf.size_bytes, f"{name} buffer of core {core}")
            out["sram"] = (c.cores * c.on_chip_bytes, f"all on-chip buffers of {c.cores} core(s)")
        elif isinstance(c, CGRA):
            out["sram"] = (c.scratchpad.size_bytes, "scratchpad")
        elif isinstance(c, FPGA):
            r = c.resources
            device = int((r.bram18 * BRAM18_BYTES + r.uram * URAM_BYTES) * c.usable_fraction)
            out["sram"] = (device, f"BRAM18 + URAM of the device x usable fraction {c.usable_fraction:g}")
        return out

    def area_rows(self) -> list[tuple[str, str, str]]:
        """(component, amount, source): NPU silicon area per component like the FPGA's resource
        counts; a fabric's device resources."""
        from hwsim.energy import area

        c = self.config
        if isinstance(c, NPU):
            parts = area(c)
            rows = [(name, f"{a.mm2:.3g} mm²", a.source) for name, a in parts.items()]
            rows.append(("total", f"{sum(a.mm2 for a in parts.values()):.3g} mm²",
                         f"array and buffers of {c.cores} core(s) at {c.technology.node_nm} nm"))
            return rows
        if isinstance(c, FPGA):
            return [(k, f"{v:,}", c.sources.get(f"resources.{k}", "config")) for k, v in c.resources.as_dict().items()]
        return [("PEs", f"{c.grid.rows} × {c.grid.cols} = {c.grid.pes:,}", c.sources.get("grid.rows", "config")),
                ("context slots", f"{c.contexts.slots:,}", c.sources.get("contexts.slots", "config")),
                ("scratchpad", f"{c.scratchpad.size_kib:g} KiB in {c.scratchpad.banks} banks",
                 c.sources.get("scratchpad.size_kib", "config"))]

    def config_rows(self) -> list[tuple[str, str, str]]:
        """Every field of the configuration, flattened to dotted paths, with its source."""
        data = self.config.model_dump(mode="json")
        sources = data.pop("sources", {}) or {}
        rows: list[tuple[str, str, str]] = []

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            else:
                rows.append((prefix, _text(value), sources.get(prefix, "")))

        walk("", data)
        return rows


def target_of(result: SimResult) -> Target | None:
    """The target recorded in `result`, or None when the result carries no hardware record."""
    if not result.hardware:
        return None
    return Target(_ADAPTER().validate_python(result.hardware))


def _ADAPTER():
    from pydantic import TypeAdapter

    global _adapter
    if _adapter is None:
        _adapter = TypeAdapter(HardwareConfig)
    return _adapter


_adapter = None


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)

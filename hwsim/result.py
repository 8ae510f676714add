"""`SimResult`: what the engine hands to reports and to design-space exploration.

It keeps *action counts* (per action, op type and scope) apart from their prices, so a result
can be re-priced with another energy table without re-simulating (`repriced`). Everything
converts to plain dicts / JSON and to pandas DataFrames.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .energy import action_price, component_of
from .technology import Price
from .scope import phase_part

if TYPE_CHECKING:  # pandas is imported lazily: the engine does not need it
    import pandas as pd

    from .program import Program

@dataclass(frozen=True)
class ActionRow:
    action: str      # e.g. "mac.float32", "dram.read"
    op_type: str
    scope: str
    count: float


@dataclass(slots=True)
class TaskRecord:
    """What happened to one task (treated as immutable; not frozen so that ~10^5 build fast)."""

    id: int
    name: str
    kind: str
    unit: str
    ready: float     # dependencies satisfied
    start: float     # resources acquired
    end: float
    scope: str
    op_type: str
    # when the task would have been ready had every transfer it waited on been instantaneous
    ready_without_transfers: float = 0.0
    # cycles within [start, end] the task held its unit waiting for data it streams in
    stalled: float = 0.0


# Action components that are not memory levels of the chip: compute and the off-chip side.
_NOT_ON_CHIP = ("mac", "vector", "dram", "noc")


@dataclass
class SimResult:
    program: str
    target: str
    clock_hz: float
    cycles: float
    actions: list[ActionRow]
    timeline: list[TaskRecord]
    busy: dict[str, float]                 # unit -> busy cycles
    peak_memory: dict[str, int]            # level -> bytes
    memory_trace: dict[str, list[tuple[float, int]]]
    static_power_mw: float
    prices: dict[str, Price]               # the energy table used
    metadata: dict[str, str] = field(default_factory=dict)
    not_modelled: list[str] = field(default_factory=list)
    unit_capacity: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, *, program: "Program", cycles: float, actions, timeline, busy, peak_memory,
              memory_trace, static_power_mw: float, energy_table) -> "SimResult":
        return cls(program=program.name, target=program.target, clock_hz=program.clock_hz,
                   cycles=cycles, actions=actions, timeline=timeline, busy=busy,
                   peak_memory=peak_memory, memory_trace=memory_trace,
                   static_power_mw=static_power_mw, prices=dict(energy_table or {}),
                   metadata=dict(program.metadata), not_modelled=list(program.not_modelled),
                   unit_capacity={n: r.capacity for n, r in program.resources.items()})

    # ---- latency -----------------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        return self.cycles / self.clock_hz

    def utilization(self) -> dict[str, float]:
        """Busy fraction of each unit over the whole run (capacity-normalised)."""
        if self.cycles <= 0:
            return {u: 0.0 for u in self.busy}
        return {u: b / (self.cycles * self.unit_capacity.get(u, 1)) for u, b in self.busy.items()}

    # ---- action counts -----------------------------------------------------------------------
    def action_totals(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for r in self.actions:
            out[r.action] += r.count
        return dict(sorted(out.items()))

    @property
    def macs(self) -> float:
        return sum(c for a, c in self.action_totals().items() if a.startswith("mac."))

    def traffic(self) -> dict[str, float]:
        """Bytes read and written per memory level and link: {'dram.read': ..., 'sram.write': ...,
        'ifmap.read': ..., 'noc.transfer': ...}."""
        return {a: c for a, c in self.action_totals().items()
                if a.endswith((".read", ".write", ".transfer"))}

    def on_chip_traffic(self) -> dict[str, float]:
        """Bytes read and written in all on-chip buffers together: {'read': ..., 'write': ...}."""
        out = {"read": 0.0, "write": 0.0}
        for a, c in self.traffic().items():
            comp, _, what = a.partition(".")
            if comp not in _NOT_ON_CHIP and what in out:
                out[what] += c
        return out

    # ---- stalls --------------------------------------------------------------------------------
    def stalls(self) -> dict[str, dict[str, float]]:
        """Per compute unit: cycles busy, and cycles *stalled* — idle while its next task had all
        its compute inputs but still waited on a transfer (data not yet on chip, or results not
        yet stored). Idle time waiting on other units' compute is not a stall.

        For each compute task, in start order on its unit, the stall is the part of
        [unit free, task ready] after the task's non-transfer dependencies were done, plus the
        time it held the unit waiting for data it streams in (`TaskRecord.stalled`); these
        intervals never overlap, so stall + busy <= the run's cycles per unit slot."""
        import heapq

        by_unit: dict[str, list[TaskRecord]] = defaultdict(list)
        for r in self.timeline:
            if r.kind == "compute":
                by_unit[r.unit].append(r)
        out: dict[str, dict[str, float]] = {}
        for unit, recs in sorted(by_unit.items()):
            slots = [0.0] * self.unit_capacity.get(unit, 1)
            stall = busy = 0.0
            for r in sorted(recs, key=lambda r: (r.start, r.id)):
                free_at = heapq.heappop(slots)
                stall += max(0.0, r.ready - max(r.ready_without_transfers, free_at)) + r.stalled
                busy += r.end - r.start - r.stalled
                heapq.heappush(slots, max(free_at, r.end))
            out[unit] = {"busy_cycles": busy, "stall_cycles": stall,
                         "stall_fraction": stall / self.cycles if self.cycles > 0 else 0.0}
        return out

    # ---- energy --------------------------------------------------------------------------------
    def _energy_rows(self) -> list[tuple[ActionRow, float]]:
        return [(r, r.count * action_price(r.action, self.prices).pj) for r in self.actions]

    @property
    def static_energy_pj(self) -> float:
        return self.static_power_mw * 1e-3 * self.seconds * 1e12

    @property
    def energy_pj(self) -> float:
        return sum(e for _, e in self._energy_rows()) + self.static_energy_pj

    def energy_by_component(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for r, e in self._energy_rows():
            out[component_of(r.action)] += e
        out["static"] += self.static_energy_pj
        return dict(out)

    def energy_by_op_type(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for r, e in self._energy_rows():
            out[r.op_type] += e
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def energy_by_phase(self) -> dict[str, float]:
        """Dynamic energy per phase part (inner step / part, query, meta_grad, outer_update);
        static energy is not split."""
        out: dict[str, float] = defaultdict(float)
        for r, e in self._energy_rows():
            out[phase_part(r.scope)] += e
        return dict(out)

    def repriced(self, prices: Mapping[str, Price], static_power_mw: float | None = None) -> "SimResult":
        """The same simulation priced with another energy table (no re-simulation)."""
        d = dict(self.__dict__)
        d["prices"] = dict(prices)
        if static_power_mw is not None:
            d["static_power_mw"] = static_power_mw
        return SimResult(**d)

    # ---- per-phase latency ---------------------------------------------------------------------
    def phase_breakdown(self) -> list[dict[str, Any]]:
        """Per phase part: busy cycles of compute and transfer tasks, the span from its first
        start to its last end, MACs, DRAM bytes and dynamic energy."""
        spans: dict[str, list[float]] = {}
        compute: dict[str, float] = defaultdict(float)
        transfer: dict[str, float] = defaultdict(float)
        for r in self.timeline:
            p = phase_part(r.scope)
            lo_hi = spans.setdefault(p, [r.start, r.end])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], r.start), max(lo_hi[1], r.end)
            (compute if r.kind == "compute" else transfer)[p] += r.end - r.start
        macs: dict[str, float] = defaultdict(float)
        dram: dict[str, float] = defaultdict(float)
        for r in self.actions:
            p = phase_part(r.scope)
            if r.action.startswith("mac."):
                macs[p] += r.count
            elif r.action.startswith("dram."):
                dram[p] += r.count
        energy = self.energy_by_phase()
        rows = []
        for p, (lo, hi) in sorted(spans.items(), key=lambda kv: (kv[1][0], kv[0])):
            rows.append({"phase_part": p, "first_start": lo, "span_cycles": hi - lo,
                         "compute_busy_cycles": compute[p], "transfer_busy_cycles": transfer[p],
                         "macs": macs[p], "dram_bytes": dram[p], "energy_pj": energy.get(p, 0.0)})
        return rows

    # ---- conversions ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        t = self.traffic()
        chip = self.on_chip_traffic()
        return {
            "program": self.program, "target": self.target,
            "cycles": self.cycles, "seconds": self.seconds,
            "macs": self.macs,
            "energy_pj": self.energy_pj,
            "energy_by_component_pj": self.energy_by_component(),
            "dram_read_bytes": t.get("dram.read", 0.0), "dram_write_bytes": t.get("dram.write", 0.0),
            "sram_read_bytes": chip["read"], "sram_write_bytes": chip["write"],
            "peak_memory_bytes": self.peak_memory,
            "utilization": self.utilization(),
            "stall_cycles": {u: s["stall_cycles"] for u, s in self.stalls().items()},
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = self.summary()
        d["phase_breakdown"] = self.phase_breakdown()
        d["energy_by_op_type_pj"] = self.energy_by_op_type()
        return d

    def to_json(self, *, timeline: bool = True) -> str:
        d = self.to_dict()
        if not timeline:
            d.pop("timeline")
            d.pop("memory_trace")
        return json.dumps(d, indent=1, sort_keys=True)

    def actions_frame(self) -> "pd.DataFrame":
        import pandas as pd

        df = pd.DataFrame([asdict(r) for r in self.actions])
        if not df.empty:
            df["phase_part"] = df["scope"].map(phase_part)
            df["energy_pj"] = [r.count * action_price(r.action, self.prices).pj for r in self.actions]
        return df

    def timeline_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.timeline])

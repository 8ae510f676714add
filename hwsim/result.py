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
from .errors import BadInput
from .scope import phase_part
from .technology import DTYPE_ALIAS, DTYPE_BITS, Price

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
    # Filled by `SimResult.build` from the Program (the engine does not need them):
    bytes: int = 0             # transfer / reconfiguration: bytes moved
    macs: float = 0.0          # compute: MACs (all `mac.*` actions)
    ops: float = 0.0           # compute: other arithmetic (vector lane, LUT, PE ops)
    # compute: DRAM bytes of the loads that fed it and of the stores of its results, so each
    # op has an arithmetic intensity (the roofline); a transfer shared by several tasks is
    # split evenly between them
    dram_bytes: float = 0.0


class ResultFormatError(BadInput):
    """A file that is not a SimResult written by `SimResult.to_json`."""


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
    # The hardware configuration the run was lowered for, as JSON data (`model_dump(mode=
    # "json")`), so a saved result is a complete record and can be re-priced or reported on
    # its own. Empty when whoever built the result did not attach it.
    hardware: dict[str, Any] = field(default_factory=dict)
    # On-chip bytes the schedule *wanted* resident per level, unclipped by capacity: a step
    # trace like `memory_trace` (same level names, (cycle, bytes) sorted by cycle, each value
    # holding until the next point). `memory_trace` never exceeds a buffer; where demand does,
    # the difference was spilled or streamed. Empty when the lowering does not report demand.
    memory_demand: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, *, program: "Program", cycles: float, actions, timeline, busy, peak_memory,
              memory_trace, static_power_mw: float, energy_table) -> "SimResult":
        return cls(program=program.name, target=program.target, clock_hz=program.clock_hz,
                   cycles=cycles, actions=actions, timeline=_with_work(program, timeline), busy=busy,
                   peak_memory=peak_memory, memory_trace=memory_trace,
                   static_power_mw=static_power_mw, prices=dict(energy_table or {}),
                   metadata=dict(program.metadata), not_modelled=list(program.not_modelled),
                   unit_capacity={n: r.capacity for n, r in program.resources.items()},
                   memory_demand=_demand_over_time(program, timeline))

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
        """Per phase part: the time its own tasks were running (`span_cycles`: the union of
        their [start, end] intervals, so a part whose tasks sit at both ends of the run does not
        claim the middle), its first start and last end, busy cycles of its compute and
        transfer tasks, MACs, DRAM bytes and dynamic energy."""
        intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
        compute: dict[str, float] = defaultdict(float)
        transfer: dict[str, float] = defaultdict(float)
        for r in self.timeline:
            p = phase_part(r.scope)
            intervals[p].append((r.start, r.end))
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
        for p, spans in intervals.items():
            merged = merge_intervals(spans)
            rows.append({"phase_part": p, "first_start": merged[0][0], "last_end": merged[-1][1],
                         "span_cycles": sum(hi - lo for lo, hi in merged),
                         "compute_busy_cycles": compute[p], "transfer_busy_cycles": transfer[p],
                         "macs": macs[p], "dram_bytes": dram[p], "energy_pj": energy.get(p, 0.0)})
        rows.sort(key=lambda row: (row["first_start"], row["phase_part"]))
        return rows

    # ---- memory pressure -----------------------------------------------------------------------
    def peak_memory_demand(self) -> dict[str, int]:
        """Per level, the most on-chip bytes the schedule wanted at once (see `memory_demand`)."""
        return {lvl: max((b for _, b in trace), default=0) for lvl, trace in self.memory_demand.items()}

    def spill_traffic(self) -> dict[str, float]:
        """Bytes and count of the transfers that evicted live data from on chip: the NPU
        lowering's `spill <tensor>` (a live tensor pushed to DRAM to make room) and `writeback
        <tensor>` (a dirty tensor stored on eviction) tasks."""
        spilled = [r for r in self.timeline if r.kind == "transfer" and r.name.startswith(SPILL_PREFIXES)]
        return {"bytes": float(sum(r.bytes for r in spilled)), "transfers": float(len(spilled))}

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
            "peak_memory_demand_bytes": self.peak_memory_demand(),
            "spill_bytes": self.spill_traffic()["bytes"],
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
        """The result as JSON. Without the timeline the memory traces are kept decimated to at
        most `TRACE_POINTS` points per level, peaks kept (`decimate`), so a compact result still
        shows its footprint over time and its true peaks."""
        d = self.to_dict()
        if not timeline:
            d.pop("timeline")
            d["memory_trace"] = {k: decimate(v, TRACE_POINTS) for k, v in self.memory_trace.items()}
            d["memory_demand"] = {k: decimate(v, TRACE_POINTS) for k, v in self.memory_demand.items()}
            d["timeline_omitted"] = True
        return json.dumps(d, indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "result") -> "SimResult":
        """A result back from `to_dict`/`to_json` data; the derived keys (summary, phase
        breakdown, ...) are recomputed, not read. ResultFormatError names what is missing."""
        if not isinstance(d, Mapping):
            raise ResultFormatError(f"{where}: not a hwsim result (expected a JSON object)")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ResultFormatError(f"{where}: not a hwsim result (missing {', '.join(missing)}); "
                                    "expected the JSON of `hwsim simulate --json`")
        try:
            return cls(
                program=str(d["program"]), target=str(d["target"]), clock_hz=float(d["clock_hz"]),
                cycles=float(d["cycles"]),
                actions=[ActionRow(str(a["action"]), str(a["op_type"]), str(a["scope"]), float(a["count"]))
                         for a in d["actions"]],
                timeline=[TaskRecord(**{k: v for k, v in t.items() if k in _RECORD_FIELDS})
                          for t in d.get("timeline", [])],
                busy={str(k): float(v) for k, v in d["busy"].items()},
                peak_memory={str(k): int(v) for k, v in d["peak_memory"].items()},
                memory_trace=_trace(d.get("memory_trace", {})),
                static_power_mw=float(d["static_power_mw"]),
                prices={str(k): Price(float(p["pj"]), str(p["unit"]), str(p["source"]))
                        for k, p in d["prices"].items()},
                metadata={str(k): str(v) for k, v in d.get("metadata", {}).items()},
                not_modelled=[str(n) for n in d.get("not_modelled", [])],
                unit_capacity={str(k): int(v) for k, v in d.get("unit_capacity", {}).items()},
                hardware=dict(d.get("hardware") or {}),
                memory_demand=_trace(d.get("memory_demand", {})),
            )
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise ResultFormatError(f"{where}: malformed hwsim result ({e.__class__.__name__}: "
                                    f"{' '.join(str(e).split())[:200]})") from None

    @classmethod
    def from_json(cls, text: str, where: str = "result") -> "SimResult":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ResultFormatError(f"{where}: not JSON ({e})") from None
        return cls.from_dict(data, where)

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


# Names of the NPU lowering's transfers that evict live data (see `SimResult.spill_traffic`).
SPILL_PREFIXES = ("spill ", "writeback ")
# Points per level kept in a result saved without its timeline.
TRACE_POINTS = 512

_REQUIRED = ("program", "target", "clock_hz", "cycles", "actions", "busy", "peak_memory",
             "static_power_mw", "prices")
_RECORD_FIELDS = frozenset(TaskRecord.__dataclass_fields__)
# Actions that count arithmetic are `<unit>.<dtype>`; the others count bytes or events.
_DTYPES = frozenset(DTYPE_BITS) | frozenset(DTYPE_ALIAS)


def _trace(data: Mapping[str, Any]) -> dict[str, list[tuple[float, int]]]:
    return {str(k): [(float(t), int(b)) for t, b in v] for k, v in data.items()}


def merge_intervals(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, disjoint intervals covering the same time as `spans`."""
    out: list[list[float]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def decimate(trace: list[tuple[float, int]], max_points: int) -> list[tuple[float, int]]:
    """A step trace cut to about `max_points` points that keeps its shape where it matters:
    the run is split into equal time buckets and each keeps its first point, its highest and its
    last (in time order), so every peak and the value at each bucket's end survive."""
    if len(trace) <= max_points:
        return list(trace)
    buckets = max(1, max_points // 3)
    t0, t1 = trace[0][0], trace[-1][0]
    width = (t1 - t0) / buckets or 1.0
    out: list[tuple[float, int]] = []
    start = 0
    n = len(trace)
    while start < n:
        b = min(buckets - 1, int((trace[start][0] - t0) / width))
        end = start
        while end + 1 < n and min(buckets - 1, int((trace[end + 1][0] - t0) / width)) == b:
            end += 1
        top = max(range(start, end + 1), key=lambda i: (trace[i][1], -i))
        for i in sorted({start, top, end}):
            out.append(trace[i])
        start = end + 1
    return out


def _with_work(program: "Program", timeline: list[TaskRecord]) -> list[TaskRecord]:
    """The engine's records with each task's work from the Program: bytes moved, MACs, other
    arithmetic, and for a compute task the DRAM bytes that fed it and stored its results."""
    # TaskKind is a str Enum; compared by value, since result and program are sibling layers
    tasks = program.tasks
    fed = [0.0] * len(tasks)
    readers: dict[int, list[int]] = defaultdict(list)   # load -> compute tasks it feeds
    writers: dict[int, list[int]] = defaultdict(list)   # store -> compute tasks it stores
    for t in tasks:
        if t.kind == "compute":
            for d in {*t.deps, *t.streams}:
                if tasks[d].kind == "transfer" and tasks[d].actions.get("dram.read"):
                    readers[d].append(t.id)
        elif t.kind == "transfer" and t.actions.get("dram.write"):
            for d in t.deps:
                if tasks[d].kind == "compute":
                    writers[t.id].append(d)
    for links, action in ((readers, "dram.read"), (writers, "dram.write")):
        for tid, users in links.items():
            share = tasks[tid].actions[action] / len(users)
            for u in users:
                fed[u] += share
    out = []
    for r in timeline:
        t = tasks[r.id]
        macs = ops = 0.0
        for action, count in t.actions.items():
            unit, _, what = action.partition(".")
            if unit == "mac":
                macs += count
            elif what in _DTYPES:
                ops += count
        # filled in place: the engine's records are this result's (no second copy of ~10^5)
        r.bytes, r.macs, r.ops, r.dram_bytes = t.bytes, macs, ops, fed[r.id]
        out.append(r)
    return out


def _demand_over_time(program: "Program", timeline: list[TaskRecord]) -> dict[str, list[tuple[float, int]]]:
    """`Program.memory_demand` ({level: [(task id, bytes wanted from that task's start on)]}) on
    the simulated clock: a step trace per level, one point per instant (the last one given)."""
    out: dict[str, list[tuple[float, int]]] = {}
    for level, points in sorted(program.memory_demand.items()):
        timed = sorted(((timeline[tid].start, i, int(b)) for i, (tid, b) in enumerate(points)))
        trace: list[tuple[float, int]] = []
        for t, _, b in timed:
            if trace and trace[-1][0] == t:
                trace[-1] = (t, b)
            else:
                trace.append((t, b))
        out[level] = trace
    return out

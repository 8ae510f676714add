"""What a report shows, computed from a SimResult (and the target it records): figures that
mean what they say.

* MAC efficiency — useful MACs over the MACs the target could have done in the run — beside
  busy time (a unit busy 97 % of the run may do 0.01 % of its peak MACs).
* Memory pressure per level — the peak the buffer held, the peak the schedule wanted
  (unclipped demand, where the lowering reports it), the capacity, and the spill traffic.
* Where time goes per unit — compute, transfer, reconfiguration, stall, idle.
* Phase bands — when each part of a meta-learning step ran, from its own compute tasks.
* Roofline points — per op type and phase part, arithmetic intensity against DRAM and the
  throughput attained while its tasks ran.

Reads results only; every function returns plain data for tables, figures and templates.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass

from hwsim.energy import component_of
from hwsim.result import SimResult, merge_intervals
from hwsim.scope import Scope

from .target import Target, target_of

# Arithmetic counted as 2 ops per MAC (a multiply and an add), as rooflines usually do.
OPS_PER_MAC = 2


# ---- efficiency ---------------------------------------------------------------------------------

def mac_efficiency(result: SimResult, target: Target | None = None) -> float | None:
    """Useful MACs / (peak MACs per cycle x cycles of the run); None without a target."""
    target = target or target_of(result)
    if target is None or result.cycles <= 0 or target.peak_macs_per_cycle <= 0:
        return None
    return result.macs / (target.peak_macs_per_cycle * result.cycles)


def compute_busy(result: SimResult) -> float | None:
    """Busy fraction of the units that do the MACs (systolic arrays, the fabric, the grid),
    averaged over them; None when the result has none."""
    util = result.utilization()
    units = [u for u in util if u.endswith(".array") or u in ("fabric", "grid")]
    return sum(util[u] for u in units) / len(units) if units else None


# ---- memory -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryLevel:
    level: str
    peak: int                      # most bytes held at once (never above capacity on chip)
    demand: int | None             # most bytes the schedule wanted at once; None: not reported
    capacity: int | None           # None: DRAM, or not known for this target
    capacity_label: str

    @property
    def on_chip(self) -> bool:
        return self.level != "dram"


def memory_levels(result: SimResult, target: Target | None = None) -> list[MemoryLevel]:
    target = target or target_of(result)
    demand = result.peak_memory_demand()
    rows = []
    for level, peak in sorted(result.peak_memory.items(), key=lambda kv: (kv[0] == "dram", kv[0])):
        cap = target.capacity(level) if target else None
        rows.append(MemoryLevel(level, peak, demand.get(level), cap[0] if cap else None,
                                cap[1] if cap else ""))
    return rows


def main_level(result: SimResult) -> str | None:
    """The on-chip level that sums all buffers ('sram'), else the first on-chip level."""
    levels = [lvl for lvl in result.peak_memory if lvl != "dram"]
    if "sram" in levels:
        return "sram"
    return levels[0] if levels else None


# ---- phases -------------------------------------------------------------------------------------

def phase_group(scope: str) -> str:
    """The band a task belongs to: 'inner step i' for every part of inner step i, else the part
    (query, meta_grad, meta_reduce, outer_update, forward, reconfig, ...)."""
    s = Scope.parse(scope)
    return f"inner step {s.inner_step}" if s.inner_step is not None else s.part


def phase_bands(result: SimResult, *, min_gap: float | None = None) -> list[tuple[str, float, float]]:
    """(group, start, end) intervals when each phase group's compute tasks ran. Gaps shorter
    than `min_gap` (default 0.2 % of the run) are closed, so a meta-batch of many tasks gives
    a few bands, not thousands."""
    gap = result.cycles * 0.002 if min_gap is None else min_gap
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in result.timeline:
        if r.kind in ("compute", "reconfig") and r.end > r.start:
            spans[phase_group(r.scope)].append((r.start, r.end))
    out = []
    for group, intervals in spans.items():
        closed: list[list[float]] = []
        for lo, hi in merge_intervals(intervals):
            if closed and lo - closed[-1][1] <= gap:
                closed[-1][1] = hi
            else:
                closed.append([lo, hi])
        out += [(group, lo, hi) for lo, hi in closed]
    return sorted(out, key=lambda b: (b[1], b[0]))


def peak_by_phase(result: SimResult, trace: list[tuple[float, int]]) -> dict[str, int]:
    """Per phase part, the highest value of `trace` (a step trace) while its own tasks ran."""
    if not trace:
        return {}
    times = [t for t, _ in trace]
    values = [b for _, b in trace]
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in result.timeline:
        spans[Scope.parse(r.scope).phase_part].append((r.start, r.end))
    out = {}
    for part, intervals in spans.items():
        best = 0
        for lo, hi in merge_intervals(intervals):
            i = max(0, bisect.bisect_right(times, lo) - 1)      # the value holding at `lo`
            j = bisect.bisect_left(times, hi)                   # points strictly before `hi`
            best = max(best, max(values[i:max(j, i + 1)]))
        out[part] = best
    return out


# ---- time per unit ------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitTime:
    unit: str
    slots: int
    compute: float
    transfer: float
    reconfig: float
    stall: float
    idle: float

    @property
    def total(self) -> float:
        return self.compute + self.transfer + self.reconfig + self.stall + self.idle


def time_by_unit(result: SimResult) -> list[UnitTime]:
    """Per unit, its slot-cycles (cycles x slots) split into compute, transfer, reconfiguration,
    stall (waiting for data, `SimResult.stalls`) and idle."""
    kind_busy: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in result.timeline:
        kind_busy[r.unit][r.kind] += r.end - r.start - r.stalled
    stalls = result.stalls()
    out = []
    for unit, busy in sorted(result.busy.items()):
        slots = result.unit_capacity.get(unit, 1)
        split = kind_busy.get(unit) or {"compute": busy}
        stall = stalls.get(unit, {}).get("stall_cycles", 0.0)
        c, t, g = split.get("compute", 0.0), split.get("transfer", 0.0), split.get("reconfig", 0.0)
        idle = max(0.0, result.cycles * slots - c - t - g - stall)
        out.append(UnitTime(unit, slots, c, t, g, stall, idle))
    return out


# ---- roofline -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RooflinePoint:
    label: str                    # "MatMul · inner0/backward"
    op_type: str
    phase_part: str
    ops: float                    # 2 x MACs + other arithmetic
    dram_bytes: float
    cycles: float                 # busy cycles of its tasks (stalls excluded)
    tasks: int

    @property
    def intensity(self) -> float | None:
        """ops per DRAM byte; None when its data never left the chip."""
        return self.ops / self.dram_bytes if self.dram_bytes > 0 else None

    def ops_per_second(self, clock_hz: float) -> float:
        return self.ops / self.cycles * clock_hz if self.cycles > 0 else 0.0


def roofline_points(result: SimResult) -> list[RooflinePoint]:
    """One point per (op type, phase part) of compute tasks that did arithmetic, heaviest
    first; a timeline of 100k tasks still gives at most a few hundred points."""
    agg: dict[tuple[str, str], list[float]] = {}
    for r in result.timeline:
        if r.kind != "compute" or not (r.macs or r.ops):
            continue
        key = (r.op_type, Scope.parse(r.scope).phase_part)
        a = agg.setdefault(key, [0.0, 0.0, 0.0, 0])
        a[0] += OPS_PER_MAC * r.macs + r.ops
        a[1] += r.dram_bytes
        a[2] += r.end - r.start - r.stalled
        a[3] += 1
    pts = [RooflinePoint(f"{op} · {part}", op, part, ops, dram, cyc, int(n))
           for (op, part), (ops, dram, cyc, n) in agg.items()]
    return sorted(pts, key=lambda p: (-p.ops, p.label))


# ---- energy and traffic -------------------------------------------------------------------------

def energy_matrix(result: SimResult, by: str) -> dict[str, dict[str, float]]:
    """Dynamic energy (pJ) per row and component; rows are phase parts (`by="phase"`) or op
    types (`by="op_type"`)."""
    from hwsim.energy import action_price

    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in result.actions:
        row = Scope.parse(r.scope).phase_part if by == "phase" else r.op_type
        out[row][component_of(r.action)] += r.count * action_price(r.action, result.prices).pj
    return {k: dict(v) for k, v in out.items()}


def traffic_by_level(result: SimResult) -> dict[str, dict[str, float]]:
    """Bytes read and written (or moved, for links) per memory level and link."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for action, count in result.traffic().items():
        level, _, what = action.partition(".")
        out[level][what] = out[level].get(what, 0.0) + count
    return dict(out)


def top(rows: dict[str, float], n: int, rest: str = "other ops") -> dict[str, float]:
    """The `n` largest entries and the sum of the others under `rest`."""
    items = sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))
    head = dict(items[:n])
    tail = sum(v for _, v in items[n:])
    if tail:
        head[rest] = head.get(rest, 0.0) + tail
    return head


def has_timeline(result: SimResult) -> bool:
    return bool(result.timeline)


__all__ = ["mac_efficiency", "compute_busy", "memory_levels", "MemoryLevel", "phase_bands",
           "phase_group", "peak_by_phase", "time_by_unit", "UnitTime", "roofline_points",
           "RooflinePoint", "energy_matrix", "traffic_by_level", "top", "main_level"]

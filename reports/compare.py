"""Comparing several runs (algorithm x phase x hardware) phase by phase: a DataFrame, CSV and a
Markdown report. Reads SimResults only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwsim.result import SimResult

from .cells import md
from .tables import render, si

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Run:
    """One simulated run and the labels it is compared by."""

    algorithm: str
    phase: str
    result: SimResult
    labels: dict[str, str] = field(default_factory=dict)


def totals_frame(runs: list[Run]) -> "pd.DataFrame":
    import pandas as pd

    from .metrics import mac_efficiency
    from .target import target_of

    rows = []
    for run in runs:
        r, s = run.result, run.result.summary()
        target = target_of(r)
        cap = target.capacity("sram") if target else None
        rows.append({
            "algorithm": run.algorithm, "phase": run.phase, "target": r.target, **run.labels,
            "cycles": r.cycles, "seconds": r.seconds, "macs": r.macs, "energy_pj": r.energy_pj,
            **{f"energy_{k}_pj": v for k, v in sorted(s["energy_by_component_pj"].items())},
            "dram_read_bytes": s["dram_read_bytes"], "dram_write_bytes": s["dram_write_bytes"],
            "sram_read_bytes": s["sram_read_bytes"], "sram_write_bytes": s["sram_write_bytes"],
            "peak_sram_bytes": r.peak_memory.get("sram", 0),
            # held memory is capped by the buffer; demand is what the schedule wanted
            "peak_sram_demand_bytes": r.peak_memory_demand().get("sram"),
            "sram_capacity_bytes": cap[0] if cap else None,
            "spill_bytes": s["spill_bytes"],
            "mac_efficiency": mac_efficiency(r, target),
        })
    return pd.DataFrame(rows)


def phases_frame(runs: list[Run]) -> "pd.DataFrame":
    """One row per (run, phase part): the phase-by-phase comparison."""
    import pandas as pd

    rows = []
    for run in runs:
        for p in run.result.phase_breakdown():
            rows.append({"algorithm": run.algorithm, "phase": run.phase, "target": run.result.target,
                         **run.labels, **p})
    return pd.DataFrame(rows)


def comparison_markdown(runs: list[Run], *, title: str, notes: list[str] | None = None,
                        accuracy: list[dict] | None = None) -> str:
    """The comparison as Markdown; every name from an input is escaped (`reports.cells.md`).
    `accuracy`: points of `reports.accuracy.join`, shown in their own section."""
    out = [f"# {md(title)}", ""]
    if notes:
        out += [f"- {md(n)}" for n in notes] + [""]
    out += ["## Totals", ""]
    rows = [(run.algorithm, run.phase, run.result.target, f"{run.result.cycles:,.0f}",
             si(run.result.seconds, "s"), f"{run.result.macs:,.0f}", si(run.result.energy_pj * 1e-12, "J"),
             si(sum(v for k, v in run.result.traffic().items() if k.startswith("dram.")), "B"),
             _on_chip(run.result), si(run.result.spill_traffic()["bytes"], "B"))
            for run in runs]
    out.append(render(("algorithm", "phase", "target", "cycles", "latency", "MACs", "energy",
                       "DRAM traffic", "peak on chip (demand) / capacity", "spilled"), rows, markdown=True))
    out += ["", "Peak on chip is what the buffers held, never more than their capacity; a schedule "
            "that wanted more spilled it to DRAM (the 'spilled' column). Demand, where the target's "
            "lowering reports it, is the unclipped footprint the schedule wanted."]
    out += _ratio_section("Algorithms against " + runs[0].algorithm if runs else "", runs,
                          key=lambda r: (r.phase, r.result.target), name=lambda r: r.algorithm)
    out += _ratio_section("Targets against " + runs[0].result.target if runs else "", runs,
                          key=lambda r: (r.algorithm, r.phase), name=lambda r: r.result.target)
    if accuracy:
        from .accuracy import accuracy_markdown

        out += accuracy_markdown(accuracy, accuracy[0]["metric"])
    out += ["", "## Phase by phase", ""]
    for run in runs:
        out += [f"### {md(run.algorithm)} · {md(run.phase)} · {md(run.result.target)}", ""]
        out.append(render(("phase part", "span cycles", "compute cycles", "MACs", "DRAM", "energy"),
                          [(p["phase_part"], f"{p['span_cycles']:,.0f}", f"{p['compute_busy_cycles']:,.0f}",
                            f"{p['macs']:,.0f}", si(p["dram_bytes"], "B"), si(p["energy_pj"] * 1e-12, "J"))
                           for p in run.result.phase_breakdown()], markdown=True))
        out.append("")
    if runs and runs[0].result.not_modelled:
        out += ["## Not modelled", ""] + [f"- {md(n)}" for n in runs[0].result.not_modelled] + [""]
    return "\n".join(out)


def _on_chip(r: SimResult) -> str:
    from .target import target_of

    held = si(r.peak_memory.get("sram", 0), "B")
    demand = r.peak_memory_demand().get("sram")
    target = target_of(r)
    cap = target.capacity("sram") if target else None
    return (held + (f" ({si(demand, 'B')})" if demand is not None else " (n/a)")
            + (f" / {si(cap[0], 'B')}" if cap else ""))


def _ratio_section(title: str, runs: list[Run], key, name) -> list[str]:
    """Each run against the first run with the same key (e.g. FOMAML / MAML per phase and
    target, or zcu102-like / edge-npu per algorithm and phase). Empty when nothing to compare."""
    if not runs:
        return []
    base_name = name(runs[0])
    ref = {key(r): r for r in runs if name(r) == base_name}
    rows = []
    for run in runs:
        b = ref.get(key(run))
        if name(run) == base_name or b is None or b.result.cycles == 0:
            continue
        rows.append((f"{name(run)} / {base_name}", *key(run),
                     f"{run.result.cycles / b.result.cycles:.3f}",
                     f"{run.result.seconds / b.result.seconds:.3f}",
                     f"{run.result.energy_pj / b.result.energy_pj:.3f}",
                     f"{run.result.macs / b.result.macs:.3f}" if b.result.macs else "-"))
    if not rows:
        return []
    key_names = ("phase", "target") if key(runs[0])[1] == runs[0].result.target else ("algorithm", "phase")
    return ["", f"## {md(title)}", "", render(("ratio", *key_names, "cycles", "latency", "energy", "MACs"),
                                          rows, markdown=True)]


@dataclass(frozen=True)
class Cell:
    run: Run
    vs_algorithm: float | None      # energy against the first algorithm, same phase and target
    vs_target: float | None         # energy against the first target, same algorithm and phase
    latency_vs_algorithm: float | None
    latency_vs_target: float | None


def matrix(runs: list[Run]) -> dict[str, dict[str, dict[str, Cell]]]:
    """{phase: {algorithm: {target: Cell}}}: the algorithms x targets matrix of each phase with
    each cell's energy and latency ratios to the first algorithm (same target) and to the first
    target (same algorithm)."""
    if not runs:
        return {}
    first_algo = runs[0].algorithm
    first_target = runs[0].result.target
    by = {(r.phase, r.algorithm, r.result.target): r for r in runs}

    def ratio(a: float, b: float | None) -> float | None:
        return a / b if b else None

    out: dict[str, dict[str, dict[str, Cell]]] = {}
    for r in runs:
        base_a = by.get((r.phase, first_algo, r.result.target))
        base_t = by.get((r.phase, r.algorithm, first_target))
        out.setdefault(r.phase, {}).setdefault(r.algorithm, {})[r.result.target] = Cell(
            r,
            ratio(r.result.energy_pj, base_a.result.energy_pj if base_a else None),
            ratio(r.result.energy_pj, base_t.result.energy_pj if base_t else None),
            ratio(r.result.seconds, base_a.result.seconds if base_a else None),
            ratio(r.result.seconds, base_t.result.seconds if base_t else None))
    return out

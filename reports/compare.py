"""Comparing several runs (algorithm x phase x hardware) phase by phase: a DataFrame, CSV and a
Markdown report. Reads SimResults only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwsim.result import SimResult

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

    rows = []
    for run in runs:
        r, s = run.result, run.result.summary()
        rows.append({
            "algorithm": run.algorithm, "phase": run.phase, "target": r.target, **run.labels,
            "cycles": r.cycles, "seconds": r.seconds, "macs": r.macs, "energy_pj": r.energy_pj,
            **{f"energy_{k}_pj": v for k, v in sorted(s["energy_by_component_pj"].items())},
            "dram_read_bytes": s["dram_read_bytes"], "dram_write_bytes": s["dram_write_bytes"],
            "sram_read_bytes": s["sram_read_bytes"], "sram_write_bytes": s["sram_write_bytes"],
            "peak_sram_bytes": r.peak_memory.get("sram", 0),
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


def comparison_markdown(runs: list[Run], *, title: str, notes: list[str] | None = None) -> str:
    out = [f"# {title}", ""]
    if notes:
        out += [f"- {n}" for n in notes] + [""]
    out += ["## Totals", ""]
    rows = [(run.algorithm, run.phase, run.result.target, f"{run.result.cycles:,.0f}",
             si(run.result.seconds, "s"), f"{run.result.macs:,.0f}", si(run.result.energy_pj * 1e-12, "J"),
             si(sum(v for k, v in run.result.traffic().items() if k.startswith("dram.")), "B"),
             si(run.result.peak_memory.get("sram", 0), "B"))
            for run in runs]
    out.append(render(("algorithm", "phase", "target", "cycles", "latency", "MACs", "energy",
                       "DRAM traffic", "peak SRAM"), rows, markdown=True))
    # ratio of each algorithm to the first one, per phase (e.g. FOMAML / MAML)
    base = runs[0].algorithm if runs else None
    by_key = {(r.algorithm, r.phase, r.result.target): r for r in runs}
    ratio_rows = []
    for run in runs:
        ref = by_key.get((base, run.phase, run.result.target))
        if run.algorithm == base or ref is None or ref.result.cycles == 0:
            continue
        ratio_rows.append((f"{run.algorithm} / {base}", run.phase, f"{run.result.cycles / ref.result.cycles:.3f}",
                           f"{run.result.energy_pj / ref.result.energy_pj:.3f}",
                           f"{run.result.macs / ref.result.macs:.3f}" if ref.result.macs else "-"))
    if ratio_rows:
        out += ["", "## Ratios", "", render(("ratio", "phase", "latency", "energy", "MACs"), ratio_rows,
                                             markdown=True)]
    out += ["", "## Phase by phase", ""]
    for run in runs:
        out += [f"### {run.algorithm} · {run.phase} · {run.result.target}", ""]
        out.append(render(("phase part", "span cycles", "compute cycles", "MACs", "DRAM", "energy"),
                          [(p["phase_part"], f"{p['span_cycles']:,.0f}", f"{p['compute_busy_cycles']:,.0f}",
                            f"{p['macs']:,.0f}", si(p["dram_bytes"], "B"), si(p["energy_pj"] * 1e-12, "J"))
                           for p in run.result.phase_breakdown()], markdown=True))
        out.append("")
    if runs and runs[0].result.not_modelled:
        out += ["## Not modelled", ""] + [f"- {n}" for n in runs[0].result.not_modelled] + [""]
    return "\n".join(out)

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
    out += _ratio_section("Algorithms against " + runs[0].algorithm if runs else "", runs,
                          key=lambda r: (r.phase, r.result.target), name=lambda r: r.algorithm)
    out += _ratio_section("Targets against " + runs[0].result.target if runs else "", runs,
                          key=lambda r: (r.algorithm, r.phase), name=lambda r: r.result.target)
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
    return ["", f"## {title}", "", render(("ratio", *key_names, "cycles", "latency", "energy", "MACs"),
                                          rows, markdown=True)]

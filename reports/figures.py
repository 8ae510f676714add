"""The plots of the HTML reports, drawn with matplotlib as inline SVG (no script, nothing
fetched), each returned as a `Plot`: an id, a title, the SVG markup and a caption.

Figures are built on `matplotlib.figure.Figure` objects (no pyplot state), with a fixed SVG
hash salt per plot, so the same result gives the same bytes and two plots on one page never
share an element id. Text stays text (`svg.fonttype: none`): smaller pages, searchable labels.
Long series are decimated before drawing (`hwsim.result.decimate`), so a page stays small for
a meta-training graph of 100k tasks.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from hwsim.result import SimResult, decimate

from . import metrics
from .target import Target

# Points per memory trace drawn (peaks kept).
TRACE_POINTS = 1500
# Op types shown one by one in the energy-by-op-type plot; the rest are summed.
TOP_OPS = 12

COMPONENT_ORDER = ("mac", "vector", "lut", "pe", "sram", "ifmap", "filter", "ofmap", "noc", "dram",
                   "reconfig", "context", "static")


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    svg: str
    caption: str


def _render(fig: Figure, plot_id: str, title: str, caption: str) -> Plot:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"hwsim-{plot_id}", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # matplotlib's RDF block (creator, format) adds nothing to a page
    lo, hi = svg.find("<metadata>"), svg.find("</metadata>")
    if 0 <= lo < hi:
        svg = svg[:lo] + svg[hi + len("</metadata>"):]
    return Plot(plot_id, title, svg, caption)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _colors(names: Sequence[str], cmap: str = "tab20") -> dict[str, tuple]:
    palette = matplotlib.colormaps[cmap]
    n = palette.N if hasattr(palette, "N") else 20
    return {name: palette(i % n) for i, name in enumerate(names)}


def _components(rows: dict[str, dict[str, float]]) -> list[str]:
    seen = {c for row in rows.values() for c in row}
    return [c for c in COMPONENT_ORDER if c in seen] + sorted(seen - set(COMPONENT_ORDER))


def _si_axis(value: float, unit: str) -> str:
    from .tables import si

    return si(value, unit)


def _stacked_barh(ax, rows: dict[str, dict[str, float]], scale: float, unit: str) -> None:
    comps = _components(rows)
    colors = _colors(comps)
    labels = list(rows)
    left = [0.0] * len(labels)
    for comp in comps:
        widths = [rows[lab].get(comp, 0.0) * scale for lab in labels]
        if any(widths):
            ax.barh(labels, widths, left=left, color=colors[comp], label=comp)
            left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncols=2)


# ---- one run ------------------------------------------------------------------------------------

def energy_by_phase(result: SimResult) -> Plot:
    rows = metrics.energy_matrix(result, "phase")
    order = [p["phase_part"] for p in result.phase_breakdown()] if result.timeline else []
    rows = {k: rows[k] for k in [*order, *sorted(set(rows) - set(order))] if k in rows}
    fig = _figure(7.5, 0.9 + 0.32 * max(1, len(rows)))
    ax = fig.subplots()
    _stacked_barh(ax, rows, 1e-6, "dynamic energy (µJ)")
    ax.set_title("Energy by phase part, per component", fontsize=10)
    return _render(fig, "energy-phase", "Energy by phase part",
                   "Dynamic energy of each part of the step (inner step i forward / backward / update, "
                   "query, meta-gradient, outer update), split by the component that spent it. Static "
                   "energy is not split by part; it is in the totals table.")


def energy_by_op_type(result: SimResult) -> Plot:
    rows = metrics.energy_matrix(result, "op_type")
    totals = metrics.top({k: sum(v.values()) for k, v in rows.items()}, TOP_OPS)
    merged: dict[str, dict[str, float]] = {}
    for k, v in rows.items():
        key = k if k in totals else "other ops"
        for comp, e in v.items():
            merged.setdefault(key, {}).setdefault(comp, 0.0)
            merged[key][comp] += e
    merged = {k: merged[k] for k in totals}
    fig = _figure(7.5, 0.9 + 0.32 * max(1, len(merged)))
    ax = fig.subplots()
    _stacked_barh(ax, merged, 1e-6, "dynamic energy (µJ)")
    ax.set_title(f"Energy by op type (top {TOP_OPS}), per component", fontsize=10)
    return _render(fig, "energy-op", "Energy by op type",
                   "Dynamic energy per ONNX op type; 'dma' is the data moved between DRAM and the "
                   "on-chip buffers for all ops, 'reconfig' the loading of fabric configurations.")


def traffic(result: SimResult) -> Plot:
    rows = metrics.traffic_by_level(result)
    levels = sorted(rows, key=lambda lvl: (lvl == "dram", lvl))
    kinds = ["read", "write", "transfer"]
    fig = _figure(7.5, 0.9 + 0.36 * max(1, len(levels)))
    ax = fig.subplots()
    height = 0.8 / len(kinds)
    colors = _colors(kinds, "Set2")
    for i, kind in enumerate(kinds):
        values = [rows[lvl].get(kind, 0.0) for lvl in levels]
        if any(values):
            ax.barh([j + i * height for j in range(len(levels))], values, height=height,
                    color=colors[kind], label=kind)
    ax.set_yticks([j + height for j in range(len(levels))], levels)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("bytes (symmetric log scale)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Traffic by memory level and link", fontsize=10)
    return _render(fig, "traffic", "Traffic by level",
                   "Bytes read and written in each memory level (on-chip buffers and DRAM) and moved "
                   "over links (noc), over the whole run.")


def memory_timeline(result: SimResult, target: Target | None) -> Plot:
    levels: list[str] = []
    for lvl in sorted(result.memory_trace, key=lambda lvl: (lvl == "dram", lvl)):
        # one core's only buffer traces the same as the chip-wide level: draw it once
        if result.memory_trace[lvl] and all(result.memory_trace[lvl] != result.memory_trace[o] for o in levels):
            levels.append(lvl)
    bands = metrics.phase_bands(result)
    groups = list(dict.fromkeys(g for g, _, _ in bands))
    band_colors = _colors(groups, "Pastel1" if len(groups) <= 9 else "tab20")
    to_us = 1e6 / result.clock_hz
    fig = _figure(7.5, 0.6 + 1.9 * max(1, len(levels)))
    axes = fig.subplots(max(1, len(levels)), 1, sharex=True, squeeze=False)[:, 0]
    for ax, level in zip(axes, levels):
        _shade(ax, bands, band_colors, to_us)
        trace = decimate(result.memory_trace[level], TRACE_POINTS)
        ax.step([t * to_us for t, _ in trace] + [result.cycles * to_us],
                [b for _, b in trace] + [trace[-1][1]], where="post", color="#1f4e79", lw=1.2,
                label="held")
        demand = result.memory_demand.get(level)
        if demand:
            d = decimate(demand, TRACE_POINTS)
            ax.step([t * to_us for t, _ in d] + [result.cycles * to_us], [b for _, b in d] + [d[-1][1]],
                    where="post", color="#c0392b", lw=1.0, ls="--", label="demand (unclipped)")
        cap = target.capacity(level) if target else None
        if cap:
            ax.axhline(cap[0], color="#555555", lw=0.8, ls=":", label=f"capacity {_si_axis(cap[0], 'B')}")
        ax.yaxis.set_major_formatter(EngFormatter(unit="B"))
        ax.set_ylabel(level, fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[-1].set_xlabel("time (µs)")
    if groups:
        handles = [matplotlib.patches.Patch(color=band_colors[g], alpha=0.55, label=g) for g in groups]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(6, len(groups)), fontsize=7,
                   title="phase bands", title_fontsize=7)
    no_demand = "" if result.memory_demand else (
        " Demand (what the schedule wanted on chip, unclipped by capacity) is not available for this "
        "target: its lowering does not report it, so only what the buffers held is drawn.")
    return _render(fig, "memory-timeline", "Memory over time",
                   "Bytes held in each memory level over the run, with the parts of the step shaded "
                   "(inner steps, query, meta-gradient, outer update) — second-order MAML keeps the "
                   "activations of every inner step alive until the meta-gradient, which shows as a "
                   "plateau across the bands." + no_demand)


def _shade(ax, bands, colors, to_us: float, label: bool = False) -> None:
    """Phase bands as one collection per group (thousands of spans draw as a few artists)."""
    by_group: dict[str, list[tuple[float, float]]] = {}
    for g, lo, hi in bands:
        by_group.setdefault(g, []).append((lo * to_us, (hi - lo) * to_us))
    for g, spans in by_group.items():
        ax.broken_barh(spans, (0, 1), transform=ax.get_xaxis_transform(), color=colors[g], alpha=0.55, lw=0,
                       label=g if label else None)


def peak_memory_by_phase(result: SimResult) -> Plot:
    level = metrics.main_level(result)
    held = metrics.peak_by_phase(result, result.memory_trace.get(level, [])) if level else {}
    demand = metrics.peak_by_phase(result, result.memory_demand.get(level, [])) if level else {}
    parts = [p["phase_part"] for p in result.phase_breakdown() if p["phase_part"] in held]
    fig = _figure(7.5, 0.9 + 0.32 * max(1, len(parts)))
    ax = fig.subplots()
    h = 0.4 if demand else 0.8
    ax.barh([i for i in range(len(parts))], [held[p] for p in parts], height=h, color="#1f4e79", label="held")
    if demand:
        ax.barh([i + h for i in range(len(parts))], [demand.get(p, 0) for p in parts], height=h,
                color="#c0392b", label="demand (unclipped)")
    ax.set_yticks([i + (h / 2 if demand else 0) for i in range(len(parts))], parts)
    ax.invert_yaxis()
    ax.set_xlabel(f"peak bytes on {level}")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Peak on-chip memory while each part ran", fontsize=10)
    return _render(fig, "memory-peak-phase", "Peak memory per phase part",
                   f"The highest {level} occupancy during the tasks of each phase part (their own "
                   "intervals, not the hull from first start to last end).")


def roofline(result: SimResult, target: Target | None) -> Plot:
    pts = metrics.roofline_points(result)
    clock = result.clock_hz
    fig = _figure(7.5, 4.6)
    ax = fig.subplots()
    finite = [p for p in pts if p.intensity is not None and p.ops_per_second(clock) > 0]
    resident = [p for p in pts if p.intensity is None and p.ops_per_second(clock) > 0]
    xs = [p.intensity for p in finite]
    lo = min(xs, default=0.1) / 4
    hi = max(xs, default=10.0) * 8
    total = sum(p.cycles for p in pts) or 1.0
    ops_of = sorted({p.op_type for p in pts})
    colors = _colors(ops_of)
    for p in finite:
        ax.scatter(p.intensity, p.ops_per_second(clock), s=12 + 300 * p.cycles / total,
                   color=colors[p.op_type], alpha=0.75, edgecolors="black", linewidths=0.3)
    for p in resident:   # no DRAM traffic: drawn at the right edge, hollow
        ax.scatter(hi, p.ops_per_second(clock), s=12 + 300 * p.cycles / total, facecolors="none",
                   edgecolors=colors[p.op_type], linewidths=1.0)
    if target is not None:
        peak = target.peak_macs_per_cycle * metrics.OPS_PER_MAC * target.clock_hz
        bw = target.dram_bytes_per_cycle * target.clock_hz
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        ax.plot(grid, [min(peak, x * bw) for x in grid], color="black", lw=1.4,
                label=f"MAC roof {_si_axis(peak, 'op/s')}, DRAM {_si_axis(bw, 'B/s')}")
        vec = target.peak_ops_per_cycle
        if vec:
            v = vec * target.clock_hz
            ax.plot(grid, [min(v, x * bw) for x in grid], color="gray", lw=1.0, ls="--",
                    label=f"vector/ALU roof {_si_axis(v, 'op/s')}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi * 1.5)
    ax.set_xlabel("arithmetic intensity (ops per DRAM byte)")
    ax.set_ylabel("attained (ops/s)")
    ax.grid(True, which="both", alpha=0.25)
    handles = [matplotlib.lines.Line2D([], [], marker="o", ls="", color=colors[o], label=o) for o in ops_of[:14]]
    first = ax.legend(fontsize=7, loc="lower right")
    ax.add_artist(first)
    ax.legend(handles=handles, fontsize=6, loc="upper left", ncols=2, title="op type", title_fontsize=6)
    ax.set_title("Roofline of the ops (per op type and phase part)", fontsize=10)
    roofs = ("" if target is not None else
             " The result carries no hardware record, so the target's roofs cannot be drawn.")
    return _render(fig, "roofline", "Roofline",
                   "Each point is one op type in one phase part: ops (2 per MAC, plus vector/ALU "
                   "ops) per byte it moved to or from DRAM, against the ops per second it attained "
                   "while its tasks ran; size is its share of compute time. Hollow points at the "
                   "right edge never touched DRAM (their operands stayed on chip)." + roofs)


def time_per_unit(result: SimResult) -> Plot:
    rows = metrics.time_by_unit(result)
    kinds = ("compute", "transfer", "reconfig", "stall", "idle")
    colors = {"compute": "#2e86c1", "transfer": "#27ae60", "reconfig": "#8e44ad", "stall": "#e74c3c",
              "idle": "#d5d8dc"}
    fig = _figure(7.5, 0.9 + 0.34 * max(1, len(rows)))
    ax = fig.subplots()
    labels = [f"{r.unit} ×{r.slots}" if r.slots > 1 else r.unit for r in rows]
    left = [0.0] * len(rows)
    for kind in kinds:
        widths = [100 * getattr(r, kind) / r.total if r.total else 0.0 for r in rows]
        if any(widths):
            ax.barh(labels, widths, left=left, color=colors[kind], label=kind)
            left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the unit's slot-cycles over the run")
    fig.legend(fontsize=7, ncols=5, loc="outside upper center")
    ax.set_title("Where time goes, per unit", fontsize=10)
    return _render(fig, "time-per-unit", "Where time goes",
                   "For each unit (× its slots: DMA engines, DRAM channels, fabric stages), the "
                   "share of the run spent computing, moving data, reconfiguring, stalled (holding "
                   "or waiting for the unit while its data was not yet on chip) and idle.")


def run_plots(result: SimResult, target: Target | None) -> list[Plot]:
    plots = [energy_by_phase(result), energy_by_op_type(result), traffic(result)]
    if result.timeline:
        plots += [memory_timeline(result, target), peak_memory_by_phase(result), roofline(result, target),
                  time_per_unit(result)]
    elif any(result.memory_trace.values()):
        plots.append(memory_timeline(result, target))
    return plots


# ---- several runs -------------------------------------------------------------------------------

def runs_energy(labels: Sequence[str], results: Sequence[SimResult]) -> Plot:
    rows = {lab: {**{k: v for k, v in r.energy_by_component().items()}} for lab, r in zip(labels, results)}
    fig = _figure(7.5, 0.9 + 0.32 * max(1, len(rows)))
    ax = fig.subplots()
    _stacked_barh(ax, rows, 1e-6, "energy (µJ)")
    if _spread(rows):   # a meta-training step next to one inference: only a log axis shows both
        ax.set_xscale("log")
    ax.set_title("Energy per run, by component", fontsize=10)
    return _render(fig, "runs-energy", "Energy per run",
                   "Total energy of every run (algorithm · phase · target), split by component.")


def _spread(rows: dict[str, dict[str, float]]) -> bool:
    totals = [sum(v.values()) for v in rows.values() if sum(v.values()) > 0]
    return bool(totals) and max(totals) / min(totals) > 200


def runs_latency_energy(labels: Sequence[str], results: Sequence[SimResult], phases: Sequence[str]) -> Plot:
    fig = _figure(7.5, 4.2)
    ax = fig.subplots()
    markers = dict(zip(sorted(set(phases)), "osD^v<>"))
    targets = sorted({r.target for r in results})
    colors = _colors(targets, "tab10")
    for lab, r, ph in zip(labels, results, phases):
        ax.scatter(r.seconds * 1e6, r.energy_pj * 1e-6, marker=markers[ph], color=colors[r.target], s=40,
                   edgecolors="black", linewidths=0.4)
        ax.annotate(lab.split(" · ")[0], (r.seconds * 1e6, r.energy_pj * 1e-6), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (µs)")
    ax.set_ylabel("energy (µJ)")
    ax.grid(True, which="both", alpha=0.25)
    handles = ([matplotlib.lines.Line2D([], [], marker="o", ls="", color=colors[t], label=t) for t in targets]
               + [matplotlib.lines.Line2D([], [], marker=m, ls="", color="gray", label=p) for p, m in markers.items()])
    ax.legend(handles=handles, fontsize=7)
    ax.set_title("Latency and energy of every run", fontsize=10)
    return _render(fig, "runs-latency-energy", "Latency against energy",
                   "Each run placed by its latency and energy; colour is the target, marker the phase.")


def runs_memory(labels: Sequence[str], results: Sequence[SimResult], targets: Sequence[Target | None]) -> Plot:
    fig = _figure(7.5, 0.9 + 0.36 * max(1, len(results)))
    ax = fig.subplots()
    held, demand, cap = [], [], []
    for r, t in zip(results, targets):
        level = metrics.main_level(r)
        held.append(r.peak_memory.get(level, 0) if level else 0)
        demand.append(r.peak_memory_demand().get(level) if level else None)
        c = t.capacity(level) if (t and level) else None
        cap.append(c[0] if c else None)
    y = list(range(len(results)))
    ax.barh([i - 0.2 for i in y], held, height=0.4, color="#1f4e79", label="peak held")
    if any(d is not None for d in demand):
        ax.barh([i + 0.2 for i in y], [d or 0 for d in demand], height=0.4, color="#c0392b",
                label="peak demand (unclipped)")
    for i, c in zip(y, cap):
        if c:
            ax.plot([c, c], [i - 0.45, i + 0.45], color="black", lw=1.2)
    ax.plot([], [], color="black", lw=1.2, label="capacity")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("bytes on chip (log scale)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Peak on-chip memory against capacity", fontsize=10)
    return _render(fig, "runs-memory", "On-chip memory against capacity",
                   "The most bytes each run held on chip, what its schedule wanted (unclipped demand, "
                   "where the target's lowering reports it) and the capacity. Held memory never "
                   "exceeds capacity: beyond it the schedule spills, which the table counts.")


def runs_memory_timelines(labels: Sequence[str], results: Sequence[SimResult]) -> Plot | None:
    shown = [(lab, r) for lab, r in zip(labels, results) if r.memory_trace.get(metrics.main_level(r) or "")]
    if not shown:
        return None
    fig = _figure(7.5, 0.8 + 1.5 * len(shown))
    axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
    for ax, (lab, r) in zip(axes, shown):
        level = metrics.main_level(r)
        to_us = 1e6 / r.clock_hz
        bands = metrics.phase_bands(r) if r.timeline else []
        groups = list(dict.fromkeys(g for g, _, _ in bands))
        bc = _colors(groups, "Pastel1" if len(groups) <= 9 else "tab20")
        _shade(ax, bands, bc, to_us, label=True)
        tr = decimate(r.memory_trace[level], TRACE_POINTS // 2)
        ax.step([t * to_us for t, _ in tr] + [r.cycles * to_us], [b for _, b in tr] + [tr[-1][1]],
                where="post", color="#1f4e79", lw=1.1)
        dm = r.memory_demand.get(level)
        if dm:
            d = decimate(dm, TRACE_POINTS // 2)
            ax.step([t * to_us for t, _ in d] + [r.cycles * to_us], [b for _, b in d] + [d[-1][1]],
                    where="post", color="#c0392b", lw=1.0, ls="--")
        ax.set_title(lab, fontsize=8, loc="left")
        ax.yaxis.set_major_formatter(EngFormatter(unit="B"))
        ax.set_ylabel(level, fontsize=7)
        ax.grid(True, alpha=0.3)
        if groups:
            handles, names = ax.get_legend_handles_labels()
            seen = dict(zip(names, handles))
            ax.legend(seen.values(), seen.keys(), fontsize=6, loc="upper right", ncols=3)
    axes[-1].set_xlabel("time (µs)")
    return _render(fig, "runs-memory-timelines", "Memory over time, run by run",
                   "On-chip bytes held over each run (solid; dashed: unclipped demand where "
                   "reported), with its phase bands where the result kept its timeline.")


def accuracy_cost(points: Sequence[dict], metric: str) -> Plot:
    """Accuracy (or MSE) against meta-train energy per step and adaptation latency per task,
    one column per target, the Pareto set joined by a line."""
    from .accuracy import pareto

    targets = list(dict.fromkeys(p["target"] for p in points))
    fig = _figure(3.2 * max(1, len(targets)) + 1.0, 5.6)
    axes = fig.subplots(2, max(1, len(targets)), squeeze=False)
    algos = sorted({p["algorithm"] for p in points})
    colors = _colors(algos, "tab10")
    better = "higher" if metric == "accuracy" else "lower"
    axis_of = (("meta_train_energy_j", "meta-train energy per step (J)"),
               ("adapt_latency_s", "adaptation latency per task (s)"))
    for col, tgt in enumerate(targets):
        mine = [p for p in points if p["target"] == tgt]
        for row, (key, label) in enumerate(axis_of):
            ax = axes[row][col]
            for p in mine:
                ax.errorbar(p[key], p["mean"], yerr=p["ci95"], fmt="o", color=colors[p["algorithm"]],
                            ms=6, capsize=3, mec="black", mew=0.4)
                ax.annotate(p["label"], (p[key], p["mean"]), fontsize=6, xytext=(4, 2), textcoords="offset points")
            front = sorted(pareto(mine, key, metric), key=lambda p: p[key])
            if len(front) > 1:
                ax.plot([p[key] for p in front], [p["mean"] for p in front], color="black", lw=0.8, ls="--")
            ax.set_xscale("log")
            ax.set_xlabel(label, fontsize=7)
            ax.set_ylabel(f"{metric} ({better} is better)", fontsize=7)
            ax.set_title(tgt, fontsize=8)
            ax.grid(True, which="both", alpha=0.25)
    handles = [matplotlib.lines.Line2D([], [], marker="o", ls="", color=colors[a], label=a) for a in algos]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(7, len(algos)), fontsize=7)
    return _render(fig, "accuracy-cost", "Accuracy against cost",
                   f"Meta-test {metric} (mean ± 95 % interval, from `hwsim train`) against the simulated "
                   "cost of one meta-training step (top) and of adapting to one new task (bottom), per "
                   "target; the dashed line joins the Pareto set (no other algorithm is both cheaper and "
                   f"{'more accurate' if metric == 'accuracy' else 'lower in error'}).")


# ---- sweeps -------------------------------------------------------------------------------------

def sweep_scatter(rows: Sequence[dict], front: Sequence[dict]) -> Plot:
    fig = _figure(7.5, 4.6)
    ax = fig.subplots()
    models = sorted({str(r["model"]) for r in rows})
    colors = _colors(models, "tab10")
    for model in models:
        pts = [r for r in rows if str(r["model"]) == model]
        ax.scatter([r["seconds"] * 1e6 for r in pts], [r["energy_pj"] * 1e-6 for r in pts], s=14,
                   alpha=0.5, color=colors[model], label=model)
        fr = sorted((r for r in front if str(r["model"]) == model), key=lambda r: r["seconds"])
        ax.plot([r["seconds"] * 1e6 for r in fr], [r["energy_pj"] * 1e-6 for r in fr], marker="o",
                color=colors[model], lw=1.2)
    ax.set_xlabel("latency (µs)")
    ax.set_ylabel("energy (µJ)")
    if rows and _positive(rows):
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Latency and energy of every design point", fontsize=10)
    return _render(fig, "sweep-scatter", "Latency against energy",
                   "Every point of the sweep per model; the line joins each model's Pareto set "
                   "(no other point is both faster and cheaper).")


def _positive(rows: Sequence[dict]) -> bool:
    return all(isinstance(r["seconds"], (int, float)) and isinstance(r["energy_pj"], (int, float))
               and r["seconds"] > 0 and r["energy_pj"] > 0 and math.isfinite(r["seconds"]) for r in rows)

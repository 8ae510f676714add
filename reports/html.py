"""Self-contained HTML reports: one page per kind of result — a run, a comparison of runs
(with accuracy beside cost when train results were joined), a sweep.

Pages are rendered from Jinja2 templates (`reports/templates/`) with autoescaping on, so every
name from an input is escaped; plots are inline SVG (`reports.figures`); the page has no script
and fetches nothing. A page is a complete record: the figures, the tables behind them, the
hardware configuration with its sources and the energy table with the source of every price.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from hwsim.result import SimResult

from . import figures, metrics
from .compare import Run, matrix
from .fabric import fabric_record
from .tables import si
from .target import Target, target_of


def run_page(result: SimResult, *, title: str | None = None) -> str:
    target = target_of(result)
    meta = result.metadata
    what = " ".join(x for x in (meta.get("algorithm", ""), meta.get("phase", "")) if x) or result.program
    return _render("run.html.j2",
                   title=title or f"hwsim: {what} on {result.target}",
                   subtitle=_setting(meta),
                   r=result, plots=figures.run_plots(result, target),
                   efficiency=metrics.mac_efficiency(result, target), busy=metrics.compute_busy(result),
                   spill=result.spill_traffic(), levels=metrics.memory_levels(result, target),
                   stalls=result.stalls(),
                   phases=result.phase_breakdown() if result.timeline else [],
                   fabric=fabric_record(result), record=_record(result, target),
                   metadata=sorted((k, v) for k, v in meta.items() if not k.startswith("fabric.")))


def comparison_page(runs: Sequence[Run], *, title: str, notes: Sequence[str] = (),
                    accuracy: Sequence[dict] | None = None) -> str:
    from .accuracy import MATCH_FIELDS, METRICS

    runs = list(runs)
    targets_of = {id(r): target_of(r.result) for r in runs}
    labels = [f"{r.algorithm} · {r.phase} · {r.result.target}" for r in runs]
    results = [r.result for r in runs]
    plots = [figures.runs_energy(labels, results),
             figures.runs_latency_energy(labels, results, [r.phase for r in runs]),
             figures.runs_memory(labels, results, [targets_of[id(r)] for r in runs])]
    timelines = figures.runs_memory_timelines(labels, results)
    if timelines is not None:
        plots.append(timelines)
    metric = accuracy[0]["metric"] if accuracy else ""
    if accuracy:
        plots.insert(0, figures.accuracy_cost(accuracy, metric))
    totals = []
    for r in runs:
        res, t = r.result, targets_of[id(r)]
        level = metrics.main_level(res)
        cap = t.capacity(level) if (t and level) else None
        totals.append({"algorithm": r.algorithm, "phase": r.phase, "target": res.target,
                       "seconds": res.seconds, "energy_j": res.energy_pj * 1e-12, "macs": res.macs,
                       "efficiency": metrics.mac_efficiency(res, t), "busy": metrics.compute_busy(res),
                       "dram": sum(v for k, v in res.traffic().items() if k.startswith("dram.")),
                       "peak": res.peak_memory.get(level, 0) if level else 0,
                       "demand": res.peak_memory_demand().get(level) if level else None,
                       "capacity": cap[0] if cap else None, "spill": res.spill_traffic()["bytes"]})
    records: dict[str, dict[str, Any]] = {}
    for r in runs:   # one record per target: the configuration and its energy table
        records.setdefault(r.result.target, _record(r.result, targets_of[id(r)]))
    fabrics = [(lab, f) for lab, r in zip(labels, runs) if (f := fabric_record(r.result))]
    cells = matrix(runs)
    not_modelled = list(dict.fromkeys(n for r in runs for n in r.result.not_modelled))
    return _render("comparison.html.j2", title=title, subtitle=f"{len(runs)} runs", notes=list(notes),
                   matrix=cells, targets=list(dict.fromkeys(r.result.target for r in runs)),
                   first_algorithm=runs[0].algorithm if runs else "",
                   first_target=runs[0].result.target if runs else "",
                   totals=totals, plots=plots, accuracy=list(accuracy or []), metric=metric,
                   better=METRICS.get(metric, ""), matched_on=MATCH_FIELDS, fabrics=fabrics,
                   runs=[{"label": lab, "levels": metrics.memory_levels(r.result, targets_of[id(r)]),
                          "phases": r.result.phase_breakdown() if r.result.timeline else []}
                         for lab, r in zip(labels, runs)],
                   records=list(records.items()), not_modelled=not_modelled)


COLUMNS_FIRST = ("point", "model")
SWEEP_METRICS = ("cycles", "seconds", "energy_pj", "macs", "dram_bytes", "peak_sram_bytes", "array_utilization")


def sweep_page(rows: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]], *, title: str,
               notes: Sequence[str] = ()) -> str:
    cols: list[str] = []
    if rows:
        params = [k for k in rows[0] if k not in COLUMNS_FIRST and k not in SWEEP_METRICS]
        cols = [*COLUMNS_FIRST, *params, *(m for m in SWEEP_METRICS if m in rows[0])]
    plots = [figures.sweep_scatter(rows, front)] if rows else []
    return _render("sweep.html.j2", title=title, subtitle=f"{len(rows)} results, {len(front)} on the Pareto set",
                   notes=list(notes), plots=plots, rows=list(rows), front=list(front), columns=cols)


# ---- rendering ----------------------------------------------------------------------------------

def _record(result: SimResult, target: Target | None) -> dict[str, Any]:
    return {"target": target, "prices": sorted(result.prices.items())}


def _setting(meta: dict[str, str]) -> str:
    keys = ("backbone", "way", "shot", "query", "inner_steps", "meta_batch", "first_order", "dtype")
    return ", ".join(f"{k.replace('_', ' ')} {meta[k]}" for k in keys if k in meta)


def _render(template: str, **context: Any) -> str:
    from hwsim import __version__

    return _environment().get_template(template).render(version=__version__, **context)


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["si"] = _si
    env.filters["pct"] = lambda x, digits=1: f"{100 * x:.{digits}f} %"
    env.filters["num"] = lambda x: f"{x:,.0f}"
    env.filters["cell"] = _cell
    return env


def _si(value: float | None, unit: str) -> str:
    return "—" if value is None else si(float(value), unit)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

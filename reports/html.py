"""A self-contained HTML report of a sweep: the Pareto set, a latency–energy plot (inline SVG),
and every point. All names are escaped; nothing is fetched when the page opens."""

from __future__ import annotations

import html
import io
from typing import Any, Sequence

COLUMNS_FIRST = ("point", "model")
METRICS = ("cycles", "seconds", "energy_pj", "macs", "dram_bytes", "peak_sram_bytes", "array_utilization")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    params = [k for k in rows[0] if k not in COLUMNS_FIRST and k not in METRICS]
    cols = [*COLUMNS_FIRST, *params, *(m for m in METRICS if m in rows[0])]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "\n".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in cols) + "</tr>"
                     for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _plot(rows: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in sorted({r["model"] for r in rows}):
        pts = [r for r in rows if r["model"] == model]
        ax.scatter([r["seconds"] * 1e6 for r in pts], [r["energy_pj"] * 1e-6 for r in pts], s=14,
                   alpha=0.5, label=str(model))
        fr = sorted((r for r in front if r["model"] == model), key=lambda r: r["seconds"])
        ax.plot([r["seconds"] * 1e6 for r in fr], [r["energy_pj"] * 1e-6 for r in fr], marker="o")
    ax.set_xlabel("latency (µs)")
    ax.set_ylabel("energy (µJ)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def sweep_html(rows: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]], *, title: str,
               notes: Sequence[str] = ()) -> str:
    style = ("body{font-family:sans-serif;margin:2em;max-width:75em}"
             "table{border-collapse:collapse;font-size:0.85em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "th{background:#eee}")
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><ul>{note_html}</ul>"
            f"<h2>Latency and energy</h2>{_plot(rows, front) if rows else ''}"
            f"<h2>Pareto set (per model)</h2>{_table(front)}"
            f"<h2>All points</h2>{_table(rows)}</body></html>")

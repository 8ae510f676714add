"""Plain-text and Markdown tables of SimResults. Reads results only."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from hwsim.result import SimResult

from .cells import md, plain


def si(value: float, unit: str) -> str:
    """12.3 µs, 4.56 mJ, 1.2 GB: three significant digits and an SI prefix."""
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""),
                           (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def render(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, markdown: bool = False) -> str:
    """An aligned table; every cell is made safe for its format (`reports.cells`), so a name
    holding `|`, a newline or markup cannot break the table or inject anything."""
    cell = md if markdown else plain
    headers = [cell(h) for h in headers]
    rows = [[cell(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    def line(cells):
        body = (" | " if markdown else "  ").join(c.ljust(w) if i == 0 else c.rjust(w)
                                                 for i, (c, w) in enumerate(zip(cells, widths)))
        return f"| {body} |" if markdown else body
    out = [line(headers)]
    out.append("|" + "|".join(("-" * (w + 2)) for w in widths) + "|" if markdown
               else "  ".join("-" * w for w in widths))
    out += [line(r) for r in rows]
    return "\n".join(out)


def summary_table(r: SimResult, *, markdown: bool = False) -> str:
    from .metrics import compute_busy, mac_efficiency, memory_levels

    s = r.summary()
    rows = [
        ("target", r.target),
        ("latency", f"{r.cycles:,.0f} cycles = {si(r.seconds, 's')}"),
        ("MACs", f"{r.macs:,.0f}"),
        ("energy", si(r.energy_pj * 1e-12, "J")),
    ]
    rows += [(f"  {comp}", si(e * 1e-12, "J")) for comp, e in sorted(s["energy_by_component_pj"].items())]
    rows += [
        ("DRAM read / write", f"{si(s['dram_read_bytes'], 'B')} / {si(s['dram_write_bytes'], 'B')}"),
        ("SRAM read / write", f"{si(s['sram_read_bytes'], 'B')} / {si(s['sram_write_bytes'], 'B')}"),
    ]
    eff, busy = mac_efficiency(r), compute_busy(r)
    # busy time is not efficiency: a unit can be busy all run doing a sliver of its peak MACs
    rows.append(("MAC efficiency", "n/a (result has no hardware record)" if eff is None else
                 f"{eff:.3%} of peak MACs" + (f" (compute units busy {busy:.1%})" if busy is not None else "")))
    for m in memory_levels(r):
        text = si(m.peak, "B")
        if m.demand is not None:
            text += f", demand {si(m.demand, 'B')}"
        if m.capacity:
            text += f" of {si(m.capacity, 'B')}"
        rows.append((f"peak {m.level}", text))
    spill = r.spill_traffic()
    if spill["transfers"]:
        rows.append(("spilled", f"{si(spill['bytes'], 'B')} in {spill['transfers']:,.0f} transfers"))
    rows += [(f"busy {u}", f"{x:.1%}") for u, x in r.utilization().items()]
    return render(("metric", "value"), rows, markdown=markdown)


def phase_table(r: SimResult, *, markdown: bool = False) -> str:
    rows = [(p["phase_part"], f"{p['span_cycles']:,.0f}", f"{p['compute_busy_cycles']:,.0f}",
             f"{p['macs']:,.0f}", si(p["dram_bytes"], "B"), si(p["energy_pj"] * 1e-12, "J"))
            for p in r.phase_breakdown()]
    # span: the time the part's own tasks were running (union of their intervals)
    return render(("phase part", "span cyc", "compute cyc", "MACs", "DRAM", "energy"), rows,
                  markdown=markdown)

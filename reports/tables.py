"""Plain-text and Markdown tables of SimResults. Reads results only."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from hwsim.result import SimResult


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
    rows = [[str(c) for c in r] for r in rows]
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
    rows += [(f"peak {lvl}", si(b, "B")) for lvl, b in r.peak_memory.items()]
    rows += [(f"util {u}", f"{x:.1%}") for u, x in r.utilization().items()]
    return render(("metric", "value"), rows, markdown=markdown)


def phase_table(r: SimResult, *, markdown: bool = False) -> str:
    rows = [(p["phase_part"], f"{p['span_cycles']:,.0f}", f"{p['compute_busy_cycles']:,.0f}",
             f"{p['macs']:,.0f}", si(p["dram_bytes"], "B"), si(p["energy_pj"] * 1e-12, "J"))
            for p in r.phase_breakdown()]
    return render(("phase part", "span cyc", "compute cyc", "MACs", "DRAM", "energy"), rows,
                  markdown=markdown)

"""Print the agreement tables of docs/validation.md from the committed goldens and hwsim as it is.

    .venv/bin/python benchmarks/peers/validation_tables.py > /tmp/tables.md

Nothing is typed by hand: each table row is one golden case run through hwsim's pipeline
(`benchmarks/peers/mirror.py`) next to what the peer reported.
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.peers.mirror import (  # noqa: E402
    ELEMENT_BYTES, layer_of, run_hwsim, scalesim_mirror, scalesim_user, zigzag_mirror, zigzag_prices,
)

DATA = REPO / "tests" / "data"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _pct(a: float, b: float) -> str:
    return f"{100 * (a - b) / b:+.1f} %" if b else "—"


def scalesim_tables() -> list[str]:
    sys.path.insert(0, str(REPO / "tests" / "compiler"))
    from test_validation_peers import user_case_agrees  # the one classification, shared

    rows = _rows(DATA / "scalesim" / "goldens.csv")
    calc = [r for r in rows if r["bandwidth_mode"] == "CALC"]
    errs, exact_counts = [], 0
    for r in calc:
        h = run_hwsim(layer_of(r), scalesim_mirror(r).hardware())
        ss = int(r["total_cycles"]) + 1
        errs.append(abs(h.array_cycles - ss) / ss)
        exact_counts += (h.sram_reads / ELEMENT_BYTES == int(r["sram_ifmap_reads"]) + int(r["sram_filter_reads"])
                         and h.sram_writes / ELEMENT_BYTES == int(r["sram_ofmap_writes"]))
    out = ["### SCALE-Sim, stall-free (CALC), through the pipeline", "",
           f"{len(calc)} cases: compute cycles within 1 %: {sum(e <= 0.01 for e in errs)}/{len(calc)}; "
           f"exact (to float rounding of tiled compute): {sum(e < 1e-9 for e in errs)}/{len(calc)}; "
           f"largest difference {100 * max(errs):.2g} %. SRAM ifmap+filter reads and ofmap writes "
           f"equal on {exact_counts}/{len(calc)}.", ""]
    out += compat_table(rows)
    out += ["### SCALE-Sim, USER bandwidth, hwsim's default event model (total cycles)", "",
            "| case | stall (SCALE-Sim) | SCALE-Sim total | SCALE-Sim incl. prefetch | hwsim total | "
            "diff vs incl. prefetch | SCALE-Sim DRAM reads / distinct | compared? |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in [r for r in rows if r["bandwidth_mode"] == "USER"]:
        h = run_hwsim(layer_of(r), scalesim_mirror(r).hardware())
        ok, why = user_case_agrees(r)
        from test_validation_peers import _distinct_words

        refetch = (int(r["dram_ifmap_reads"]) + int(r["dram_filter_reads"])) / _distinct_words(r)
        pf = int(r["total_cycles_incl_prefetch"]) + 1
        out.append(f"| {r['case_id']} | {int(r['stall_cycles']):,} | {int(r['total_cycles']) + 1:,} | "
                   f"{pf:,} | {h.total_cycles:,.0f} | {_pct(h.total_cycles, pf)} | {refetch:.2f} | "
                   f"{'yes: overlapped fill' if ok else 'no: ' + ('refetch' if 'refetches operands' in why else 'WS/IS prefetch')} |")
    return out


def compat_table(rows: list[dict[str, str]]) -> list[str]:
    """USER-bandwidth cases against the SCALE-Sim compatibility model (benchmarks/peers/scalesim_model.py)."""
    out = ["### SCALE-Sim, USER bandwidth, compatibility model (`benchmarks/peers/scalesim_model.py`)", "",
           "| case | SCALE-Sim stall | model stall | SCALE-Sim incl. prefetch | model | diff | "
           "DRAM I+F reads SCALE-Sim | model | ofmap writes SCALE-Sim | model |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    errs = []
    for r in [r for r in rows if r["bandwidth_mode"] == "USER"]:
        c = scalesim_user(r)
        pf = int(r["total_cycles_incl_prefetch"]) + 1
        errs.append(abs(c.total_cycles_incl_prefetch - pf) / pf)
        reads = int(r["dram_ifmap_reads"]) + int(r["dram_filter_reads"])
        out.append(f"| {r['case_id']} | {int(r['stall_cycles']):,} | {c.stall_cycles:,} | {pf:,} | "
                   f"{c.total_cycles_incl_prefetch:,} | {_pct(c.total_cycles_incl_prefetch, pf)} | {reads:,} | "
                   f"{c.dram_ifmap_reads + c.dram_filter_reads:,} | {int(r['dram_ofmap_writes']):,} | "
                   f"{c.dram_ofmap_writes:,} |")
    n = len(errs)
    out += ["", f"{n} cases: exact {sum(e == 0 for e in errs)}, within 1 % {sum(e <= 0.01 for e in errs)}, "
            f"within 10 % {sum(e <= 0.10 for e in errs)}; median |diff| {100 * statistics.median(errs):.2f} %.", ""]
    return out


def zigzag_table() -> list[str]:
    rows = _rows(DATA / "zigzag" / "goldens.csv")
    out = ["### ZigZag (same energy constants; WS array, one global buffer, DRAM)", "",
           "| case | DRAM bytes hwsim | DRAM bytes ZigZag | diff | GB reads hwsim (I+W) | "
           "GB reads ZigZag (I+W) | O partial-sum GB reads ZigZag | energy hwsim | energy ZigZag | "
           "diff | of which GB | of which DRAM |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    diffs = []
    for r in rows:
        h = run_hwsim(layer_of(r), zigzag_mirror(r).hardware(), zigzag_prices(r))
        zz_dram = sum(float(r[k]) for k in ("I_dram_rd_low_bytes", "W_dram_rd_low_bytes",
                                            "O_dram_wr_low_bytes", "O_dram_rd_low_bytes"))
        hw_dram = h.dram_read_bytes + h.dram_write_bytes
        zz_gb_reads = float(r["I_gb_rd_low_bytes"]) + float(r["W_gb_rd_low_bytes"])
        zz_gb_e = sum(float(r[f"{op}_gb_energy_pj"]) for op in "IWO")
        zz_dram_e = sum(float(r[f"{op}_dram_energy_pj"]) for op in "IWO")
        e_zz = float(r["energy_total_pj"])
        diffs.append((h.energy_pj - e_zz) / e_zz)
        out.append(
            f"| {r['case_id']} | {hw_dram:,.0f} | {zz_dram:,.0f} | {_pct(hw_dram, zz_dram)} | "
            f"{h.sram_reads:,.0f} | {zz_gb_reads:,.0f} | {float(r['O_gb_rd_low_bytes']):,.0f} | "
            f"{h.energy_pj / 1e6:,.2f} µJ | {e_zz / 1e6:,.2f} µJ | {_pct(h.energy_pj, e_zz)} | "
            f"{_pct(h.energy_by_component.get('sram', 0.0), zz_gb_e)} | "
            f"{_pct(h.energy_by_component.get('dram', 0.0), zz_dram_e)} |")
    out += ["", f"Energy difference over {len(rows)} cases: median {100 * statistics.median(diffs):+.1f} %, "
            f"range {100 * min(diffs):+.1f} % … {100 * max(diffs):+.1f} %.", ""]
    return out


def main() -> int:
    print("\n".join(scalesim_tables() + [""] + zigzag_table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run one SCALE-Sim layer and print its reported numbers as one JSON line.

This file runs under SCALE-Sim's own interpreter (its venv needs numpy<2.4), never under hwsim's:
it imports nothing from hwsim. `scalesim_goldens.py` writes a case's files and calls it as

    <scalesim python> scalesim_worker.py CASE_DIR

where CASE_DIR holds `scale.cfg`, `topology.csv` and `layout.csv`. The numbers are read back from
the report CSVs SCALE-Sim writes, i.e. exactly what a user of the tool sees.
"""

import csv
import json
import os
import sys
import time


def main(case_dir: str) -> None:
    from scalesim.scale_sim import scalesim  # imported here so the timer below excludes nothing else

    gemm = open(os.path.join(case_dir, "kind")).read().strip() == "gemm"
    sim = scalesim(
        # save_disk_space=True skips the per-cycle trace CSVs; the CLI cannot do this (its -s flag
        # is parsed but never used), so CLI runs are slower than the times recorded here.
        save_disk_space=True,
        verbose=False,
        config=os.path.join(case_dir, "scale.cfg"),
        topology=os.path.join(case_dir, "topology.csv"),
        layout=os.path.join(case_dir, "layout.csv"),
        input_type_gemm=gemm,
    )
    start = time.perf_counter()
    sim.run_scale(top_path=os.path.join(case_dir, "out"))
    wall = time.perf_counter() - start

    report_dir = os.path.join(case_dir, "out", "case")
    compute = _rows(os.path.join(report_dir, "COMPUTE_REPORT.csv"))
    detail = _rows(os.path.join(report_dir, "DETAILED_ACCESS_REPORT.csv"))
    result = {"wall_s": wall, "layers": len(compute)}
    sums = {
        "total_cycles_incl_prefetch": "Total Cycles (incl. prefetch)",
        "total_cycles": "Total Cycles",
        "stall_cycles": "Stall Cycles",
        "sram_ifmap_reads": "SRAM IFMAP Reads",
        "sram_filter_reads": "SRAM Filter Reads",
        "sram_ofmap_writes": "SRAM OFMAP Writes",
        "dram_ifmap_reads": "DRAM IFMAP Reads",
        "dram_filter_reads": "DRAM Filter Reads",
        "dram_ofmap_writes": "DRAM OFMAP Writes",
    }
    rows = [{**c, **d} for c, d in zip(compute, detail)]
    for key, column in sums.items():
        result[key] = sum(int(float(r[column])) for r in rows)
    for key, column in {
        "overall_util_pct": "Overall Util %",
        "mapping_efficiency_pct": "Mapping Efficiency %",
        "compute_util_pct": "Compute Util %",
    }.items():
        values = [float(r[column]) for r in rows]
        result[key] = sum(values) / len(values)
    print(json.dumps(result))


def _rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.reader(f, skipinitialspace=True)
        header = [h.strip() for h in next(reader)]
        return [
            {h: v.strip() for h, v in zip(header, row) if h}
            for row in reader
            if row and row[0].strip()
        ]


if __name__ == "__main__":
    main(sys.argv[1])

"""Design-space exploration benchmarks (issue #11); prints a Markdown section for BENCHMARKS.md.

    .venv/bin/python benchmarks/explore_bench.py [--out FILE] [--seeds 3]

1. Throughput: the Conv4-64 forward graph (tests/data/compiler/conv4_infer_torch.onnx) on a
   1,000-point grid (array rows x cols x buffer) with 2 workers (a local dask cluster), and in
   one process for reference. Points/s over the evaluation (workers ready -> last point
   committed) and over the whole call (cluster start and front end included).
2. Search quality: a 2,000-point grid over the sinusoid MAML meta_train graph
   (tests/data/compiler/sine_maml.onnx: 1 task, 1 inner step; ~30 ms a point, so the whole grid
   is the reference in under a minute), objectives latency, energy and area. NSGA-II and TPE
   get 400 trials (20 % of the grid); the table gives the hypervolume of what they found as a
   fraction of the grid's.
3. Kill and resume: `hwsim explore` on the 1,000-point grid is SIGKILLed after 200 points are
   committed and run again; points kept, simulated and recomputed are counted, and the final
   store is compared byte for byte with an uninterrupted run's.

Timings are wall clock on a shared 2-core machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "compiler"

CONV4_GRID = """base: edge-npu
models: [{name: conv4, onnx: conv4.onnx}]
parameters:
  hw.array.rows: {low: 8, high: 80, step: 8}
  hw.array.cols: {low: 8, high: 80, step: 8}
  hw.sram.size_kib: {low: 16, high: 8192, factor: 2}
objectives: [latency, energy, area]
"""

SINE_SPACE = """base: edge-npu
models: [{name: maml_meta_train, onnx: sine_maml.onnx}]
parameters:
  hw.array.rows: {low: 4, high: 64, factor: 2}
  hw.array.cols: {low: 4, high: 64, factor: 2}
  hw.sram.size_kib: {low: 8, high: 1024, factor: 2}
  hw.dram.bandwidth_gbps: {low: 3.2, high: 102.4, num: 10, log: true}
objectives: [latency, energy, area]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="also write the section to this file")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per sampler")
    ap.add_argument("--only", choices=["throughput", "search", "kill"], help="run one section")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="explore-bench-"))
    try:
        shutil.copy(DATA / "conv4_infer_torch.onnx", work / "conv4.onnx")
        shutil.copy(DATA / "sine_maml.onnx", work / "sine_maml.onnx")
        (work / "conv4.yaml").write_text(CONV4_GRID)
        (work / "sine.yaml").write_text(SINE_SPACE)
        lines = [f"## Design-space exploration (benchmarks/explore_bench.py)",
                 f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs shared with "
                 "other jobs; wall clock, one run each.", ""]
        if args.only in (None, "throughput", "kill"):
            lines += throughput(work)          # its 1-process store is the kill test's reference
        if args.only in (None, "search"):
            lines += search_quality(work, args.seeds)
        if args.only in (None, "kill"):
            lines += kill_and_resume(work)
        text = "\n".join(lines) + "\n"
        print(text)
        if args.out:
            args.out.write_text(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return "load average %.1f / %.1f / %.1f" % os.getloadavg()


def throughput(work: Path) -> list[str]:
    from hwsim.explore import explore, load_space

    space = load_space(work / "conv4.yaml")
    rows = ["### Throughput: Conv4-64 forward, 1,000-point grid (target >= 200 points/s on 2 workers)", "",
            "| workers | points | evaluation s | points/s (evaluation) | whole call s | points/s (whole call) "
            "| CPU s (all processes) | points/s if 2 free cores | load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for workers, store in ((2, "conv4-w2"), (1, "conv4-w1")):
        load = _load()
        cpu0 = _cpu()
        s = explore(space, work, work / store, workers=workers)
        cpu = _cpu() - cpu0      # this process and its (reaped) worker processes, start-up included
        assert s.complete and s.evaluated == 1000
        rows.append(f"| {workers} ({'local dask cluster' if workers > 1 else 'this process'}) | {s.points:,} | "
                    f"{s.evaluation_seconds:.2f} | {s.points / s.evaluation_seconds:.0f} | {s.seconds:.2f} | "
                    f"{s.points / s.seconds:.0f} | {cpu:.1f} | {2 * s.points / cpu:.0f} | {load} |")
    same = _bytes(work / "conv4-w2") == _bytes(work / "conv4-w1")
    rows += ["", "'points/s if 2 free cores' = 2 x points / CPU seconds of every process of the run (driver, "
             "scheduler, workers, their start-up): the rate the run's own work allows when nothing else "
             "competes for the two cores; the wall-clock columns show what this shared machine gave.",
             "", f"Stores of the 2-worker and the 1-process runs identical byte for byte: {same}.", ""]
    return rows


def search_quality(work: Path, seeds: int) -> list[str]:
    from optuna._hypervolume import compute_hypervolume   # exact (WFG); pinned optuna 5.1.0

    from hwsim.explore import explore, load_space, open_store, pareto_front

    space = load_space(work / "sine.yaml")
    t = time.perf_counter()
    grid = explore(space, work, work / "sine-grid", workers=2)
    grid_s = time.perf_counter() - t
    recs = [r for r in open_store(work / "sine-grid").records.values() if r.feasible]
    vals = np.array([r.objectives for r in recs])
    lo, hi = vals.min(axis=0), vals.max(axis=0)
    ref = np.full(vals.shape[1], 1.1)

    def hv(records) -> float:
        pts = np.array([r.objectives for r in records if r.feasible])
        return compute_hypervolume((pts - lo) / (hi - lo), ref) if len(pts) else 0.0

    full = hv(pareto_front(recs))
    rows = ["### Search: sinusoid MAML meta_train, 2,000-point grid, latency x energy x area "
            "(target: >= 98 % of the grid's hypervolume with <= 20 % of the evaluations)", "",
            f"Grid: {grid.points:,} points, {grid.evaluated:,} simulated, {grid.infeasible} infeasible, "
            f"{len(grid.front)} on the Pareto front, {grid_s:.1f} s on 2 workers. Objectives normalised to "
            "[0, 1] by the grid's range, reference point 1.1 in each.", "",
            "| sampler | seed | trials | simulated | hypervolume / grid's | time s |", "|---|---:|---:|---:|---:|---:|"]
    for sampler in ("nsga2", "tpe"):
        for seed in range(seeds):
            sp = space.with_search(sampler=sampler, trials=400, seed=seed)
            t = time.perf_counter()
            s = explore(sp, work, work / f"sine-{sampler}-{seed}", workers=2)
            dt = time.perf_counter() - t
            got = hv(open_store(work / f"sine-{sampler}-{seed}").records.values())
            rows.append(f"| {sampler} | {seed} | {s.points} | {s.evaluated} | {100 * got / full:.2f} % | {dt:.1f} |")
    return rows + [""]


def kill_and_resume(work: Path) -> list[str]:
    hwsim = str(Path(sys.executable).parent / "hwsim")
    store = work / "conv4-killed"
    p = subprocess.Popen([hwsim, "explore", str(work / "conv4.yaml"), "--store", str(store), "--workers", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = store / "journal.jsonl"
    while p.poll() is None and (not journal.exists() or journal.read_bytes().count(b"\n") < 200):
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    kept = journal.read_bytes().count(b"\n")
    r = subprocess.run([hwsim, "explore", str(work / "conv4.yaml"), "--store", str(store), "--workers", "2"],
                       capture_output=True, text=True, check=True)
    import re

    m = re.search(r"\((\d+) kept from before, (\d+) simulated, (\d+) duplicates", r.stdout)
    k, simulated, copied = (int(x) for x in m.groups())
    same = _bytes(store) == _bytes(work / "conv4-w1")
    return ["### Kill and resume: Conv4-64 1,000-point grid, SIGKILL after >= 200 committed points", "",
            "| committed at the kill | kept by the rerun | simulated by the rerun | recomputed | "
            "final store = uninterrupted run's |", "|---:|---:|---:|---:|---|",
            f"| {kept} | {k} | {simulated} | {k + simulated + copied - 1000} | {same} |", ""]


def _cpu() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


if __name__ == "__main__":     # the local cluster's workers are spawned: they re-import this module
    main()

"""Cold and warm export times and peak RSS of meta_train exports, in one run.

    .venv/bin/python benchmarks/export_bench.py [--out benchmarks/export_times.md] [--only maml]

Each configuration runs in a fresh process (so peak RSS is its own and nothing is warm):
`export_phase(spec, cache_dir=<empty dir>)` — trace in float64, verification (structure in
float64 against eager torch, the float32 graph in onnxruntime, two input sets), narrowing,
writing the cache entry — is the cold time; `export_phase` again from that cache is the warm
time. Wall-clock and CPU seconds on this machine; the machine's load is recorded with them,
since wall times on shared cores vary with it. `make bench` folds the table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Issue #10's targets: (label, PhaseSpec fields, cold wall-clock target in s).
TARGETS = [
    ("MAML Conv4-64 28×28×1, 5-way 1-shot, 10 queries (the CLI's defaults), k=5, B=25",
     dict(algorithm="maml", backbone="conv4_64_28x28x1", way=5, shot=1, query=10, inner_steps=5,
          meta_batch=25), 30.0),
    ("MAML Conv4-64 84×84×3, 5-way 1-shot, 15 queries, k=5, B=4",
     dict(algorithm="maml", backbone="conv4_64_84x84x3", way=5, shot=1, query=15, inner_steps=5,
          meta_batch=4), 60.0),
]
WARM_TARGET_S = 1.0
# Every algorithm: the sinusoid setup of Finn et al. 2017 (K=10, B=25) and Conv4-64 on 28×28×1,
# 5-way 1-shot with 15 queries per class, meta-batch 4.
SETUPS = [
    ("sinusoid, sine MLP, K=10, B=25",
     dict(backbone="sine_mlp", way=1, shot=10, query=10, meta_batch=25)),
    ("Conv4-64 28×28×1, 5-way 1-shot, 15 queries, B=4",
     dict(backbone="conv4_64_28x28x1", way=5, shot=1, query=15, meta_batch=4)),
]
INNER_STEPS = (1, 5)

_CHILD = r"""
import json, logging, resource, sys, time
from algorithms.export import export_phase
from algorithms.spec import PhaseSpec
summaries = []
handler = logging.Handler()
handler.emit = lambda record: summaries.append(record.getMessage())
logging.getLogger("algorithms.export").addHandler(handler)
logging.getLogger("algorithms.export").setLevel(logging.INFO)
spec = PhaseSpec(**json.loads(sys.argv[1]))
cache = sys.argv[2]
t0, c0 = time.perf_counter(), time.process_time()
try:
    model = export_phase(spec, cache_dir=cache)
    error = None
except Exception as e:  # recorded in the table, not hidden
    model, error = None, f"{type(e).__name__}: {str(e)[:160]}"
cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
warm = None
if model is not None:
    t1 = time.perf_counter()
    export_phase(spec, cache_dir=cache)
    warm = time.perf_counter() - t1
print(json.dumps({"cold": cold, "cold_cpu": cold_cpu, "warm": warm, "error": error,
                  "summary": summaries[-1] if summaries else None,
                  "nodes": len(model.graph.node) if model is not None else None,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_one(fields: dict) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(fields), cache],
                             capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from algorithms import ALGORITHMS
    from algorithms.spec import PhaseSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "export_times.md"))
    parser.add_argument("--only", default=None, help="comma-separated algorithms")
    args = parser.parse_args()
    algorithms = args.only.split(",") if args.only else ALGORITHMS.names()

    started, load_before = time.time(), os.getloadavg()
    targets = []
    for label, fields, target in TARGETS:
        result = run_one(dict(fields, phase="meta_train"))
        targets.append((label, target, result))
        print(label, result, flush=True)
    rows = []
    for label, setup in SETUPS:
        for algorithm in algorithms:
            for k in INNER_STEPS:
                fields = dict(algorithm=algorithm, phase="meta_train", inner_steps=k, **setup)
                try:
                    PhaseSpec(**fields)
                except ValueError as e:
                    rows.append((label, algorithm, k, None, f"not applicable ({e})"))
                    continue
                result = run_one(fields)
                rows.append((label, algorithm, k, result, result["error"]))
                print(label, algorithm, k, result, flush=True)
    minutes, load_after = (time.time() - started) / 60, os.getloadavg()

    lines = [
        "# Export times of meta_train (cold and from cache)",
        "",
        f"Produced by `benchmarks/export_bench.py` in one run of {minutes:.0f} min on "
        f"{datetime.date.today().isoformat()}: {platform.machine()}, {os.cpu_count()} CPUs shared "
        f"with other engineers' jobs (load average {load_before[1]:.1f} over the 5 minutes before the "
        f"run, {load_after[1]:.1f} at its end), Python {platform.python_version()}, "
        f"{_versions()}. Cold = fresh process, empty cache: trace in float64, verification "
        f"(structure in float64 against eager torch, the float32 graph in onnxruntime, two input "
        f"sets), narrowing to float32, writing the cache entry; warm = loading it from the cache. "
        f"Wall-clock seconds (CPU seconds of the process beside them: the contention shows as "
        f"the gap). Peak RSS of the whole process.",
        "",
        "## Targets (issue #10)",
        "",
        "| configuration | cold s (target) | cold CPU s | warm s (target) | peak RSS MB (≤ 4096) | nodes | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, target, r in targets:
        met = (r["error"] is None and r["cold"] <= target and r["warm"] <= WARM_TARGET_S
               and r["rss_mb"] <= 4096)
        lines.append(f"| {label} | {r['cold']:.1f} ({target:.0f}) | {r['cold_cpu']:.1f} | "
                     f"{_num(r['warm'], 2)} ({WARM_TARGET_S:.0f}) | {r['rss_mb']:.0f} | {r['nodes']} | "
                     f"{'yes' if met else 'no'} |")
    lines += ["", "Verification of the target runs:", ""]
    lines += [f"- {label}: {r['summary'] or r['error']}" for label, _, r in targets]
    lines += [
        "",
        "## Every algorithm",
        "",
        "| setup | algorithm | k | cold s | cold CPU s | warm s | peak RSS MB | nodes | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, algorithm, k, r, note in rows:
        if r is None:
            lines.append(f"| {label} | {algorithm} | {k} | | | | | | {note} |")
            continue
        lines.append(f"| {label} | {algorithm} | {k} | {r['cold']:.1f} | {r['cold_cpu']:.1f} | "
                     f"{_num(r['warm'], 2)} | {r['rss_mb']:.0f} | {r['nodes'] or ''} | {note or ''} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _versions() -> str:
    import onnx
    import onnxruntime
    import torch
    return f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}"


if __name__ == "__main__":
    main()

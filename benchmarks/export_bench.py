"""Cold and warm export times and peak RSS of every algorithm's meta_train phase.

    .venv/bin/python benchmarks/export_bench.py [--out benchmarks/export_times.md] [--only maml]

Each configuration runs in a fresh process (so peak RSS is its own, and nothing is warm):
`export_phase(spec, cache_dir=<empty dir>)` including verification in onnxruntime against eager
torch on two input sets (cold), then `export_phase` again from that cache (warm). Wall-clock
times on this machine; they vary with its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (label, PhaseSpec fields): the sinusoid setup of Finn et al. 2017 (K=10, B=25) and Conv4-64
# on 28×28×1, 5-way 1-shot with 15 queries per class, meta-batch 4.
SETUPS = [
    ("sinusoid, sine MLP, K=10, B=25",
     dict(backbone="sine_mlp", way=1, shot=10, query=10, meta_batch=25)),
    ("Conv4-64 28×28×1, 5-way 1-shot, 15 queries, B=4",
     dict(backbone="conv4_64_28x28x1", way=5, shot=1, query=15, meta_batch=4)),
]
INNER_STEPS = (1, 5)

_CHILD = r"""
import json, resource, sys, time
from algorithms.export import PhaseSpec, export_phase
spec = PhaseSpec(**json.loads(sys.argv[1]))
cache = sys.argv[2]
t0 = time.perf_counter()
try:
    model = export_phase(spec, cache_dir=cache)
    error = None
except Exception as e:  # recorded in the table, not hidden
    model, error = None, f"{type(e).__name__}: {str(e)[:160]}"
cold = time.perf_counter() - t0
warm = None
if model is not None:
    t1 = time.perf_counter()
    export_phase(spec, cache_dir=cache)
    warm = time.perf_counter() - t1
print(json.dumps({"cold": cold, "warm": warm, "error": error,
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
    from algorithms.export import PhaseSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "export_times.md"))
    parser.add_argument("--only", default=None, help="comma-separated algorithms")
    args = parser.parse_args()
    algorithms = args.only.split(",") if args.only else sorted(ALGORITHMS)

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

    lines = [
        "# Export times of meta_train (cold and from cache)",
        "",
        f"Produced by `benchmarks/export_bench.py` on {platform.machine()} with "
        f"{_cpus()} CPUs shared with other jobs; wall-clock seconds. Cold = fresh process, "
        "empty cache, trace + ONNX + verification in onnxruntime against eager torch on two "
        "input sets; warm = loading the cached model. Peak RSS of the whole process.",
        "",
        "| setup | algorithm | k | cold s | warm s | peak RSS MB | nodes | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, algorithm, k, r, note in rows:
        if r is None:
            lines.append(f"| {label} | {algorithm} | {k} | | | | | {note} |")
            continue
        warm = f"{r['warm']:.2f}" if r["warm"] is not None else ""
        nodes = r["nodes"] if r["nodes"] is not None else ""
        lines.append(f"| {label} | {algorithm} | {k} | {r['cold']:.1f} | {warm} | "
                     f"{r['rss_mb']:.0f} | {nodes} | {note or ''} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


def _cpus() -> int:
    import os
    return os.cpu_count() or 1


if __name__ == "__main__":
    main()

"""Co-design knobs of the NPU lowering (issue #17) on one meta-training step.

    .venv/bin/python benchmarks/codesign_bench.py [--hw edge-npu] [--no-search]

Graph: MAML Conv4-64, 5-way 1-shot, 15 queries, 5 inner steps, meta-batch 4, meta_train
(exported once and cached under .hwsim-cache, ~30 s the first time). Prints Markdown:

1. every knob alone and the best combination: DRAM traffic, cycles, energy, peak on-chip
   memory, peak DRAM footprint, peak on-chip demand (`Program.memory_demand`: what a schedule with
   unbounded buffers keeps) and MACs added;
2. recomputation per inner step: MACs and busy cycles of each step's recomputation;
3. fused traffic against a published figure (VGG-E's first five conv layers, Alwani et al.,
   MICRO 2016).

The best combination is searched over every value of every knob (precision x fusion x halo x
recompute) and ranked by DRAM traffic, the issue's target; the lowest-energy and the fastest
combinations are named too.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from algorithms.export import PhaseSpec  # noqa: E402
from hwsim import pipeline  # noqa: E402
from hwsim.config import load_hardware, parse_hardware  # noqa: E402

SPEC = PhaseSpec(algorithm="maml", phase="meta_train", backbone="conv4_64_28x28x1", way=5, shot=1, query=15,
                 inner_steps=5, meta_batch=4)

KNOBS_ALONE = [
    ("today: fp32, no fusion, stash all", {}),
    ("precision bf16", {"precision": "bf16"}),
    ("precision fp16", {"precision": "fp16"}),
    ("fusion layer", {"fusion": "layer"}),
    ("fusion depth_first (halo cache)", {"fusion": "depth_first"}),
    ("fusion depth_first (halo recompute)", {"fusion": "depth_first", "halo": "recompute"}),
    ("recompute per_step", {"recompute": "per_step"}),
    ("recompute all", {"recompute": "all"}),
]
# int8 is refused for meta_train (compiler.precision): not part of this graph's space.
SPACE = {"precision": [None, "bf16", "fp16"], "fusion": ["none", "layer", "depth_first"],
         "halo": ["cache", "recompute"], "recompute": ["stash_all", "per_step", "all"]}


def measure(front, hw, options: dict) -> dict:
    run = pipeline.simulate(front, hw, **options)
    r = run.result
    t = r.traffic()
    demand = max((v for points in run.program.memory_demand.values() for _, v in points), default=0)
    return {"dram": t.get("dram.read", 0.0) + t.get("dram.write", 0.0), "cycles": r.cycles, "energy": r.energy_pj,
            "sram": r.peak_memory.get("sram", 0), "dram_peak": r.peak_memory.get("dram", 0), "demand": demand,
            "macs": r.macs, "phases": r.phase_breakdown()}


def label(options: dict) -> str:
    parts = [f"{k}={v}" for k, v in options.items() if v not in (None, "none", "stash_all")
             and not (k == "halo" and (v == "cache" or options.get("fusion", "none") == "none"))]
    return ", ".join(parts) or "today"


def row(name: str, m: dict, base: dict) -> str:
    return (f"| {name} | {m['dram'] / 1e9:.3f} | {m['dram'] / base['dram']:.2f} | {m['cycles']:,.0f} | "
            f"{m['cycles'] / base['cycles']:.2f} | {m['energy'] / 1e6:,.0f} | {m['energy'] / base['energy']:.2f} | "
            f"{m['sram'] / 1024:,.0f} | {m['dram_peak'] / 1e6:,.1f} | {m['demand'] / 1e6:,.1f} | "
            f"{(m['macs'] - base['macs']) / 1e9:+.2f} G ({(m['macs'] - base['macs']) / base['macs']:+.0%}) |")


HEADER = ["| configuration | DRAM GB | × today | cycles | × today | energy µJ | × today | peak on-chip KiB | "
          "peak DRAM MB | peak demand MB | MACs added |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]


def combinations() -> list[dict]:
    out = []
    for p, f, h, r in itertools.product(*SPACE.values()):
        if f != "depth_first" and h != "cache":
            continue   # the halo mode matters where groups span layers (one row band of a conv-bn-relu
            #            group has no halo to share)
        out.append({"precision": p, "fusion": f, "halo": h, "recompute": r})
    return out


def alwani(lines: list[str]) -> None:
    """VGG-E's first five conv layers fused: feature-map bytes against Alwani et al. (MICRO 2016)."""
    from tests.compiler.test_fusion import NPU, vgg_e_first_five

    front = vgg_e_first_five()
    g = front.graph
    weights = sum(t.nbytes for t in g.tensors.values() if t.name.startswith(("w", "b")))
    lines += ["", "### Fused traffic against a published figure", "",
              "VGG-E's first five conv layers (with ReLUs and two pools) on one 224×224 image, fp32. Alwani et al., "
              "\"Fused-Layer CNN Accelerators\", MICRO 2016, abstract: fused, 3.6 MB of feature maps per image "
              "(362 KB on chip; 77 MB layer by layer in their accounting). Feature-map bytes = DRAM bytes − "
              "weights loaded once.", "",
              "| on-chip room for tiles | fusion | feature-map MiB |", "|---:|---|---:|"]
    for room in (362, 1400):
        hw = parse_hardware(NPU.format(kib=(weights + room * 1024) / 1024))
        for fusion in ("none", "depth_first"):
            t = pipeline.simulate(front, hw, fusion=fusion).result.traffic()
            lines.append(f"| {room} KiB + weights | {fusion} | {(t['dram.read'] + t['dram.write'] - weights) / 2**20:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="edge-npu")
    ap.add_argument("--no-search", action="store_true", help="skip the search for the best combination")
    args = ap.parse_args()
    hw = load_hardware(args.hw)
    t0 = time.perf_counter()
    print("[bench] export (cached) and front end", file=sys.stderr, flush=True)
    front = pipeline.prepare(SPEC)
    lines = [f"## Co-design knobs: MAML Conv4-64 5-way 1-shot (15 queries) k=5 B=4 meta_train on {hw.name}", "",
             f"{len(front.graph.nodes):,} nodes, {front.macs / 1e9:.2f} G MACs. Options of `hwsim.pipeline.simulate` "
             "(`precision`, `fusion`, `halo`, `recompute`); × today = ratio to the first row.", "", *HEADER]
    base = measure(front, hw, {})
    results = {}
    for name, options in KNOBS_ALONE:
        print(f"[bench] {name}", file=sys.stderr, flush=True)
        m = base if not options else measure(front, hw, options)
        results[label({**{"precision": None, "fusion": "none", "halo": "cache", "recompute": "stash_all"},
                       **options})] = m
        lines.append(row(name, m, base))
    if not args.no_search:
        for options in combinations():
            key = label(options)
            if key not in results:
                print(f"[bench] {key}", file=sys.stderr, flush=True)
                results[key] = measure(front, hw, options)
        best = min(results, key=lambda k: (results[k]["dram"], results[k]["energy"]))
        lines.append(row(f"**best combination: {best}**", results[best], base))
        greenest = min(results, key=lambda k: results[k]["energy"])
        fastest = min(results, key=lambda k: results[k]["cycles"])
        lines += ["", f"Searched {len(results)} combinations. Least traffic: {best} "
                  f"({results[best]['dram'] / base['dram']:.1%} of today; target ≤ 33.3 %). Least energy: {greenest} "
                  f"({results[greenest]['energy'] / 1e6:,.0f} µJ). Fastest: {fastest} "
                  f"({results[fastest]['cycles']:,.0f} cycles)."]
    fused = results["fusion=depth_first"]
    lines.append(f"Fusion alone (depth_first, fp32): {fused['dram'] / base['dram']:.1%} of today's traffic.")
    lines += ["", "### Recomputation per inner step", "",
              "MACs and busy cycles (compute + transfers, all tasks) of each inner step's recomputation (scope part "
              "`recompute`), against the peak on-chip demand of the meta-training step (stash all: "
              f"{base['demand'] / 1e6:,.1f} MB).", "",
              "| policy | inner step | MACs | busy cycles | peak demand MB |", "|---|---:|---:|---:|---:|"]
    for policy in ("per_step", "all"):
        m = results[f"recompute={policy}"]
        rows = sorted((int(p["phase_part"].split("/")[0].removeprefix("inner")), p) for p in m["phases"]
                      if p["phase_part"].endswith("/recompute"))
        for step, p in rows:
            lines.append(f"| {policy} | {step} | {p['macs'] / 1e6:,.1f} M | "
                         f"{p['compute_busy_cycles'] + p['transfer_busy_cycles']:,.0f} | {m['demand'] / 1e6:,.1f} |")
    alwani(lines)
    lines += ["", f"Measured in {time.perf_counter() - t0:,.0f} s."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Produce SCALE-Sim golden numbers for hwsim's closed-form systolic model.

Runs the real SCALE-Sim 3.0.0 on a fixed list of layers and writes
`tests/data/scalesim/goldens.csv` plus its provenance note `tests/data/scalesim/README.md`.
`tests/compiler/test_systolic.py` checks `compiler.lowering.systolic` against that CSV, so the
tests never need SCALE-Sim installed.

SCALE-Sim lives in its own venv (it needs numpy<2.4; hwsim uses 2.4):

    python3.11 -m venv .venv-peers/scalesim
    .venv-peers/scalesim/bin/pip install scalesim==3.0.0 'numpy<2.4'
    .venv/bin/python benchmarks/peers/scalesim_goldens.py [--jobs 2] [--only ID,ID]

`SCALESIM_PYTHON` overrides the interpreter (default .venv-peers/scalesim/bin/python). Each case
runs in its own process through `scalesim_worker.py`; the wall time recorded per case is SCALE-Sim's
`run_scale` for that one layer, without trace files.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "tests" / "data" / "scalesim"
WORKER = Path(__file__).with_name("scalesim_worker.py")
DEFAULT_PYTHON = str(REPO / ".venv-peers" / "scalesim" / "bin" / "python")

# SRAMs in kB. Under CALC (estimate-bandwidth) mode SCALE-Sim never stalls the array; the size only
# shapes its DRAM traffic estimate. 64 kB matches REFERENCE.md §2's AlexNet conv1 golden.
SRAM_KB = (64, 64, 64)


@dataclass(frozen=True)
class Case:
    case_id: str
    kind: str  # "conv" or "gemm"
    array_rows: int
    array_cols: int
    dataflow: str  # "ws", "os", "is" as SCALE-Sim spells it
    # conv: unpadded input; SCALE-Sim has no padding, so it is given (h + 2·pad) × (w + 2·pad)
    ifmap_h: int = 0
    ifmap_w: int = 0
    filter_h: int = 0
    filter_w: int = 0
    channels: int = 0
    num_filters: int = 0
    stride: int = 1
    pad: int = 0
    # gemm: C[M×N] = A[M×K] · B[K×N]
    gemm_m: int = 0
    gemm_n: int = 0
    gemm_k: int = 0
    bandwidth_mode: str = "CALC"  # CALC = stall-free estimate; USER = fixed DRAM bandwidth
    bandwidth: int = 10  # words/cycle, used in USER mode only
    ifmap_sram_kb: int = SRAM_KB[0]
    filter_sram_kb: int = SRAM_KB[1]
    ofmap_sram_kb: int = SRAM_KB[2]


def conv(case_id, h, r, c, k, stride, pad, array, dataflow, **kw) -> Case:
    return Case(
        case_id, "conv", array[0], array[1], dataflow,
        ifmap_h=h, ifmap_w=h, filter_h=r, filter_w=r, channels=c, num_filters=k,
        stride=stride, pad=pad, **kw,
    )


def gemm(case_id, m, k, n, array, dataflow, **kw) -> Case:
    """A GEMM written M×K×N, the way hwsim's workloads name it."""
    return Case(case_id, "gemm", array[0], array[1], dataflow, gemm_m=m, gemm_n=n, gemm_k=k, **kw)


def _conv4_gemms(batch: int) -> list[tuple[str, int, int, int]]:
    """Forward and backward GEMMs (name, M, K, N) of Conv4-64 on 28×28×1, 3×3 pad 1, 2×2 pool.

    Forward of a conv as GEMM: (n·oh·ow) × (c·r·s) × k. Input gradient: (n·oh·ow) × k × (c·r·s).
    Weight gradient: (c·r·s) × (n·oh·ow) × k.
    """
    out = []
    for layer, (spatial, c) in enumerate([(28, 1), (14, 64), (7, 64), (3, 64)], start=1):
        m, k, n = batch * spatial * spatial, c * 9, 64
        out += [
            (f"conv4_l{layer}_fwd", m, k, n),
            (f"conv4_l{layer}_dx", m, n, k),
            (f"conv4_l{layer}_dw", k, m, n),
        ]
    return out


def cases() -> list[Case]:
    out: list[Case] = [
        # AlexNet (SCALE-Sim's own topology: inputs already padded). conv1 WS on 32×32 is REFERENCE §2.
        conv("alexnet_conv1_32x32_ws", 224, 11, 3, 96, 4, 0, (32, 32), "ws"),
        conv("alexnet_conv1_128x128_os", 224, 11, 3, 96, 4, 0, (128, 128), "os"),
        conv("alexnet_conv1_128x128_is", 224, 11, 3, 96, 4, 0, (128, 128), "is"),
        conv("alexnet_conv2_128x128_ws", 27, 5, 96, 256, 1, 2, (128, 128), "ws"),
        conv("alexnet_conv2_256x256_os", 27, 5, 96, 256, 1, 2, (256, 256), "os"),
        conv("alexnet_conv3_256x256_ws", 13, 3, 256, 384, 1, 1, (256, 256), "ws"),
        conv("alexnet_conv3_128x128_is", 13, 3, 256, 384, 1, 1, (128, 128), "is"),
    ]
    # Conv4-64 forward, one image (SCALE-Sim has no batch): 28→14→7→3 with 3×3 pad 1.
    conv4 = [(28, 1), (14, 64), (7, 64), (3, 64)]
    for layer, (spatial, c) in enumerate(conv4, start=1):
        for array, df in [((16, 16), "ws"), ((16, 16), "os"), ((16, 16), "is"), ((12, 14), "ws")]:
            tag = f"{array[0]}x{array[1]}_{df}"
            out.append(conv(f"conv4_l{layer}_{tag}", spatial, 3, c, 64, 1, 1, array, df))
    out.append(conv("conv4_l2_8x8_os", 14, 3, 64, 64, 1, 1, (8, 8), "os"))
    out.append(conv("conv4_l3_12x14_is", 7, 3, 64, 64, 1, 1, (12, 14), "is"))
    # Conv4 forward and backward GEMMs, batch 5, rotating over arrays and dataflows.
    arrays = [(32, 32), (16, 16), (12, 14), (8, 8), (128, 128)]
    for i, (name, m, k, n) in enumerate(_conv4_gemms(batch=5)):
        array = arrays[i % len(arrays)]
        df = ("ws", "os", "is")[i % 3]
        out.append(gemm(f"{name}_b5_{array[0]}x{array[1]}_{df}", m, k, n, array, df))
    # Sine MLP 1-40-40-1, K=10 support points: the three forward GEMMs, every dataflow.
    for m, k, n in [(10, 1, 40), (10, 40, 40), (10, 40, 1)]:
        for df in ("ws", "os", "is"):
            out.append(gemm(f"sine_{m}x{k}x{n}_8x8_{df}", m, k, n, (8, 8), df))
    out.append(gemm("sine_10x40x40_256x256_ws", 10, 40, 40, (256, 256), "ws"))
    # Odd shapes: primes, ones, shapes just over a fold boundary.
    for m, k, n, array, df in [
        (1, 1, 1, (8, 8), "ws"),
        (7, 13, 5, (8, 8), "os"),
        (33, 65, 17, (16, 16), "is"),
        (100, 3, 33, (12, 14), "os"),
        (129, 257, 31, (32, 32), "ws"),
        (17, 9, 300, (12, 14), "is"),
        (1000, 7, 3, (256, 256), "os"),
    ]:
        out.append(gemm(f"odd_{m}x{k}x{n}_{array[0]}x{array[1]}_{df}", m, k, n, array, df))
    # USER bandwidth: DRAM at a fixed number of words/cycle. With 64 kB SRAMs these operands fit
    # and SCALE-Sim prefetches them before cycle 0 (no stall, only a longer "incl. prefetch"
    # count); with 8 kB SRAMs the array stalls on refills.
    user = dict(bandwidth_mode="USER", bandwidth=10)
    small = dict(ifmap_sram_kb=8, filter_sram_kb=8, ofmap_sram_kb=8)
    for df in ("ws", "os", "is"):
        out.append(gemm(f"gemm_128x256x64_32x32_{df}_bw10", 128, 256, 64, (32, 32), df, **user))
        out.append(gemm(f"gemm_128x256x64_32x32_{df}_bw10_8kb", 128, 256, 64, (32, 32), df,
                        **user, **small))
        out.append(conv(f"conv4_l2_16x16_{df}_bw10_8kb", 14, 3, 64, 64, 1, 1, (16, 16), df,
                        **user, **small))
    out.append(gemm("sine_10x40x40_8x8_ws_bw4", 10, 40, 40, (8, 8), "ws",
                    bandwidth_mode="USER", bandwidth=4))
    out += _user_bandwidth_cases()
    ids = [c.case_id for c in out]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return out


def _user_bandwidth_cases() -> list[Case]:
    """USER-bandwidth cases whose SRAMs are small enough, or whose DRAM is slow enough, to stall.

    hwsim's total cycles are compared against these (tests/compiler/test_validation_peers.py,
    docs/validation.md). They sweep the two things SCALE-Sim's stall model depends on: how many
    times an operand is refetched (SRAM window vs operand size) and the words/cycle per operand.
    """
    out: list[Case] = []
    user = dict(bandwidth_mode="USER")

    def kb(size: int) -> dict:
        return dict(ifmap_sram_kb=size, filter_sram_kb=size, ofmap_sram_kb=size)

    # Operands fit the 64 kB SRAMs; only the DRAM rate limits (prefetch, then drain of the ofmap).
    for df in ("ws", "os", "is"):
        for bw in (1, 4):
            out.append(gemm(f"gemm_128x256x64_32x32_{df}_bw{bw}", 128, 256, 64, (32, 32), df,
                            bandwidth=bw, **user))
    # Conv4-64 forward layers on 16×16 with SRAMs from 4 kB to 32 kB.
    conv4 = [(28, 1), (14, 64), (7, 64), (3, 64)]
    for layer, (spatial, c) in enumerate(conv4, start=1):
        for df, size, bw in [("ws", 4, 4), ("os", 16, 2), ("is", 32, 10)]:
            out.append(conv(f"conv4_l{layer}_16x16_{df}_bw{bw}_{size}kb", spatial, 3, c, 64, 1, 1,
                            (16, 16), df, bandwidth=bw, **user, **kb(size)))
    # Conv4 backward GEMMs (batch 5) and the sine MLP with slow DRAM.
    for name, m, k, n in _conv4_gemms(batch=5):
        if name.endswith(("l2_dx", "l3_dw", "l4_fwd")):
            for df in ("ws", "os"):
                out.append(gemm(f"{name}_b5_32x32_{df}_bw4_16kb", m, k, n, (32, 32), df,
                                bandwidth=4, **user, **kb(16)))
    for df in ("ws", "os", "is"):
        out.append(gemm(f"sine_10x40x40_8x8_{df}_bw1", 10, 40, 40, (8, 8), df, bandwidth=1,
                        **user))
    # REFERENCE.md §2's SCALE-Sim v3 GEMM goldens (USER bandwidth 10, 64 kB, 32×32). Their cycle
    # counts fit a GEMM of M=256, K=256, N=128 (compute = folds × fold duration), not the
    # 128×64×256 they are labelled with; both are run so the note can be checked.
    for df in ("ws", "os", "is"):
        out.append(gemm(f"ref_gemm_256x256x128_32x32_{df}_bw10", 256, 256, 128, (32, 32), df,
                        bandwidth=10, **user))
    return out


# ---------------------------------------------------------------------------------------------
# Writing SCALE-Sim's inputs


def _config_text(case: Case) -> str:
    # In USER mode SCALE-Sim takes the ofmap DRAM bandwidth from [architecture_presets] Bandwidth
    # but the ifmap and filter DRAM bandwidths from [layout] Ifmap/FilterSRAMBankBandwidth; all
    # three are set to the same value so "bandwidth" means one thing.
    bw = case.bandwidth
    return f"""[general]
run_name = case

[run_presets]
InterfaceBandwidth = {case.bandwidth_mode}
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {case.array_rows}
ArrayWidth = {case.array_cols}
IfmapSramSzkB = {case.ifmap_sram_kb}
FilterSramSzkB = {case.filter_sram_kb}
OfmapSramSzkB = {case.ofmap_sram_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {bw}
Dataflow = {case.dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = {bw}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = {bw}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
"""


def _topology_text(case: Case) -> str:
    # Layer names must not contain "DP": SCALE-Sim treats such a layer as depthwise.
    if case.kind == "gemm":
        return "Layer, M, N, K,\nL0, %d, %d, %d,\n" % (case.gemm_m, case.gemm_n, case.gemm_k)
    h = case.ifmap_h + 2 * case.pad
    w = case.ifmap_w + 2 * case.pad
    return (
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\n"
        f"L0, {h}, {w}, {case.filter_h}, {case.filter_w}, {case.channels}, "
        f"{case.num_filters}, {case.stride},\n"
    )


def run_case(case: Case, python: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="scalesim_") as tmp:
        d = Path(tmp)
        (d / "kind").write_text(case.kind)
        (d / "scale.cfg").write_text(_config_text(case))
        (d / "topology.csv").write_text(_topology_text(case))
        (d / "layout.csv").write_text("Layer,\n")  # read even when custom layouts are off
        start = time.perf_counter()
        proc = subprocess.run(
            [python, str(WORKER), str(d)], capture_output=True, text=True, cwd=d, check=False,
        )
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{case.case_id}: SCALE-Sim failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = elapsed
    return result


# ---------------------------------------------------------------------------------------------
# Output

OUTPUT_COLUMNS = [
    "total_cycles_incl_prefetch", "total_cycles", "stall_cycles", "overall_util_pct",
    "mapping_efficiency_pct", "compute_util_pct", "sram_ifmap_reads", "sram_filter_reads",
    "sram_ofmap_writes", "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes",
    "wall_s", "process_wall_s",
]


def _scalesim_versions(python: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, sys, json;"
        "print(json.dumps({p: m.version(p) for p in ('scalesim', 'numpy')} | "
        "{'python': sys.version.split()[0]}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run in parallel (default 2)")
    parser.add_argument("--only", default="", help="comma-separated case ids (no files written)")
    parser.add_argument("--missing", action="store_true",
                        help="run only the cases not yet in goldens.csv and keep the rows already there")
    args = parser.parse_args(argv)
    python = os.environ.get("SCALESIM_PYTHON", DEFAULT_PYTHON)
    if not Path(python).exists():
        print(f"error: SCALE-Sim interpreter not found: {python} (set SCALESIM_PYTHON)",
              file=sys.stderr)
        return 2
    selected = cases()
    if args.only:
        wanted = set(args.only.split(","))
        selected = [c for c in selected if c.case_id in wanted]
    kept: dict[str, dict] = {}
    if args.missing and (OUT_DIR / "goldens.csv").exists():
        with open(OUT_DIR / "goldens.csv", newline="") as f:
            kept = {row["case_id"]: row for row in csv.DictReader(f)}
    to_run = [c for c in selected if c.case_id not in kept]

    def one(case: Case) -> tuple[Case, dict]:
        result = run_case(case, python)
        print(f"{case.case_id:45s} cycles={result['total_cycles']:>9} "
              f"stall={result['stall_cycles']:>7} wall={result['wall_s']:.2f}s", flush=True)
        return case, result

    start = time.perf_counter()
    # Longest first so the two workers finish together.
    order = sorted(to_run, key=_rough_cost, reverse=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = dict((c.case_id, r) for c, r in pool.map(one, order))
    total = time.perf_counter() - start
    if args.only:
        return 0
    done.update(kept)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUT_DIR / "goldens.csv", "w", newline="") as f:
        writer = csv.writer(f)
        case_columns = list(asdict(selected[0]).keys())
        writer.writerow(case_columns + OUTPUT_COLUMNS)
        for case in selected:
            r = done[case.case_id]
            outputs = [  # rows kept from an earlier run are already strings
                repr(r[k]) if isinstance(r[k], float) else r[k] for k in OUTPUT_COLUMNS
            ]
            writer.writerow(list(asdict(case).values()) + outputs)
    _write_readme(_scalesim_versions(python), len(selected), len(to_run), total, args.jobs)
    print(f"{len(to_run)} of {len(selected)} cases run in {total:.1f} s -> {OUT_DIR / 'goldens.csv'}")
    return 0


def _rough_cost(case: Case) -> int:
    """Rows of SCALE-Sim's demand matrices × array width: what its per-cycle loop walks."""
    if case.kind == "gemm":
        m, n, k = case.gemm_m, case.gemm_n, case.gemm_k
    else:
        h = case.ifmap_h + 2 * case.pad
        oh = (h - case.filter_h) // case.stride + 1
        m, n, k = oh * oh, case.num_filters, case.filter_h * case.filter_w * case.channels
    rows, cols = case.array_rows, case.array_cols
    spatial_r, spatial_c, t = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}[case.dataflow]
    folds = -(-spatial_r // rows) * -(-spatial_c // cols)
    return folds * (2 * rows + cols + t) * (rows + cols)


def _write_readme(versions: dict[str, str], n_cases: int, n_run: int, total_s: float,
                  jobs: int) -> None:
    today = datetime.date.today().isoformat()
    if n_run == n_cases:
        how = f"    .venv/bin/python benchmarks/peers/scalesim_goldens.py --jobs {jobs}"
        what = f"all {n_cases} cases"
    else:
        how = f"    .venv/bin/python benchmarks/peers/scalesim_goldens.py --jobs {jobs} --missing"
        what = (f"{n_run} new cases; the other {n_cases - n_run} rows were kept from earlier runs "
                "of the same script and SCALE-Sim version")
    (OUT_DIR / "README.md").write_text(f"""# SCALE-Sim goldens

`goldens.csv` holds what the real SCALE-Sim reported for {n_cases} layers.
`tests/compiler/test_systolic.py` checks hwsim's closed-form systolic model
(`compiler/lowering/systolic.py`) against it; `tests/compiler/test_validation_peers.py` checks the
whole pipeline (one-layer ONNX → compile → simulate), including the USER-bandwidth cases that
stall (see `docs/validation.md`).

Last run {today} ({what}):

{how}

with scalesim {versions['scalesim']}, numpy {versions['numpy']}, Python {versions['python']}
(SCALE-Sim in its own venv, see `benchmarks/peers/README.md`); {total_s:.0f} s wall on 2 cores.

Each row is one layer, run alone through SCALE-Sim's Python API (`scalesim.scale_sim.scalesim`,
`save_disk_space=True`, so no trace files) and read back from its `COMPUTE_REPORT.csv` and
`DETAILED_ACCESS_REPORT.csv`.

Columns:
- `kind`: `conv` (SCALE-Sim conv topology row) or `gemm` (its M, N, K row).
- conv: `ifmap_h`, `ifmap_w` are the *unpadded* input; SCALE-Sim has no padding and was given
  `(ifmap_h + 2·pad) × (ifmap_w + 2·pad)`. `stride` applies to both axes. One image: SCALE-Sim
  has no batch dimension.
- gemm: C[`gemm_m`×`gemm_n`] = A[`gemm_m`×`gemm_k`]·B[`gemm_k`×`gemm_n`].
- `dataflow`: `ws`, `os`, `is`. SRAM sizes in kB (ifmap, filter, ofmap), 1-byte words.
- `bandwidth_mode`: `CALC` = SCALE-Sim estimates the DRAM bandwidth it needs and the array never
  stalls; `USER` = DRAM bandwidth fixed at `bandwidth` words/cycle for ifmap, filter and ofmap
  (SCALE-Sim reads the ofmap value from `[architecture_presets] Bandwidth` and the ifmap/filter
  values from `[layout] IfmapSRAMBankBandwidth`/`FilterSRAMBankBandwidth`; all were set equal).
- Outputs, as SCALE-Sim names them: `total_cycles_incl_prefetch`, `total_cycles`,
  `stall_cycles`, `overall_util_pct`, `mapping_efficiency_pct`, `compute_util_pct`, SRAM
  `ifmap/filter` reads and `ofmap` writes, DRAM `ifmap/filter` reads and `ofmap` writes.
- `wall_s`: seconds SCALE-Sim's `run_scale` took for the layer; `process_wall_s` adds the
  interpreter start and imports. Both measured with two cases running at once on a 2-core machine.
""")


if __name__ == "__main__":
    sys.exit(main())

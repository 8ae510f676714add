"""Produce ZigZag golden numbers (DRAM traffic, energy per memory level, latency) for hwsim.

Runs the real ZigZag (zigzag-dse 3.9.1) on a fixed list of layers and writes
`tests/data/zigzag/goldens.csv` plus its provenance note `tests/data/zigzag/README.md`.
`tests/compiler/test_validation_peers.py` compares hwsim's DRAM traffic and energy against that
CSV, so the tests never need ZigZag installed.

ZigZag lives in its own venv (its 3.9.1 wheel imports `six` without declaring it):

    python3.11 -m venv .venv-peers/zigzag
    .venv-peers/zigzag/bin/pip install zigzag-dse==3.9.1 six
    .venv/bin/python benchmarks/peers/zigzag_goldens.py [--jobs 1] [--only ID,ID]

`ZIGZAG_PYTHON` overrides the interpreter (default .venv-peers/zigzag/bin/python). The cases run
inside `zigzag_worker.py` under ZigZag's interpreter.

The mirrored hardware (hwsim ↔ ZigZag): a rows×cols weight-stationary array; in ZigZag a weight
and an accumulator register per PE, one global buffer (GB) of `gb_bytes` for all operands, and
DRAM at `dram_bytes_per_cycle`; in hwsim the same array, one SRAM of `gb_bytes`, the same DRAM
rate. The energy constants are hwsim's own `horowitz45` table for that config (fp32 MAC, SRAM of
that size, DRAM), written into each row so the test prices hwsim with exactly those numbers.
hwsim has no PE-register level: the registers cost 0 pJ in ZigZag, and their access counts are
recorded but not compared.
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
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

OUT_DIR = REPO / "tests" / "data" / "zigzag"
WORKER = Path(__file__).with_name("zigzag_worker.py")
DEFAULT_PYTHON = str(REPO / ".venv-peers" / "zigzag" / "bin" / "python")
DRAM_BYTES_PER_CYCLE = 16     # both tools; ZigZag's latency is recorded, not compared
OPT, LPF_LIMIT = "energy", 6  # ZigZag searches the temporal mapping of least energy


@dataclass(frozen=True)
class Case:
    case_id: str
    kind: str            # conv or gemm
    array_rows: int
    array_cols: int
    gb_bytes: int
    # conv (unpadded input h×h, symmetric pad, square filter)
    batch: int = 1
    ifmap_h: int = 0
    filter_h: int = 0
    channels: int = 0
    num_filters: int = 0
    stride: int = 1
    pad: int = 0
    # gemm: C[M×N] = A[M×K]·B[K×N], B a weight
    gemm_m: int = 0
    gemm_n: int = 0
    gemm_k: int = 0
    dram_bytes_per_cycle: int = DRAM_BYTES_PER_CYCLE


def conv(case_id, h, r, c, k, stride, pad, array, kib) -> Case:
    return Case(case_id, "conv", array[0], array[1], kib * 1024, ifmap_h=h, filter_h=r, channels=c,
                num_filters=k, stride=stride, pad=pad)


def gemm(case_id, m, k, n, array, kib) -> Case:
    return Case(case_id, "gemm", array[0], array[1], kib * 1024, gemm_m=m, gemm_n=n, gemm_k=k)


def cases() -> list[Case]:
    out = [
        # AlexNet (227×227 input so that ONNX and the original network agree on 55×55 outputs).
        conv("alexnet_conv1_32x32_512k", 227, 11, 3, 96, 4, 0, (32, 32), 512),
        conv("alexnet_conv1_256x256_2m", 227, 11, 3, 96, 4, 0, (256, 256), 2048),
        conv("alexnet_conv2_64x64_2m", 27, 5, 96, 256, 1, 2, (64, 64), 2048),
        conv("alexnet_conv2_128x128_512k", 27, 5, 96, 256, 1, 2, (128, 128), 512),
        conv("alexnet_conv3_128x128_2m", 13, 3, 256, 384, 1, 1, (128, 128), 2048),
        conv("alexnet_conv4_256x256_4m", 13, 3, 384, 384, 1, 1, (256, 256), 4096),
        conv("alexnet_conv5_32x32_2m", 13, 3, 384, 256, 1, 1, (32, 32), 2048),
    ]
    conv4 = [(28, 1), (14, 64), (7, 64), (3, 64)]
    for layer, (spatial, c) in enumerate(conv4, start=1):
        for array, kib in [((8, 8), 64), ((16, 16), 256)]:
            out.append(conv(f"conv4_l{layer}_{array[0]}x{array[1]}_{kib}k", spatial, 3, c, 64, 1, 1,
                            array, kib))
    # Conv4 forward, input-gradient and weight-gradient GEMMs at batch 5.
    sizes = [(32, 32), (16, 16), (64, 64)]
    for i, (name, m, k, n) in enumerate(_conv4_gemms(batch=5)):
        array = sizes[i % len(sizes)]
        out.append(gemm(f"{name}_b5_{array[0]}x{array[1]}_256k", m, k, n, array, 256))
    for m, k, n in [(10, 1, 40), (10, 40, 40), (10, 40, 1)]:
        out.append(gemm(f"sine_{m}x{k}x{n}_8x8_16k", m, k, n, (8, 8), 16))
    ids = [c.case_id for c in out]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return out


def _conv4_gemms(batch: int) -> list[tuple[str, int, int, int]]:
    """(name, M, K, N) of the forward, input-gradient and weight-gradient GEMMs of Conv4-64 on
    28×28×1 (3×3 pad 1, 2×2 pool): forward (n·oh·ow)×(c·9)×64, dx (n·oh·ow)×64×(c·9),
    dw (c·9)×(n·oh·ow)×64."""
    out = []
    for layer, (spatial, c) in enumerate([(28, 1), (14, 64), (7, 64), (3, 64)], start=1):
        m, k, n = batch * spatial * spatial, c * 9, 64
        out += [(f"conv4_l{layer}_fwd", m, k, n), (f"conv4_l{layer}_dx", m, n, k),
                (f"conv4_l{layer}_dw", k, m, n)]
    return out


def energy_constants(case: Case) -> dict[str, float]:
    """hwsim's own prices for the mirrored hardware (pJ per MAC / per byte)."""
    from hwsim.energy import energy_table

    table = energy_table(mirror(case).hardware())
    return {"mac_pj": table["mac.float32"].pj, "gb_pj_per_byte": table["sram.read"].pj,
            "gb_write_pj_per_byte": table["sram.write"].pj,
            "dram_pj_per_byte": table["dram.read"].pj,
            "dram_write_pj_per_byte": table["dram.write"].pj, "rf_pj_per_byte": 0.0}


def mirror(case: Case):
    from benchmarks.peers.mirror import Mirror

    return Mirror(case.array_rows, case.array_cols, "WS", sram_bytes=case.gb_bytes,
                  dram_bytes_per_cycle=case.dram_bytes_per_cycle)


def gb_bytes_per_cycle(case: Case) -> int:
    """GB port width, wide enough never to be ZigZag's bottleneck (a row and a column of
    operands in and out per cycle, fp32)."""
    return 4 * 2 * (case.array_rows + case.array_cols)


OUTPUT_COLUMNS_HEAD = [
    "mac_pj", "gb_pj_per_byte", "dram_pj_per_byte", "gb_bytes_per_cycle",
    "latency_total", "latency_compute_and_stall", "ideal_temporal_cycles", "ideal_cycles",
    "onloading_cycles", "offloading_cycles", "energy_total_pj", "mac_energy_pj", "mem_energy_pj",
]
LEVELS = {"W": ["rf", "gb", "dram"], "I": ["gb", "dram"], "O": ["rf", "gb", "dram"]}
DIRECTIONS = ["rd_low", "wr_low", "rd_high", "wr_high"]
OUTPUT_COLUMNS = OUTPUT_COLUMNS_HEAD + [
    f"{op}_{lv}_{what}" for op, lvs in LEVELS.items() for lv in lvs
    for what in ["energy_pj"] + [f"{d}_bytes" for d in DIRECTIONS]
] + ["wall_s", "temporal_mapping", "spatial_mapping"]


def run(selected: list[Case], python: str, jobs: int) -> dict[str, dict]:
    specs = []
    for case in selected:
        e = energy_constants(case)
        if e["gb_write_pj_per_byte"] != e["gb_pj_per_byte"] or \
                e["dram_write_pj_per_byte"] != e["dram_pj_per_byte"]:
            raise SystemExit("the mirror assumes equal read and write prices per level")
        specs.append({**asdict(case), **e, "gb_bytes_per_cycle": gb_bytes_per_cycle(case),
                      "opt": OPT, "lpf_limit": LPF_LIMIT})
    specs.append({"case_id": "zigzag_regression_gemm_l1"})
    chunks = [specs[i::jobs] for i in range(jobs)]
    procs = []
    with tempfile.TemporaryDirectory(prefix="zigzag_cases_") as tmp:
        for i, chunk in enumerate(chunks):
            path = Path(tmp) / f"cases{i}.json"
            path.write_text(json.dumps(chunk))
            procs.append(subprocess.Popen([python, str(WORKER), str(path)], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, cwd=tmp))
        results: dict[str, dict] = {}
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"ZigZag worker failed:\n{err[-3000:]}")
            for line in out.splitlines():
                if line.startswith("{"):
                    r = json.loads(line)
                    results[r["case_id"]] = r
                    print(f"{r['case_id']:40s} latency={r['latency_total']:>12,.0f} "
                          f"energy={r['energy_total_pj']:>16,.1f} pJ wall={r['wall_s']:.2f}s")
    by_id = {s["case_id"]: s for s in specs}
    for cid, r in results.items():
        for k in ("mac_pj", "gb_pj_per_byte", "dram_pj_per_byte", "gb_bytes_per_cycle"):
            if k in by_id[cid]:
                r[k] = by_id[cid][k]
    return results


def _versions(python: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, sys, json;"
            "print(json.dumps({p: m.version(p) for p in ('zigzag-dse', 'numpy', 'onnx')} | "
            "{'python': sys.version.split()[0]}))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--only", default="", help="comma-separated case ids (no files written)")
    args = parser.parse_args(argv)
    python = os.environ.get("ZIGZAG_PYTHON", DEFAULT_PYTHON)
    if not Path(python).exists():
        print(f"error: ZigZag interpreter not found: {python} (set ZIGZAG_PYTHON)", file=sys.stderr)
        return 2
    selected = cases()
    if args.only:
        wanted = set(args.only.split(","))
        selected = [c for c in selected if c.case_id in wanted]
    start = time.perf_counter()
    results = run(selected, python, max(1, args.jobs))
    total = time.perf_counter() - start
    if args.only:
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUT_DIR / "goldens.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(asdict(selected[0])) + OUTPUT_COLUMNS)
        for case in selected:
            r = results[case.case_id]
            writer.writerow(list(asdict(case).values()) + [r.get(k, "") for k in OUTPUT_COLUMNS])
    reg = results["zigzag_regression_gemm_l1"]
    _write_readme(_versions(python), len(selected), total, args.jobs, reg)
    print(f"{len(selected)} cases in {total:.1f} s -> {OUT_DIR / 'goldens.csv'}")
    return 0


def _write_readme(v: dict[str, str], n: int, total_s: float, jobs: int, reg: dict) -> None:
    today = datetime.date.today().isoformat()
    (OUT_DIR / "README.md").write_text(f"""# ZigZag goldens

`goldens.csv` holds what the real ZigZag reported for {n} layers;
`tests/compiler/test_validation_peers.py` compares hwsim's DRAM traffic, SRAM accesses and energy
against it (see `docs/validation.md` for the comparison and every systematic difference).

Produced {today} by

    .venv/bin/python benchmarks/peers/zigzag_goldens.py --jobs {jobs}

with zigzag-dse {v['zigzag-dse']}, numpy {v['numpy']}, onnx {v['onnx']}, Python {v['python']} (ZigZag in its
own venv, see `benchmarks/peers/README.md`); {total_s:.0f} s wall, {jobs} worker process(es) on a
shared 2-core machine.

ZigZag's own regression, re-run in the same session (its `test_gemm_l1`: GEMM 128×128×128, W/I
8 bit, O 32 bit, on the shipped 8×8×8 `gemm_l1` accelerator, 0.04 pJ/MAC, `lpf_limit=3`):
{reg['energy_total_pj']:,.2f} pJ, {reg['latency_total']:,.0f} cycles (REFERENCE.md §2: 511,349.76 pJ, 8,191 cycles).
Its equation must be `O[d0][d1]+=I[d0][d2]*W[d2][d1]`; with the reduction on d1 the shipped
mapping unrolls the wrong loop and the numbers differ.

How a case is run (`benchmarks/peers/zigzag_worker.py`): the layer as a ZigZag workload dict
(fp32: every operand precision 32 bits; conv padding as ZigZag's `padding`), an accelerator YAML
(rows×cols MACs; per-PE weight and accumulator registers; one global buffer `gb` of `gb_bytes`
holding I, W and O; DRAM), and a mapping YAML fixing the spatial mapping of a weight-stationary
array (output channels K over the columns, input channels C over the rows); the temporal
mapping is searched by LOMA (`lpf_limit={LPF_LIMIT}`, `opt="{OPT}"`).
`zigzag.api.get_hardware_performance_zigzag` is called once per case; the numbers are read from
the returned cost-model evaluation.

Columns:
- Case: `kind` (`conv`/`gemm`), `array_rows`×`array_cols`, `gb_bytes`; conv `batch`, unpadded
  input `ifmap_h` (square), `filter_h`, `channels`, `num_filters`, `stride`, `pad`; GEMM
  C[`gemm_m`×`gemm_n`] = A[`gemm_m`×`gemm_k`]·B[`gemm_k`×`gemm_n`] with B the weight;
  `dram_bytes_per_cycle`, `gb_bytes_per_cycle` (port widths).
- Energy constants given to ZigZag and to hwsim alike: `mac_pj` (per MAC),
  `gb_pj_per_byte`, `dram_pj_per_byte` (read = write). They are hwsim's `horowitz45` prices for the
  mirrored config at generation time; ZigZag's per-access cost is the per-byte price × port width.
  The PE registers cost 0 (hwsim has no register level).
- ZigZag's results: `latency_total` (its `latency_total2`: computation + stalls + on/off-loading
  + systolic drain), `latency_compute_and_stall` (`latency_total0`), `ideal_temporal_cycles`,
  `ideal_cycles`, `onloading_cycles`, `offloading_cycles`; `energy_total_pj`, `mac_energy_pj`,
  `mem_energy_pj`.
- Per operand (`W` weight, `I` input, `O` output) and level (`rf`, `gb`, `dram`): `..._energy_pj`
  and bytes moved in each of ZigZag's four directions — `rd_low` read out to the level below,
  `wr_high` written in from the level above, `wr_low` written in from below (outputs and
  partial sums coming up), `rd_high` read out to the level above (partial sums going back down
  is `rd_low` of O). Bytes = ZigZag's access count × port width / 8 (every port's minimum width is
  one 32-bit element, so ZigZag's rounding never applies).
- `wall_s`: seconds of `get_hardware_performance_zigzag` for the case (mapping search included).
- `temporal_mapping`, `spatial_mapping`: the mapping ZigZag chose, as it prints them.
""")


if __name__ == "__main__":
    sys.exit(main())

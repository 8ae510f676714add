"""Closed-form cost of a GEMM on a systolic array, with SCALE-Sim's fold structure.

SCALE-Sim 3.0.0 (Samajdar et al., "A Systematic Methodology for Characterizing Scalability of DNN
Accelerators using SCALE-Sim", ISPASS 2020) simulates a layer cycle by cycle; in its stall-free
mode its cycle count and access counts are closed forms of the fold structure. This module states
those forms, so hwsim and SCALE-Sim agree layer by layer (checked against the real tool in
`tests/compiler/test_systolic.py`, goldens in `tests/data/scalesim/`). Nothing here loops per
cycle or per fold.

Terms, as SCALE-Sim uses them for a layer seen as a GEMM C[Sr×Sc] = A[Sr×T]·B[T×Sc]:
  Sr = output pixels (ofmap rows, M), Sc = filters (N), T = reduction / window size (K).

Each dataflow pins one operand in the PEs, spreads two GEMM dimensions over the array's rows
and columns, and streams the third through it (SCALE-Sim's `compute/systolic_compute_*.py`):

  dataflow  pinned   array rows ←  array cols ←  streamed   fold duration (cycles)
  WS        filter   T (K)         Sc (N)        Sr (M)     2·rows + cols + Sr − 2
  OS        ofmap    Sr (M)        Sc (N)        T (K)      rows + cols + T − 2
  IS        ifmap    T (K)         Sr (M)        Sc (N)     2·rows + cols + Sc − 2

(WS and IS spend `rows` cycles loading the pinned operand, OS none; every fold then streams its
operand, fills the array's skew and drains; folds do not overlap.) With
row_folds = ⌈dim_rows/rows⌉ and col_folds = ⌈dim_cols/cols⌉, folds = row_folds·col_folds.

`cycles` counts cycles: cycles = folds · fold_duration (AlexNet conv1, WS, 32×32: 36·3119 =
112,284). SCALE-Sim's "Total Cycles" is the 0-based index of the last busy cycle, one less
(112,283); `SystolicCost.scalesim_total_cycles` gives that number for exact comparison. The count
is the convention here because the index is not a duration: on a 1×1 OS array SCALE-Sim reports
1 cycle for a 2-MAC GEMM (200 % utilization) and divides by zero on a 1-MAC one.

SRAM element counts, as SCALE-Sim counts them (each operand element read once per fold that
uses it; the ofmap written once per row fold, i.e. once per partial sum):

  WS  ifmap reads Sr·T·col_folds   filter reads T·Sc              ofmap writes Sr·Sc·row_folds
  OS  ifmap reads Sr·T·col_folds   filter reads T·Sc·row_folds    ofmap writes Sr·Sc + folds·(rows+cols)
  IS  ifmap reads Sr·T             filter reads T·Sc·col_folds    ofmap writes Sr·Sc·row_folds

The OS ofmap count includes SCALE-Sim's extra `rows + cols` per fold (it adds the shape of each
fold's output tile to the count, a quirk kept here for agreement). SCALE-Sim counts no ofmap
SRAM reads: WS/IS partial sums of later row folds are written again rather than read back and
accumulated, so `ofmap_sram_reads` is 0 and `ofmap_sram_writes` carries the partial-sum traffic.

Batch: SCALE-Sim has no batch dimension. A batched GEMM's batch is part of Sr (M); a conv's
batch multiplies the output pixels, Sr = n·oh·ow (see `conv_to_gemm`). Groups (depthwise
included) are `repeats` independent GEMMs of the per-group shape, run back to back.

Not captured here (see `tests/data/scalesim/README.md` and `benchmarks/peers/README.md`):
stalls and DRAM traffic when DRAM bandwidth is fixed (SCALE-Sim's USER mode; restated per fold
in `benchmarks/peers/scalesim_model.py`), SRAM bank conflicts with custom layouts, sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

DATAFLOWS = ("WS", "OS", "IS")


@dataclass(frozen=True)
class SystolicCost:
    cycles: int               # compute cycles of the layer, stall-free (SCALE-Sim's total + 1)
    row_folds: int
    col_folds: int
    mapping_efficiency: float  # fraction of PEs holding useful operands, averaged over folds
    utilization: float        # useful MACs / (rows·cols·cycles), always <= 1
    ifmap_sram_reads: int     # element counts, as SCALE-Sim counts them
    filter_sram_reads: int
    ofmap_sram_writes: int
    ofmap_sram_reads: int     # partial-sum read-backs; SCALE-Sim counts none
    cycles_per_fold: int      # duration of one fold; cycles = folds·cycles_per_fold

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def scalesim_total_cycles(self) -> int:
        """SCALE-Sim's stall-free "Total Cycles": the index of the last busy cycle."""
        return self.cycles - 1


@lru_cache(maxsize=65536)
def gemm_cost(sr: int, sc: int, t: int, rows: int, cols: int, dataflow: str) -> SystolicCost:
    """Cost of C[sr×sc] = A[sr×t]·B[t×sc] on a rows×cols array, stall-free.

    `dataflow` is "WS", "OS" or "IS" (case-insensitive).
    """
    _check_positive(sr=sr, sc=sc, t=t, rows=rows, cols=cols)
    df = normalise_dataflow(dataflow)
    on_rows, on_cols, streamed = _spatial_mapping(sr, sc, t, df)
    row_folds = -(-on_rows // rows)
    col_folds = -(-on_cols // cols)
    folds = row_folds * col_folds
    per_fold = _fold_cycles(rows, cols, streamed, df)
    cycles = folds * per_fold
    pes = rows * cols
    macs = sr * sc * t
    # Summed over folds, the PEs in use add up to on_rows·on_cols: the average is closed form.
    mapping_efficiency = on_rows * on_cols / (folds * pes)

    if df == "WS":
        ifmap, filt, ofmap = sr * t * col_folds, t * sc, sr * sc * row_folds
    elif df == "OS":
        ifmap, filt = sr * t * col_folds, t * sc * row_folds
        ofmap = sr * sc + folds * (rows + cols)
    else:  # IS
        ifmap, filt, ofmap = sr * t, t * sc * col_folds, sr * sc * row_folds
    return SystolicCost(
        cycles=cycles,
        row_folds=row_folds,
        col_folds=col_folds,
        mapping_efficiency=mapping_efficiency,
        utilization=macs / (pes * cycles),
        ifmap_sram_reads=ifmap,
        filter_sram_reads=filt,
        ofmap_sram_writes=ofmap,
        ofmap_sram_reads=0,
        cycles_per_fold=per_fold,
    )


def scalesim_compute_utilization(sr: int, sc: int, t: int, rows: int, cols: int,
                                 dataflow: str) -> float:
    """SCALE-Sim's reported "Compute Util %" / 100, which is not `utilization`.

    SCALE-Sim averages, over folds, useful MACs / (rows·cols·d) with d taken from the shape of one
    operand's per-fold demand matrix: for OS d is the fold duration, for WS and IS it is
    2·rows + 2·cols + streamed − 3, `cols − 1` more than the fold really lasts. Kept apart so
    `SystolicCost.utilization` stays a plain definition.
    """
    df = normalise_dataflow(dataflow)
    cost = gemm_cost(sr, sc, t, rows, cols, df)
    _, _, streamed = _spatial_mapping(sr, sc, t, df)
    d = cost.cycles_per_fold if df == "OS" else 2 * rows + 2 * cols + streamed - 3
    return cost.mapping_efficiency * streamed / d


def conv_to_gemm(n: int, c: int, h: int, w: int, k: int, r: int, s: int,
                 stride_h: int, stride_w: int, pad_h: int, pad_w: int,
                 groups: int = 1, *, scalesim_rounding: bool = True) -> tuple[int, int, int, int]:
    """A convolution as SCALE-Sim's GEMM: (sr, sc, t, repeats).

    Input n×c×h×w, k filters of c/groups×r×s, symmetric padding pad_h/pad_w. The batch folds into
    the output pixels, sr = n·oh·ow; each of the `repeats` = groups GEMMs has sc = k/groups filters
    and a window t = (c/groups)·r·s. (SCALE-Sim itself has no padding, so it must be given the
    padded input; its "DP" depthwise layers run one GEMM per channel.)

    Output size: SCALE-Sim rounds up, oh = ⌈(H − R)/stride⌉ + 1 with H the padded height, which
    keeps a last, partial window whenever the stride does not divide H − R (AlexNet conv1: 224,
    11, stride 4 → 55, as SCALE-Sim reports). ONNX/PyTorch round down; pass
    `scalesim_rounding=False` for that (or take sr from the IR's output shape).
    """
    _check_positive(n=n, c=c, h=h, w=w, k=k, r=r, s=s, stride_h=stride_h, stride_w=stride_w,
                    groups=groups)
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"padding must be >= 0, got pad_h={pad_h}, pad_w={pad_w}")
    if c % groups or k % groups:
        raise ValueError(f"groups={groups} must divide channels c={c} and filters k={k}")
    hp, wp = h + 2 * pad_h, w + 2 * pad_w
    if r > hp or s > wp:
        raise ValueError(f"filter {r}×{s} larger than the padded input {hp}×{wp}")
    if scalesim_rounding:
        oh = -(-(hp - r) // stride_h) + 1
        ow = -(-(wp - s) // stride_w) + 1
    else:
        oh = (hp - r) // stride_h + 1
        ow = (wp - s) // stride_w + 1
    return n * oh * ow, k // groups, (c // groups) * r * s, groups


def _spatial_mapping(sr: int, sc: int, t: int, df: str) -> tuple[int, int, int]:
    """(dimension on array rows, dimension on array cols, streamed dimension)."""
    if df == "WS":
        return t, sc, sr
    if df == "OS":
        return sr, sc, t
    return t, sr, sc


def _fold_cycles(rows: int, cols: int, streamed: int, df: str) -> int:
    # OS: the streamed operands fill the skewed array (rows + cols − 2) while T values pass.
    # WS/IS: first `rows` cycles load the pinned operand, then the stream plus fill and drain.
    if df == "OS":
        return rows + cols + streamed - 2
    return 2 * rows + cols + streamed - 2


def normalise_dataflow(dataflow: str) -> str:
    df = dataflow.upper()
    if df not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}; expected one of {', '.join(DATAFLOWS)}")
    return df


def _check_positive(**dims: int) -> None:
    for name, value in dims.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

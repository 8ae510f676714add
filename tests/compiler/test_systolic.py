"""compiler.lowering.systolic against the real SCALE-Sim (goldens in tests/data/scalesim/).

The goldens were produced by benchmarks/peers/scalesim_goldens.py; these tests only read the CSV,
so SCALE-Sim need not be installed.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.lowering.systolic import (
    conv_to_gemm,
    gemm_cost,
    scalesim_compute_utilization,
)

GOLDENS = Path(__file__).resolve().parents[1] / "data" / "scalesim" / "goldens.csv"


def _load() -> list[dict[str, str]]:
    with open(GOLDENS, newline="") as f:
        return list(csv.DictReader(f))


ROWS = _load()
STALL_FREE = [r for r in ROWS if r["bandwidth_mode"] == "CALC"]


def _gemm_of(row: dict[str, str]) -> tuple[int, int, int]:
    """(sr, sc, t) of a golden row; SCALE-Sim ran one image, no groups."""
    if row["kind"] == "gemm":
        return int(row["gemm_m"]), int(row["gemm_n"]), int(row["gemm_k"])
    h, w, r = int(row["ifmap_h"]), int(row["ifmap_w"]), int(row["filter_h"])
    stride, pad = int(row["stride"]), int(row["pad"])
    sr, sc, t, repeats = conv_to_gemm(1, int(row["channels"]), h, w, int(row["num_filters"]),
                                      r, int(row["filter_w"]), stride, stride, pad, pad)
    assert repeats == 1
    return sr, sc, t


def _cost(row: dict[str, str]):
    sr, sc, t = _gemm_of(row)
    return gemm_cost(sr, sc, t, int(row["array_rows"]), int(row["array_cols"]), row["dataflow"])


def test_goldens_cover_the_brief():
    assert len(STALL_FREE) >= 30
    assert {r["dataflow"] for r in STALL_FREE} == {"ws", "os", "is"}
    arrays = {(r["array_rows"], r["array_cols"]) for r in STALL_FREE}
    assert {("8", "8"), ("16", "16"), ("32", "32"), ("128", "128"), ("256", "256")} <= arrays
    assert any(a != b for a, b in arrays)
    assert all(int(r["stall_cycles"]) == 0 for r in STALL_FREE)


def test_cycles_agree_with_scalesim():
    # `cycles` is a count; SCALE-Sim reports the last cycle's index, exactly one less.
    errors = {
        r["case_id"]: abs(_cost(r).cycles - int(r["total_cycles"])) / int(r["total_cycles"])
        for r in STALL_FREE
    }
    within_1pct = sum(e <= 0.01 for e in errors.values()) / len(errors)
    assert within_1pct >= 0.90, errors
    assert max(errors.values()) <= 0.05, errors
    assert all(_cost(r).scalesim_total_cycles == int(r["total_cycles"]) for r in STALL_FREE)


@pytest.mark.parametrize("row", STALL_FREE, ids=lambda r: r["case_id"])
def test_counts_and_efficiencies_equal_scalesim(row):
    cost = _cost(row)
    assert cost.scalesim_total_cycles == int(row["total_cycles"])
    assert cost.ifmap_sram_reads == int(row["sram_ifmap_reads"])
    assert cost.filter_sram_reads == int(row["sram_filter_reads"])
    assert cost.ofmap_sram_writes == int(row["sram_ofmap_writes"])
    assert cost.mapping_efficiency * 100 == pytest.approx(float(row["mapping_efficiency_pct"]),
                                                          rel=1e-9)
    # SCALE-Sim's overall utilization divides by its last-cycle index.
    overall = cost.utilization * cost.cycles / cost.scalesim_total_cycles
    assert overall * 100 == pytest.approx(float(row["overall_util_pct"]), rel=1e-9)
    sr, sc, t = _gemm_of(row)
    util = scalesim_compute_utilization(sr, sc, t, int(row["array_rows"]),
                                        int(row["array_cols"]), row["dataflow"])
    assert util * 100 == pytest.approx(float(row["compute_util_pct"]), rel=1e-9)


@pytest.mark.parametrize("row", [r for r in ROWS if r["bandwidth_mode"] == "USER"],
                         ids=lambda r: r["case_id"])
def test_user_bandwidth_cycles_are_compute_plus_stalls(row):
    # Under a fixed DRAM bandwidth SCALE-Sim adds stall cycles to the same compute schedule.
    assert int(row["total_cycles"]) - int(row["stall_cycles"]) == _cost(row).scalesim_total_cycles


def test_reference_alexnet_conv1_ws_32x32():
    # REFERENCE.md §2: SCALE-Sim golden, reproduced exactly.
    sr, sc, t, repeats = conv_to_gemm(1, 3, 224, 224, 96, 11, 11, 4, 4, 0, 0)
    assert (sr, sc, t, repeats) == (3025, 96, 363, 1)
    cost = gemm_cost(sr, sc, t, 32, 32, "WS")
    assert (cost.row_folds, cost.col_folds) == (12, 3)
    assert cost.cycles_per_fold == 2 * 32 + 32 + 3025 - 2 == 3119
    assert cost.cycles == 36 * 3119 == 112_284
    assert cost.scalesim_total_cycles == 112_283
    assert cost.mapping_efficiency * 100 == pytest.approx(94.53125, abs=1e-12)
    assert round(scalesim_compute_utilization(sr, sc, t, 32, 32, "WS") * 100, 2) == 90.78
    assert cost.ifmap_sram_reads == 3_294_225
    assert cost.filter_sram_reads == 34_848
    assert cost.ofmap_sram_writes == 3_484_800
    assert cost.ofmap_sram_reads == 0


def test_conv_to_gemm_batch_groups_and_padding():
    # Conv4 layer 2, batch 5, 3×3 pad 1: batch folds into the output pixels.
    assert conv_to_gemm(5, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1) == (5 * 14 * 14, 64, 576, 1)
    # Depthwise: one GEMM per channel, one filter each, window r·s.
    assert conv_to_gemm(2, 32, 8, 8, 32, 3, 3, 2, 2, 1, 1, groups=32) == (2 * 5 * 5, 1, 9, 32)
    assert conv_to_gemm(2, 32, 8, 8, 32, 3, 3, 2, 2, 1, 1, groups=32,
                        scalesim_rounding=False) == (2 * 4 * 4, 1, 9, 32)
    # SCALE-Sim keeps a last partial window (224−11 is not a multiple of 4); ONNX does not.
    assert conv_to_gemm(1, 3, 224, 224, 96, 11, 11, 4, 4, 0, 0)[0] == 55 * 55
    assert conv_to_gemm(1, 3, 224, 224, 96, 11, 11, 4, 4, 0, 0, scalesim_rounding=False)[0] == 54 * 54
    with pytest.raises(ValueError, match="groups"):
        conv_to_gemm(1, 6, 8, 8, 4, 3, 3, 1, 1, 0, 0, groups=4)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_to_gemm(1, 1, 2, 2, 1, 3, 3, 1, 1, 0, 0)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="dataflow"):
        gemm_cost(4, 4, 4, 2, 2, "RS")
    with pytest.raises(ValueError, match="rows"):
        gemm_cost(4, 4, 4, 0, 2, "WS")
    assert gemm_cost(4, 4, 4, 2, 2, "ws") == gemm_cost(4, 4, 4, 2, 2, "WS")


dims = st.integers(1, 3000)
array_dim = st.integers(1, 300)
dataflows = st.sampled_from(["WS", "OS", "IS"])


@settings(max_examples=300, deadline=None)
@given(dims, dims, dims, array_dim, array_dim, dataflows)
def test_cycles_bounded_below_by_the_macs(sr, sc, t, rows, cols, df):
    cost = gemm_cost(sr, sc, t, rows, cols, df)
    assert cost.cycles >= math.ceil(sr * sc * t / (rows * cols))
    assert 0 < cost.utilization <= 1
    assert 0 < cost.mapping_efficiency <= 1
    assert cost.cycles == cost.folds * cost.cycles_per_fold


@settings(max_examples=300, deadline=None)
@given(dims, dims, dims, array_dim, array_dim, st.integers(0, 64), st.integers(0, 64), dataflows)
def test_more_rows_or_cols_never_adds_folds(sr, sc, t, rows, cols, more_rows, more_cols, df):
    small = gemm_cost(sr, sc, t, rows, cols, df)
    big = gemm_cost(sr, sc, t, rows + more_rows, cols + more_cols, df)
    assert big.row_folds <= small.row_folds
    assert big.col_folds <= small.col_folds

"""A peer tool's case as hwsim sees it: a one-layer ONNX model and an NPU config that mirrors it.

Used by the golden scripts, the speed benchmark (`speed.py`) and the validation tests
(`tests/compiler/test_validation_peers.py`), so the three agree on what "the same layer on the same
hardware" means. Everything goes through hwsim's public entry points: `hwsim.pipeline`,
`parse_hardware`, `energy_table`.

Units. SCALE-Sim counts 1-byte words; hwsim counts bytes of the ONNX tensors, which are float32
here (ONNX Conv has no 8-bit form). Sizes and bandwidths given in SCALE-Sim words are therefore
multiplied by the element size (4): a 16 kB SCALE-Sim SRAM holds 16 Ki elements, so does a
64 KiB hwsim buffer; 10 words/cycle become 40 bytes/cycle. Element counts compare directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

ELEMENT_BYTES = 4  # float32
CLOCK_MHZ = 1000.0  # bandwidths are given per cycle; at 1 GHz, bytes/cycle = GB/s


# ---- one-layer ONNX models ----------------------------------------------------------------------


def conv_layer(n: int, c: int, h: int, k: int, r: int, stride: int = 1, pad: int = 0) -> ModelProto:
    """Conv of n×c×h×h by k filters c×r×r (no bias), symmetric padding."""
    w = numpy_helper.from_array(np.zeros((k, c, r, r), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="layer", kernel_shape=[r, r],
                            strides=[stride, stride], pads=[pad] * 4)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, h])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def gemm_layer(m: int, k: int, n: int) -> ModelProto:
    """MatMul of an m×k activation by a k×n weight (an initializer, as a layer's weight is)."""
    w = numpy_helper.from_array(np.zeros((k, n), np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="layer")
    graph = helper.make_graph(
        [node], "gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def scalesim_conv_input(h: int, r: int, stride: int, pad: int) -> int:
    """The input height whose ONNX output size equals SCALE-Sim's for its (padded) height h + 2·pad.

    SCALE-Sim rounds the number of windows up, ⌈(H − R)/s⌉ + 1, ONNX rounds down; they differ
    only when the stride does not divide H − R (AlexNet conv1: 224, 11, 4 → 55 windows in
    SCALE-Sim, 54 in ONNX; 227 gives 55 in both, the input of the original AlexNet)."""
    hp = h + 2 * pad
    oh = -(-(hp - r) // stride) + 1
    return (oh - 1) * stride + r - 2 * pad


def layer_of(row: Mapping[str, str | int]) -> ModelProto:
    """The one-layer model of a golden CSV row (SCALE-Sim's or ZigZag's case columns)."""
    g = {k: (int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v) for k, v in row.items()}
    if g["kind"] == "gemm":
        return gemm_layer(g["gemm_m"], g["gemm_k"], g["gemm_n"])
    h = scalesim_conv_input(g["ifmap_h"], g["filter_h"], g["stride"], g["pad"])
    return conv_layer(int(g.get("batch", 1) or 1), g["channels"], h, g["num_filters"],
                      g["filter_h"], g["stride"], g["pad"])


# ---- mirrored hardware --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mirror:
    """The NPU parameters a peer case fixes; everything else is irrelevant to one layer."""

    rows: int
    cols: int
    dataflow: str                 # WS, OS, IS
    sram_bytes: int               # unified on-chip buffer
    dram_bytes_per_cycle: float   # total over channels
    dram_channels: int = 1
    sram_bytes_per_cycle: float = 1e5   # SCALE-Sim and ZigZag never limit SRAM port bandwidth here
    double_buffered: bool = True
    energy_table: str = "horowitz45"

    def yaml(self) -> str:
        return f"""kind: npu
name: mirror-{self.rows}x{self.cols}-{self.dataflow.lower()}
clock_mhz: {CLOCK_MHZ}
array: {{rows: {self.rows}, cols: {self.cols}, dataflow: {self.dataflow.upper()}}}
vector: {{lanes: {self.cols}}}
sram: {{size_kib: {self.sram_bytes / 1024!r}, bytes_per_cycle: {self.sram_bytes_per_cycle!r}, double_buffered: {str(self.double_buffered).lower()}}}
dram: {{type: DDR4, bandwidth_gbps: {self.dram_bytes_per_cycle * CLOCK_MHZ / 1000!r}, latency_ns: 0, channels: {self.dram_channels}, interleave_bytes: null}}
dma_engines: {self.dram_channels}
technology: {{energy_table: {self.energy_table}, static_power_mw: 0}}
"""

    def hardware(self):
        from hwsim.config import parse_hardware

        return parse_hardware(self.yaml(), f"mirror of a peer case ({self.rows}x{self.cols})")


def scalesim_mirror(row: Mapping[str, str]) -> Mirror:
    """SCALE-Sim's case as hwsim hardware: its three SRAMs become one buffer of their total size;
    in USER mode each operand has its own DRAM port of `bandwidth` words/cycle, mirrored as three
    DRAM channels of that rate (CALC mode: 10,000 bytes/cycle per port, far more than any layer needs)."""
    words = 1024 * sum(int(row[f"{op}_sram_kb"]) for op in ("ifmap", "filter", "ofmap"))
    user = row["bandwidth_mode"] == "USER"
    per_port = int(row["bandwidth"]) * ELEMENT_BYTES if user else 10_000
    return Mirror(int(row["array_rows"]), int(row["array_cols"]), row["dataflow"].upper(),
                  sram_bytes=words * ELEMENT_BYTES, dram_bytes_per_cycle=3 * per_port,
                  dram_channels=3)


# ---- running hwsim ------------------------------------------------------------------------------


@dataclass
class HwsimLayer:
    """What the validation compares, from one compile + simulate of a one-layer model."""

    total_cycles: float          # whole program: DMA in, compute, DMA out
    array_cycles: float          # busy cycles of the systolic array (compute only)
    macs: float
    sram_reads: float            # bytes the layer's compute reads from SRAM (not DMA)
    sram_writes: float
    dram_read_bytes: float
    dram_write_bytes: float
    energy_pj: float
    energy_by_component: dict[str, float]
    compile_s: float = 0.0
    simulate_s: float = 0.0


def run_hwsim(model: ModelProto, hw, prices=None) -> HwsimLayer:
    """Compile and simulate `model` on `hw`, priced with `prices` (action -> Price; default: the
    hardware's own energy table)."""
    import time

    from hwsim import pipeline

    t0 = time.perf_counter()
    front = pipeline.prepare(model)
    t1 = time.perf_counter()
    result = pipeline.simulate(front, hw).result   # the mirrored configs have no static power
    if prices is not None:
        result = result.repriced(prices)
    t2 = time.perf_counter()
    compute_actions: dict[str, float] = {}
    for a in result.actions:
        if a.op_type != "dma":
            compute_actions[a.action] = compute_actions.get(a.action, 0.0) + a.count
    totals = result.action_totals()
    array = sum(b for unit, b in result.busy.items() if unit.endswith(".array"))
    return HwsimLayer(
        total_cycles=result.cycles, array_cycles=array, macs=result.macs,
        sram_reads=compute_actions.get("sram.read", 0.0),
        sram_writes=compute_actions.get("sram.write", 0.0),
        dram_read_bytes=totals.get("dram.read", 0.0), dram_write_bytes=totals.get("dram.write", 0.0),
        energy_pj=result.energy_pj, energy_by_component=result.energy_by_component(),
        compile_s=t1 - t0, simulate_s=t2 - t1,
    )


def scalesim_gemm(row: Mapping[str, str]) -> tuple[int, int, int]:
    """SCALE-Sim's GEMM (Sr, Sc, T) of a golden row: a GEMM row as is, a conv row as its im2col
    GEMM with SCALE-Sim's window rounding (`systolic.conv_to_gemm`)."""
    from compiler.lowering.systolic import conv_to_gemm

    g = {k: int(v) for k, v in row.items() if isinstance(v, str) and v.lstrip("-").isdigit()}
    if row["kind"] == "gemm":
        return g["gemm_m"], g["gemm_n"], g["gemm_k"]
    sr, sc, t, _ = conv_to_gemm(1, g["channels"], g["ifmap_h"], g["ifmap_w"], g["num_filters"],
                                g["filter_h"], g["filter_w"], g["stride"], g["stride"], g["pad"], g["pad"])
    return sr, sc, t


def scalesim_conv(row: Mapping[str, str]):
    """A conv row's layer as SCALE-Sim addresses it (its padded input), for the compatibility
    model's im2col address hits; None for a GEMM row."""
    from benchmarks.peers.scalesim_model import ScaleSimConv

    if row["kind"] != "conv":
        return None
    pad, stride = int(row["pad"]), int(row["stride"])
    return ScaleSimConv(int(row["ifmap_h"]) + 2 * pad, int(row["ifmap_w"]) + 2 * pad, int(row["filter_h"]),
                        int(row["filter_w"]), int(row["channels"]), stride, stride)


def scalesim_user(row: Mapping[str, str], *, addresses: bool = True):
    """hwsim's SCALE-Sim compatibility model (`benchmarks.peers.scalesim_model`) for a USER-
    bandwidth golden row: SRAM sizes in words (kB × 1024, 1-byte words), `bandwidth` words/cycle
    for each operand's DRAM port; a conv with its im2col addresses (SCALE-Sim hits on any copy
    of a repeated ifmap word) unless `addresses` is False (im2col as a plain GEMM)."""
    from benchmarks.peers.scalesim_model import scalesim_user_cost

    sr, sc, t = scalesim_gemm(row)
    return scalesim_user_cost(sr, sc, t, int(row["array_rows"]), int(row["array_cols"]), row["dataflow"],
                              ifmap_words=1024 * int(row["ifmap_sram_kb"]),
                              filter_words=1024 * int(row["filter_sram_kb"]),
                              ofmap_words=1024 * int(row["ofmap_sram_kb"]), ifmap_bw=int(row["bandwidth"]),
                              conv=scalesim_conv(row) if addresses else None)


def zigzag_prices(row: Mapping[str, str]):
    """The energy table a ZigZag golden row was generated with, as hwsim prices (per MAC and per
    byte; PE registers, which hwsim does not model, cost 0 in ZigZag)."""
    from hwsim.technology import Price

    src = "ZigZag golden constants (tests/data/zigzag/goldens.csv)"
    mac, gb, dram = (float(row[k]) for k in ("mac_pj", "gb_pj_per_byte", "dram_pj_per_byte"))
    return {"mac.float32": Price(mac, "MAC", src), "vector.float32": Price(0.0, "op", src),
            "sram.read": Price(gb, "byte", src), "sram.write": Price(gb, "byte", src),
            "dram.read": Price(dram, "byte", src), "dram.write": Price(dram, "byte", src)}


def zigzag_mirror(row: Mapping[str, str]) -> Mirror:
    """ZigZag's case as hwsim hardware: the same WS array, one SRAM the size of ZigZag's global
    buffer, the same DRAM rate."""
    return Mirror(int(row["array_rows"]), int(row["array_cols"]), "WS",
                  sram_bytes=int(row["gb_bytes"]),
                  dram_bytes_per_cycle=float(row["dram_bytes_per_cycle"]))

"""Cost rules: how long a node keeps its unit busy, and the actions it causes there.

One rule per workload kind, registered like the workload rules (`COST_RULES`): MATMUL and CONV
run on the systolic array with SCALE-Sim's fold structure (`systolic.gemm_cost`, memoised on the
GEMM shape and the array); every other kind runs on the vector unit, bounded by its lanes, its
transcendental throughput and the SRAM port bandwidth (`vector_cycles`, memoised). A rule sees
the node, its workload, where each operand sits (`in_pools`) and a `CostContext` of what the
rule may ask of the hardware; it returns a `NodeCost`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Mapping

from hwsim.config import NPU
from hwsim.registry import Registry

from ...ir import DTYPE_BYTES, Graph, Node
from ...workload import Kind, Workload
from ..gemm import as_gemm, compute_dtype
from ..systolic import gemm_cost

if TYPE_CHECKING:
    from ...precision import NumericPlan


@dataclass(frozen=True)
class NodeCost:
    unit: str                     # "array" or "vector"
    cycles: float
    actions: dict[str, float]


@dataclass(frozen=True)
class CostContext:
    graph: Graph
    hw: NPU
    out_pool: str                 # the buffer results are written to ("sram" or "ofmap")
    nbytes: Callable[[str], int]  # a tensor's bytes as stored on this NPU
    base: Callable[[str], str]    # a tensor's storage (through views)
    # Stored and arithmetic types chosen by a precision option (compiler.precision); None: the
    # graph's own types, or the NPU's datatype for every floating tensor.
    numeric: "NumericPlan | None" = None


CostRule = Callable[[CostContext, Node, Workload, dict[str, str]], NodeCost]
COST_RULES: Registry[CostRule] = Registry("cost rule")


def node_cost(ctx: CostContext, node: Node, wl: Workload, in_pools: dict[str, str]) -> NodeCost:
    return COST_RULES.lookup(wl.kind.value)(ctx, node, wl, in_pools)


def is_float(dtype: str) -> bool:
    return dtype.startswith("float") or dtype == "bfloat16"


def stored_dtype(ctx: CostContext, node: Node) -> tuple[str, str]:
    """(the graph's arithmetic type of the node, the type the NPU computes it in)."""
    graph_dtype = compute_dtype(ctx.graph, node)
    if ctx.numeric is not None:
        return graph_dtype, ctx.numeric.node[node.name]
    dtype = ctx.hw.datatype if ctx.hw.datatype and is_float(graph_dtype) else graph_dtype
    return graph_dtype, dtype


def macs_per_pe(hw: NPU, dtype: str) -> int:
    """MACs one PE completes per cycle at `dtype`: the array's `macs_per_pe[dtype]`, else 1."""
    return int(hw.array.macs_per_pe.get(dtype, 1))


@COST_RULES.register(Kind.MATMUL.value, Kind.CONV.value)
def array_cost(ctx: CostContext, node: Node, wl: Workload, in_pools: dict[str, str]) -> NodeCost:
    """A GEMM view of the node on the rows x cols array: SCALE-Sim's folds, SRAM reads per
    operand from the fold model, one write per output element per fold."""
    _, dtype = stored_dtype(ctx, node)
    ins = [ctx.base(i) for i in node.inputs if i]
    out = ctx.out_pool
    sr, sc, t, repeats = as_gemm(ctx.graph, node, wl)
    a = ctx.hw.array
    # A PE completing m MACs per cycle works through the reduction m elements at a time: the
    # fold structure of a reduction m times shorter, each streamed operand element m wide.
    m = macs_per_pe(ctx.hw, dtype)
    cost = gemm_cost(sr, sc, -(-t // m), a.rows, a.cols, a.dataflow.value)
    e_ifm = e_flt = e_out = DTYPE_BYTES.get(dtype, 4)
    if ctx.numeric is not None:   # each operand at its own stored width
        e_ifm, e_flt, e_out = (_element_bytes(ctx, name, dtype) for name in
                               (ins[0] if ins else "", ins[1] if len(ins) > 1 else "",
                                next((o for o in node.outputs if o), "")))
    ifm = in_pools.get(ins[0], out) if ins else out
    flt = in_pools.get(ins[1], out) if len(ins) > 1 else ifm
    reads: dict[str, float] = defaultdict(float)
    reads[ifm] += repeats * e_ifm * cost.ifmap_sram_reads * m
    reads[flt] += repeats * e_flt * cost.filter_sram_reads * m
    reads[out] += repeats * e_out * cost.ofmap_sram_reads
    actions = {f"mac.{dtype}": float(wl.macs)}
    for pool, b in reads.items():
        actions[f"{pool}.read"] = float(b)
    actions[f"{out}.write"] = float(repeats * e_out * cost.ofmap_sram_writes)
    if wl.flops:  # bias / alpha / beta on the accumulator path: counted, overlapped
        actions[f"vector.{dtype}"] = float(wl.flops)
    return NodeCost("array", float(repeats * cost.cycles), actions)


@COST_RULES.register(Kind.ELEMENTWISE.value, Kind.REDUCTION.value, Kind.NORMALIZATION.value,
                     Kind.POOL.value, Kind.DATA_MOVEMENT.value)
def vector_cost(ctx: CostContext, node: Node, wl: Workload, in_pools: dict[str, str]) -> NodeCost:
    """Lane operations (a transcendental costs `transcendental_cycles` lane-cycles) against the
    SRAM port traffic of the node's bytes at the stored width; reads attributed to each
    operand's buffer in proportion to its size."""
    graph_dtype, dtype = stored_dtype(ctx, node)
    ins = [ctx.base(i) for i in node.inputs if i]
    out = ctx.out_pool
    v = ctx.hw.vector
    buffers = ctx.hw.on_chip_buffers
    # bytes at the stored width: the workload counts the graph's types
    if ctx.numeric is None:
        scale = (DTYPE_BYTES[dtype] / DTYPE_BYTES.get(graph_dtype, 4)) if dtype != graph_dtype else 1.0
        bytes_read = wl.bytes_read * scale
        bytes_written = wl.bytes_written * scale
    else:   # operand by operand: a precision plan stores tensors of one node at several widths
        g = ctx.graph
        bytes_read = wl.bytes_read + sum(ctx.nbytes(ctx.base(i)) - g.tensor(i).nbytes for i in node.inputs if i)
        bytes_written = wl.bytes_written + sum(ctx.nbytes(o) - g.tensor(o).nbytes for o in node.outputs if o)
    trans = int(wl.dims.get("transcendental", 0))
    lane_ops = wl.flops + trans * (v.transcendental_cycles - 1)
    port_bw = min(buffers[p].bytes_per_cycle for p in {*in_pools.values(), out})
    cycles = vector_cycles(lane_ops, math.ceil(bytes_read + bytes_written), v.lanes * v.ops_per_lane,
                           v.pipeline_depth, port_bw)
    actions: dict[str, float] = defaultdict(float)
    sizes = {i: ctx.nbytes(i) for i in dict.fromkeys(ins)}
    total = sum(sizes.values())
    for i, b in sizes.items():
        actions[f"{in_pools.get(i, out)}.read"] += bytes_read * b / total if total else 0.0
    if not sizes:
        actions[f"{out}.read"] += bytes_read
    actions[f"{out}.write"] += bytes_written
    actions = {k: float(c) for k, c in actions.items() if c}
    if lane_ops:
        actions[f"vector.{dtype}"] = float(lane_ops)
    return NodeCost("vector", cycles, actions)


def _element_bytes(ctx: CostContext, name: str, default: str) -> int:
    """Bytes per element of a tensor as stored (`default`'s width for a missing operand)."""
    if not name:
        return DTYPE_BYTES.get(default, 4)
    return DTYPE_BYTES[ctx.numeric.tensor[ctx.base(name)]]


@lru_cache(maxsize=65536)
def vector_cycles(lane_ops: int, nbytes: int, width: int, depth: int, sram_bw: float) -> float:
    """Pipelined SIMD: fill latency plus the larger of arithmetic time and SRAM-port time; at
    least one cycle (only views and metadata ops, which never get here, cost nothing)."""
    return float(depth + max(math.ceil(lane_ops / width), math.ceil(nbytes / sram_bw), 1))

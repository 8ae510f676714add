"""How a node meets the hardware's arithmetic: its GEMM view and its arithmetic type. Shared by
every lowering (NPU systolic arrays, FPGA matrix-vector units, CGRA kernels)."""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload


def compute_dtype(g: Graph, node: Node) -> str:
    """The arithmetic type of a node: its first floating operand or result, else its first."""
    ts = g.in_tensors(node) + g.out_tensors(node)
    for t in ts:
        if t.dtype.startswith("float") or t.dtype == "bfloat16":
            return t.dtype
    return ts[0].dtype if ts else "float32"


def as_gemm(g: Graph, node: Node, wl: Workload) -> tuple[int, int, int, int]:
    """(Sr, Sc, T, repeats) in SCALE-Sim's terms: output rows, output columns (filters),
    reduction, and independent repetitions (batched GEMMs with distinct right operands, groups)."""
    d = wl.dims
    if wl.kind is Kind.CONV:
        groups = d.get("g", 1)
        if d.get("transposed"):
            # Each input pixel meets every kernel tap: Sr = n*h*w, T = c_in/g, Sc = (c_out/g)*r*s.
            return d["n"] * d["h"] * d["w"], (d["k"] // groups) * d["r"] * d["s"], d["c"] // groups, groups
        return d["n"] * d["oh"] * d["ow"], d["k"] // groups, (d["c"] // groups) * d["r"] * d["s"], groups
    b, m, k, n = d.get("b", 1), d["m"], d["k"], d["n"]
    rhs = [t for t in g.in_tensors(node)][1:2]
    if node.op_type == "Gemm" or (rhs and len(rhs[0].shape) <= 2):
        return b * m, n, k, 1          # one weight matrix shared by the whole batch
    return m, n, k, b

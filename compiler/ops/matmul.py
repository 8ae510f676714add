"""Matrix products: MatMul, Gemm, Einsum (matmul-like equations only). Kind MATMUL, dims b,m,k,n.

* MatMul [..., m, k] x [..., k, n]: MACs = b·m·k·n, where b is the product of the batch dims
  after numpy broadcasting; a 1-D operand is promoted as numpy does ([k] -> [1, k] or [k, 1]).
* Gemm: MACs = m·k·n (transA/transB honoured); plus m·n flops for alpha != 1, m·n for adding C
  and m·n more for beta != 1 (flops only where present).
* Einsum with two operands and no repeated index inside an operand: indices in A, B and the
  output are batch (b), in A and output only m, in B and output only n, in A and B only k
  (contracted). Anything else (traces, one-sided sums, ellipsis, 3+ operands) is unsupported.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..workload import Kind, UnsupportedOpError, Workload, rule
from .operands import prod, shape, workload


@rule("MatMul")
def matmul(graph: Graph, node: Node) -> Workload:
    a, b = shape(graph, node.inputs[0]), shape(graph, node.inputs[1])
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    m, k = a2[-2], a2[-1]
    k2, n = b2[-2], b2[-1]
    if k != k2:
        raise UnsupportedOpError(node.op_type, node.name, f"inner dims differ: {a} x {b}")
    batch = prod(np.broadcast_shapes(a2[:-2], b2[:-2]))
    return workload(graph, node, Kind.MATMUL, macs=batch * m * k * n,
                    dims={"b": batch, "m": m, "k": k, "n": n})


@rule("Gemm")
def gemm(graph: Graph, node: Node) -> Workload:
    a, b = shape(graph, node.inputs[0]), shape(graph, node.inputs[1])
    m, k = (a[1], a[0]) if node.attr("transA", 0) else (a[0], a[1])
    k2, n = (b[1], b[0]) if node.attr("transB", 0) else (b[0], b[1])
    if k != k2:
        raise UnsupportedOpError(node.op_type, node.name, f"inner dims differ: {a} x {b}")
    flops = 0
    if float(node.attr("alpha", 1.0)) != 1.0:
        flops += m * n
    has_c = len(node.inputs) > 2 and bool(node.inputs[2])
    if has_c:
        flops += m * n
        if float(node.attr("beta", 1.0)) != 1.0:
            flops += m * n
    return workload(graph, node, Kind.MATMUL, macs=m * k * n, flops=flops,
                    dims={"b": 1, "m": m, "k": k, "n": n, "bias": int(has_c)})


@rule("Einsum")
def einsum(graph: Graph, node: Node) -> Workload:
    eq = str(node.attr("equation", "")).replace(" ", "")
    if "->" not in eq or "." in eq:
        raise UnsupportedOpError(node.op_type, node.name, f"equation {eq!r}: needs an explicit "
                                 "output and no ellipsis")
    lhs, out = eq.split("->")
    terms = lhs.split(",")
    if len(terms) != 2 or len(node.inputs) != 2:
        raise UnsupportedOpError(node.op_type, node.name, f"equation {eq!r}: only two operands")
    ta, tb = terms
    if len(set(ta)) != len(ta) or len(set(tb)) != len(tb) or len(set(out)) != len(out):
        raise UnsupportedOpError(node.op_type, node.name, f"equation {eq!r}: repeated index")
    sizes: dict[str, int] = {}
    for term, name in ((ta, node.inputs[0]), (tb, node.inputs[1])):
        for c, d in zip(term, shape(graph, name)):
            sizes[c] = max(sizes.get(c, 1), d)  # broadcast size-1 dims
    groups = {"b": [], "m": [], "n": [], "k": []}
    for c in sizes:
        place = (c in ta, c in tb, c in out)
        key = {(True, True, True): "b", (True, False, True): "m",
               (False, True, True): "n", (True, True, False): "k"}.get(place)
        if key is None:
            raise UnsupportedOpError(node.op_type, node.name,
                                     f"equation {eq!r}: index {c!r} is summed inside one operand")
        groups[key].append(sizes[c])
    d = {key: prod(v) for key, v in groups.items()}
    return workload(graph, node, Kind.MATMUL, macs=d["b"] * d["m"] * d["k"] * d["n"], dims=d)

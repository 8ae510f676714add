"""Matrix products: MatMul, Gemm, Einsum, MatMulInteger, QLinearMatMul. Kind MATMUL, dims b,m,k,n.

* MatMul [..., m, k] x [..., k, n]: MACs = b·m·k·n, where b is the product of the batch dims
  after numpy broadcasting; a 1-D operand is promoted as numpy does ([k] -> [1, k] or [k, 1]).
* Gemm: MACs = m·k·n (transA/transB honoured); plus m·n flops for alpha != 1, m·n for adding C
  and m·n more for beta != 1 (flops only where present).
* MatMulInteger (A, B, a_zero_point, b_zero_point): MACs as MatMul; each zero point given costs
  one subtract per element of its operand.
* QLinearMatMul (a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
  MACs as MatMul; one subtract per element of a and of b (zero points) and 5 flops per result
  to requantise (multiply by a_scale·b_scale/y_scale, round, add y_zero_point, min, max).
* Einsum with two operands: the equation may use an ellipsis and may leave the output implicit
  (then it is the indices used once, in alphabetical order, after the ellipsis, as numpy does).
  Indices in A, B and the output are batch (b), in A and the output only m, in B and the
  output only n, in A and B only k (contracted). An index in one operand only and not in the
  output is summed away first: one add per element of that operand (flops). A repeated index
  inside one operand (a diagonal), one operand, or three and more are unsupported.
"""

from __future__ import annotations

import string

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import has_input, in_numel, prod, shape, workload

REQUANTIZE_PER_ELEMENT = 5   # multiply, round, add zero point, saturate (min, max)


@rule("MatMul", kind=Kind.MATMUL, formula="MACs = b·m·k·n (numpy broadcasting of batch dims)")
def matmul(graph: Graph, node: Node) -> Workload:
    return _matmul(graph, node, 0, 1)


@rule("MatMulInteger", kind=Kind.MATMUL,
      formula="MACs as MatMul; one subtract per element of A / B for each zero point given")
def matmul_integer(graph: Graph, node: Node) -> Workload:
    zero_points = (in_numel(graph, node, 0) if has_input(node, 2) else 0) + \
                  (in_numel(graph, node, 1) if has_input(node, 3) else 0)
    return _matmul(graph, node, 0, 1, zero_points)


@rule("QLinearMatMul", kind=Kind.MATMUL,
      formula="MACs as MatMul; zero points numel(a) + numel(b), 5 flops/result requantising")
def qlinear_matmul(graph: Graph, node: Node) -> Workload:
    extra = in_numel(graph, node, 0) + in_numel(graph, node, 3) + \
        graph.tensor(node.outputs[0]).numel * REQUANTIZE_PER_ELEMENT
    return _matmul(graph, node, 0, 3, extra)


def _matmul(graph: Graph, node: Node, ai: int, bi: int, flops: int = 0) -> Workload:
    a, b = shape(graph, node.inputs[ai]), shape(graph, node.inputs[bi])
    if not a or not b:
        raise UnsupportedOpError(node.op_type, node.name, f"scalar operand: {a} x {b}")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    m, k = a2[-2], a2[-1]
    k2, n = b2[-2], b2[-1]
    if k != k2:
        raise UnsupportedOpError(node.op_type, node.name, f"inner dims differ: {a} x {b}")
    batch = prod(np.broadcast_shapes(a2[:-2], b2[:-2]))
    return workload(graph, node, Kind.MATMUL, macs=batch * m * k * n, flops=flops,
                    dims={"b": batch, "m": m, "k": k, "n": n})


@rule("Gemm", kind=Kind.MATMUL,
      formula="MACs = m·k·n; + m·n flops each for alpha ≠ 1, adding C, beta ≠ 1")
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


@rule("Einsum", kind=Kind.MATMUL,
      formula="two operands: MACs = b·m·k·n by index class; one-sided sums 1 flop/element first")
def einsum(graph: Graph, node: Node) -> Workload:
    eq = str(node.attr("equation", "")).replace(" ", "")
    operands = [i for i in node.inputs if i]

    def unsupported(why: str) -> UnsupportedOpError:
        return UnsupportedOpError(node.op_type, node.name, f"equation {eq!r}: {why}")

    lhs, _, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != 2 or len(operands) != 2:
        raise unsupported("only two-operand equations are matrix products")
    shapes = [shape(graph, n) for n in operands]
    terms, out = _expand_ellipsis(terms, out if "->" in eq else None, shapes, unsupported)
    ta, tb = terms
    if len(set(ta)) != len(ta) or len(set(tb)) != len(tb) or len(set(out)) != len(out):
        raise unsupported("repeated index")
    sizes: dict[str, int] = {}
    for term, dims in zip(terms, shapes):
        if len(term) != len(dims):
            raise unsupported(f"{term!r} has {len(term)} indices for a rank-{len(dims)} operand")
        for c, d in zip(term, dims):
            sizes[c] = max(sizes.get(c, 1), d)  # broadcast size-1 dims
    if not set(out) <= set(sizes):
        raise unsupported("an output index appears in no operand")
    groups: dict[str, list[int]] = {"b": [], "m": [], "n": [], "k": []}
    flops = 0
    summed = {0: [], 1: []}
    for c in sizes:
        place = (c in ta, c in tb, c in out)
        key = {(True, True, True): "b", (True, False, True): "m",
               (False, True, True): "n", (True, True, False): "k"}.get(place)
        if key is None:   # in one operand only and not in the output: summed away first
            summed[0 if c in ta else 1].append(c)
        else:
            groups[key].append(sizes[c])
    for side, cs in summed.items():
        if cs:
            flops += prod(shapes[side])
    d = {key: prod(v) for key, v in groups.items()}
    return workload(graph, node, Kind.MATMUL, macs=d["b"] * d["m"] * d["k"] * d["n"], flops=flops,
                    dims=d)


def _expand_ellipsis(terms, out, shapes, unsupported):
    """Terms and output with '...' replaced by upper-case letters (right-aligned broadcasting)
    and an implicit output made explicit."""
    used = set("".join(terms) + (out or ""))
    if not used <= set(string.ascii_letters + "."):
        raise unsupported("indices must be letters")
    ell_ranks = []
    for term, dims in zip(terms, shapes):
        if "..." in term:
            ell_ranks.append(len(dims) - (len(term) - 3))
        elif "." in term:
            raise unsupported("malformed ellipsis")
    ell = max(ell_ranks, default=0)
    if ell < 0:
        raise unsupported("more indices than dimensions")
    pool = [c for c in string.ascii_uppercase if c not in used][:ell]
    if len(pool) < ell:
        raise unsupported("too many broadcast dimensions")
    expanded = []
    for term, dims in zip(terms, shapes):
        if "..." in term:
            k = len(dims) - (len(term) - 3)
            term = term.replace("...", "".join(pool[ell - k:]))
        expanded.append(term)
    if out is None:   # implicit output: the broadcast dims, then indices used once, sorted
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        out = "".join(pool) + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in pool))
    elif "..." in out:
        out = out.replace("...", "".join(pool))
    elif "." in out:
        raise unsupported("malformed ellipsis")
    return expanded, out

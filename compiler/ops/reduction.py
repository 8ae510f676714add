"""Reductions and scans: Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax, Hardmax, TopK, CumSum,
CumProd and the two loss ops. Kind REDUCTION.

flops = input elements x operations per input element: 1 for ReduceSum/Mean/Max/Min/Prod,
ReduceLogSum and ArgMax/ArgMin (one combine each; the mean's division is folded in), 2 for
ReduceSumSquare, ReduceL1 and ReduceL2 (square or abs, add; L2's final square root and
LogSum's log are one transcendental per output element), 3 for ReduceLogSumExp (exp, add,
with the max subtracted first; one exp per input element and one log per output element).
Softmax and LogSoftmax: ~5 per element (max, subtract, exp, sum, divide or log-subtract), with
one transcendental per element (LogSoftmax one more per reduced row, the log). Hardmax: one
compare per element (the one-hot result is only written).
TopK: k largest of each row of L elements by a binary heap of k entries: each element is
compared with the heap's least and may sift down ⌈log2 k⌉ levels: L·max(1, ⌈log2 k⌉) compares.
CumSum, CumProd: an inclusive or exclusive scan takes L − 1 operations per row of length L.
NegativeLogLikelihoodLoss: per target element one negate (and one multiply by its class weight
when given), plus one add per target for a sum or mean and one divide for the mean.
SoftmaxCrossEntropyLoss: LogSoftmax of the scores along the class axis, then the loss as above.
Before opset 13, Softmax, LogSoftmax and Hardmax coerce the input to 2-D at `axis` (default 1):
rows = product of the dims before it.
dims: numel_in, numel_out, transcendental (and rows where rows are reduced).
"""

from __future__ import annotations

import math

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import axis_of, constant, has_input, in_numel, out_numel, prod, shape, workload

PER_INPUT_ELEMENT = {
    "ReduceSum": 1, "ReduceMean": 1, "ReduceMax": 1, "ReduceMin": 1, "ReduceProd": 1,
    "ReduceLogSum": 1, "ArgMax": 1, "ArgMin": 1, "ReduceSumSquare": 2, "ReduceL2": 2,
    "ReduceL1": 2, "ReduceLogSumExp": 3,
}
SOFTMAX_PER_ELEMENT = 5
# Before opset 13 the softmax family flattened the input to 2-D at `axis` (ONNX Changelog,
# Softmax-11 vs Softmax-13).
SOFTMAX_2D_BEFORE = 13


@rule(*PER_INPUT_ELEMENT, kind=Kind.REDUCTION,
      formula=lambda op: f"{PER_INPUT_ELEMENT[op]} flop/input element"
      + {"ReduceL2": " + 1 sqrt/output", "ReduceLogSum": " + 1 log/output",
         "ReduceLogSumExp": " + 1 exp/input + 1 log/output"}.get(op, ""))
def reduce(graph: Graph, node: Node) -> Workload:
    n_in = graph.tensor(node.inputs[0]).numel
    n_out = out_numel(graph, node)
    trans = {"ReduceL2": n_out, "ReduceLogSum": n_out,
             "ReduceLogSumExp": n_in + n_out}.get(node.op_type, 0)
    return workload(graph, node, Kind.REDUCTION, flops=n_in * PER_INPUT_ELEMENT[node.op_type],
                    dims={"numel_in": n_in, "numel_out": n_out, "transcendental": trans})


def _rows(graph: Graph, node: Node, x: tuple[int, ...]) -> int:
    n = prod(x)
    if 0 < graph.opset < SOFTMAX_2D_BEFORE:
        return prod(x[:axis_of(node, len(x), 1)])
    axis = axis_of(node, len(x), -1)
    return n // x[axis] if x and x[axis] else 1


@rule("Softmax", "LogSoftmax", kind=Kind.REDUCTION,
      formula="5 flop/element, 1 exp/element (LogSoftmax + 1 log/row)")
def softmax(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    rows = _rows(graph, node, x)
    trans = n + (rows if node.op_type == "LogSoftmax" else 0)
    return workload(graph, node, Kind.REDUCTION, flops=n * SOFTMAX_PER_ELEMENT,
                    dims={"numel_in": n, "numel_out": n, "rows": rows, "transcendental": trans})


@rule("Hardmax", kind=Kind.REDUCTION, formula="1 compare/element")
def hardmax(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    return workload(graph, node, Kind.REDUCTION, flops=n,
                    dims={"numel_in": n, "numel_out": n, "rows": _rows(graph, node, x),
                          "transcendental": 0})


@rule("TopK", kind=Kind.REDUCTION, formula="input elements · max(1, ⌈log2 k⌉) compares")
def topk(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    axis = axis_of(node, len(x), -1)
    k = shape(graph, node.outputs[0])[axis]
    n = prod(x)
    per = max(1, math.ceil(math.log2(k))) if k > 1 else 1
    return workload(graph, node, Kind.REDUCTION, flops=n * per,
                    dims={"numel_in": n, "numel_out": out_numel(graph, node), "k": k,
                          "rows": n // x[axis] if x[axis] else 0, "transcendental": 0})


@rule("CumSum", "CumProd", kind=Kind.REDUCTION, formula="(L − 1) flops per row of length L")
def scan(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    length = x[int(constant(graph, node, 1, "axis")) % len(x)] if x else 1
    rows = n // length if length else 0
    return workload(graph, node, Kind.REDUCTION, flops=rows * max(length - 1, 0),
                    dims={"numel_in": n, "numel_out": n, "rows": rows, "transcendental": 0})


@rule("NegativeLogLikelihoodLoss", kind=Kind.REDUCTION,
      formula="per target: negate (+ weight multiply) (+ add for sum/mean); mean + 1 divide")
def nll_loss(graph: Graph, node: Node) -> Workload:
    flops, targets = _nll_flops(graph, node, node.inputs[1], has_input(node, 2))
    return workload(graph, node, Kind.REDUCTION, flops=flops,
                    dims={"numel_in": in_numel(graph, node, 0), "numel_out": out_numel(graph, node),
                          "targets": targets, "transcendental": 0})


@rule("SoftmaxCrossEntropyLoss", kind=Kind.REDUCTION,
      formula="LogSoftmax over the class axis (5 flop/element) + NegativeLogLikelihoodLoss")
def softmax_cross_entropy(graph: Graph, node: Node) -> Workload:
    scores = shape(graph, node.inputs[0])
    n = prod(scores)
    rows = n // scores[1] if len(scores) > 1 and scores[1] else 0
    flops, targets = _nll_flops(graph, node, node.inputs[1], has_input(node, 2))
    return workload(graph, node, Kind.REDUCTION, flops=n * SOFTMAX_PER_ELEMENT + flops,
                    dims={"numel_in": n, "numel_out": out_numel(graph, node), "rows": rows,
                          "targets": targets, "transcendental": n + rows})


def _nll_flops(graph: Graph, node: Node, target: str, weighted: bool) -> tuple[int, int]:
    t = graph.tensor(target).numel
    reduction = str(node.attr("reduction", "mean"))
    per = 1 + (1 if weighted else 0) + (1 if reduction != "none" else 0)
    return t * per + (1 if reduction == "mean" else 0), t

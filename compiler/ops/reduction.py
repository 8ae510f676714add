"""Reductions: Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax. Kind REDUCTION.

flops = input elements x operations per input element: 1 for ReduceSum/Mean/Max/Min/Prod and
ArgMax/ArgMin (one combine each; the mean's division is folded in), 2 for ReduceSumSquare and
ReduceL2 (square, add; L2's final square root is one transcendental per output element).
Softmax and LogSoftmax: ~5 per element (max, subtract, exp, sum, divide or log-subtract), with
one transcendental per element (LogSoftmax one more per reduced row, the log).
dims: numel_in, numel_out, transcendental.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import out_numel, shape, workload

PER_INPUT_ELEMENT = {
    "ReduceSum": 1, "ReduceMean": 1, "ReduceMax": 1, "ReduceMin": 1, "ReduceProd": 1,
    "ArgMax": 1, "ArgMin": 1, "ReduceSumSquare": 2, "ReduceL2": 2, "ReduceL1": 2,
    "ReduceLogSumExp": 3,
}
SOFTMAX_PER_ELEMENT = 5


@rule(*PER_INPUT_ELEMENT)
def reduce(graph: Graph, node: Node) -> Workload:
    n_in = graph.tensor(node.inputs[0]).numel
    n_out = out_numel(graph, node)
    trans = {"ReduceL2": n_out, "ReduceLogSumExp": n_in + n_out}.get(node.op_type, 0)
    return workload(graph, node, Kind.REDUCTION, flops=n_in * PER_INPUT_ELEMENT[node.op_type],
                    dims={"numel_in": n_in, "numel_out": n_out, "transcendental": trans})


@rule("Softmax", "LogSoftmax")
def softmax(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = graph.tensor(node.inputs[0]).numel
    axis = int(node.attr("axis", -1)) % max(len(x), 1)
    rows = n // x[axis] if x else 1
    trans = n + (rows if node.op_type == "LogSoftmax" else 0)
    return workload(graph, node, Kind.REDUCTION, flops=n * SOFTMAX_PER_ELEMENT,
                    dims={"numel_in": n, "numel_out": n, "rows": rows, "transcendental": trans})

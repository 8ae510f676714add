"""Elementwise ops: one result per output element. Kind ELEMENTWISE.

flops = output elements x operations per element (table below). Exp, Log, Sqrt, Erf, Pow,
Sigmoid and Tanh each need a transcendental function per element: it counts as one flop in
`flops` and is *also* reported as `dims["transcendental"]` (elements x transcendentals per
element) so a target with a special-function unit can price it apart. Variadic Max/Min/Sum
take (inputs - 1) operations per element, Mean one more for the division.

dims: numel (output elements), ops_per_element, transcendental.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import out_numel, workload

# op -> (operations per element, transcendentals per element)
OPS_PER_ELEMENT: dict[str, tuple[int, int]] = {
    "Add": (1, 0), "Sub": (1, 0), "Mul": (1, 0), "Div": (1, 0), "Neg": (1, 0), "Abs": (1, 0),
    "Reciprocal": (1, 0), "Sign": (1, 0), "Floor": (1, 0), "Ceil": (1, 0), "Round": (1, 0),
    "Relu": (1, 0),            # one compare
    "LeakyRelu": (2, 0),       # compare + multiply
    "Elu": (3, 1), "Selu": (4, 1), "Softplus": (3, 2), "HardSigmoid": (3, 0),
    "Sigmoid": (4, 1),         # negate, exp, add, divide
    "Tanh": (4, 1),            # counted like Sigmoid: one exp plus three arithmetic ops
    "Exp": (1, 1), "Log": (1, 1), "Sqrt": (1, 1), "Erf": (1, 1), "Pow": (1, 1),
    "Sin": (1, 1), "Cos": (1, 1),
    "Clip": (2, 0),            # max then min
    "Where": (1, 0), "Equal": (1, 0), "Less": (1, 0), "Greater": (1, 0),
    "LessOrEqual": (1, 0), "GreaterOrEqual": (1, 0),
    "Not": (1, 0), "And": (1, 0), "Or": (1, 0), "Xor": (1, 0),
    "Cast": (1, 0), "IsNaN": (1, 0), "IsInf": (1, 0), "Mod": (1, 0),
}
VARIADIC = ("Max", "Min", "Sum", "Mean")


@rule(*OPS_PER_ELEMENT)
def elementwise(graph: Graph, node: Node) -> Workload:
    per, trans = OPS_PER_ELEMENT[node.op_type]
    n = out_numel(graph, node)
    return workload(graph, node, Kind.ELEMENTWISE, flops=n * per,
                    dims={"numel": n, "ops_per_element": per, "transcendental": n * trans})


@rule(*VARIADIC)
def variadic(graph: Graph, node: Node) -> Workload:
    operands = sum(1 for i in node.inputs if i)
    per = max(operands - 1, 0) + (1 if node.op_type == "Mean" else 0)
    n = out_numel(graph, node)
    if operands == 1 and node.op_type != "Mean":
        per = 0  # a single operand is a copy
    return workload(graph, node, Kind.ELEMENTWISE, flops=n * per,
                    dims={"numel": n, "ops_per_element": per, "transcendental": 0,
                          "operands": operands})

"""Elementwise ops: one result per output element. Kind ELEMENTWISE.

flops = output elements x operations per element (table below), counted operation by operation
from the op's formula in the ONNX operator specification (onnx/docs/Operators.md); a
multiply-add with attribute constants (α·x + β) counts as one. Exp, Log, Sqrt, Erf, Pow,
Sigmoid, Tanh and the trigonometric functions each need a transcendental function per element:
it counts as one flop in `flops` and is *also* reported as `dims["transcendental"]` (elements x
transcendentals per element) so a target with a special-function unit can price it apart.
Variadic Max/Min/Sum take (inputs - 1) operations per element, Mean one more for the division.
Gelu's count depends on its `approximate` attribute.

dims: numel (output elements), ops_per_element, transcendental.
"""

from __future__ import annotations

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import out_numel, workload

_TRIG = ("Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh")
_BITWISE = ("BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot")

# op -> (operations per element, transcendentals per element)
OPS_PER_ELEMENT: dict[str, tuple[int, int]] = {
    "Add": (1, 0), "Sub": (1, 0), "Mul": (1, 0), "Div": (1, 0), "Neg": (1, 0), "Abs": (1, 0),
    "Reciprocal": (1, 0), "Sign": (1, 0), "Floor": (1, 0), "Ceil": (1, 0), "Round": (1, 0),
    "Relu": (1, 0),            # one compare
    "ThresholdedRelu": (1, 0),  # x > α ? x : 0, one compare
    "LeakyRelu": (2, 0),       # compare + multiply
    "PRelu": (2, 0),           # compare + multiply by the (broadcast) slope
    "Elu": (3, 1),             # exp, α·e − α, select
    "Selu": (4, 1),            # exp, α·e − α, ·γ, select
    "Celu": (6, 1),            # x/α, exp, α·e − α, min, max, add
    "Softplus": (3, 2),        # exp, add, log
    "Softsign": (3, 0),        # abs, add, divide
    "HardSigmoid": (3, 0),     # α·x + β, min, max
    "HardSwish": (4, 0),       # HardSigmoid, then · x
    "Shrink": (3, 0),          # two compares, one add or subtract
    "Sigmoid": (4, 1),         # negate, exp, add, divide
    "Tanh": (4, 1),            # counted like Sigmoid: one exp plus three arithmetic ops
    "Swish": (6, 1),           # α·x, Sigmoid, · x
    "Mish": (8, 3),            # Softplus (3, 2), Tanh (4, 1), · x
    "Exp": (1, 1), "Log": (1, 1), "Sqrt": (1, 1), "Erf": (1, 1), "Pow": (1, 1),
    **{op: (1, 1) for op in _TRIG},
    "Clip": (2, 0),            # max then min
    "Trilu": (1, 0),           # compare row − column with k, keep or zero
    "Where": (1, 0), "Equal": (1, 0), "Less": (1, 0), "Greater": (1, 0),
    "LessOrEqual": (1, 0), "GreaterOrEqual": (1, 0),
    "Not": (1, 0), "And": (1, 0), "Or": (1, 0), "Xor": (1, 0),
    **{op: (1, 0) for op in _BITWISE},
    "Cast": (1, 0), "CastLike": (1, 0), "IsNaN": (1, 0), "IsInf": (1, 0), "Mod": (1, 0),
}
VARIADIC = ("Max", "Min", "Sum", "Mean")
# Gelu, ONNX opset 20: 0.5·x·(1 + erf(x/√2)) -> x/√2, erf, +1, ·x, ·0.5;
# approximate="tanh": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) -> x·x·x (2), 0.044715·x³ + x,
# ·√(2/π), tanh (4, 1 as Tanh above), +1, ·x, ·0.5.
GELU_PER_ELEMENT = {"none": (5, 1), "tanh": (11, 1)}


def _table_formula(op: str) -> str:
    per, trans = OPS_PER_ELEMENT[op]
    return f"{per} flop/element" + (f", {trans} transcendental/element" if trans else "")


@rule(*OPS_PER_ELEMENT, kind=Kind.ELEMENTWISE, formula=_table_formula)
def elementwise(graph: Graph, node: Node) -> Workload:
    per, trans = OPS_PER_ELEMENT[node.op_type]
    return _per_element(graph, node, per, trans)


@rule("Gelu", kind=Kind.ELEMENTWISE,
      formula="5 flop/element (erf form) or 11 (approximate=tanh), 1 transcendental/element")
def gelu(graph: Graph, node: Node) -> Workload:
    approx = str(node.attr("approximate", "none"))
    if approx not in GELU_PER_ELEMENT:
        raise UnsupportedOpError(node.op_type, node.name, f"approximate={approx!r} "
                                 f"(the ONNX spec allows {', '.join(GELU_PER_ELEMENT)})")
    return _per_element(graph, node, *GELU_PER_ELEMENT[approx])


def _per_element(graph: Graph, node: Node, per: int, trans: int) -> Workload:
    n = out_numel(graph, node)
    return workload(graph, node, Kind.ELEMENTWISE, flops=n * per,
                    dims={"numel": n, "ops_per_element": per, "transcendental": n * trans})


@rule(*VARIADIC, kind=Kind.ELEMENTWISE,
      formula="(inputs − 1) flop/element; Mean one more (the division); one input is a copy")
def variadic(graph: Graph, node: Node) -> Workload:
    operands = sum(1 for i in node.inputs if i)
    per = max(operands - 1, 0) + (1 if node.op_type == "Mean" else 0)
    n = out_numel(graph, node)
    if operands == 1 and node.op_type != "Mean":
        per = 0  # a single operand is a copy
    return workload(graph, node, Kind.ELEMENTWISE, flops=n * per,
                    dims={"numel": n, "ops_per_element": per, "transcendental": 0,
                          "operands": operands})

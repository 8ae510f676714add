"""How much rounding an output of a graph can carry: the tolerance of export verification,
derived from the graph instead of guessed.

For every value v the float64 evaluation computes, `RoundingBudget` records

    G(v)  accumulation depth: along the longest path from the graph inputs to v, the number
          of roundings an element goes through — 1 per rounding elementwise op (Add, Mul, Exp,
          ...), n per sum of n terms (a MatMul with inner size n, a Conv over C_in·k_h·k_w
          taps, a ReduceSum of n elements), 0 per exact op (Relu, Neg, MaxPool's values,
          reshapes, gathers);
    M(v)  magnitude: the largest |x| of v and of every value it depends on;

and an output o computed in a precision of unit roundoff u (2⁻²⁴ in float32, 2⁻⁵³ in
float64) is expected within u·G(o)·M(o) of the exact result: the first-order bound of
recursive summation and of a chain of rounded operations (Higham, "Accuracy and Stability of
Numerical Algorithms", 2nd ed., §3.1 and §4.2), with every term bounded by the largest
magnitude met on the way. Comparing two computations that both round (onnxruntime and eager
torch), the tolerance is the sum of their budgets. The budget is reported with every check
(`verification.Check`), so a reader can see how much of it an export used.
"""

from __future__ import annotations

import math

import onnx
import torch
from torch import Tensor

UNIT_ROUNDOFF = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}

# Ops whose result is exact given their inputs (no rounding of their own).
_EXACT = {"Abs", "Neg", "Sign", "Relu", "Where", "Clip", "Max", "Min", "Identity", "Cast", "Equal", "Less",
          "Greater", "LessOrEqual", "GreaterOrEqual", "Reshape", "Expand", "Squeeze",
          "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements",
          "ConstantOfShape", "Constant", "MaxPool"}
# Exact ops whose every output element is one of their input elements (or 0): their output's
# magnitude is bounded by their inputs', so it is not measured (an Expand of a broadcast view
# would cost a pass over the whole expanded tensor).
_SELECTS = {"Relu", "Neg", "Abs", "Where", "Max", "Min", "Identity", "Reshape", "Expand",
            "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
            "GatherElements", "MaxPool"}
# Ops that round once per element.
_ROUNDING = {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Sigmoid", "Tanh"}


class RoundingBudget:
    """Watches a graph evaluation (`onnx_eval.evaluate(..., watch=budget.observe)`) and gives
    each output its rounding budget."""

    def __init__(self) -> None:
        self.depth: dict[str, float] = {}
        self.magnitude: dict[str, float] = {}

    def observe(self, node: onnx.NodeProto, inputs: list[Tensor | None], outputs: tuple) -> None:
        for name, value in zip(node.input, inputs):
            if name and name not in self.depth:  # a graph input or an initializer
                self.depth[name] = 0.0
                self.magnitude[name] = _largest(value)
        known = [name for name in node.input if name]
        depth = max((self.depth[n] for n in known), default=0.0) + accumulation(node, inputs)
        magnitude = max((self.magnitude[n] for n in known), default=0.0)
        measure = node.op_type not in _SELECTS
        for name, value in zip(node.output, outputs):
            if name:
                self.depth[name] = depth
                self.magnitude[name] = max(magnitude, _largest(value)) if measure else magnitude

    def tolerance(self, name: str, *precisions: str) -> float:
        """The budget of value `name` for comparing computations in `precisions` (each rounds)."""
        return sum(UNIT_ROUNDOFF[p] for p in precisions) * self.depth[name] * self.magnitude[name]


def accumulation(node: onnx.NodeProto, inputs: list[Tensor | None]) -> float:
    """The roundings one output element of `node` goes through (see the module docstring)."""
    op = node.op_type
    if op in _EXACT:
        return 0.0
    if op in _ROUNDING:
        return 1.0
    if op in ("Conv", "ConvTranspose"):
        w = inputs[1]
        taps = math.prod(w.shape[2:])
        channels = w.shape[1] if op == "Conv" else w.shape[0] // _group(node)
        return float(channels * taps + (len(inputs) > 2 and inputs[2] is not None))
    if op == "ScatterElements":  # "add" sums the updates that land on one element
        add = any(a.name == "reduction" and a.s == b"add" for a in node.attribute)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        return float(inputs[2].shape[axis]) if add else 0.0
    if op == "MatMul":
        return float(inputs[0].shape[-1])
    if op == "Gemm":
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        a = inputs[0]
        return float(a.shape[0] if trans_a else a.shape[-1]) + 2.0  # the products, alpha, + C
    if op in ("ReduceSum", "ReduceMean"):
        return float(_reduced(node, inputs)) + (op == "ReduceMean")
    if op == "LogSoftmax":
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        return float(inputs[0].shape[axis]) + 3.0  # exp, the sum, log, subtraction
    raise KeyError(f"no rounding rule for op {op!r} (node {node.name!r})")


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def _reduced(node: onnx.NodeProto, inputs: list[Tensor | None]) -> int:
    x = inputs[0]
    axes = inputs[1] if len(inputs) > 1 else None
    if axes is None or axes.numel() == 0:
        noop = any(a.name == "noop_with_empty_axes" and a.i for a in node.attribute)
        return 1 if noop else x.numel()
    return math.prod(x.shape[int(a)] for a in axes.reshape(-1).tolist())


def _largest(value: object) -> float:
    if not isinstance(value, Tensor) or not value.is_floating_point() or value.numel() == 0:
        return 0.0
    low, high = torch.aminmax(value.detach())  # one pass, no |value| temporary
    return max(-float(low), float(high))

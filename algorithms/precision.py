"""The float64 master graph of a phase and its float32 copy.

Every phase is traced once, in float64 (`export.trace_phase`). Its constants are then the exact
values the algorithm's code names (Adam's ε = 1e-8, β₂ = 0.999, the 1/N of a mean): a float32
trace folds them to float32 first, and a float64 run of that graph is off by float32's rounding
of them — amplified, e.g. 1 − β₂ᵗ loses three digits — which is exactly the noise a structural
check must not have to allow for. Verification runs the float64 graph against eager torch in
float64 (`verification`).

The float32 graph that a float32 spec ships is `narrow(graph)`: the same nodes, attributes and
wiring, with every float64 element type made float32 — graph inputs and outputs, value
types, initializers and node tensor attributes (rounded once, to nearest), Cast targets. Nothing
else in these graphs names a float type (checked: an attribute "dtype" is refused).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

DOUBLE, FLOAT = onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT
_NAMES = {DOUBLE: "float64", FLOAT: "float32"}


def float_type(model: onnx.ModelProto) -> str:
    """'float64' or 'float32': the float element type of the graph's inputs and outputs."""
    types = {v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]}
    floats = types & set(_NAMES)
    if len(floats) != 1:
        raise ValueError(f"graph {model.graph.name!r} mixes or lacks float types: element types {sorted(types)}")
    return _NAMES[floats.pop()]


def narrow(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the float64 `model` in float32 (see the module docstring)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    for value in [*g.input, *g.output, *g.value_info]:
        if value.type.tensor_type.elem_type == DOUBLE:
            value.type.tensor_type.elem_type = FLOAT
    for k, init in enumerate(g.initializer):
        if init.data_type == DOUBLE:
            g.initializer[k].CopyFrom(_narrowed(init))
    for node in g.node:
        for a in node.attribute:
            if a.name == "dtype":
                raise ValueError(f"node {node.name!r} ({node.op_type}) names an element type in "
                                 f"its attribute 'dtype': narrow() does not know whether to change it")
            if node.op_type == "Cast" and a.name == "to" and a.i == DOUBLE:
                a.i = FLOAT
            elif a.type == onnx.AttributeProto.TENSOR and a.t.data_type == DOUBLE:
                a.t.CopyFrom(_narrowed(a.t))
    return out


def _narrowed(tensor: onnx.TensorProto) -> onnx.TensorProto:
    # A constant beyond float32's range becomes ±inf, as a float32 program would hold it;
    # verification's float32 run reports what that does to the outputs.
    with np.errstate(over="ignore"):
        return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)

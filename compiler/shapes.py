"""Static shapes: the third stage of `compiler.frontend.load_graph`.

1. `bind_dims` gives symbolic input dimensions the values the caller passed (`dims`), after
   checking that every name exists in the model and every value is a positive integer, and
   checks that every graph input then has a static shape of positive dimensions within
   `Limits.max_tensor_elements`.
2. `infer_types` runs ONNX shape inference (strict, without onnx's data propagation) on the
   whole model.
3. `Resolver` walks the nodes in topological order and fills what inference left open:
   small constant values (shapes, axes, scalars; at most `MAX_CONSTANT_ELEMENTS` elements) are
   computed node by node with the ONNX reference evaluator, and a node whose outputs are still
   unknown is re-inferred alone with those values as initializers; outputs that onnx's
   inference leaves open (the mask of Dropout before opset 10, ops in `SAME_SHAPE` whose
   inference fails, Compress with a constant condition) follow from the operator spec. Every
   output shape is checked against `Limits` as soon as it is known, and a node is evaluated
   only when its outputs are known to be small (or, for ops whose output size depends on
   values, bounded by inputs that are) — so a tiny file cannot make the frontend materialise a
   large tensor. A tensor left without a static integer shape is an error naming it and its
   producer, never a guess.
"""

from __future__ import annotations

import math
import numbers
from itertools import chain
from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import ModelError
from .limits import MAX_CONSTANT_ELEMENTS, Limits
from .reading import ITEMSIZE
from .ir import Node

# Ops whose results are random: never folded into constants.
_RANDOM = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"})
# Ops whose output size depends on input values but never exceeds a small multiple of the
# input size (NonZero: rank x elements); evaluated on small constant inputs to learn it.
_VALUE_SIZED = frozenset({"NonZero", "Unique", "Compress"})
_NOT_FOLDED = _RANDOM | {"Shape", "Size"}   # Shape and Size are computed from shapes instead
# Nor is an Einsum of three or more operands: the reference evaluator may loop over the product
# of all index ranges (4096^3 steps for three small vectors and a scalar result).
# Ops whose first output has the shape and element type of their first input (ONNX operator
# spec): used when onnx's own inference fails on them.
SAME_SHAPE = frozenset("""Abs Acos Acosh Asin Asinh Atan Atanh BatchNormalization BitwiseNot Ceil Celu Clip
Cos Cosh CumProd CumSum Dropout Elu Erf Exp Floor Gelu GroupNormalization HardSigmoid HardSwish Hardmax
Identity InstanceNormalization LRN LayerNormalization LeakyRelu Log LogSoftmax LpNormalization
MeanVarianceNormalization Mish Neg PRelu RMSNormalization Reciprocal Relu Round Selu Shrink Sigmoid Sign
Sin Sinh Softmax Softplus Softsign Sqrt Swish Tan Tanh ThresholdedRelu Trilu""".split())
_UNKNOWN = (None, 0)

Type = tuple["tuple[int, ...] | None", int]


def bind_dims(model: onnx.ModelProto, dims: Mapping[str, int] | None, label: str, limits: Limits) -> None:
    g = model.graph
    dims = dict(dims or {})
    for name, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ModelError(f"{label}: dims[{name!r}] = {value!r}; a dimension must be a positive integer")
    if dims:
        declared = {d.dim_param for vi in chain(g.input, g.output)
                    for d in vi.type.tensor_type.shape.dim if d.HasField("dim_param")}
        unknown = sorted(set(dims) - declared)
        if unknown:
            have = ", ".join(repr(n) for n in sorted(declared)) or "none"
            raise ModelError(f"{label}: dims names {', '.join(map(repr, unknown))}, which the model does "
                             f"not have (its symbolic dimensions: {have})")
        for vi in chain(g.input, g.output, g.value_info):
            for d in vi.type.tensor_type.shape.dim:
                if d.HasField("dim_param") and d.dim_param in dims:
                    d.dim_value = int(dims[d.dim_param])
    inits = {t.name for t in g.initializer}
    for vi in g.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type"):
            raise ModelError(f"{label}: input {vi.name!r} is not a tensor")
        if not vi.type.tensor_type.HasField("shape"):
            raise ModelError(f"{label}: input {vi.name!r} has no shape")
        shape = []
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                sym = d.dim_param or "?"
                raise ModelError(f"{label}: input {vi.name!r} has symbolic dimension {sym!r}; "
                                 f"pass dims={{{sym!r}: N}}")
            shape.append(d.dim_value)
        if any(d <= 0 for d in shape):
            raise ModelError(f"{label}: input {vi.name!r} has shape {shape}; input dimensions must "
                             "be positive")
        if math.prod(shape) > limits.max_tensor_elements:
            raise ModelError(f"{label}: input {vi.name!r} has {math.prod(shape):,} elements (shape "
                             f"{shape}); {limits.how_to_raise('max_tensor_elements')}")


def infer_types(model: onnx.ModelProto, label: str) -> tuple[dict[str, Type], str | None]:
    """Static type of every tensor ONNX shape inference resolves, by name, and the error that
    strict inference reported (None if it succeeded).

    ONNX's own data propagation is never used: for Add, Sub and Mul it builds a shape of one
    dimension per element of every 1-D operand (about 150 bytes each, onnx 1.23), so a graph
    with a 16 M-element vector costs 2.4 GB however small its file. Values of shape
    sub-graphs (Shape -> Gather -> Concat -> Reshape) are computed by `Resolver` instead.

    Strict inference stops at the first node it cannot infer — sometimes a flaw of onnx itself
    (MeanVarianceNormalization's function body at opset 13+, broadcasting Einsum ellipses).
    Inference then runs again leniently, without the file's own value_info and output shapes
    (so that no shape comes from the file unchecked), and `Resolver` fills the gaps from the
    operator spec or reports the strict error for a tensor it cannot resolve."""
    types, error = _inferred_types(model, strict=True)
    if error is not None:
        del model.graph.value_info[:]
        for vi in model.graph.output:
            vi.type.tensor_type.ClearField("shape")
        types, lenient_error = _inferred_types(model, strict=False)
        if lenient_error is not None:
            raise ModelError(f"{label}: shape inference failed: {error}")
    return types, error


def _inferred_types(model: onnx.ModelProto, strict: bool) -> tuple[dict[str, Type], str | None]:
    try:
        g = onnx.shape_inference.infer_shapes(model, strict_mode=strict).graph
    except Exception as exc:
        return {}, (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    types: dict[str, Type] = {}
    for vi in chain(g.input, g.value_info, g.output):
        old = types.get(vi.name)
        if old is None or old[0] is None:
            types[vi.name] = static_type(vi)
    return types, None


def static_type(vi: onnx.ValueInfoProto) -> Type:
    """(shape or None when some dimension is not a known non-negative integer, element type)."""
    tt = vi.type.tensor_type
    # dim_value reads 0 for a symbolic dimension: a 0 is looked at closely, others are known.
    shape = tuple([d.dim_value for d in tt.shape.dim])
    if not shape:
        return (() if tt.HasField("shape") else None), tt.elem_type
    if 0 in shape or min(shape) < 0:
        for d in tt.shape.dim:
            if not d.HasField("dim_value") or d.dim_value < 0:
                return None, tt.elem_type
    return shape, tt.elem_type


class Resolver:
    """Static shape and small-value propagation node by node (fills what inference left open).

    A node whose outputs inference left open is inferred alone, with the values known for its
    inputs as initializers. After `reinfer_after` such single-node inferences since the last
    whole-graph inference, the graph is inferred again with every shape known so far as
    value_info: a shape resolved from computed values (a Reshape whose target comes from a
    Shape sub-graph) then reaches everything downstream in one pass, not one single-node
    inference per node. A whole-graph pass costs about as much as nodes/16 single-node ones
    (measured with onnx 1.23: ~3 us per node of the graph against ~50 us per one-node model),
    so waiting for that many keeps the work within twice the cheaper of the two."""

    REINFER_AFTER = 32   # at least this many single-node inferences between whole-graph passes

    def __init__(self, model: onnx.ModelProto, inferred: tuple[dict[str, Type], str | None], label: str,
                 limits: Limits, opset: int) -> None:
        g = model.graph
        types, self.inference_error = inferred
        self.model, self.alone = model, 0
        self.reinfer_after = max(self.REINFER_AFTER, len(g.node) // 16)
        self.label, self.limits, self.opset = label, limits, opset
        self.opset_import = model.opset_import
        self.types = types
        self.values: dict[str, np.ndarray] = {}
        self.total_bytes = 0
        inits = set()
        for t in g.initializer:
            inits.add(t.name)
            shape = tuple(t.dims)
            self.types[t.name] = (shape, t.data_type)
            self._add_bytes(t.name, shape, t.data_type, f"initializer {t.name!r}")
            if math.prod(shape) <= MAX_CONSTANT_ELEMENTS:
                self.values[t.name] = numpy_helper.to_array(t)
        for vi in g.input:
            if vi.name not in inits:
                shape, et = self.types[vi.name]
                self._add_bytes(vi.name, shape or (), et, f"input {vi.name!r}")

    # ---- the walk ------------------------------------------------------------------------------
    def visit(self, node: Node, proto: onnx.NodeProto) -> None:
        op, types, values = node.op_type, self.types, self.values
        if op == "Shape" or op == "Size":
            self._shape_value(node)
        outs = [o for o in node.outputs if o]
        shapes = [types.get(o, _UNKNOWN)[0] for o in outs]
        if None in shapes:
            if self.alone >= self.reinfer_after:
                self._reinfer()
                shapes = [types.get(o, _UNKNOWN)[0] for o in outs]
            if None in shapes:
                self._infer_alone(node, proto)
                self._from_spec(node)
                shapes = [types.get(o, _UNKNOWN)[0] for o in outs]
        for o, shape in zip(outs, shapes):
            if shape is not None:
                self._check_size(o, node, shape)
        if op not in _NOT_FOLDED and all(i in values for i in node.inputs if i) and not (
                op == "Einsum" and len(node.inputs) > 2):
            if None not in shapes:
                if all(math.prod(shape) <= MAX_CONSTANT_ELEMENTS for shape in shapes):
                    self._evaluate(node, proto)
            elif op in _VALUE_SIZED:
                self._evaluate(node, proto)
                for o, shape in zip(outs, shapes):
                    if shape is None and types.get(o, _UNKNOWN)[0] is not None:
                        self._check_size(o, node, types[o][0])
        for o in outs:
            if types.get(o, _UNKNOWN)[0] is None:
                why = f"; ONNX shape inference: {self.inference_error}" if self.inference_error else ""
                raise ModelError(f"{self.label}: cannot resolve a static shape for tensor {o!r} "
                                 f"produced by node {node.name!r} ({op}){why}")

    def _shape(self, name: str) -> tuple[int, ...] | None:
        return self.types.get(name, (None, 0))[0]

    def _shape_value(self, node: Node) -> None:
        shape = self._shape(node.inputs[0]) if node.inputs else None
        if shape is None:
            return
        if node.op_type == "Size":
            self._set_value(node.outputs[0], np.array(math.prod(shape), np.int64))
            return
        value = np.array(shape, dtype=np.int64)
        self._set_value(node.outputs[0], value[node.attr("start", 0):node.attr("end", len(shape))])

    # ---- limits -------------------------------------------------------------------------------
    def _check_size(self, name: str, node: Node, shape: tuple[int, ...]) -> None:
        numel = math.prod(shape)
        if numel > self.limits.max_tensor_elements:
            raise ModelError(f"{self.label}: tensor {name!r} produced by node {node.name!r} "
                             f"({node.op_type}) would have {numel:,} elements (shape {list(shape)}); "
                             f"{self.limits.how_to_raise('max_tensor_elements')}")
        self._add_bytes(name, shape, self.types[name][1],
                        f"tensor {name!r} produced by node {node.name!r} ({node.op_type})")

    def _add_bytes(self, name: str, shape: tuple[int, ...], elem_type: int, what: str) -> None:
        self.total_bytes += math.prod(shape) * ITEMSIZE.get(elem_type, 1)
        if self.total_bytes > self.limits.max_total_bytes:
            raise ModelError(f"{self.label}: the graph's tensors exceed {self.limits.max_total_bytes:,} "
                             f"bytes at {what}; {self.limits.how_to_raise('max_total_bytes')}")

    # ---- values and shapes of one node ------------------------------------------------------------
    def _set_value(self, name: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.size <= MAX_CONSTANT_ELEMENTS:
            self.values[name] = value
        et = self.types.get(name, (None, 0))[1] or helper.np_dtype_to_tensor_dtype(value.dtype)
        self.types[name] = (tuple(int(d) for d in value.shape), et)

    def _one_node_model(self, node: Node, proto: onnx.NodeProto, name: str,
                        with_shapes: bool) -> onnx.ModelProto:
        ins = [i for i in dict.fromkeys(node.inputs) if i]
        inits = [numpy_helper.from_array(np.asarray(self.values[i]), i) for i in ins if i in self.values]
        vis = [helper.make_tensor_value_info(i, self.types[i][1], self._shape(i))
               for i in ins if i not in self.values] if with_shapes else []
        outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in node.outputs if o]
        return helper.make_model(helper.make_graph([proto], name, vis, outs, inits),
                                 opset_imports=self.opset_import)

    def _evaluate(self, node: Node, proto: onnx.NodeProto) -> None:
        from onnx.reference import ReferenceEvaluator

        try:
            outs = ReferenceEvaluator(self._one_node_model(node, proto, "fold", False)).run(None, {})
        except Exception:
            return  # not foldable here; its shapes are known or resolved without its values
        for o, v in zip([o for o in node.outputs if o], outs):
            self._set_value(o, v)

    def _infer_alone(self, node: Node, proto: onnx.NodeProto) -> None:
        if any(i and i not in self.values and self._shape(i) is None for i in node.inputs):
            return
        self.alone += 1
        try:
            inferred = onnx.shape_inference.infer_shapes(
                self._one_node_model(node, proto, "infer", True))
        except Exception:
            return
        for vi in chain(inferred.graph.output, inferred.graph.value_info):
            shape, et = static_type(vi)
            if shape is not None and vi.name in node.outputs:
                self.types[vi.name] = (shape, et or self.types.get(vi.name, (None, 0))[1])

    def _reinfer(self) -> None:
        """Whole-graph inference again, every shape known so far given as value_info."""
        g = self.model.graph
        sources = {vi.name for vi in g.input} | {t.name for t in g.initializer}
        del g.value_info[:]
        g.value_info.extend(helper.make_tensor_value_info(name, et, shape)
                            for name, (shape, et) in self.types.items()
                            if shape is not None and et and name not in sources)
        self.alone = 0
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model).graph
        except Exception:
            return
        for vi in chain(inferred.value_info, inferred.output):
            if self.types.get(vi.name, _UNKNOWN)[0] is None:
                shape, et = static_type(vi)
                if shape is not None and et:
                    self.types[vi.name] = (shape, et)

    def _from_spec(self, node: Node) -> None:
        """Output shapes that onnx's inference leaves open but the operator spec fixes."""
        op, types = node.op_type, self.types
        x = types.get(node.inputs[0], _UNKNOWN) if node.inputs else _UNKNOWN
        if x[0] is None or not node.outputs:
            return
        y = node.outputs[0]
        if op in SAME_SHAPE and self._shape(y) is None:
            types[y] = x
        if op == "Dropout" and len(node.outputs) > 1 and node.outputs[1] and self._shape(node.outputs[1]) is None:
            # Dropout-7..9 declare the mask with the data's type; from opset 10 it is bool.
            types[node.outputs[1]] = (x[0], TensorProto.BOOL if self.opset >= 10 else x[1])
        if op == "Compress" and self._shape(y) is None and len(node.inputs) > 1 and node.inputs[1] in self.values:
            # output length along `axis` (flattened when absent) = true entries of the condition
            keep = int(np.count_nonzero(self.values[node.inputs[1]]))
            axis = node.attr("axis")
            if axis is None:
                types[y] = ((keep,), x[1])
            elif -len(x[0]) <= int(axis) < len(x[0]):
                shape = list(x[0])
                shape[int(axis)] = keep
                types[y] = (tuple(shape), x[1])

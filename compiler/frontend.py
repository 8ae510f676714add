"""ONNX -> IR: read a model safely, resolve every shape statically, attach roles and scopes.

`load_graph(source, dims=None)` is the only entry point. It

1. reads the file without following external data, checks that every external-data location is
   a relative path inside the model's folder (no absolute paths, no `..`, no symlink escapes),
   and only then loads the external data;
2. rejects what the compiler does not model: subgraphs (If/Loop/Scan) -> `ModelError`, custom
   domains -> `UnsupportedOpError`;
3. runs ONNX shape inference with data propagation and fills its gaps itself: small constant
   values (shapes, axes, scalars) are propagated node by node with the ONNX reference evaluator,
   and a node whose outputs are still unknown is re-inferred alone with those values as
   initializers. A tensor left without a static integer shape is an error naming it and its
   producer, never a guess;
4. gives every tensor a role and every node a scope (`hwsim.scope` node metadata).

Roles: graph inputs are INPUT, except those named in the model metadata `parameter_inputs` or
`optimizer_state_inputs` (comma-separated) which are PARAMETER; float initializers are PARAMETER
unless tiny (<= 16 elements) or integer/bool typed, then CONSTANT — a tiny float initializer in
a weight/bias position of Conv, ConvTranspose, Gemm, BatchNormalization or LayerNormalization
stays PARAMETER (a 5-way head's bias has 5 elements); outputs of Constant nodes (and
of ConstantOfShape fed by a constant shape) are CONSTANT; outputs of nodes scoped `backward` or
`meta_grad` are GRADIENT; graph outputs are OUTPUT; everything else ACTIVATION. BatchNormalization
running statistics are initializers and therefore PARAMETER; callers that count learnable
parameters subtract them (inputs 3 and 4 of BatchNormalization).
"""

from __future__ import annotations

import math
import os
from itertools import chain
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwsim.errors import BadInput
from hwsim.scope import GRADIENT_PARTS, SCOPE_PROP, Scope

from .ir import Graph, Node, Role, Tensor
from .workload import UnsupportedOpError


class ModelError(BadInput):
    """The file is not a model the compiler can read (one line: which file / tensor / node, what)."""


# Small constants are kept by value (shapes, axes, pads, scalars); larger ones only by shape.
MAX_CONSTANT_ELEMENTS = 4096
# Float initializers up to this size are constants (scalars, epsilons), not parameters.
MAX_TINY_ELEMENTS = 16
_STANDARD_DOMAINS = ("", "ai.onnx")
_SUBGRAPH_ATTRIBUTES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)

_DTYPES: Mapping[int, str] = {
    TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64", TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16", TensorProto.INT64: "int64", TensorProto.INT32: "int32",
    TensorProto.INT16: "int16", TensorProto.INT8: "int8", TensorProto.UINT8: "uint8",
    TensorProto.BOOL: "bool",
}
_FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
# Operand positions that hold weights: a float initializer there is a PARAMETER even when tiny
# (a 5-way head's bias has 5 elements). BatchNormalization's running mean/var (3, 4) included.
_WEIGHT_OPERANDS: Mapping[str, tuple[int, ...]] = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2),
    "BatchNormalization": (1, 2, 3, 4), "LayerNormalization": (1, 2),
}


def load_graph(source: str | Path | onnx.ModelProto, dims: Mapping[str, int] | None = None) -> Graph:
    """Read an ONNX model (path or ModelProto) into a static-shape IR `Graph`.

    `dims` resolves symbolic dimensions by name, e.g. ``{"batch_size": 1}``; without it a
    symbolic dimension is an error.
    """
    model, label = _read_model(source)
    _check_nodes(model, label)
    _name_nodes(model)
    _bind_dims(model, dict(dims or {}), label)
    model = _infer_shapes(model, label)
    return _build_graph(model, label)


# --------------------------------------------------------------------------- reading
def _read_model(source: str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        for t in _all_tensors(model):
            if t.data_location == TensorProto.EXTERNAL:
                raise ModelError(f"model {model.graph.name!r}: tensor {t.name!r} has external data "
                                 "but was given in memory; pass the file path instead")
        return model, f"model {model.graph.name!r}"
    path = Path(source)
    label = f"{path}"
    if not path.is_file():
        raise ModelError(f"{label}: no such file")
    if path.stat().st_size == 0:
        raise ModelError(f"{label}: empty file, not an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{label}: not an ONNX model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'cannot decode'})") from None
    # A protobuf parser accepts many byte strings; an ONNX model has an IR version and a graph.
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise ModelError(f"{label}: not an ONNX model (no IR version or empty graph)")
    _load_external_data(model, path, label)
    return model, label


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t
            elif a.type == onnx.AttributeProto.TENSORS:
                yield from a.tensors


def _load_external_data(model: onnx.ModelProto, path: Path, label: str) -> None:
    folder = path.resolve().parent
    external = [t for t in _all_tensors(model) if t.data_location == TensorProto.EXTERNAL]
    for t in external:
        location = {e.key: e.value for e in t.external_data}.get("location", "")
        if not location:
            raise ModelError(f"{label}: tensor {t.name!r} has external data without a location")
        if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location:
            raise ModelError(f"{label}: tensor {t.name!r}: external data location {location!r} "
                             "must be a relative path")
        target = (folder / location).resolve()  # follows symlinks
        if not target.is_relative_to(folder):
            raise ModelError(f"{label}: tensor {t.name!r}: external data location {location!r} "
                             "leaves the model's folder")
        if not target.is_file():
            raise ModelError(f"{label}: tensor {t.name!r}: external data file {location!r} is missing")
    if external:
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(folder))
        except Exception as exc:
            raise ModelError(f"{label}: cannot load external data ({exc})") from None


# --------------------------------------------------------------------------- checks
def _check_nodes(model: onnx.ModelProto, label: str) -> None:
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        if node.domain not in _STANDARD_DOMAINS:
            raise UnsupportedOpError(node.op_type, name, f"custom domain {node.domain!r}")
        for a in node.attribute:
            if a.type in _SUBGRAPH_ATTRIBUTES:
                raise ModelError(f"{label}: node {name!r} ({node.op_type}) has a subgraph; "
                                 "control flow (If/Loop/Scan) is not supported")
    if model.functions:
        raise ModelError(f"{label}: model-local functions are not supported "
                         f"({', '.join(f.name for f in model.functions)})")


def _name_nodes(model: onnx.ModelProto) -> None:
    """ONNX allows empty or repeated node names; the IR needs unique ones."""
    names = [n.name for n in model.graph.node]
    seen = set(names)
    if "" not in seen and len(seen) == len(names):
        return   # all named, all distinct
    seen.discard("")
    used: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if node.name and node.name not in used:
            used.add(node.name)
            continue
        base = f"{node.op_type}_{i}"
        name, k = base, 0
        while name in seen or name in used:
            k += 1
            name = f"{base}_{k}"
        node.name = name
        used.add(name)


def _bind_dims(model: onnx.ModelProto, dims: dict[str, int], label: str) -> None:
    g = model.graph
    inits = {t.name for t in g.initializer}
    if dims:
        for vi in chain(g.input, g.output, g.value_info):
            for d in vi.type.tensor_type.shape.dim:
                if d.HasField("dim_param") and d.dim_param in dims:
                    d.dim_value = int(dims[d.dim_param])
    for vi in g.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type"):
            raise ModelError(f"{label}: input {vi.name!r} is not a tensor")
        if not vi.type.tensor_type.HasField("shape"):
            raise ModelError(f"{label}: input {vi.name!r} has no shape")
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                sym = d.dim_param or "?"
                raise ModelError(f"{label}: input {vi.name!r} has symbolic dimension {sym!r}; "
                                 f"pass dims={{{sym!r}: N}}")


# --------------------------------------------------------------------------- shapes
def _infer_shapes(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    # value_info from the exporter may carry symbolic dims; inference recomputes them.
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise ModelError(f"{label}: shape inference failed: {str(exc).splitlines()[0]}") from None


def _static_type(vi: onnx.ValueInfoProto) -> tuple[tuple[int, ...] | None, int]:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None, tt.elem_type
    shape = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None, tt.elem_type
        shape.append(d.dim_value)
    return tuple(shape), tt.elem_type


class _Resolver:
    """Static shape and small-value propagation node by node (fills what inference left open)."""

    def __init__(self, model: onnx.ModelProto, label: str) -> None:
        g = model.graph
        self.label, self.opset = label, model.opset_import
        self.types: dict[str, tuple[tuple[int, ...] | None, int]] = {}
        self.values: dict[str, np.ndarray] = {}
        for vi in chain(g.input, g.value_info, g.output):
            old = self.types.get(vi.name)
            if old is None or old[0] is None:
                self.types[vi.name] = _static_type(vi)
        for t in g.initializer:
            self.types[t.name] = (tuple(t.dims), t.data_type)
            if math.prod(t.dims) <= MAX_CONSTANT_ELEMENTS:
                self.values[t.name] = numpy_helper.to_array(t)

    def visit(self, node: onnx.NodeProto) -> None:
        ins = [i for i in node.input if i]
        if node.op_type == "Shape" and self._shape(node.input[0]) is not None:
            shape = np.array(self._shape(node.input[0]), dtype=np.int64)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            start, end = attrs.get("start", 0), attrs.get("end", len(shape))
            self._set_value(node.output[0], shape[start:end])
        elif node.op_type == "Size" and self._shape(node.input[0]) is not None:
            self._set_value(node.output[0], np.array(int(np.prod(self._shape(node.input[0]))), np.int64))
        elif all(i in self.values for i in ins) and node.op_type not in ("RandomNormal", "RandomUniform",
                                                                         "RandomNormalLike", "RandomUniformLike",
                                                                         "Multinomial", "Bernoulli"):
            self._evaluate(node)
        if any(o and self._shape(o) is None for o in node.output):
            self._infer_alone(node)
            for o in node.output:
                if o and self._shape(o) is None:
                    raise ModelError(f"{self.label}: cannot resolve a static shape for tensor {o!r} "
                                     f"produced by node {node.name!r} ({node.op_type})")

    def _shape(self, name: str) -> tuple[int, ...] | None:
        return self.types.get(name, (None, 0))[0]

    def _set_value(self, name: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.size <= MAX_CONSTANT_ELEMENTS:
            self.values[name] = value
        et = self.types.get(name, (None, 0))[1] or helper.np_dtype_to_tensor_dtype(value.dtype)
        self.types[name] = (tuple(int(d) for d in value.shape), et)

    def _evaluate(self, node: onnx.NodeProto) -> None:
        from onnx.reference import ReferenceEvaluator

        ins = [i for i in node.input if i]
        one = helper.make_graph(
            [node], "fold",
            [], [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in node.output if o],
            [numpy_helper.from_array(np.asarray(self.values[i]), i) for i in dict.fromkeys(ins)])
        try:
            outs = ReferenceEvaluator(helper.make_model(one, opset_imports=self.opset)).run(None, {})
        except Exception:
            return  # not foldable here; shape inference may still resolve it
        for o, v in zip([o for o in node.output if o], outs):
            self._set_value(o, v)

    def _infer_alone(self, node: onnx.NodeProto) -> None:
        ins = [i for i in dict.fromkeys(node.input) if i]
        inits, vis = [], []
        for i in ins:
            if i in self.values:
                inits.append(numpy_helper.from_array(np.asarray(self.values[i]), i))
            elif self._shape(i) is not None:
                vis.append(helper.make_tensor_value_info(i, self.types[i][1], self._shape(i)))
            else:
                return
        one = helper.make_graph([node], "infer", vis,
                                [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                                 for o in node.output if o], inits)
        try:
            inferred = onnx.shape_inference.infer_shapes(
                helper.make_model(one, opset_imports=self.opset), data_prop=True)
        except Exception:
            return
        for vi in list(inferred.graph.output) + list(inferred.graph.value_info):
            shape, et = _static_type(vi)
            if shape is not None and vi.name in node.output:
                self.types[vi.name] = (shape, et or self.types.get(vi.name, (None, 0))[1])


# --------------------------------------------------------------------------- IR
def _build_graph(model: onnx.ModelProto, label: str) -> Graph:
    g = model.graph
    metadata = {p.key: p.value for p in model.metadata_props}
    default_part = "other" if "phase" in metadata else "forward"
    nodes = _topological(list(g.node), g, label)
    resolver = _Resolver(model, label)
    for node in nodes:
        resolver.visit(node)

    init_names = {t.name for t in g.initializer}
    inputs = [vi.name for vi in g.input if vi.name not in init_names]
    outputs = [vi.name for vi in g.output]
    listed = {n.strip() for key in ("parameter_inputs", "optimizer_state_inputs") if key in metadata
              for n in metadata[key].split(",") if n.strip()}

    ir_nodes: list[Node] = []
    roles: dict[str, Role] = {}
    for name in inputs:
        roles[name] = Role.PARAMETER if name in listed else Role.INPUT
    weights = {n.input[i] for n in nodes if n.op_type in _WEIGHT_OPERANDS
               for i in _WEIGHT_OPERANDS[n.op_type] if i < len(n.input)}
    for t in g.initializer:
        dtype = _dtype(t.data_type, t.name, "initializer", label)
        tiny = math.prod(t.dims) <= MAX_TINY_ELEMENTS and t.name not in weights
        roles[t.name] = Role.PARAMETER if dtype in _FLOAT_DTYPES and not tiny else Role.CONSTANT
    for node in nodes:
        scope = _scope(node, default_part, label)
        constant = node.op_type == "Constant" or (
            node.op_type == "ConstantOfShape" and node.input[0] in resolver.values)
        for o in node.output:
            if o:
                roles[o] = (Role.CONSTANT if constant else
                            Role.GRADIENT if scope.part in GRADIENT_PARTS else Role.ACTIVATION)
        attrs = {a.name: _attr_value(a) for a in node.attribute}
        ir_nodes.append(Node(node.name, node.op_type, tuple(node.input), tuple(node.output),
                             attrs, scope))
    for name in outputs:
        roles[name] = Role.OUTPUT

    def where(name: str) -> str:   # for error messages
        producer = next((n for n in reversed(nodes) if name in n.output), None)
        return (f"produced by node {producer.name!r} ({producer.op_type})" if producer is not None
                else "a graph input/initializer")

    tensors: dict[str, Tensor] = {}
    for name, role in roles.items():
        shape, et = resolver.types.get(name, (None, 0))
        if shape is None:
            raise ModelError(f"{label}: tensor {name!r} ({where(name)}) has no static shape")
        dtype = _DTYPES[et] if et in _DTYPES else _dtype(et, name, where(name), label)
        tensors[name] = Tensor(name, shape, dtype, role)
    for node in ir_nodes:
        for i in node.inputs:
            if i and i not in tensors:
                raise ModelError(f"{label}: node {node.name!r} reads {i!r}, which nothing produces")
    constants = {k: v for k, v in resolver.values.items()
                 if k in tensors and v.size <= MAX_CONSTANT_ELEMENTS}
    return Graph(g.name or "graph", ir_nodes, tensors, inputs, outputs, metadata, constants)


def _topological(nodes: list[onnx.NodeProto], g: onnx.GraphProto, label: str) -> list[onnx.NodeProto]:
    """The nodes in a topological order (the file's order when it already is one)."""
    available = {vi.name for vi in g.input} | {t.name for t in g.initializer} | {""}
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    in_order = True   # every node reads only what earlier nodes produce
    for k, n in enumerate(nodes):
        for i in n.input:
            j = producer.get(i)
            if j is None:
                if i not in available:
                    raise ModelError(f"{label}: node {n.name!r} ({n.op_type}) reads {i!r}, "
                                     "which is neither an input, an initializer nor a node output")
            elif j >= k:
                in_order = False
    if in_order:   # what the search below returns for a file already in order
        return nodes
    order, done, state = [], set(), {}
    for start in range(len(nodes)):
        stack = [(start, False)]
        while stack:
            i, expanded = stack.pop()
            if i in done:
                continue
            if expanded:
                done.add(i)
                state[i] = 2
                order.append(nodes[i])
                continue
            if state.get(i) == 1:
                raise ModelError(f"{label}: the graph has a cycle through node {nodes[i].name!r}")
            state[i] = 1
            stack.append((i, True))
            for name in reversed(nodes[i].input):
                j = producer.get(name)
                if j is not None and j not in done:
                    if state.get(j) == 1:
                        raise ModelError(f"{label}: the graph has a cycle through node {nodes[j].name!r}")
                    stack.append((j, False))
    return order


# Scopes are immutable: nodes without a scope share these.
_DEFAULT_SCOPES = {"forward": Scope("forward"), "other": Scope("other")}


def _scope(node: onnx.NodeProto, default_part: str, label: str) -> Scope:
    text = next((p.value for p in node.metadata_props if p.key == SCOPE_PROP), None)
    if text is None:
        return _DEFAULT_SCOPES[default_part]
    try:
        return Scope.parse(text)
    except ValueError as exc:
        raise ModelError(f"{label}: node {node.name!r} ({node.op_type}): {exc}") from None


def _dtype(elem_type: int, name: str, where: str, label: str) -> str:
    try:
        return _DTYPES[elem_type]
    except KeyError:
        kind = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
        raise ModelError(f"{label}: tensor {name!r} ({where}) has unsupported element type {kind}") from None


def _attr_value(a: onnx.AttributeProto) -> Any:
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return [x.decode() if isinstance(x, bytes) else
                numpy_helper.to_array(x) if isinstance(x, TensorProto) else x for x in v]
    return v

"""ONNX -> IR: read a model safely, resolve every shape statically, attach roles and scopes.

`load_graph(source, dims=None, *, limits=Limits())` is the only entry point. Its stages, each
in its own module, and each failure a one-line `ModelError` (or `UnsupportedOpError`) naming
the file and the node or tensor:

1. `compiler.reading` — parse without following external data; IR version and opset known to
   the installed onnx (opset 7 or later); node count, stored tensors and external data checked
   against `Limits` before anything is loaded;
2. `compiler.structure` — standard domain, op types and arity the ONNX schema knows (all
   unknown op types named in one `UnsupportedOpError`), no subgraphs (If/Loop/Scan), UTF-8
   names and attributes, unique node names, one producer per tensor, every read tensor and
   graph output produced, a DAG put in topological order (and, once shapes are known,
   attributes that shape inference lets through but no operator allows, such as a
   convolution with group 0);
3. `compiler.shapes` — symbolic dims bound (`dims`: names the model has, positive integers),
   ONNX shape inference, then node-by-node resolution of what it left open, sizes checked
   against `Limits` before any constant is computed;
4. here — every tensor gets a role and every node a scope (`hwsim.scope` node metadata).

Roles: graph inputs are INPUT, except those named in the model metadata `parameter_inputs` or
`optimizer_state_inputs` (comma-separated) which are PARAMETER; float initializers are PARAMETER
unless tiny (<= 16 elements) or integer/bool typed, then CONSTANT — a tiny float initializer in
a weight/bias position of Conv, ConvTranspose, Gemm, BatchNormalization or LayerNormalization
stays PARAMETER (a 5-way head's bias has 5 elements); outputs of Constant nodes (and
of ConstantOfShape fed by a constant shape) are CONSTANT; outputs of nodes scoped `backward` or
`meta_grad` are GRADIENT; graph outputs are OUTPUT (an initializer that is a graph output keeps
its role); everything else ACTIVATION. BatchNormalization
running statistics are initializers and therefore PARAMETER; callers that count learnable
parameters subtract them (inputs 3 and 4 of BatchNormalization).
A tensor that is neither constant nor a parameter must not be empty: an empty input or
activation is a `ModelError`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import onnx
from onnx import TensorProto

from hwsim.collector import paused_gc
from hwsim.scope import GRADIENT_PARTS

from .errors import ModelError, UnsupportedOpError
from .ir import Graph, Node, Role, Tensor
from .limits import MAX_CONSTANT_ELEMENTS, Limits
from .reading import read_model
from .shapes import Resolver, bind_dims, infer_types
from .structure import check_attributes, read_nodes

__all__ = ["load_graph", "Limits", "ModelError", "UnsupportedOpError", "MAX_CONSTANT_ELEMENTS"]

# Float initializers up to this size are constants (scalars, epsilons), not parameters.
MAX_TINY_ELEMENTS = 16

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
_DEFAULT_LIMITS = Limits()


def load_graph(source: str | Path | onnx.ModelProto, dims: Mapping[str, int] | None = None, *,
               limits: Limits = _DEFAULT_LIMITS) -> Graph:
    """Read an ONNX model (path or ModelProto) into a static-shape IR `Graph`.

    `dims` resolves symbolic dimensions by name, e.g. ``{"batch_size": 1}``; without it a
    symbolic dimension is an error, and so is a name the model does not have. `limits` bounds
    the size of model accepted (see `compiler.limits.Limits`).
    """
    with paused_gc():   # hwsim.collector: many small objects, no cycles to collect mid-load
        return _load(source, dims, limits)


def _load(source: str | Path | onnx.ModelProto, dims: Mapping[str, int] | None, limits: Limits) -> Graph:
    model, label, opset = read_model(source, limits)
    metadata = {p.key: p.value for p in model.metadata_props}
    default_part = "other" if "phase" in metadata else "forward"
    nodes, protos = read_nodes(model, label, limits, default_part, opset)
    bind_dims(model, dims, label, limits)
    resolver = Resolver(model, infer_types(model, label), label, limits, opset)
    for node, proto in zip(nodes, protos):
        resolver.visit(node, proto)
    graph = _build_graph(model.graph, nodes, resolver, metadata, label, opset)
    check_attributes(graph)
    return graph


def _build_graph(g: onnx.GraphProto, nodes: list[Node], resolver: Resolver, metadata: dict[str, str],
                 label: str, opset: int) -> Graph:
    init_names = {t.name for t in g.initializer}
    inputs = [vi.name for vi in g.input if vi.name not in init_names]
    outputs = [vi.name for vi in g.output]
    listed = {n.strip() for key in ("parameter_inputs", "optimizer_state_inputs") if key in metadata
              for n in metadata[key].split(",") if n.strip()}

    types = resolver.types
    tensors: dict[str, Tensor] = {}
    out_set = set(outputs)

    def add(name: str, role: Role, producer: Node | None = None) -> None:
        shape, et = types.get(name, (None, 0))
        if shape is None or et not in _DTYPES or (
                0 in shape and role is not Role.CONSTANT and role is not Role.PARAMETER):
            _bad_tensor(name, shape, et, producer, label)
        if name in out_set and name not in init_names:   # an initializer stays a source
            role = Role.OUTPUT
        tensors[name] = Tensor.make(name, shape, _DTYPES[et], role)

    for name in inputs:
        add(name, Role.PARAMETER if name in listed else Role.INPUT)
    weights = {n.inputs[i] for n in nodes if n.op_type in _WEIGHT_OPERANDS
               for i in _WEIGHT_OPERANDS[n.op_type] if i < len(n.inputs)}
    for t in g.initializer:
        dtype = _dtype(t.data_type, t.name, "initializer", label)
        tiny = math.prod(t.dims) <= MAX_TINY_ELEMENTS and t.name not in weights
        add(t.name, Role.PARAMETER if dtype in _FLOAT_DTYPES and not tiny else Role.CONSTANT)
    values = resolver.values
    for node in nodes:
        op = node.op_type
        if op == "Constant" or (op == "ConstantOfShape" and node.inputs[0] in values):
            role = Role.CONSTANT
        else:
            role = Role.GRADIENT if node.scope.part in GRADIENT_PARTS else Role.ACTIVATION
        for o in node.outputs:
            if o:
                add(o, role, node)
    constants = {k: v for k, v in values.items() if k in tensors and v.size <= MAX_CONSTANT_ELEMENTS}
    return Graph(g.name or "graph", nodes, tensors, inputs, outputs, metadata, constants,
                 source=label, opset=opset)


def _bad_tensor(name: str, shape: tuple[int, ...] | None, elem_type: int, producer: Node | None,
                label: str) -> None:
    """Raise the ModelError for a tensor without a static shape, of an unsupported type, or empty
    where it may not be (an input or activation)."""
    where = (f"produced by node {producer.name!r} ({producer.op_type})" if producer is not None
             else "a graph input/initializer")
    if shape is None:
        raise ModelError(f"{label}: tensor {name!r} ({where}) has no static shape")
    _dtype(elem_type, name, where, label)
    raise ModelError(f"{label}: tensor {name!r} ({where}) is empty (shape {list(shape)}); "
                     "inputs and activations must have at least one element")


def _dtype(elem_type: int, name: str, where: str, label: str) -> str:
    try:
        return _DTYPES[elem_type]
    except KeyError:
        kind = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
        raise ModelError(f"{label}: tensor {name!r} ({where}) has unsupported element type {kind}") from None

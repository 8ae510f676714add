"""Graph structure: the second stage of `compiler.frontend.load_graph`.

`read_nodes` reads every node into an IR `Node` (attributes decoded, scope parsed from the
`hwsim.scope` metadata) and checks what the compiler relies on about how nodes connect, each
failure a `ModelError` naming the file and the node or tensor:

* every node is in the standard ONNX domain (a custom domain -> `UnsupportedOpError`), of an
  op type the ONNX schema knows at the model's opset (all unknown op types are named in one
  `UnsupportedOpError`), with the inputs, outputs, required attributes and attribute types
  that schema allows, no subgraph (If/Loop/Scan control flow is not modelled), UTF-8 names
  and string attributes, tensors in its attributes that pass `compiler.reading.check_tensor`,
  and a well-formed scope;
* every node has a unique name (ONNX allows empty or repeated ones: they are renamed
  `<op>_<index>` in file order, deterministically);
* every tensor is produced once: by one node, or as a graph input or initializer;
* every node input and graph output is an input, an initializer or some node's output;
* the nodes form a DAG. They are put in topological order with `graphlib.TopologicalSorter`:
  the file's order when it already is one (the common case, checked in one pass), otherwise
  among the nodes ready to run the one earliest in the file first — deterministic, and close
  to the author's order. A cycle names the nodes on it.

Once shapes are resolved, `check_attributes` rejects what ONNX shape inference lets through
but the operator spec forbids and the workload rules rely on: convolutions whose `group` is
not a positive divisor of their channels or whose kernel, strides or dilations are not
positive, pools likewise, and non-positive sizes (LRN `size`, recurrent `hidden_size`).
"""

from __future__ import annotations

import heapq
from graphlib import CycleError, TopologicalSorter
from typing import Any, NamedTuple

import onnx
from onnx import TensorProto, helper, numpy_helper

from hwsim.scope import SCOPE_PROP, Scope

from .errors import ModelError, UnsupportedOpError
from .ir import Graph, Node
from .limits import Limits
from .reading import check_tensor

_STANDARD_DOMAINS = ("", "ai.onnx")
_A = onnx.AttributeProto
_SUBGRAPH_ATTRIBUTES = (_A.GRAPH, _A.GRAPHS)
_SPARSE = (_A.SPARSE_TENSOR, _A.SPARSE_TENSORS)
_PLAIN = (_A.FLOAT, _A.INT, _A.FLOATS, _A.INTS, _A.TYPE_PROTO, _A.TYPE_PROTOS)
# Scopes are immutable: nodes without a scope share these.
_DEFAULT_SCOPES = {"forward": Scope("forward"), "other": Scope("other")}


class _Schema(NamedTuple):
    """What the ONNX schema of an op (at the model's opset) allows of a node."""

    since: int
    inputs: tuple[int, int]
    outputs: tuple[int, int]
    attribute_types: dict[str, int]
    required: tuple[str, ...]


def _schema(op: str, opset: int) -> _Schema | None:
    try:
        s = onnx.defs.get_schema(op, opset, "")
    except onnx.defs.SchemaError:
        return None
    return _Schema(s.since_version, (s.min_input, s.max_input), (s.min_output, s.max_output),
                   {k: int(a.type) for k, a in s.attributes.items()},
                   tuple(k for k, a in s.attributes.items() if a.required))


def read_nodes(model: onnx.ModelProto, label: str, limits: Limits, default_part: str,
               opset: int) -> tuple[list[Node], list[onnx.NodeProto]]:
    """IR nodes (attributes decoded, scope parsed) in topological order, and their protobufs.

    One pass over the protobuf reads everything the compiler needs of each node (field access
    is what costs on large graphs), checking it as it goes — against the op's ONNX schema at
    the model's opset too: input and output counts, required attributes, attribute types. An
    op type the schema does not know is collected, and all of them are named in one
    `UnsupportedOpError`. Then the connections are checked and the nodes ordered. The model's
    own node list is reordered too when it was out of order (ONNX shape inference walks it in
    file order)."""
    name_nodes(model)
    nodes: list[Node] = []
    schemas: dict[str, _Schema | None] = {}
    unknown: dict[str, str] = {}
    for i, node in enumerate(model.graph.node):
        op, ins, outs = node.op_type, tuple(node.input), tuple(node.output)
        try:   # protobuf hands out bytes, not str, for a string field that is not UTF-8
            "".join((op, node.name, node.domain, *ins, *outs))
        except TypeError:
            raise ModelError(f"{label}: node {i} has a name, op type, domain or tensor name that is "
                             "not UTF-8 text") from None
        if node.domain not in _STANDARD_DOMAINS:
            raise UnsupportedOpError(op, node.name, f"custom domain {node.domain!r}", where=label)
        schema = schemas[op] if op in schemas else schemas.setdefault(op, _schema(op, opset))
        if schema is None:
            unknown.setdefault(op, node.name)
            continue
        attrs = {a.name: _attribute(node, a, label, limits, schema) for a in node.attribute}
        lo, hi = schema.inputs
        if not lo <= len(ins) <= hi or not schema.outputs[0] <= len(outs) <= schema.outputs[1] or (
                schema.required and not all(k in attrs for k in schema.required)):
            _bad_arity(node, schema, attrs, label)
        scope = _DEFAULT_SCOPES[default_part]
        props = node.metadata_props
        if props:
            text = props[0].value if props[0].key == SCOPE_PROP else \
                next((p.value for p in props if p.key == SCOPE_PROP), None)
            if text is not None:
                try:
                    scope = Scope.parse(text)
                except (ValueError, TypeError) as exc:   # TypeError: not UTF-8 text (bytes)
                    raise ModelError(f"{label}: node {node.name!r} ({op}): scope: {exc}") from None
        nodes.append(Node.make(node.name, op, ins, outs, attrs, scope))
    if unknown:
        raise UnsupportedOpError.for_ops(unknown, f"not an ai.onnx operator at opset {opset}", where=label)
    if model.functions:
        raise ModelError(f"{label}: model-local functions are not supported "
                         f"({', '.join(f.name for f in model.functions)})")
    order = _ordered(model.graph, nodes, label)
    if order is None:
        return nodes, list(model.graph.node)
    g = model.graph
    protos = []
    for k in order:   # detached copies: the originals go with the list they are deleted from
        p = onnx.NodeProto()
        p.CopyFrom(g.node[k])
        protos.append(p)
    del g.node[:]
    g.node.extend(protos)
    return [nodes[k] for k in order], list(g.node)


def _bad_arity(node: onnx.NodeProto, schema: _Schema, attrs: dict[str, Any], label: str) -> None:
    """Raise the ModelError for a node whose inputs, outputs or attributes the schema refuses."""
    op = node.op_type
    for what, n, (least, most) in (("inputs", len(node.input), schema.inputs),
                                   ("outputs", len(node.output), schema.outputs)):
        if not least <= n <= most:
            allowed = f"{least}" if least == most else f"{least} to {most}" if most < 2**31 - 1 else f"at least {least}"
            raise ModelError(f"{label}: node {node.name!r} ({op}) has {n} {what}; {op}-{schema.since} "
                             f"takes {allowed}")
    for key in schema.required:
        if key not in attrs:
            raise ModelError(f"{label}: node {node.name!r} ({op}) lacks the required attribute {key!r}")


def _attribute(node: onnx.NodeProto, a: onnx.AttributeProto, label: str, limits: Limits,
               schema: _Schema) -> Any:
    t = a.type
    want = schema.attribute_types.get(a.name)
    if want == t:   # the common cases first, with the values onnx.helper.get_attribute_value gives
        if t == _A.INT:
            return a.i
        if t == _A.INTS:
            return list(a.ints)
        if t == _A.FLOAT:
            return a.f
        if t == _A.FLOATS:
            return list(a.floats)
    elif want is not None:
        raise ModelError(f"{label}: node {node.name!r} ({node.op_type}) attribute {a.name!r} is of type "
                         f"{_type_name(t)} where {node.op_type}-{schema.since} takes {_type_name(want)}")
    if t == _A.STRING:
        return _text(node, a, a.s, label)
    if t == _A.TENSOR:
        return _tensor(node, a, a.t, label, limits)
    if t in _SUBGRAPH_ATTRIBUTES:
        raise ModelError(f"{label}: node {node.name!r} ({node.op_type}) has a subgraph; "
                         "control flow (If/Loop/Scan) is not supported")
    if t == _A.STRINGS:
        return [_text(node, a, v, label) for v in a.strings]
    if t == _A.TENSORS:
        return [_tensor(node, a, v, label, limits) for v in a.tensors]
    if t in _SPARSE:
        raise ModelError(f"{label}: node {node.name!r} ({node.op_type}) attribute {a.name!r}: "
                         "sparse tensors are not supported")
    if t not in _PLAIN:
        raise ModelError(f"{label}: node {node.name!r} ({node.op_type}) attribute {a.name!r} has "
                         f"type {_type_name(t)}, which no ai.onnx operator takes")
    return helper.get_attribute_value(a)


def _type_name(t: int) -> str:
    names = onnx.AttributeProto.AttributeType
    return names.Name(t) if t in names.values() else str(t)


def _text(node: onnx.NodeProto, a: onnx.AttributeProto, value: bytes, label: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{label}: node {node.name!r} ({node.op_type}) attribute {a.name!r} is not "
                         f"UTF-8 text ({value[:16]!r}); string attributes must be UTF-8") from None


def _tensor(node: onnx.NodeProto, a: onnx.AttributeProto, t: TensorProto, label: str, limits: Limits):
    where = f"node {node.name!r} ({node.op_type}) attribute {a.name!r}"
    if t.data_location == TensorProto.EXTERNAL:
        raise ModelError(f"{label}: {where} has external data; external data is read for "
                         "initializers only")
    check_tensor(t, where, label, limits)
    return numpy_helper.to_array(t)


def name_nodes(model: onnx.ModelProto) -> None:
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


def _ordered(g: onnx.GraphProto, nodes: list[Node], label: str) -> list[int] | None:
    """None if the nodes are already in topological order, else the order (module docstring).
    One pass: a node that reads a tensor no earlier node produced is noted, and the notes are
    settled at the end (produced later: out of order; produced by nothing: an error)."""
    sources = {vi.name for vi in g.input}
    sources.update(t.name for t in g.initializer)
    producer: dict[str, int] = {}
    late: list[tuple[int, str]] = []
    for k, n in enumerate(nodes):
        for i in n.inputs:
            if i and i not in producer and i not in sources:
                late.append((k, i))
        for o in n.outputs:
            if not o:
                continue
            if o in producer:
                j = producer[o]
                raise ModelError(f"{label}: tensor {o!r} is produced twice, by nodes {nodes[j].name!r} "
                                 f"({nodes[j].op_type}) and {n.name!r} ({n.op_type}); each tensor "
                                 "must have one producer")
            if o in sources:
                raise ModelError(f"{label}: node {n.name!r} ({n.op_type}) writes {o!r}, which is a "
                                 "graph input or initializer; each tensor must have one producer")
            producer[o] = k
    for k, i in late:
        if i not in producer:
            n = nodes[k]
            raise ModelError(f"{label}: node {n.name!r} ({n.op_type}) reads {i!r}, "
                             "which is neither an input, an initializer nor a node output")
    for vi in g.output:
        if vi.name not in producer and vi.name not in sources:
            raise ModelError(f"{label}: graph output {vi.name!r} is never produced (no node writes "
                             "it and it is no input or initializer)")
    return _topological(nodes, producer, label) if late else None


def _topological(nodes: list[Node], producer: dict[str, int], label: str) -> list[int]:
    sorter: TopologicalSorter[int] = TopologicalSorter()
    for k, n in enumerate(nodes):
        sorter.add(k, *{producer[i] for i in n.inputs if i in producer})
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = [nodes[k].name for k in exc.args[1]]
        raise ModelError(f"{label}: the graph has a cycle through node {cycle[0]!r} "
                         f"({' -> '.join(cycle)})") from None
    ready = list(sorter.get_ready())
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        sorter.done(k)
        for j in sorter.get_ready():
            heapq.heappush(ready, j)
    return order


_CONVS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3), "ConvTranspose": (0, 1)}
_POOLS = ("MaxPool", "AveragePool", "LpPool")
_POSITIVE_SIZES = {"LRN": "size", "LSTM": "hidden_size", "GRU": "hidden_size", "RNN": "hidden_size",
                   "DepthToSpace": "blocksize", "SpaceToDepth": "blocksize"}


def check_attributes(graph: Graph) -> None:
    """Attributes the operator spec forbids but shape inference accepts (module docstring)."""
    for node in graph.nodes:
        op = node.op_type
        if op in _CONVS:
            _check_conv(graph, node)
        elif op in _POOLS:
            x = graph.tensor(node.inputs[0]).shape
            kernel = list(node.attr("kernel_shape") or [])
            _check_window(graph, node, len(x) - 2, kernel)
        elif op in _POSITIVE_SIZES:
            key = _POSITIVE_SIZES[op]
            value = node.attr(key)
            if value is not None and int(value) < 1:
                raise _bad(graph, node, f"{key} = {value}; it must be positive")


def _check_conv(graph: Graph, node: Node) -> None:
    xi, wi = _CONVS[node.op_type]
    x, w = graph.tensor(node.inputs[xi]).shape, graph.tensor(node.inputs[wi]).shape
    g = node.attr("group", 1)
    if len(x) < 3 or len(w) != len(x):
        raise _bad(graph, node, f"input {list(x)} and weight {list(w)} must have the same rank, at least 3")
    if not isinstance(g, int) or g < 1:
        raise _bad(graph, node, f"group = {g!r}; it must be a positive integer")
    if node.op_type == "ConvTranspose":
        ok = x[1] == w[0] and x[1] % g == 0
        need = f"input channels {x[1]} = weight dim 0 ({w[0]}), divisible by group {g}"
    else:
        ok = x[1] == w[1] * g and w[0] % g == 0
        need = (f"input channels {x[1]} = weight dim 1 ({w[1]}) x group {g}, and output channels "
                f"{w[0]} divisible by group")
    if not ok:
        raise _bad(graph, node, f"channels do not match: needs {need}")
    _check_window(graph, node, len(x) - 2, list(w[2:]))


def _check_window(graph: Graph, node: Node, spatial: int, kernel: list[int]) -> None:
    if len(kernel) != spatial or any(k < 1 for k in kernel):
        raise _bad(graph, node, f"kernel {kernel} for {spatial} spatial dims; kernel sizes must be positive")
    for key, n, least in (("strides", spatial, 1), ("dilations", spatial, 1), ("pads", 2 * spatial, 0)):
        v = node.attr(key)
        if v is not None and (len(v) != n or any(int(e) < least for e in v)):
            raise _bad(graph, node, f"{key} = {list(v)}; it needs {n} values of at least {least}")


def _bad(graph: Graph, node: Node, what: str) -> ModelError:
    return ModelError(f"{graph.source}: node {node.name!r} ({node.op_type}): {what}")

"""Graph -> Graph passes. Each pass is a pure function (it returns a new Graph and never mutates
its argument); the pipeline is written out once, in `PIPELINE`, and `run_pipeline` applies it
and checks the result.

* `eliminate_dead_nodes` — drop nodes none of whose outputs reaches a graph output.
* `fold_constants_metadata` — drop nodes whose every output value is already known at compile
  time (`Graph.constants`: shapes, axes, scalars computed by Shape/Gather/Concat/... chains).
  Their outputs become CONSTANT tensors without producers, like initializers.
* `remove_identities` — drop zero-cost view nodes (Identity, inference Dropout, and any view
  whose output has the input's shape and dtype), rewiring consumers to the view's input. A view
  that changes the shape (a real Reshape) stays: rewiring would give its consumers operands of
  the wrong shape. A view whose output is a graph output stays too (the name is the contract).
  An inference Dropout whose mask nobody reads (old opsets always declare one) is a view too.
* `check_graph` — checks topological order and that every tensor read is produced by an
  earlier node or is a graph input, parameter or constant.

`check_graph` raises `InternalError`, not `ModelError`: `load_graph` has already rejected every
malformed input with a `ModelError` naming the file, so a graph that fails these checks was
broken by the compiler itself (a pass, or code that built a `Graph` by hand) — a bug to report,
exit code 1, never "bad input". It is a real exception, so it also holds under `python -O`.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import InternalError
from .ir import Graph, Node, Role

# Ops that only re-index a buffer (zero cost); see compiler/ops/data_movement.py.
VIEW_OPS = frozenset({"Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})
_SOURCE_ROLES = (Role.INPUT, Role.PARAMETER, Role.CONSTANT)


def eliminate_dead_nodes(graph: Graph) -> Graph:
    live = set(graph.outputs)
    live.discard("")
    kept = []
    for node in reversed(graph.nodes):
        if not live.isdisjoint(node.outputs):
            kept.append(node)
            live.update(node.inputs)
            live.discard("")   # an omitted optional operand
    kept.reverse()
    return _prune_tensors(graph, kept)


def fold_constants_metadata(graph: Graph) -> Graph:
    outputs = set(graph.outputs)
    kept, folded = [], []
    for node in graph.nodes:
        outs = [o for o in node.outputs if o]
        if outs and all(o in graph.constants and o not in outputs for o in outs):
            folded.extend(outs)
        else:
            kept.append(node)
    g = _prune_tensors(graph, kept)
    for name in folded:
        if name in g.tensors:
            g.tensors[name] = replace(g.tensors[name], role=Role.CONSTANT)
    return g


def remove_identities(graph: Graph) -> Graph:
    outputs = set(graph.outputs)
    alias: dict[str, str] = {}
    read: set[str] | None = None   # tensors some node reads, built only if a Dropout has a mask
    kept = []
    for node in graph.nodes:
        if node.op_type in VIEW_OPS:
            data = [i for i in node.inputs if i]
            outs = [o for o in node.outputs if o]
            if node.op_type == "Dropout" and len(outs) == 2:
                if read is None:
                    read = {i for n in graph.nodes for i in n.inputs}
                if outs[1] not in read and outs[1] not in outputs:
                    outs = outs[:1]   # an unread mask: the node is a view of its input
            if len(outs) == 1 and data and outs[0] not in outputs and _is_inference_dropout(graph, node):
                src = alias.get(data[0], data[0])
                a, b = graph.tensor(src), graph.tensor(outs[0])
                if a.shape == b.shape and a.dtype == b.dtype:
                    alias[outs[0]] = src
                    continue
        kept.append(node.__class__(node.name, node.op_type,
                                   tuple(alias.get(i, i) for i in node.inputs), node.outputs,
                                   node.attrs, node.scope)
                    if alias and any(i in alias for i in node.inputs) else node)
    return _prune_tensors(graph, kept)


def _is_inference_dropout(graph: Graph, node) -> bool:
    if node.op_type != "Dropout":
        return True
    flag = node.inputs[2] if len(node.inputs) > 2 else ""
    return not flag or (flag in graph.constants and not bool(graph.constants[flag]))


def check_graph(graph: Graph) -> Graph:
    """Returns the graph unchanged if it is a valid IR graph; raises `InternalError` naming the
    first broken invariant otherwise (see the module docstring for why not `ModelError`)."""
    def broken(what: str) -> InternalError:
        return InternalError(f"IR graph {graph.name!r} is invalid: {what}")

    available = set(graph.inputs)
    available |= {t.name for t in graph.tensors.values()
                  if t.role in (Role.PARAMETER, Role.CONSTANT)}
    produced: set[str] = set()
    names: set[str] = set()
    tensors = graph.tensors
    for node in graph.nodes:
        if node.name in names:
            raise broken(f"duplicate node name {node.name!r}")
        names.add(node.name)
        for i in node.inputs:
            if not i:
                continue
            if i not in tensors:
                raise broken(f"node {node.name!r} reads unknown tensor {i!r}")
            if i not in produced and i not in available:
                raise broken(f"node {node.name!r} reads {i!r} before it is produced (not topological)")
        for o in node.outputs:
            if o:
                if o not in tensors:
                    raise broken(f"node {node.name!r} writes unknown tensor {o!r}")
                if o in produced:
                    raise broken(f"tensor {o!r} produced twice")
                produced.add(o)
    for name in graph.inputs:
        if name not in tensors:
            raise broken(f"graph input {name!r} has no tensor")
    for name in graph.outputs:
        if name not in produced and name not in available:
            raise broken(f"graph output {name!r} is never produced")
    outputs = set(graph.outputs)
    for t in tensors.values():
        if t.name not in produced and t.role not in _SOURCE_ROLES and t.name not in outputs:
            raise broken(f"tensor {t.name!r} ({t.role.value}) has no producer and is not an "
                         "input/initializer")
    return graph


PIPELINE = (eliminate_dead_nodes, fold_constants_metadata, remove_identities, eliminate_dead_nodes)


def run_pipeline(graph: Graph) -> Graph:
    check_graph(graph)
    for step in PIPELINE:
        graph = step(graph)
    return check_graph(graph)


def _prune_tensors(graph: Graph, nodes: list[Node]) -> Graph:
    """A new graph of `nodes` (a new list) and the tensors of `graph` still read or written by
    one of them or named as graph inputs/outputs."""
    used: set[str] = set()
    for n in nodes:
        used.update(n.inputs)
        used.update(n.outputs)
    used.discard("")   # an omitted optional operand
    used.update(graph.inputs)
    used.update(graph.outputs)
    return Graph(graph.name, nodes, _restricted(graph.tensors, used), list(graph.inputs),
                 list(graph.outputs), dict(graph.metadata), _restricted(graph.constants, used),
                 graph.source, graph.opset)


def _restricted(values: dict, keys: set[str]) -> dict:
    """A copy of `values` with only `keys` (in its own order)."""
    if keys.issuperset(values):
        return dict(values)
    return {k: v for k, v in values.items() if k in keys}

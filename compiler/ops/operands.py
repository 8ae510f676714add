"""Operand accounting shared by every rule family: bytes each operand reads and writes.

Convention: every non-omitted input is read once (`bytes_in<i>` in dims, `i` its input
position) and every output is written once. No reuse or caching is modelled here; that is the
lowering's job.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload


def operand_bytes(graph: Graph, node: Node) -> tuple[int, int, dict[str, int]]:
    """(bytes read, bytes written, per-input dims `bytes_in<i>`)."""
    dims: dict[str, int] = {}
    read = 0
    for i, name in enumerate(node.inputs):
        if name:
            b = graph.tensor(name).nbytes
            dims[f"bytes_in{i}"] = b
            read += b
    written = sum(t.nbytes for t in graph.out_tensors(node))
    return read, written, dims


def workload(graph: Graph, node: Node, kind: Kind, macs: int = 0, flops: int = 0,
             dims: dict[str, int] | None = None) -> Workload:
    """A workload whose bytes follow the operand convention above."""
    read, written, byte_dims = operand_bytes(graph, node)
    return Workload(kind, macs=int(macs), flops=int(flops), bytes_read=read, bytes_written=written,
                    dims={**(dims or {}), **byte_dims})


def out_numel(graph: Graph, node: Node, index: int = 0) -> int:
    return graph.tensor(node.outputs[index]).numel


def in_numel(graph: Graph, node: Node, index: int = 0) -> int:
    """Elements of input `index` (0 when the optional input is omitted)."""
    name = node.inputs[index] if index < len(node.inputs) else ""
    return graph.tensor(name).numel if name else 0


def has_input(node: Node, index: int) -> bool:
    return index < len(node.inputs) and bool(node.inputs[index])


def shape(graph: Graph, name: str) -> tuple[int, ...]:
    return graph.tensor(name).shape


def axis_of(node: Node, rank: int, default: int) -> int:
    """The node's `axis` attribute, normalised to 0..rank-1."""
    axis = int(node.attr("axis", default))
    if not -rank <= axis < max(rank, 1):
        raise UnsupportedOpError(node.op_type, node.name, f"axis {axis} outside a rank-{rank} tensor")
    return axis % max(rank, 1)


def constant(graph: Graph, node: Node, index: int, what: str):
    """Value of a constant operand (axes, pads, ...); unsupported when it is computed at run time."""
    name = node.inputs[index] if index < len(node.inputs) else ""
    if not name:
        return None
    if name not in graph.constants:
        raise UnsupportedOpError(node.op_type, node.name, f"{what} ({name!r}) is not a constant")
    return np.asarray(graph.constants[name])


def prod(values) -> int:
    return int(math.prod(int(v) for v in values))

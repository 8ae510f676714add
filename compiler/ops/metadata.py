"""Metadata and generator ops.

* Shape, Size, Constant: no work at run time (their values are known at compile time). Kind NONE.
* ConstantOfShape, EyeLike: a fill; writes its output once. ConstantOfShape reads its (tiny)
  shape operand; EyeLike takes only the shape of its input, whose values it never reads.
  Kind DATA_MOVEMENT.
* Range: one add per output element. Kind ELEMENTWISE.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import out_numel, workload


@rule("Shape", "Size", "Constant", kind=Kind.NONE, formula="none: known at compile time")
def metadata(graph: Graph, node: Node) -> Workload:
    return Workload(Kind.NONE)


@rule("ConstantOfShape", kind=Kind.DATA_MOVEMENT, formula="fill: output written once")
def fill(graph: Graph, node: Node) -> Workload:
    return workload(graph, node, Kind.DATA_MOVEMENT, dims={"view": 0, "fill": 1})


@rule("EyeLike", kind=Kind.DATA_MOVEMENT, formula="fill: output written once, input values unread")
def eye_like(graph: Graph, node: Node) -> Workload:
    written = graph.tensor(node.outputs[0]).nbytes
    return Workload(Kind.DATA_MOVEMENT, bytes_written=written, dims={"view": 0, "fill": 1})


@rule("Range", kind=Kind.ELEMENTWISE, formula="1 flop/output element")
def arange(graph: Graph, node: Node) -> Workload:
    n = out_numel(graph, node)
    return workload(graph, node, Kind.ELEMENTWISE, flops=n,
                    dims={"numel": n, "ops_per_element": 1, "transcendental": 0})

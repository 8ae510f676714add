"""Metadata and generator ops.

* Shape, Size, Constant: no work at run time (their values are known at compile time). Kind NONE.
* ConstantOfShape: a fill; writes its output once. Kind DATA_MOVEMENT.
* Range: one add per output element. Kind ELEMENTWISE.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import out_numel, workload


@rule("Shape", "Size", "Constant")
def metadata(graph: Graph, node: Node) -> Workload:
    return Workload(Kind.NONE)


@rule("ConstantOfShape")
def fill(graph: Graph, node: Node) -> Workload:
    return workload(graph, node, Kind.DATA_MOVEMENT, dims={"view": 0, "fill": 1})


@rule("Range")
def arange(graph: Graph, node: Node) -> Workload:
    n = out_numel(graph, node)
    return workload(graph, node, Kind.ELEMENTWISE, flops=n,
                    dims={"numel": n, "ops_per_element": 1, "transcendental": 0})

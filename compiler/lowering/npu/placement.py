"""Placement: which core runs each node, in which order.

Task j of a meta-batch runs on core j mod cores (task-level parallelism: the tasks of a
meta-batch are independent until the meta-gradients are reduced); nodes shared by all tasks
(meta-reduce, outer update) and nodes of graphs without tasks run on core 0. Each core runs its
nodes in the graph's topological order.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ir import Graph, Node
from ...workload import Kind, Workload


@dataclass(frozen=True)
class Placed:
    node: Node
    workload: Workload
    core: int


def lowered(wl: Workload) -> bool:
    """Whether a node becomes hardware work: views and metadata ops do not (they alias their
    input or leave a tiny constant in DRAM)."""
    return wl.kind is not Kind.NONE and not wl.dims.get("view")


def place(graph: Graph, workloads: dict[str, Workload], cores: int) -> list[Placed]:
    """The lowered nodes in program order, each with its core."""
    out = []
    for node in graph.nodes:
        wl = workloads[node.name]
        if lowered(wl):
            task = node.scope.task
            out.append(Placed(node, wl, 0 if task is None else task % cores))
    return out

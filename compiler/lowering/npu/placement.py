"""Placement: which core runs each node, in which order.

Task j of a meta-batch runs on core j mod cores (task-level parallelism: the tasks of a
meta-batch are independent until the meta-gradients are reduced); nodes shared by all tasks
(meta-reduce, outer update) and nodes of graphs without tasks run on core 0. Each core runs its
nodes in the graph's topological order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...ir import Graph, Node
from ...workload import Kind, Workload

if TYPE_CHECKING:
    from ...fusion import FusionPlan


@dataclass(frozen=True)
class Placed:
    node: Node
    workload: Workload
    core: int


def lowered(wl: Workload) -> bool:
    """Whether a node becomes hardware work: views and metadata ops do not (they alias their
    input or leave a tiny constant in DRAM)."""
    return wl.kind is not Kind.NONE and not wl.dims.get("view")


def place(graph: Graph, workloads: dict[str, Workload], cores: int,
          fusion: "FusionPlan | None" = None) -> list[Placed]:
    """The lowered nodes in program order, each with its core. With `fusion`, in its order:
    each group's members together (a group belongs to one scope, hence to one core)."""
    if fusion is None or not fusion.groups:
        return [_placed(node, workloads[node.name], cores) for node in graph.nodes if lowered(workloads[node.name])]
    by_name = {n.name: n for n in graph.nodes}
    out = []
    for unit in fusion.order:
        names = fusion.groups[unit].nodes if isinstance(unit, int) else (unit,)
        out += [_placed(by_name[name], workloads[name], cores) for name in names]
    return out


def _placed(node: Node, wl: Workload, cores: int) -> Placed:
    task = node.scope.task
    return Placed(node, wl, 0 if task is None else task % cores)

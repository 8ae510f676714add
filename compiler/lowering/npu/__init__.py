"""Lowering an IR graph onto an NPU, in four stages:

1. **Placement** (`placement`): which core runs each node, in which order.
2. **Memory plan** (`memory`): residency of whole tensors in each core's buffers (LRU), loads,
   spills, on-chip moves, in-place results, and which nodes stream from and to DRAM
   (`streaming`) — plain data (`plan`), testable alone.
3. **Cost rules** (`cost`): cycles and action counts of a node on the systolic array (SCALE-Sim's
   fold structure) or the vector unit, one rule per workload kind, memoised.
4. **Emission** (`emit`): the plan as a `Program` of DMA transfers and compute tasks; a streamed
   node in closed form (`detail="node"`, default) or tile by tile (`detail="tiles"`, the
   reference).

Memory levels traced over time: `sram` (all on-chip buffers of all cores), `core<c>.<buffer>`
(each buffer of each core) and `dram` (graph inputs and parameters from t=0, every tensor written
off chip from its write until its last consumer ends; graph outputs stay).
"""

from __future__ import annotations

from hwsim.config import NPU
from hwsim.program import Program

from ...ir import Graph, Role
from ...workload import Workload
from .. import LOWERINGS
from .emit import DETAILS, emit
from .memory import plan_memory, stored_bytes
from .placement import place
from .streaming import MAX_STREAM_TILES

NOT_MODELLED = [
    "array stalls inside a layer from SRAM port bandwidth (SCALE-Sim's stall-free assumption within a tile)",
    "SRAM bank conflicts, DRAM row-buffer locality and refresh; a transfer spread over several "
    "DRAM channels waits until that many are free (no partial start)",
    "operator fusion: each node is one compute task (its intermediates stay on chip when they fit)",
    "DRAM space of a dead intermediate returns when its last consumer in program order ends "
    "(with several cores another core's load of it may still be in flight)",
    "a result leaving a separate ofmap buffer moves to the ifmap buffer only if that has room "
    "without evicting anything; otherwise it is spilled to DRAM",
]


@LOWERINGS.register("npu")
def lower_npu(graph: Graph, workloads: dict[str, Workload], hw: NPU, *, detail: str = "node") -> Program:
    """The Program of `graph` on `hw`. `detail`: "node" (closed-form streaming, the default) or
    "tiles" (every streamed tile a task: the reference the closed form is tested against)."""
    placed = place(graph, workloads, hw.cores)
    plan = plan_memory(graph, workloads, hw, placed)
    return emit(plan, hw, name=graph.name, metadata=graph.metadata, not_modelled=NOT_MODELLED, detail=detail)


def compulsory_dram_bytes(graph: Graph, hw: NPU | None = None) -> int:
    """Bytes any schedule must move off chip: each consumed input/parameter read once and each
    output written once (at `hw.datatype` width if the NPU sets one). A lower bound used by the
    invariant tests and reports."""
    size = (lambda name: stored_bytes(graph, name, hw.datatype)) if hw is not None \
        else (lambda name: graph.tensor(name).nbytes)
    consumed = {i for n in graph.nodes for i in n.inputs if i}
    reads = sum(size(name) for name, t in graph.tensors.items()
                if t.role in (Role.INPUT, Role.PARAMETER) and name in consumed)
    writes = sum(size(o) for o in set(graph.outputs) if o not in graph.inputs)
    return reads + writes


__all__ = ["lower_npu", "compulsory_dram_bytes", "stored_bytes", "DETAILS", "MAX_STREAM_TILES", "NOT_MODELLED"]

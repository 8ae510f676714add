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

from ...fusion import HALOS, POLICIES as FUSIONS, fuse
from ...ir import Graph, Role
from ...precision import PRECISIONS, check_against_hardware, check_phase, numeric_plan
from ...recompute import RECOMPUTES, recompute as recompute_graph
from ...workload import Workload, graph_workloads
from .. import LOWERINGS, LoweringError
from ...options import OPTIONS
from .emit import DETAILS, emit
from .memory import fusion_budget, plan_memory, stored_bytes
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


# What a fused lowering does not model, in place of the "operator fusion" line above.
NOT_MODELLED_FUSED = [
    "a fused group is cut in bands spanning the feature map's width (or in chunks or planes of a "
    "sample); 2-D tiles and DeFiNES's mixed cached/recompute modes are not modelled",
    "a fused group's array and vector members overlap as a two-stage pipeline over its tiles; "
    "each member's pipeline fill is paid once per group, not per tile",
    "a fused group takes room for one tile's working set; its external results go to DRAM even "
    "when they would fit on chip",
]



@LOWERINGS.register("npu")
def lower_npu(graph: Graph, workloads: dict[str, Workload], hw: NPU, *, detail: str = "node",
              precision: str | None = None, fusion: str = "none", halo: str = "cache",
              recompute: str = "stash_all", **unknown: object) -> Program:
    """The Program of `graph` on `hw`.

    * `detail`: "node" (closed-form streaming, the default) or "tiles" (every streamed tile a
      task: the reference the closed form is tested against).
    * `precision`: None (the graph's types, or the NPU's `datatype`), "fp32", "bf16", "fp16"
      or "int8" (infer/adapt only) — `compiler.precision`.
    * `fusion`: "none", "layer" (conv-bn-relu-pool groups) or "depth_first" (groups across
      layers, tiled over the feature map) — `compiler.fusion`.
    * `halo`: what a fused group's bands of rows do with the rows they share: "cache" (kept
      on chip for the next band) or "recompute" (DeFiNES's fully-recompute mode).
    * `recompute`: "stash_all" (keep every inner-step activation for the meta-gradient),
      "per_step" (keep each inner step's inputs, recompute its activations) or "all"
      (recompute from the meta-parameters) — `compiler.recompute`.

    A bad option is a `LoweringError` naming the allowed values."""
    check_options(detail=detail, precision=precision, fusion=fusion, halo=halo, recompute=recompute, **unknown)
    check_against_hardware(precision, hw.datatype, hw.name)
    check_phase(graph, precision)
    if recompute != "stash_all":
        graph = recompute_graph(graph, recompute)
        workloads = {**workloads, **graph_workloads(graph.with_nodes(
            n for n in graph.nodes if n.name not in workloads))}
    numeric = numeric_plan(graph, workloads, precision) if precision is not None and hw.datatype is None else None
    groups = None
    if fusion != "none":
        nbytes = (lambda t: numeric.nbytes(graph, t)) if numeric is not None \
            else (lambda t: stored_bytes(graph, t, hw.datatype))
        groups = fuse(graph, workloads, fusion, nbytes=nbytes, budget=fusion_budget(hw), halo=halo)
    placed = place(graph, workloads, hw.cores, groups)
    plan = plan_memory(graph, workloads, hw, placed, numeric, groups, halo)
    not_modelled = NOT_MODELLED if groups is None else \
        [line for line in NOT_MODELLED if not line.startswith("operator fusion")] + NOT_MODELLED_FUSED
    # the options a result was lowered with travel with it (reports show which knob was set)
    chosen = {"detail": detail, "precision": precision, "fusion": fusion, "halo": halo, "recompute": recompute}
    metadata = {**graph.metadata, **{f"compile.{k}": str(v) for k, v in chosen.items()
                                     if v != OPTIONS[k][1]}}
    return emit(plan, hw, name=graph.name, metadata=metadata, not_modelled=not_modelled, detail=detail)


def check_options(**options: object) -> None:
    """One clear line for an unknown option or value (`LoweringError`, exit code 2)."""
    for name, value in options.items():
        if name not in OPTIONS:
            raise LoweringError(f"unknown NPU lowering option {name!r}; known: {', '.join(OPTIONS)}")
        allowed, _ = OPTIONS[name]
        if value not in allowed:
            shown = ", ".join("unset" if a is None else str(a) for a in allowed)
            raise LoweringError(f"unknown {name} {value!r}; known: {shown}")


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


__all__ = ["lower_npu", "check_options", "compulsory_dram_bytes", "stored_bytes", "DETAILS", "OPTIONS",
           "MAX_STREAM_TILES", "NOT_MODELLED"]

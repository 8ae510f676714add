"""Data movement: no arithmetic, only bytes. Kind DATA_MOVEMENT.

* Views — Reshape, Flatten, Squeeze, Unsqueeze, Identity, and Dropout in inference — change
  only how a buffer is indexed: bytes 0, dims["view"] = 1.
* Copies — Transpose, Concat, Split, Slice, Gather, GatherElements, GatherND, Expand, Tile,
  DepthToSpace, SpaceToDepth, ReverseSequence, CenterCropPad, Compress, OneHot, MaxUnpool —
  read each operand once and write each output once (operand convention of `operands.py`);
  dims["view"] = 0.
* Scatters — ScatterElements, ScatterND and the old Scatter (opset 9-10, ScatterElements by
  another name) — copy likewise; with a reduction (add, mul, max, min) they also count one flop
  per update element.
* Pad supports modes constant, reflect, edge, wrap; anything else is unsupported. Dropout in
  training mode (a constant true `training_mode`, or one not known at compile time) is unsupported: it would need a random mask.
"""

from __future__ import annotations

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import constant, out_numel, workload

VIEWS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
COPIES = ("Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND",
          "Expand", "Tile", "DepthToSpace", "SpaceToDepth", "ReverseSequence", "CenterCropPad",
          "Compress", "OneHot", "MaxUnpool")
PAD_MODES = ("constant", "reflect", "edge", "wrap")


@rule(*VIEWS, kind=Kind.DATA_MOVEMENT, formula="view: no bytes moved", view=True)
def view(graph: Graph, node: Node) -> Workload:
    return _view(graph, node)


@rule("Dropout", kind=Kind.DATA_MOVEMENT,
      formula="inference only: a view; a requested mask is written (all true)", view=True)
def dropout(graph: Graph, node: Node) -> Workload:
    training = constant(graph, node, 2, "training_mode")
    if training is not None and bool(training):
        raise UnsupportedOpError(node.op_type, node.name, "training-mode Dropout (a random mask)")
    if len(node.outputs) > 1 and node.outputs[1]:
        # the mask of an inference Dropout is all true: a fill of the mask buffer
        mask = graph.tensor(node.outputs[1]).nbytes
        return Workload(Kind.DATA_MOVEMENT, bytes_written=mask, dims={"view": 1, "mask_bytes": mask})
    return _view(graph, node)


def _view(graph: Graph, node: Node) -> Workload:
    return Workload(Kind.DATA_MOVEMENT, dims={"view": 1, "numel": out_numel(graph, node)})


@rule(*COPIES, kind=Kind.DATA_MOVEMENT, formula="copy: inputs read once, outputs written once")
def copy(graph: Graph, node: Node) -> Workload:
    return workload(graph, node, Kind.DATA_MOVEMENT, dims={"view": 0})


@rule("ScatterElements", "ScatterND", "Scatter", kind=Kind.DATA_MOVEMENT,
      formula="copy; a reduction adds 1 flop per update element")
def scatter(graph: Graph, node: Node) -> Workload:
    reduction = str(node.attr("reduction", "none"))
    if reduction not in ("none", "add", "mul", "max", "min"):
        raise UnsupportedOpError(node.op_type, node.name, f"reduction {reduction!r}")
    updates = graph.tensor(node.inputs[2]).numel
    flops = updates if reduction != "none" else 0
    return workload(graph, node, Kind.DATA_MOVEMENT, flops=flops,
                    dims={"view": 0, "updates": updates})


@rule("Pad", kind=Kind.DATA_MOVEMENT, formula="copy (modes constant, reflect, edge, wrap)")
def pad(graph: Graph, node: Node) -> Workload:
    mode = str(node.attr("mode", "constant"))
    if mode not in PAD_MODES:
        raise UnsupportedOpError(node.op_type, node.name, f"pad mode {mode!r} (allowed: {', '.join(PAD_MODES)})")
    return workload(graph, node, Kind.DATA_MOVEMENT, dims={"view": 0})

"""Normalizations. Kind NORMALIZATION.

Counts per element follow each op's formula in the ONNX operator spec; a multiply-add with
per-channel constants counts as one.
* BatchNormalization in inference: 2 flops per element (scale and shift once the statistics
  are folded into them). In training mode (training_mode=1, or running mean/var outputs
  requested): ~7 per element (mean: add; variance: subtract, square, add; normalise: subtract,
  multiply; affine: multiply-add counted as one), plus one transcendental (rsqrt) per channel.
* LayerNormalization, InstanceNormalization, GroupNormalization: 7 per element like training
  BN; one rsqrt per normalised group (row, instance n·c, group n·groups).
* MeanVarianceNormalization: (x − mean) / sqrt(var) over `axes`: 6 per element (training BN
  without the affine), one sqrt per normalised group.
* RMSNormalization: x / sqrt(mean(x²) + ε) · scale: square, add, multiply, scale: 4 per
  element, one rsqrt per row.
* LpNormalization along an axis: |x| or x², add, divide: 3 per element; p = 2 adds one sqrt
  per row.
* LRN (size channels): a sum of `size` squares (size multiplies, size − 1 adds), bias + α/size·Σ
  as one multiply-add, the power β (a transcendental) and the division: 2·size + 2 per element,
  window positions outside the channels counted like the rest (zero padding).
dims: numel, channels or rows or groups, training, transcendental.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import axis_of, prod, shape, workload

BN_INFERENCE_PER_ELEMENT = 2
NORM_TRAINING_PER_ELEMENT = 7
MVN_PER_ELEMENT = 6
RMS_PER_ELEMENT = 4
LP_PER_ELEMENT = 3


@rule("BatchNormalization", kind=Kind.NORMALIZATION,
      formula="inference 2 flop/element; training 7 flop/element + 1 rsqrt per channel")
def batch_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    training = int(node.attr("training_mode", 0)) == 1 or sum(1 for o in node.outputs if o) > 1
    per = NORM_TRAINING_PER_ELEMENT if training else BN_INFERENCE_PER_ELEMENT
    channels = x[1] if len(x) > 1 else 1
    return workload(graph, node, Kind.NORMALIZATION, flops=n * per,
                    dims={"numel": n, "channels": channels, "training": int(training),
                          "transcendental": channels if training else 0})


@rule("LayerNormalization", kind=Kind.NORMALIZATION,
      formula="7 flop/element + 1 rsqrt per normalised row")
def layer_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    axis = int(node.attr("axis", -1)) % max(len(x), 1)
    rows = prod(x[:axis])
    return workload(graph, node, Kind.NORMALIZATION, flops=n * NORM_TRAINING_PER_ELEMENT,
                    dims={"numel": n, "rows": rows, "training": 0, "transcendental": rows})


@rule("InstanceNormalization", kind=Kind.NORMALIZATION,
      formula="7 flop/element + 1 rsqrt per (n, c) instance")
def instance_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    groups = prod(x[:2])
    return _grouped(graph, node, NORM_TRAINING_PER_ELEMENT, groups)


@rule("GroupNormalization", kind=Kind.NORMALIZATION,
      formula="7 flop/element + 1 rsqrt per (n, group)")
def group_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    groups = x[0] * int(node.attr("num_groups", 1))
    return _grouped(graph, node, NORM_TRAINING_PER_ELEMENT, groups)


@rule("MeanVarianceNormalization", kind=Kind.NORMALIZATION,
      formula="6 flop/element + 1 sqrt per normalised group")
def mean_variance_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    axes = {int(a) % len(x) for a in node.attr("axes", [0, 2, 3])} if x else set()
    groups = prod(d for i, d in enumerate(x) if i not in axes)
    return _grouped(graph, node, MVN_PER_ELEMENT, groups)


@rule("RMSNormalization", kind=Kind.NORMALIZATION,
      formula="4 flop/element + 1 rsqrt per normalised row")
def rms_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    axis = int(node.attr("axis", -1)) % max(len(x), 1)
    return _grouped(graph, node, RMS_PER_ELEMENT, prod(x[:axis]))


@rule("LpNormalization", kind=Kind.NORMALIZATION,
      formula="3 flop/element; p=2 adds 1 sqrt per row")
def lp_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    axis = axis_of(node, len(x), -1)
    rows = prod(x) // x[axis] if x and x[axis] else 0
    sqrt = rows if int(node.attr("p", 2)) == 2 else 0
    return _grouped(graph, node, LP_PER_ELEMENT, rows, sqrt)


@rule("LRN", kind=Kind.NORMALIZATION, formula="(2·size + 2) flop/element + 1 pow/element")
def lrn(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    size = int(node.attr("size"))
    per = 2 * size + 2
    return workload(graph, node, Kind.NORMALIZATION, flops=n * per,
                    dims={"numel": n, "channels": x[1] if len(x) > 1 else 1, "size": size,
                          "training": 0, "transcendental": n})


def _grouped(graph: Graph, node: Node, per: int, groups: int, trans: int | None = None) -> Workload:
    """`per` flops per element and (by default) one transcendental per normalised group."""
    n = prod(shape(graph, node.inputs[0]))
    return workload(graph, node, Kind.NORMALIZATION, flops=n * per,
                    dims={"numel": n, "groups": groups, "training": 0,
                          "transcendental": groups if trans is None else trans})

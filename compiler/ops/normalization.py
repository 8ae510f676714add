"""Normalizations: BatchNormalization, LayerNormalization. Kind NORMALIZATION.

* BatchNormalization in inference: 2 flops per element (scale and shift once the statistics
  are folded into them). In training mode (training_mode=1, or running mean/var outputs
  requested): ~7 per element (mean: add; variance: subtract, square, add; normalise: subtract,
  multiply; affine: multiply-add counted as one), plus one transcendental (rsqrt) per channel.
* LayerNormalization: ~7 per element like training BN, one rsqrt per normalised row.
dims: numel, channels or rows, training, transcendental.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import prod, shape, workload

BN_INFERENCE_PER_ELEMENT = 2
NORM_TRAINING_PER_ELEMENT = 7


@rule("BatchNormalization")
def batch_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    training = int(node.attr("training_mode", 0)) == 1 or sum(1 for o in node.outputs if o) > 1
    per = NORM_TRAINING_PER_ELEMENT if training else BN_INFERENCE_PER_ELEMENT
    channels = x[1] if len(x) > 1 else 1
    return workload(graph, node, Kind.NORMALIZATION, flops=n * per,
                    dims={"numel": n, "channels": channels, "training": int(training),
                          "transcendental": channels if training else 0})


@rule("LayerNormalization")
def layer_norm(graph: Graph, node: Node) -> Workload:
    x = shape(graph, node.inputs[0])
    n = prod(x)
    axis = int(node.attr("axis", -1)) % max(len(x), 1)
    rows = prod(x[:axis])
    return workload(graph, node, Kind.NORMALIZATION, flops=n * NORM_TRAINING_PER_ELEMENT,
                    dims={"numel": n, "rows": rows, "training": 0, "transcendental": rows})

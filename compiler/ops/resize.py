"""Interpolation: Resize (opset 10+) and Upsample (opset 7-9). Kind ELEMENTWISE.

Each output element is a weighted sum of the input elements around its source coordinate:
1 tap for `nearest`, 2^d for `linear` (bilinear, trilinear, ...) and 4^d for `cubic`, where d
is the number of axes whose size changes (an axis kept at its size needs no interpolation).
A weighted sum of t taps costs t multiplies and t − 1 adds: 2t − 1 flops per output element
(0 for nearest, a pure copy). The coordinate transformation is computed once per output row
and column and is not counted. Resize with `antialias` = 1 widens the filter when it shrinks
an axis (the tap count then depends on the scale): unsupported when an axis shrinks.
dims: numel, ops_per_element, taps, transcendental (0).
"""

from __future__ import annotations

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import prod, shape, workload

TAPS_PER_AXIS = {"nearest": 1, "linear": 2, "bilinear": 2, "cubic": 4}


@rule("Resize", "Upsample", kind=Kind.ELEMENTWISE,
      formula="(2·taps − 1) flop/output element; taps 1 nearest, 2^d linear, 4^d cubic")
def resize(graph: Graph, node: Node) -> Workload:
    x, y = shape(graph, node.inputs[0]), shape(graph, node.outputs[0])
    mode = str(node.attr("mode", "nearest"))
    if mode not in TAPS_PER_AXIS:
        raise UnsupportedOpError(node.op_type, node.name, f"mode {mode!r} (allowed: nearest, linear, cubic)")
    changed = [i for i, (a, b) in enumerate(zip(x, y)) if a != b]
    if int(node.attr("antialias", 0)) and any(y[i] < x[i] for i in changed):
        raise UnsupportedOpError(node.op_type, node.name, "antialias=1 when shrinking an axis")
    taps = TAPS_PER_AXIS[mode] ** len(changed) if mode != "nearest" else 1
    per = 2 * taps - 1 if mode != "nearest" else 0
    n = prod(y)
    return workload(graph, node, Kind.ELEMENTWISE, flops=n * per,
                    dims={"numel": n, "ops_per_element": per, "taps": taps, "transcendental": 0})

"""Pooling: MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool (1-D and 2-D). Kind POOL.

flops = output elements x window (r·s): one compare (max) or one add (average) per window
element; the average's division is folded into that count. Global pools have window h·w.
dims: n, c, h, w, oh, ow, r, s, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w.
MaxPool's optional Indices output is written like any output.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, UnsupportedOpError, Workload, rule
from .operands import out_numel, shape, workload


@rule("MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool")
def pool(graph: Graph, node: Node) -> Workload:
    x, y = shape(graph, node.inputs[0]), shape(graph, node.outputs[0])
    spatial = len(x) - 2
    if spatial not in (1, 2):
        raise UnsupportedOpError(node.op_type, node.name, f"{spatial}-D pooling")
    lift = (lambda v, f: (f,) + tuple(v)) if spatial == 1 else (lambda v, f: tuple(v))
    if node.op_type.startswith("Global"):
        kernel, strides, pads, dil = x[2:], (1,) * spatial, (0,) * spatial, (1,) * spatial
    else:
        auto = str(node.attr("auto_pad", "NOTSET"))
        if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
            raise UnsupportedOpError(node.op_type, node.name, f"auto_pad {auto!r}")
        kernel = tuple(node.attr("kernel_shape"))
        strides = tuple(node.attr("strides", [1] * spatial))
        pads = tuple(node.attr("pads", [0] * 2 * spatial))[:spatial] if auto == "NOTSET" else (0,) * spatial
        dil = tuple(node.attr("dilations", [1] * spatial))
    (h, w), (oh, ow), (r, s) = lift(x[2:], 1), lift(y[2:], 1), lift(kernel, 1)
    (sh, sw), (ph, pw), (dh, dw) = lift(strides, 1), lift(pads, 0), lift(dil, 1)
    flops = out_numel(graph, node) * r * s
    dims = {"n": x[0], "c": x[1], "h": h, "w": w, "oh": oh, "ow": ow, "r": r, "s": s,
            "stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw, "dil_h": dh, "dil_w": dw}
    return workload(graph, node, Kind.POOL, flops=flops, dims=dims)

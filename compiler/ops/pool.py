"""Pooling: MaxPool, AveragePool, LpPool and their Global forms (1-D and 2-D), RoiAlign. Kind POOL.

flops = output elements x window (r·s): one compare (max) or one add (average) per window
element; the average's division is folded into that count. Global pools have window h·w.
LpPool (ONNX spec: (Σ |x|^p)^(1/p) over the window): p = 2 costs a square and an add per
window element, any other p an abs, a pow (a transcendental) and an add; each output adds one
root (1 flop, 1 transcendental).
RoiAlign (ONNX spec, opset 10/16): each of the rois·c·oh·ow output bins averages (or takes the
max of) sampling_ratio² bilinear samples; a sample costs 4 multiplies and 3 adds, plus 1 to
accumulate it, and each bin 1 more (the average's division or nothing for max, counted alike).
sampling_ratio = 0 (adaptive: it depends on each roi's size at run time) is unsupported.
dims: n, c, h, w, oh, ow, r, s, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w (RoiAlign: n is
the number of rois, r = s = sampling_ratio); LpPool adds p and transcendental.
MaxPool's optional Indices output is written like any output.
"""

from __future__ import annotations

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import out_numel, shape, workload

BILINEAR_SAMPLE_FLOPS = 4 + 3 + 1   # 4 multiplies, 3 adds, accumulate


@rule("MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool", kind=Kind.POOL,
      formula="outputs·r·s flops (one compare or add per window element)")
def pool(graph: Graph, node: Node) -> Workload:
    dims = _window(graph, node)
    flops = out_numel(graph, node) * dims["r"] * dims["s"]
    return workload(graph, node, Kind.POOL, flops=flops, dims=dims)


@rule("LpPool", "GlobalLpPool", kind=Kind.POOL,
      formula="outputs·r·s·2 flops for p=2 (else ·3 with a pow each) + 1 root per output")
def lp_pool(graph: Graph, node: Node) -> Workload:
    dims = _window(graph, node)
    p = int(node.attr("p", 2))
    outs = out_numel(graph, node)
    taps = outs * dims["r"] * dims["s"]
    if p == 2:
        flops, trans = 2 * taps + outs, outs
    else:
        flops, trans = 3 * taps + outs, taps + outs
    return workload(graph, node, Kind.POOL, flops=flops, dims={**dims, "p": p, "transcendental": trans})


def _window(graph: Graph, node: Node) -> dict[str, int]:
    x, y = shape(graph, node.inputs[0]), shape(graph, node.outputs[0])
    spatial = len(x) - 2
    if spatial not in (1, 2):
        raise UnsupportedOpError(node.op_type, node.name, f"{spatial}-D pooling (1-D and 2-D are modelled)")
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
    return {"n": x[0], "c": x[1], "h": h, "w": w, "oh": oh, "ow": ow, "r": r, "s": s,
            "stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw, "dil_h": dh, "dil_w": dw}


@rule("RoiAlign", kind=Kind.POOL,
      formula="rois·c·oh·ow·(sampling_ratio²·8 + 1) flops (bilinear samples)")
def roi_align(graph: Graph, node: Node) -> Workload:
    x, y = shape(graph, node.inputs[0]), shape(graph, node.outputs[0])
    ratio = int(node.attr("sampling_ratio", 0))
    if ratio <= 0:
        raise UnsupportedOpError(node.op_type, node.name, "sampling_ratio=0 (adaptive: the samples "
                                 "per bin depend on each roi's size at run time); give a fixed one")
    rois, c, oh, ow = y
    bins = rois * c * oh * ow
    flops = bins * (ratio * ratio * BILINEAR_SAMPLE_FLOPS + 1)
    dims = {"n": rois, "c": c, "h": x[2], "w": x[3], "oh": oh, "ow": ow, "r": ratio, "s": ratio,
            "stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0, "dil_h": 1, "dil_w": 1}
    return workload(graph, node, Kind.POOL, flops=flops, dims=dims)

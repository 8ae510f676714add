"""Convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv (1-D and 2-D). Kind CONV.

dims: n, c, h, w (input), k (output channels), oh, ow (output), r, s (kernel), stride_h,
stride_w, pad_h, pad_w (leading pads; trailing ones in pad_h_end, pad_w_end), dil_h, dil_w, g,
and transposed (0/1). A 1-D convolution has h = oh = r = 1.

* Conv: MACs = n·k·oh·ow·(c/g)·r·s; a bias adds n·k·oh·ow flops.
* ConvTranspose: every input pixel scatters a kernel, MACs = n·c·h·w·(k/g)·r·s; a bias adds
  n·k·oh·ow flops.
* ConvInteger (x, w, x_zero_point, w_zero_point): MACs as Conv; each zero point given costs
  one subtract per element of its operand (x or w).
* QLinearConv (x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B):
  MACs as Conv; one subtract per element of x and of w (the zero points), the int32 bias adds
  n·k·oh·ow, and requantising each result costs 5 flops (multiply by x_scale·w_scale/y_scale,
  round, add y_zero_point, saturate as a min and a max), as in the ONNX spec's formula.
Pads come from `pads` or from `auto_pad` (VALID, SAME_UPPER, SAME_LOWER, resolved with the ONNX
formulas); an unknown auto_pad value or a 3-D convolution is unsupported.
"""

from __future__ import annotations

import math

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import has_input, in_numel, shape, workload

# Input positions of (data, weight, bias) per op type (ONNX operator spec).
_OPERANDS = {"Conv": (0, 1, 2), "ConvTranspose": (0, 1, 2), "ConvInteger": (0, 1, None),
             "QLinearConv": (0, 3, 8)}
REQUANTIZE_PER_ELEMENT = 5   # multiply, round, add zero point, saturate (min, max)


@rule("Conv", kind=Kind.CONV, formula="MACs = n·k·oh·ow·(c/g)·r·s; bias n·k·oh·ow flops")
def conv(graph: Graph, node: Node) -> Workload:
    return _conv(graph, node)


@rule("ConvTranspose", kind=Kind.CONV, formula="MACs = n·c·h·w·(k/g)·r·s; bias n·k·oh·ow flops")
def conv_transpose(graph: Graph, node: Node) -> Workload:
    return _conv(graph, node)


@rule("ConvInteger", kind=Kind.CONV,
      formula="MACs as Conv; one subtract per element of x / w for each zero point given")
def conv_integer(graph: Graph, node: Node) -> Workload:
    zero_points = (in_numel(graph, node, 0) if has_input(node, 2) else 0) + \
                  (in_numel(graph, node, 1) if has_input(node, 3) else 0)
    return _conv(graph, node, extra_flops=zero_points)


@rule("QLinearConv", kind=Kind.CONV,
      formula="MACs as Conv; zero points numel(x) + numel(w), bias and 5/output requantising flops")
def qlinear_conv(graph: Graph, node: Node) -> Workload:
    zero_points = in_numel(graph, node, 0) + in_numel(graph, node, 3)
    requantize = graph.tensor(node.outputs[0]).numel * REQUANTIZE_PER_ELEMENT
    return _conv(graph, node, extra_flops=zero_points + requantize)


def _conv(graph: Graph, node: Node, extra_flops: int = 0) -> Workload:
    transposed = node.op_type == "ConvTranspose"
    xi, wi, bi = _OPERANDS[node.op_type]
    x, wt = shape(graph, node.inputs[xi]), shape(graph, node.inputs[wi])
    y = shape(graph, node.outputs[0])
    spatial = len(x) - 2
    if spatial not in (1, 2):
        raise UnsupportedOpError(node.op_type, node.name, f"{spatial}-D convolution (1-D and 2-D are modelled)")
    g = int(node.attr("group", 1))
    kernel = tuple(wt[2:])
    strides = tuple(node.attr("strides", [1] * spatial))
    dil = tuple(node.attr("dilations", [1] * spatial))
    pads = _pads(node, tuple(x[2:]), tuple(y[2:]), kernel, strides, dil, transposed)

    def two(v, fill):  # lift 1-D values to (h, w) with h trivial
        return (fill,) + tuple(v) if spatial == 1 else tuple(v)

    (h, w), (oh, ow), (r, s) = two(x[2:], 1), two(y[2:], 1), two(kernel, 1)
    (sh, sw), (dh, dw) = two(strides, 1), two(dil, 1)
    pb, pe = two(pads[:spatial], 0), two(pads[spatial:], 0)
    n, c, k = x[0], x[1], y[1]
    if transposed:
        macs = n * c * h * w * (k // g) * r * s
    else:
        macs = n * k * oh * ow * (c // g) * r * s
    has_bias = bi is not None and has_input(node, bi)
    flops = (n * k * oh * ow if has_bias else 0) + extra_flops
    dims = {"n": n, "c": c, "h": h, "w": w, "k": k, "oh": oh, "ow": ow, "r": r, "s": s,
            "stride_h": sh, "stride_w": sw, "pad_h": pb[0], "pad_w": pb[1],
            "pad_h_end": pe[0], "pad_w_end": pe[1], "dil_h": dh, "dil_w": dw, "g": g,
            "transposed": int(transposed)}
    return workload(graph, node, Kind.CONV, macs=macs, flops=flops, dims=dims)


def _pads(node: Node, in_sp, out_sp, kernel, strides, dil, transposed) -> tuple[int, ...]:
    auto = str(node.attr("auto_pad", "NOTSET"))
    spatial = len(in_sp)
    if auto == "NOTSET":
        return tuple(node.attr("pads", [0] * 2 * spatial))
    if auto == "VALID":
        return (0,) * 2 * spatial
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedOpError(node.op_type, node.name, f"auto_pad {auto!r}")
    begin, end = [], []
    for i in range(spatial):
        eff = (kernel[i] - 1) * dil[i] + 1
        if transposed:
            total = max(0, strides[i] * (in_sp[i] - 1) + eff - out_sp[i])
        else:
            total = max(0, (math.ceil(in_sp[i] / strides[i]) - 1) * strides[i] + eff - in_sp[i])
        small, big = total // 2, total - total // 2
        b, e = (small, big) if auto == "SAME_UPPER" else (big, small)
        begin.append(b)
        end.append(e)
    return tuple(begin + end)

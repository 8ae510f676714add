"""Quantization: QuantizeLinear, DequantizeLinear (kind ELEMENTWISE), DynamicQuantizeLinear
(kind REDUCTION: it first finds the range of its input).

Counts follow the formulas of the ONNX operator spec:
* QuantizeLinear y = saturate(round(x / y_scale) + y_zero_point): divide, round, add, and the
  saturation as a min and a max: 5 flops per element.
* DequantizeLinear y = (x − x_zero_point) · x_scale: 2 flops per element.
* DynamicQuantizeLinear: min and max of x (2 compares per element; the scale and zero point are
  a handful of scalar operations, not counted), then QuantizeLinear: 7 flops per element.
dims: numel, ops_per_element, transcendental (0) — DynamicQuantizeLinear numel_in, numel_out.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .operands import in_numel, out_numel, workload

QUANTIZE_PER_ELEMENT = 5
DEQUANTIZE_PER_ELEMENT = 2
RANGE_PER_ELEMENT = 2


@rule("QuantizeLinear", kind=Kind.ELEMENTWISE, formula="5 flop/element (divide, round, add, min, max)")
def quantize(graph: Graph, node: Node) -> Workload:
    return _per_element(graph, node, QUANTIZE_PER_ELEMENT)


@rule("DequantizeLinear", kind=Kind.ELEMENTWISE, formula="2 flop/element (subtract, multiply)")
def dequantize(graph: Graph, node: Node) -> Workload:
    return _per_element(graph, node, DEQUANTIZE_PER_ELEMENT)


def _per_element(graph: Graph, node: Node, per: int) -> Workload:
    n = out_numel(graph, node)
    return workload(graph, node, Kind.ELEMENTWISE, flops=n * per,
                    dims={"numel": n, "ops_per_element": per, "transcendental": 0})


@rule("DynamicQuantizeLinear", kind=Kind.REDUCTION,
      formula="7 flop/element (min, max over the input, then QuantizeLinear)")
def dynamic_quantize(graph: Graph, node: Node) -> Workload:
    n = in_numel(graph, node, 0)
    return workload(graph, node, Kind.REDUCTION, flops=n * (RANGE_PER_ELEMENT + QUANTIZE_PER_ELEMENT),
                    dims={"numel_in": n, "numel_out": out_numel(graph, node), "transcendental": 0})

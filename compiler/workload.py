"""Per-node workload: what an operator asks of the hardware, independent of any hardware.

Every ONNX op type that the compiler accepts has exactly one rule, registered by op type in
`compiler.ops` (one module per family of ops). `workload_of(graph, node)` looks the rule up; an
op type with no rule raises `UnsupportedOpError` naming the op and its node — never a silent
zero cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Mapping

from hwsim.errors import BadInput

from .ir import Graph, Node


class Kind(str, Enum):
    MATMUL = "matmul"            # (batched) GEMM: dims b, m, k, n
    CONV = "conv"                # convolution / transposed convolution: dims n, c, k, oh, ow, r, s, g
    ELEMENTWISE = "elementwise"  # one result per output element (add, mul, relu, where, ...)
    REDUCTION = "reduction"      # many inputs fold into fewer outputs (sum, mean, max, softmax stats)
    NORMALIZATION = "normalization"  # batch/layer norm: reductions plus elementwise
    POOL = "pool"                # windowed reduction: dims n, c, oh, ow, r, s
    DATA_MOVEMENT = "data_movement"  # reshape, transpose, concat, slice, gather, expand, ...
    NONE = "none"                # metadata-only ops (Shape, Constant): no work, stated explicitly


@dataclass(frozen=True)
class Workload:
    kind: Kind
    macs: int = 0            # multiply-accumulates (MATMUL, CONV)
    flops: int = 0           # other arithmetic operations (elementwise, reductions, comparisons)
    bytes_read: int = 0      # operand bytes read once (compulsory, no reuse model)
    bytes_written: int = 0   # result bytes written once
    dims: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k in ("macs", "flops", "bytes_read", "bytes_written"):
            if getattr(self, k) < 0:
                raise ValueError(f"negative {k} in workload")

    @property
    def total_ops(self) -> int:
        """Arithmetic operations, counting a MAC as two (multiply and add)."""
        return 2 * self.macs + self.flops


class UnsupportedOpError(BadInput):
    """An op type (or an attribute combination) has no workload rule."""

    def __init__(self, op_type: str, node: str, detail: str = "") -> None:
        self.op_type, self.node = op_type, node
        msg = f"unsupported op {op_type!r} at node {node!r}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


Rule = Callable[[Graph, Node], Workload]
_RULES: dict[str, Rule] = {}


def rule(*op_types: str) -> Callable[[Rule], Rule]:
    """Register a workload rule for one or more ONNX op types (one rule per op type)."""

    def register(fn: Rule) -> Rule:
        for op in op_types:
            if op in _RULES:
                raise RuntimeError(f"two workload rules for {op}")
            _RULES[op] = fn
        return fn

    return register


def supported_ops() -> frozenset[str]:
    _load_rules()
    return frozenset(_RULES)


def workload_of(graph: Graph, node: Node) -> Workload:
    _load_rules()
    fn = _RULES.get(node.op_type)
    if fn is None:
        raise UnsupportedOpError(node.op_type, node.name,
                                 f"no workload rule (supported: {len(_RULES)} op types)")
    return fn(graph, node)


def graph_workloads(graph: Graph) -> dict[str, Workload]:
    """Workload of every node, keyed by node name; fails on the first unsupported op."""
    return {n.name: workload_of(graph, n) for n in graph.nodes}


def _load_rules() -> None:
    if not _RULES:
        from . import ops  # noqa: F401  (registers the rules)

"""Per-node workload: what an operator asks of the hardware, independent of any hardware.

Every ONNX op type that the compiler accepts has exactly one rule, registered by op type in
`RULES` (a `hwsim.registry.Registry`) by the `@rule("Op", ..., kind=..., formula=...)`
decorator of a module in `compiler.ops` (one module per family of ops). A rule declares the
`Kind` of workload it returns and a one-line formula; `docs/ops.md` is generated from them.
`graph_workloads(graph)` first checks that every op type of the graph has a rule and raises one
`UnsupportedOpError` naming all that do not — never a silent zero cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Mapping

from hwsim.registry import Registry

from .errors import InternalError, UnsupportedOpError
from .ir import Graph, Node

__all__ = ["Kind", "Workload", "RuleSpec", "RULES", "rule", "supported_ops", "workload_of",
           "graph_workloads", "UnsupportedOpError"]


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
                raise InternalError(f"negative {k} in a {self.kind.value} workload")

    @property
    def total_ops(self) -> int:
        """Arithmetic operations, counting a MAC as two (multiply and add)."""
        return 2 * self.macs + self.flops


RuleFn = Callable[[Graph, Node], Workload]
Rule = RuleFn   # the name rule modules and older callers know


@dataclass(frozen=True)
class RuleSpec:
    """A workload rule: the function, the kind of workload it returns, its formula (one line,
    or a function of the op type for rules shared by several op types), and whether its nodes
    are views (`dims["view"] = 1`: no task of their own in any lowering)."""

    fn: RuleFn
    kind: Kind
    formula: str | Callable[[str], str]
    view: bool = False

    def summary(self, op_type: str) -> str:
        return self.formula(op_type) if callable(self.formula) else self.formula


RULES: Registry[RuleSpec] = Registry("workload rule", modules=("compiler.ops",))


def rule(*op_types: str, kind: Kind, formula: str | Callable[[str], str],
         view: bool = False) -> Callable[[RuleFn], RuleFn]:
    """Register a workload rule for one or more ONNX op types (one rule per op type: a second
    rule for an op type is refused when its module is imported)."""

    def register(fn: RuleFn) -> RuleFn:
        spec = RuleSpec(fn, kind, formula, view)
        for op in op_types:
            RULES.add(op, spec)
        return fn

    return register


def supported_ops() -> frozenset[str]:
    return frozenset(RULES.names())


def workload_of(graph: Graph, node: Node) -> Workload:
    spec = RULES.get(node.op_type)
    if spec is None:
        raise UnsupportedOpError(node.op_type, node.name, _no_rule(), where=graph.source)
    wl = spec.fn(graph, node)
    if wl.kind is not spec.kind or bool(wl.dims.get("view")) is not spec.view:
        raise InternalError(f"the {node.op_type} rule declares kind {spec.kind.value} (view: {spec.view}) "
                            f"but returned {wl.kind.value} (view: {bool(wl.dims.get('view'))}) for "
                            f"node {node.name!r}")
    return wl


def graph_workloads(graph: Graph) -> dict[str, Workload]:
    """Workload of every node, keyed by node name. Op types without a rule are all named in one
    `UnsupportedOpError` (with one node of each) before any rule runs."""
    missing: dict[str, str] = {}
    for n in graph.nodes:
        if n.op_type not in missing and RULES.get(n.op_type) is None:
            missing[n.op_type] = n.name
    if missing:
        raise UnsupportedOpError.for_ops(missing, _no_rule(), where=graph.source)
    return {n.name: workload_of(graph, n) for n in graph.nodes}


def _no_rule() -> str:
    return f"no workload rule (rules exist for {len(RULES)} op types, listed in docs/ops.md)"

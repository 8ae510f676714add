"""Numeric precision as a compiler choice: the type each tensor is stored in and each node
computes in, as plain data (`NumericPlan`). The graph itself stays as exported (float32).

    plan = numeric_plan(graph, workloads, "bf16")
    plan.tensor["t0.relu"]  -> "bfloat16"     (stored type: bytes in buffers and DRAM)
    plan.node["t0.conv"]    -> "bfloat16"     (arithmetic type: MACs and lane ops are priced at it)

Precisions (`PRECISIONS`):

* `fp32` — every floating tensor at float32 (the exported graphs' own type).
* `bf16`, `fp16` — mixed-precision training (Micikevicius et al., "Mixed Precision Training",
  ICLR 2018): activations, gradients and input data stored and multiplied at 16 bits, with
  float32 *master* copies of what the optimizer updates and float32 accumulation where the sum
  is long. Float32 here: parameters and optimizer state (role PARAMETER) when the phase updates
  weights; every result of the inner-loop update, the meta-gradient reduction and the outer
  update (scope parts `update`, `meta_reduce`, `outer_update`: fast weights, optimizer moments,
  summed meta-gradients); the result of every true reduction (fewer outputs than inputs: batch
  statistics, bias gradients, loss sums), accumulated and kept at float32; and floating
  constants (Adam's eps = 1e-8 is below float16's smallest subnormal). Array results are
  accumulated at float32 inside the array and rounded to 16 bits when written.
* `int8` — quantised inference and adaptation (for adaptation, 8-bit gradients as in Lin et al.,
  "On-Device Training Under 256KB Memory", NeurIPS 2022): the same split with int8 for the
  narrow class and int32 for reduction results; master copies and updates stay float32.
  Refused for meta-training (`PrecisionError`): the second-order meta-gradient through int8
  inner steps is outside what published quantised training covers.

Where a phase updates no weights (inference), parameters are stored at the narrow type too
(a deployed model keeps no master copy). Integer tensors (indices, shapes, masks) always keep
their own type.

The NPU's own `datatype` (a hardware fact: tpu-v1-like computes only int8) wins: a precision
option on such an NPU must name the same type, and the hardware's rule then applies (every
floating tensor at its datatype, as without the option); a different one is an error
(`check_against_hardware`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .ir import DTYPE_BYTES, Graph, Node, Role
from .lowering import LoweringError
from .lowering.gemm import compute_dtype
from .workload import Kind, Workload
from .options import PRECISIONS


# The stored type of the narrow class under each precision, and of reduction results.
NARROW = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "int8"}
ACCUMULATE = {"fp32": "float32", "bf16": "float32", "fp16": "float32", "int8": "int32"}
# Scope parts whose results are master weights, optimizer state or reduced meta-gradients.
MASTER_PARTS = frozenset({"update", "meta_reduce", "outer_update"})
# Scope parts of meta-training only (the second-order meta-gradient and the outer step).
META_TRAIN_PARTS = frozenset({"meta_grad", "meta_reduce", "outer_update"})


class PrecisionError(LoweringError):
    """A precision the phase or the hardware does not allow."""


@dataclass(frozen=True)
class NumericPlan:
    """The stored type of every tensor and the arithmetic type of every node."""

    precision: str
    tensor: Mapping[str, str]
    node: Mapping[str, str]

    def nbytes(self, graph: Graph, name: str) -> int:
        return graph.tensor(name).numel * DTYPE_BYTES[self.tensor[name]]


def check_precision(precision: str | None) -> None:
    if precision is not None and precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")


def check_against_hardware(precision: str | None, datatype: str | None, hw_name: str) -> None:
    """The NPU's datatype wins: a precision option must agree with it (see the module doc)."""
    if precision is not None and datatype is not None and NARROW[precision] != datatype:
        raise PrecisionError(f"precision {precision!r} conflicts with {hw_name}'s datatype {datatype!r} "
                             f"(the hardware computes and stores only {datatype}); "
                             f"leave precision unset or choose {_option_of(datatype)!r}")


def check_phase(graph: Graph, precision: str | None) -> None:
    """int8 is for inference and adaptation only (module doc)."""
    if precision == "int8" and _meta_trains(graph):
        raise PrecisionError("precision 'int8' is for the infer and adapt phases; this graph is "
                             "meta_train (use fp32, bf16 or fp16)")


def _option_of(datatype: str) -> str:
    return next((p for p, d in NARROW.items() if d == datatype), datatype)


def is_float(dtype: str) -> bool:
    return dtype.startswith("float") or dtype == "bfloat16"


def numeric_plan(graph: Graph, workloads: Mapping[str, Workload], precision: str) -> NumericPlan:
    """The stored and arithmetic types of `graph` under `precision` (module doc). Raises
    `PrecisionError` for an unknown precision or int8 on a meta-training graph."""
    check_precision(precision)
    check_phase(graph, precision)
    narrow, wide = NARROW[precision], ACCUMULATE[precision]
    updates_weights = any(n.scope.part in MASTER_PARTS for n in graph.nodes)
    tensor: dict[str, str] = {}
    for name, t in graph.tensors.items():
        if not is_float(t.dtype):
            tensor[name] = t.dtype
        elif t.role is Role.CONSTANT or (t.role is Role.PARAMETER and updates_weights):
            tensor[name] = "float32"
        else:
            tensor[name] = narrow
    node: dict[str, str] = {}
    for n in graph.nodes:
        wl = workloads[n.name]
        floats = [o for o in n.outputs if o and is_float(graph.tensor(o).dtype)]
        if n.scope.part in MASTER_PARTS:
            for o in floats:
                tensor[o] = "float32"
        elif _reduces(graph, n, wl):
            for o in floats:
                tensor[o] = wide
        node[n.name] = _arithmetic(graph, n, wl, tensor, narrow)
    return NumericPlan(precision, tensor, node)


def _meta_trains(graph: Graph) -> bool:
    phase = graph.metadata.get("phase")
    if phase is not None:
        return phase == "meta_train"
    return any(n.scope.part in META_TRAIN_PARTS for n in graph.nodes)


def _reduces(graph: Graph, node: Node, wl: Workload) -> bool:
    """A true reduction: a reduction-kind node with fewer result elements than input elements
    (softmax-like reductions keep their size and stay narrow)."""
    if wl.kind is not Kind.REDUCTION:
        return False
    ins = [t.numel for t in graph.in_tensors(node) if is_float(t.dtype)]
    outs = [t.numel for t in graph.out_tensors(node)]
    return bool(ins) and bool(outs) and max(outs) < max(ins)


def _arithmetic(graph: Graph, node: Node, wl: Workload, tensor: Mapping[str, str], narrow: str) -> str:
    """Array ops multiply at the narrow type (accumulating wider inside the array); every other
    node computes at the stored type of its first floating result, else of its first floating
    operand; integer-only nodes at their own type."""
    if wl.kind in (Kind.MATMUL, Kind.CONV):
        return narrow if is_float(compute_dtype(graph, node)) else compute_dtype(graph, node)
    for name in (*node.outputs, *node.inputs):
        if name and is_float(graph.tensor(name).dtype):
            return tensor[name]
    return compute_dtype(graph, node)


__all__ = ["PRECISIONS", "NumericPlan", "PrecisionError", "numeric_plan", "check_precision",
           "check_against_hardware", "check_phase"]

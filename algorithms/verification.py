"""Verification of an exported phase: its structure in float64, its float32 run in onnxruntime.

    report = verify_export(model, spec)     # VerificationReport; ExportMismatchError if wrong
    print(report.summary())

A graph is checked on two input sets (seeds spec.seed + 1 and + 2), each output against eager
PyTorch computing the same phase in float64:

structure  the float64 master graph (`precision`), evaluated in float64 by `onnx_eval`, must
           agree with eager torch within the rounding budget of two float64 computations
           (`rounding`): ~1e-15 of the values on Conv4 graphs, where a wrong op, a wrong
           attribute or a dropped term (Adam's ε) is off by far more than float32 could hide.
float32    the float32 graph the spec ships (`precision.narrow`), run in onnxruntime, must be
           finite wherever the float64 result is, and within the float32 budget u·G·M of it.
           The budget is first-order worst case, so it cannot fail falsely on a correct graph
           (a max-pool whose window float32 cannot resolve, Adam dividing rounding noise by ε,
           long second-order chains); it catches what only float32 shows (overflow to inf,
           NaN, precision lost by whole orders of magnitude).

meta_train is checked in parts, so that verification does not grow with the meta-batch:
`meta_batch.split` proves exactly (no numerics) that the graph is B copies of one task, their
stacking in task order and the outer part; task 0 and the outer part are then checked
numerically against `phases.task_phase` and `phases.outer_phase`, whose composition is
`Algorithm.meta_step` (tests/algorithms/test_verification.py checks that equality, and the
whole graph end to end on small meta-batches).

A float32 model is verified through its float64 master: the phase is traced again and the
model must equal `narrow(master)` node for node (so a change made to the file is caught even
where it would pass numerically).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor

from . import meta_batch, phases, precision
from .onnx_eval import UnsupportedOnnxOp, evaluate
from .phase_graph import float64, trace_phase
from .rounding import RoundingBudget
from .spec import PhaseSpec

# Seeds of the two verification input sets, as offsets from the spec's seed.
SEED_OFFSETS = (1, 2)


class ExportMismatchError(AssertionError):
    """The exported graph does not compute what eager PyTorch computes."""


@dataclass(frozen=True)
class Check:
    """One output of one part, in one precision, worst over the input sets."""

    part: str          # "whole" (infer, adapt), "task" or "outer" (meta_train)
    output: str        # the phase's name for it (loss, grad.conv1.weight, new.adam.m.head.bias, ...)
    run: str           # "structure" (float64 master, evaluator) or "onnxruntime" (the shipped graph)
    precision: str     # the arithmetic of that run: float64, or the spec's dtype for onnxruntime
    error: float       # max |got − eager float64| over elements and input sets
    tolerance: float   # the rounding budget at that input set
    depth: float       # G of the rounding budget
    magnitude: float   # M of the rounding budget

    @property
    def used(self) -> float:
        """The fraction of the budget used (0 when both are 0)."""
        return self.error / self.tolerance if self.tolerance > 0 else (0.0 if self.error == 0 else math.inf)


@dataclass(frozen=True)
class VerificationReport:
    algorithm: str
    phase: str
    checks: tuple[Check, ...]
    task_copies: int   # meta_train: tasks proven to be exact copies of task 0; else 0
    input_sets: int

    def worst(self, run: str) -> Check | None:
        """The check of `run` ("structure" or "onnxruntime") that used most of its budget."""
        checks = [c for c in self.checks if c.run == run]
        return max(checks, key=lambda c: c.used) if checks else None

    def summary(self) -> str:
        """One line: the worst check of each run and how much of its budget it used."""
        parts = []
        for run in ("structure", "onnxruntime"):
            c = self.worst(run)
            if c is not None:
                parts.append(f"{run} ({c.precision}) max error {c.error:.2g} on {c.part} "
                             f"{c.output}, {100 * c.used:.2g} % of its budget {c.tolerance:.2g}")
        copies = f"; {self.task_copies} tasks proven identical copies" if self.task_copies else ""
        return (f"verified {self.algorithm}/{self.phase} on {self.input_sets} input sets: "
                + "; ".join(parts) + copies)

    def to_json(self) -> dict:
        return {"algorithm": self.algorithm, "phase": self.phase, "task_copies": self.task_copies,
                "input_sets": self.input_sets, "checks": [asdict(c) for c in self.checks]}


def verify_export(model: onnx.ModelProto, spec: PhaseSpec) -> VerificationReport:
    """Verify `model`, an export of `spec`: the float64 master graph itself, or the float32
    graph a float32 spec ships (then checked against a fresh trace's master, see above)."""
    if precision.float_type(model) == "float32":
        if spec.dtype != "float32":
            raise ExportMismatchError(f"a float32 graph for a {spec.dtype} spec")
        master = trace_phase(spec)
        _same_graph(model, precision.narrow(master))
    else:
        master = model
    return verify_master(master, spec)


def verify_master(master: onnx.ModelProto, spec: PhaseSpec) -> VerificationReport:
    """Verify the float64 master graph of `spec` (see the module docstring)."""
    phase = phases.phase_function(spec)
    _check_interface(master, phase, spec, _input_shapes(spec, phase))
    if spec.phase != "meta_train":
        checks = _check_part("whole", master, phase, lambda s: phases.example_inputs(spec, s), spec)
        return VerificationReport(spec.algorithm, spec.phase, tuple(checks), 0, len(SEED_OFFSETS))
    outer = phases.outer_phase(spec)
    stacked = outer.input_names[len(outer.parameter_inputs) + len(outer.optimizer_state_inputs):]
    try:
        parts = meta_batch.split(master, stacked)
    except meta_batch.NotAssembled as e:
        raise ExportMismatchError(f"{spec.algorithm}/meta_train: {e}") from None
    if parts.meta_batch != spec.meta_batch:
        raise ExportMismatchError(f"{spec.algorithm}/meta_train: {parts.meta_batch} tasks in the "
                                  f"graph, meta_batch {spec.meta_batch} in the spec")
    task = phases.task_phase(spec)

    def task_inputs(seed: int) -> list[Tensor]:
        # The task graph reads its batch through Gather(·, 0): a meta-batch axis of 1.
        args = phases.task_example_inputs(spec, seed)
        return [a.unsqueeze(0) if n in phases.BATCH_NAMES else a for n, a in zip(task.input_names, args)]

    checks = _check_part("task", parts.task, task, task_inputs, spec,
                         eager_args=lambda args: [a.squeeze(0) if n in phases.BATCH_NAMES else a
                                                  for n, a in zip(task.input_names, args)])
    checks += _check_part("outer", parts.outer, outer, lambda s: phases.outer_example_inputs(spec, s), spec)
    return VerificationReport(spec.algorithm, spec.phase, tuple(checks), parts.meta_batch,
                              len(SEED_OFFSETS))


# ---------------------------------------------------------------- parts


def _check_part(part: str, graph: onnx.ModelProto, phase: phases.PhaseFunction,
                inputs: Callable[[int], list[Tensor]], spec: PhaseSpec, *,
                eager_args: Callable[[list[Tensor]], list[Tensor]] = lambda args: args
                ) -> list[Check]:
    """Check one graph against its eager phase function on every input set."""
    names = [i.name for i in graph.graph.input]
    try:
        session = _session(graph if spec.dtype == "float64" else precision.narrow(graph))
    except Exception as e:  # noqa: BLE001 - onnxruntime rejects the graph: that is the finding
        raise ExportMismatchError(f"{spec.algorithm}/{spec.phase} ({part}): onnxruntime cannot load "
                                  f"the {spec.dtype} graph: {_first_line(e)}") from None
    worst: dict[tuple[str, str], Check] = {}
    for offset in SEED_OFFSETS:
        where = f"{spec.algorithm}/{spec.phase} ({part}), input set of seed {spec.seed + offset}"
        args = inputs(spec.seed + offset)  # in the spec's dtype, so exact in both precisions
        feeds = dict(zip(phase.input_names, args))
        expected = phases.run_eager(phase.fn, float64(eager_args(args)))
        budget = RoundingBudget()
        try:
            got64 = evaluate(graph, {n: float64([feeds[n]])[0] for n in names}, watch=budget.observe)
        except UnsupportedOnnxOp:
            raise
        except Exception as e:  # noqa: BLE001 - e.g. shapes that do not fit: the graph is wrong
            raise ExportMismatchError(f"{where}: the float64 graph does not evaluate: {_first_line(e)}") from None
        try:
            got = session.run(None, {n: feeds[n].numpy() for n in names})
        except Exception as e:  # noqa: BLE001
            raise ExportMismatchError(f"{where}: onnxruntime fails on the {spec.dtype} graph: "
                                      f"{_first_line(e)}") from None
        runs = [("structure", "float64", list(got64.values())),
                ("onnxruntime", spec.dtype, [torch.from_numpy(np.asarray(g)) for g in got])]
        for run, precision_, values in runs:
            for graph_name, name, g, e in zip(got64, phase.output_names, values, expected):
                check = _compare(where, part, name, run, precision_, g, e, budget, graph_name)
                key = (name, run)
                if key not in worst or check.used > worst[key].used:
                    worst[key] = check
        del got64, got, runs, expected, budget
    return list(worst.values())


def _compare(where: str, part: str, name: str, run: str, precision_: str, got: Tensor,
             expected: Tensor, budget: RoundingBudget, graph_name: str) -> Check:
    """`got` of one run against eager torch's float64 `expected`, within the budget of the
    run's precision plus eager float64's own."""
    label = "float64 structure run" if run == "structure" else f"onnxruntime {precision_} run"
    if tuple(got.shape) != tuple(expected.shape):
        raise ExportMismatchError(f"{where}: output {name!r} has shape {tuple(got.shape)} in the "
                                  f"{label}, {tuple(expected.shape)} in eager torch")
    g = got.to(torch.float64) if got.is_floating_point() else got
    e = expected.to(torch.float64) if expected.is_floating_point() else expected
    if not e.is_floating_point():
        error = 0.0 if torch.equal(g, e) else math.inf
    else:
        broken = ~torch.isfinite(g) & torch.isfinite(e) if not bool(torch.isfinite(g).all()) else None
        if broken is not None and bool(broken.any()):
            raise ExportMismatchError(f"{where}: output {name!r} is {float(g[broken].flatten()[0])} in "
                                      f"the {label} where eager torch is finite")
        error = float((g - e).abs().nan_to_num(0.0).max()) if g.numel() else 0.0
    tolerance = budget.tolerance(graph_name, precision_, "float64")
    check = Check(part, name, run, precision_, error, tolerance, budget.depth[graph_name],
                  budget.magnitude[graph_name])
    if not error <= tolerance:
        raise ExportMismatchError(
            f"{where}: output {name!r} differs from eager torch (float64) by {error:.3g} in the "
            f"{label}; its rounding budget is {tolerance:.3g} (depth {check.depth:.0f} "
            f"roundings × magnitude {check.magnitude:.3g} × unit roundoffs)")
    return check


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    """onnxruntime on the graph as written: its graph optimizations would run a rewritten
    graph (and take seconds on large ones). Without its memory arena, the gigabyte a Conv4
    84×84 task needs is returned after each run instead of staying reserved while the float64
    evaluation of the next input set runs (that kept peak RSS near 4 GB)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.enable_cpu_mem_arena = False
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _input_shapes(spec: PhaseSpec, phase: phases.PhaseFunction) -> dict[str, tuple[int, ...]]:
    """The shape each graph input must declare (meta_train: a task's batch shapes with the
    meta-batch axis in front; its parts are checked with one task)."""
    if spec.phase != "meta_train":
        return {n: tuple(a.shape) for n, a in zip(phase.input_names, phases.example_inputs(spec, spec.seed))}
    task, outer = phases.task_phase(spec), phases.outer_phase(spec)
    shapes = {n: tuple(a.shape) for n, a in zip(outer.input_names, phases.outer_example_inputs(spec, spec.seed))}
    for n, a in zip(task.input_names, phases.task_example_inputs(spec, spec.seed)):
        shapes[n] = (spec.meta_batch, *a.shape) if n in phases.BATCH_NAMES else tuple(a.shape)
    return shapes


def _check_interface(master: onnx.ModelProto, phase: phases.PhaseFunction, spec: PhaseSpec,
                     shapes: dict[str, tuple[int, ...]]) -> None:
    inputs = [i.name for i in master.graph.input]
    outputs = [o.name for o in master.graph.output]
    if inputs != list(phase.input_names) or outputs != list(phase.output_names):
        raise ExportMismatchError(f"{spec.algorithm}/{spec.phase}: graph inputs {inputs} and outputs "
                                  f"{outputs}; the phase has {list(phase.input_names)} and "
                                  f"{list(phase.output_names)}")
    for value in master.graph.input:
        dims = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param
                     for d in value.type.tensor_type.shape.dim)
        if dims != shapes[value.name]:
            raise ExportMismatchError(f"{spec.algorithm}/{spec.phase}: graph input {value.name!r} "
                                      f"declares shape {dims}, the phase takes {shapes[value.name]}")


def _same_graph(model: onnx.ModelProto, expected: onnx.ModelProto) -> None:
    """`model`'s graph equals `expected`'s (names of the graphs aside), or ExportMismatchError
    naming the first node that differs."""
    a, b = onnx.GraphProto(), onnx.GraphProto()
    a.CopyFrom(model.graph)
    b.CopyFrom(expected.graph)
    a.name = b.name = ""
    if a.SerializeToString() == b.SerializeToString():
        return
    for k, (x, y) in enumerate(zip(a.node, b.node)):
        if x != y:
            raise ExportMismatchError(f"node {k} ({x.name}, {x.op_type}) differs from the exporter's "
                                      f"graph ({y.name}, {y.op_type})")
    for what in ("node", "initializer", "input", "output"):
        if len(getattr(a, what)) != len(getattr(b, what)) or list(getattr(a, what)) != list(getattr(b, what)):
            raise ExportMismatchError(f"the graph's {what}s differ from the exporter's graph")
    raise ExportMismatchError("the graph differs from the exporter's graph")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]

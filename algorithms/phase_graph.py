"""The float64 master graph of a phase (see `precision` for why float64).

    graph = trace_phase(spec)          # onnx.ModelProto, float64, no metadata yet

infer and adapt are traced whole. meta_train is traced in two parts, one task (`phases.task_phase`)
and the reduction with the outer update (`phases.outer_phase`), and assembled for the
meta-batch by `meta_batch.assemble`: tracing time does not depend on B.
"""

from __future__ import annotations

from typing import Sequence

import onnx
import torch
from torch import Tensor

from . import meta_batch, phases, trace
from .spec import PhaseSpec


def trace_phase(spec: PhaseSpec, *, route: str | None = None) -> onnx.ModelProto:
    """The phase as a float64 ONNX graph whose inputs and outputs carry the phase's names and
    whose nodes carry their scopes. `route` chooses torch's exporter route (`torch_onnx`)."""
    phase = phases.phase_function(spec)
    if spec.phase != "meta_train":
        return trace.to_onnx(phase, float64(phases.example_inputs(spec, spec.seed)), route=route)
    task_args = float64(phases.task_example_inputs(spec, spec.seed))
    task_model = trace.to_onnx(phases.task_phase(spec), task_args, route=route)
    outer_model = trace.to_onnx(phases.outer_phase(spec),
                                float64(phases.outer_example_inputs(spec, spec.seed)), route=route)
    P = len(phase.parameter_inputs)
    batch_inputs = [(name, (spec.meta_batch, *t.shape), str(t.dtype).removeprefix("torch."))
                    for name, t in zip(phases.BATCH_NAMES, task_args[P:])]
    return meta_batch.assemble(task_model, outer_model, spec.meta_batch, batch_inputs,
                               phase.input_names)


def float64(args: Sequence[Tensor]) -> list[Tensor]:
    """Floating-point tensors in float64, others unchanged."""
    return [a.to(torch.float64) if a.is_floating_point() else a for a in args]

"""Each exportable phase as a pure function of flat tensors, with the names and example values
of its inputs. The exporter traces these functions; verification runs them eagerly. Nothing
here is specific to one algorithm: every registered algorithm goes through the same code.

    infer       params, x                                -> y
    adapt       params, support_x, support_y             -> adapted.<param> ...
    meta_train  params, outer state, support_x, support_y, query_x, query_y
                                                         -> loss, new.<param> ..., new.<state> ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import Tensor

from . import sinusoid
from .backbones import get_backbone
from .base import Algorithm, Params, TaskBatch, make_algorithm

if TYPE_CHECKING:
    from .export import PhaseSpec

PHASES = ("infer", "adapt", "meta_train")
DTYPES = {"float32": torch.float32, "float64": torch.float64}

# Task samplers by family: (meta_batch, shot, query, seed=, dtype=) -> TaskBatch.
TASK_SAMPLERS: dict[str, Callable[..., TaskBatch]] = {"sinusoid": sinusoid.sample_batch}

# Seeds of the batch that turns a zero outer state into a realistic one (see `example_inputs`)
# are offset by this much from the input set's seed, so they never coincide with it.
_STATE_WARMUP_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class PhaseFunction:
    fn: Callable[..., tuple[Tensor, ...]]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    parameter_inputs: tuple[str, ...]
    optimizer_state_inputs: tuple[str, ...]


def algorithm_for(spec: "PhaseSpec") -> Algorithm:
    backbone = get_backbone(spec.backbone)
    return make_algorithm(spec.algorithm, backbone.forward, backbone.loss, backbone.init_params,
                          inner_steps=spec.inner_steps, inner_lr=spec.inner_lr)


def phase_function(spec: "PhaseSpec") -> PhaseFunction:
    algo = algorithm_for(spec)
    params = algo.init_params(spec.seed)
    pnames = tuple(params)
    P = len(pnames)

    if spec.phase == "infer":
        def infer(*flat: Tensor) -> tuple[Tensor, ...]:
            return (algo.infer(dict(zip(pnames, flat[:P])), flat[P]),)
        return PhaseFunction(infer, pnames + ("x",), ("y",), pnames, ())

    if spec.phase == "adapt":
        def adapt(*flat: Tensor) -> tuple[Tensor, ...]:
            adapted = algo.adapt(dict(zip(pnames, flat[:P])), flat[P], flat[P + 1])
            return tuple(adapted[n] for n in pnames)
        return PhaseFunction(adapt, pnames + ("support_x", "support_y"),
                             tuple(f"adapted.{n}" for n in pnames), pnames, ())

    snames = tuple(algo.init_outer_state(params))
    S = len(snames)

    def meta_train(*flat: Tensor) -> tuple[Tensor, ...]:
        p = dict(zip(pnames, flat[:P]))
        s = dict(zip(snames, flat[P:P + S]))
        loss, new_p, new_s = algo.meta_step(p, s, TaskBatch(*flat[P + S:]))
        return (loss, *(new_p[n] for n in pnames), *(new_s[n] for n in snames))

    return PhaseFunction(
        meta_train, pnames + snames + ("support_x", "support_y", "query_x", "query_y"),
        ("loss",) + tuple(f"new.{n}" for n in pnames + snames), pnames, snames)


def example_inputs(spec: "PhaseSpec", seed: int) -> list[Tensor]:
    """One input set of the phase, fully determined by `seed`: parameters from the backbone's
    initialiser, tasks from the task family's sampler and, for meta_train, the outer state
    after one eager meta-step on another batch (so Adam's moments and step are not zero)."""
    dtype = DTYPES[spec.dtype]
    algo = algorithm_for(spec)
    params = _cast(algo.init_params(seed), dtype)
    sampler = TASK_SAMPLERS[get_backbone(spec.backbone).task_family]
    shot, query = spec.way * spec.shot, spec.way * spec.query
    if spec.phase == "infer":
        return [*params.values(), sampler(1, shot, query, seed=seed, dtype=dtype).xq[0]]
    if spec.phase == "adapt":
        batch = sampler(1, shot, query, seed=seed, dtype=dtype)
        return [*params.values(), batch.xs[0], batch.ys[0]]
    batch = sampler(spec.meta_batch, shot, query, seed=seed, dtype=dtype)
    warmup = sampler(spec.meta_batch, shot, query, seed=seed + _STATE_WARMUP_SEED_OFFSET, dtype=dtype)
    _, _, state = algo.meta_step(params, algo.init_outer_state(params), warmup)
    return [*params.values(), *state.values(), *batch]


def run_eager(fn: Callable[..., tuple[Tensor, ...]], args: Sequence[Tensor]) -> list[Tensor]:
    return [t.detach() for t in fn(*args)]


def _cast(params: Params, dtype: torch.dtype) -> Params:
    return {n: t.to(dtype) for n, t in params.items()}

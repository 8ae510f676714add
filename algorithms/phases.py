"""Each exportable phase as a pure function of flat tensors, with the names and example values
of its inputs. The exporter traces these functions; verification runs them eagerly. Nothing
here is specific to one algorithm: every registered algorithm goes through the same code.

    infer       infer inputs (params or adapted state), x    -> y
    adapt       params, support_x, support_y                 -> adapted.<name> ...
    meta_train  params, outer state, support_x, support_y, query_x, query_y
                                                             -> loss, new.<param> ..., new.<state> ...
                (schedule entries of the outer state, e.g. Reptile's ε, are inputs only)

`task_phase` and `outer_phase` are meta_train cut into its two parts: one task's inner loop,
query loss and meta-gradient, and the reduction over the meta-batch with the outer update.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from . import sinusoid, synthetic
from .backbones import Backbone, get_backbone
from .base import Algorithm, Params, TaskBatch, make_algorithm, meta_reduce, scope
from .spec import PhaseSpec

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
BATCH_NAMES = ("support_x", "support_y", "query_x", "query_y")

# Seeds of the batch that turns a zero outer state into a realistic one (see `example_inputs`)
# are offset by this much from the input set's seed, so they never coincide with it.
_STATE_WARMUP_SEED_OFFSET = 1_000_003
# The schedule value (Reptile's ε) of the example inputs: mid-training.
_EXAMPLE_ITERATION, _EXAMPLE_TOTAL = 1, 3


@dataclass(frozen=True)
class PhaseFunction:
    fn: Callable[..., tuple[Tensor, ...]]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    parameter_inputs: tuple[str, ...]
    optimizer_state_inputs: tuple[str, ...]


def build_algorithm(name: str, backbone: str | Backbone, *, way: int | None = None,
                    **hyper: object) -> Algorithm:
    """Algorithm `name` on a registered backbone (by name or object), for `way` classes."""
    bb = get_backbone(backbone) if isinstance(backbone, str) else backbone
    way = way if way is not None else (5 if bb.task_family == "classification" else 1)
    return make_algorithm(name, bb.forward, bb.loss, functools.partial(bb.init_params, way=way),
                          embed=bb.embed, head=bb.head, head_names=bb.head_names, way=way, **hyper)


def algorithm_for(spec: PhaseSpec) -> Algorithm:
    return build_algorithm(spec.algorithm, spec.backbone, way=spec.way,
                           inner_steps=spec.inner_steps, inner_lr=spec.inner_lr)


def phase_function(spec: PhaseSpec) -> PhaseFunction:
    algo = algorithm_for(spec)
    params = algo.init_params(spec.seed)
    pnames = tuple(params)
    P = len(pnames)

    if spec.phase == "infer":
        inames = algo.infer_names(params)

        def infer(*flat: Tensor) -> tuple[Tensor, ...]:
            return (algo.infer(dict(zip(inames, flat[:-1])), flat[-1]),)
        return PhaseFunction(infer, inames + ("x",), ("y",), inames, ())

    if spec.phase == "adapt":
        anames = algo.adapted_names(params)

        def adapt(*flat: Tensor) -> tuple[Tensor, ...]:
            adapted = algo.adapt(dict(zip(pnames, flat[:P])), flat[P], flat[P + 1])
            return tuple(adapted[n] for n in anames)
        return PhaseFunction(adapt, pnames + BATCH_NAMES[:2],
                             tuple(f"adapted.{n}" for n in anames), pnames, ())

    snames = tuple(algo.init_outer_state(params))
    S = len(snames)
    out_snames = tuple(n for n in snames if n not in algo.schedule_names)

    def meta_train(*flat: Tensor) -> tuple[Tensor, ...]:
        p = dict(zip(pnames, flat[:P]))
        s = dict(zip(snames, flat[P:P + S]))
        loss, new_p, new_s = algo.meta_step(p, s, TaskBatch(*flat[P + S:]))
        return (loss, *(new_p[n] for n in pnames), *(new_s[n] for n in out_snames))

    return PhaseFunction(
        meta_train, pnames + snames + BATCH_NAMES,
        ("loss",) + tuple(f"new.{n}" for n in pnames + out_snames), pnames, snames)


def task_phase(spec: PhaseSpec) -> PhaseFunction:
    """One task of meta_train: params, support_x, support_y, query_x, query_y (one task's, no
    meta-batch axis) -> loss, grad.<param> ... . Scopes carry no task prefix."""
    algo = algorithm_for(spec)
    pnames = tuple(algo.init_params(spec.seed))
    P = len(pnames)

    def task(*flat: Tensor) -> tuple[Tensor, ...]:
        loss, grads = algo.task_meta_grad(dict(zip(pnames, flat[:P])), TaskBatch(*flat[P:]))
        return (loss, *(grads[n] for n in pnames))

    return PhaseFunction(task, pnames + BATCH_NAMES, ("loss",) + tuple(f"grad.{n}" for n in pnames),
                         pnames, ())


def outer_phase(spec: PhaseSpec) -> PhaseFunction:
    """The rest of meta_train: params, outer state, losses[B], grads.<param>[B, ...] (the tasks'
    results stacked) -> the outputs of meta_train."""
    algo = algorithm_for(spec)
    params = algo.init_params(spec.seed)
    pnames = tuple(params)
    snames = tuple(algo.init_outer_state(params))
    out_snames = tuple(n for n in snames if n not in algo.schedule_names)
    P, S = len(pnames), len(snames)

    def outer(*flat: Tensor) -> tuple[Tensor, ...]:
        p = dict(zip(pnames, flat[:P]))
        s = dict(zip(snames, flat[P:P + S]))
        loss, grads = meta_reduce(flat[P + S], dict(zip(pnames, flat[P + S + 1:])))
        with scope("outer_update"):
            new_p, new_s = algo.outer_update(p, grads, s)
        return (loss, *(new_p[n] for n in pnames), *(new_s[n] for n in out_snames))

    return PhaseFunction(outer, pnames + snames + ("losses",) + tuple(f"grads.{n}" for n in pnames),
                         ("loss",) + tuple(f"new.{n}" for n in pnames + out_snames), pnames, snames)


def sample_tasks(spec: PhaseSpec, meta_batch: int, seed: int,
                 dtype: torch.dtype | None = None) -> TaskBatch:
    dtype = dtype or TORCH_DTYPES[spec.dtype]
    bb = get_backbone(spec.backbone)
    if bb.task_family == "sinusoid":
        return sinusoid.sample_batch(meta_batch, spec.way * spec.shot, spec.way * spec.query,
                                     seed=seed, dtype=dtype)
    return synthetic.sample_batch(meta_batch, spec.way, spec.shot, spec.query, bb.input_shape,
                                  seed=seed, dtype=dtype)


def example_inputs(spec: PhaseSpec, seed: int) -> list[Tensor]:
    """One input set of the phase, fully determined by `seed`, in the spec's dtype: parameters
    from the backbone's initialiser, tasks from the task family's sampler, for infer the result
    of adapting to one task and, for meta_train, the outer state after one eager meta-step on
    another batch (so Adam's moments and step are not zero) with the schedule set mid-training.
    (meta_train costs a whole eager meta-step here: verification checks its two parts with
    `task_example_inputs` and `outer_example_inputs` instead.)"""
    dtype = TORCH_DTYPES[spec.dtype]
    algo = algorithm_for(spec)
    params = _cast(algo.init_params(seed), dtype)
    if spec.phase == "infer":
        batch = sample_tasks(spec, 1, seed)
        adapted = algo.adapt(params, batch.xs[0], batch.ys[0])
        return [*(adapted[n].detach() for n in algo.infer_names(params)), batch.xq[0]]
    if spec.phase == "adapt":
        batch = sample_tasks(spec, 1, seed)
        return [*params.values(), batch.xs[0], batch.ys[0]]
    batch = sample_tasks(spec, spec.meta_batch, seed)
    warmup = sample_tasks(spec, spec.meta_batch, seed + _STATE_WARMUP_SEED_OFFSET)
    state = algo.set_schedule(algo.init_outer_state(params), _EXAMPLE_ITERATION, _EXAMPLE_TOTAL)
    _, _, state = algo.meta_step(params, state, warmup)
    state = algo.set_schedule(state, _EXAMPLE_ITERATION, _EXAMPLE_TOTAL)
    return [*params.values(), *state.values(), *batch]


def task_example_inputs(spec: PhaseSpec, seed: int) -> list[Tensor]:
    """Inputs of `task_phase`: the parameters and one task (no meta-batch axis)."""
    algo = algorithm_for(spec)
    params = _cast(algo.init_params(seed), TORCH_DTYPES[spec.dtype])
    batch = sample_tasks(spec, 1, seed)
    return [*params.values(), *(t[0] for t in batch)]


# Synthetic task meta-gradients for `outer_example_inputs`: their scale, and the size of the
# "nearly dead" element, small enough that Adam's ε (1e-8) and not √v sets its step, large
# enough that v = g² stays a normal float32 (> 1.2e-38).
_SYNTHETIC_GRAD_SCALE = 1e-2
_NEARLY_DEAD_GRAD = 1e-12
_OUTER_WARMUP_STEPS = 2


def outer_example_inputs(spec: PhaseSpec, seed: int) -> list[Tensor]:
    """Inputs of `outer_phase`, synthetic and cheap (no task is run): the parameters; stacked
    task losses [B] and task meta-gradients [B, ...] drawn at random, except that the first
    element of every parameter is a dead unit (gradient exactly 0 in every task, as for a ReLU
    that never fires: Adam then divides 0 by ε alone) and the second a nearly dead one; the
    outer state after two outer updates with such gradients, schedule set mid-training."""
    dtype = TORCH_DTYPES[spec.dtype]
    algo = algorithm_for(spec)
    params = _cast(algo.init_params(seed), dtype)
    gen = torch.Generator().manual_seed(seed)

    def task_grads() -> dict[str, Tensor]:
        grads = {}
        for name, p in params.items():
            g = torch.randn((spec.meta_batch, *p.shape), generator=gen, dtype=torch.float64)
            g = (g * _SYNTHETIC_GRAD_SCALE).reshape(spec.meta_batch, -1)
            g[:, 0] = 0.0
            if g.shape[1] > 1:
                g[:, 1] = _NEARLY_DEAD_GRAD * torch.sign(g[:, 1])
            grads[name] = g.reshape(spec.meta_batch, *p.shape).to(dtype)
        return grads

    state = algo.init_outer_state(params)
    for _ in range(_OUTER_WARMUP_STEPS):
        state = algo.set_schedule(state, _EXAMPLE_ITERATION, _EXAMPLE_TOTAL)
        _, state = algo.outer_update(params, {n: g.mean(0) for n, g in task_grads().items()}, state)
    state = algo.set_schedule(state, _EXAMPLE_ITERATION, _EXAMPLE_TOTAL)
    losses = (torch.rand(spec.meta_batch, generator=gen, dtype=torch.float64) + 0.5).to(dtype)
    return [*params.values(), *state.values(), losses, *task_grads().values()]


def run_eager(fn: Callable[..., tuple[Tensor, ...]], args: Sequence[Tensor]) -> list[Tensor]:
    return [t.detach() for t in fn(*args)]


def _cast(params: Params, dtype: torch.dtype) -> Params:
    return {n: t.to(dtype) for n, t in params.items()}

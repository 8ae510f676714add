"""Reptile (Nichol, Achiam & Schulman 2018), as pure functions of the parameters.

Per task, k inner steps on the support set give φ̃ (plain SGD with the inner learning rate, or
Adam with β1 = 0 as in the paper's few-shot experiments); the meta-parameters move towards the
mean of the tasks' φ̃ by interpolation:

    θ ← θ + ε (mean_j φ̃_j − θ),    ε annealed linearly from 1 to 0 over training.

The per-task "meta-gradient" is therefore θ − φ̃_j (no derivative through the inner loop) and the
outer update is θ − ε · mean_j(θ − φ̃_j). ε is the outer state entry "reptile.epsilon", set by
the training loop each iteration (`set_schedule`): the exported meta_train graph takes it as an
input, so one graph serves every iteration. The reported loss is the support loss of the last
inner step (Reptile's meta-training never evaluates the query set).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Adam, Algorithm, Params, TaskBatch, register, scope

EPSILON = "reptile.epsilon"
INNER_OPTIMIZERS = ("sgd", "adam")


@register
class Reptile(Algorithm):
    name = "reptile"
    first_order = True
    schedule_names = (EPSILON,)

    def __init__(self, *args: object, inner_optimizer: str = "sgd",
                 inner_adam: Adam = Adam(betas=(0.0, 0.999)), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if inner_optimizer not in INNER_OPTIMIZERS:
            raise ValueError(f"inner_optimizer must be one of {', '.join(INNER_OPTIMIZERS)}, "
                             f"got {inner_optimizer!r}")
        self.inner_optimizer = inner_optimizer
        self.inner_adam = inner_adam

    def init_outer_state(self, params: Params) -> Params:
        return {EPSILON: torch.ones((), dtype=next(iter(params.values())).dtype)}

    def set_schedule(self, state: Params, iteration: int, total_iterations: int) -> Params:
        """ε = 1 − iteration / total_iterations (iterations counted from 0)."""
        if not 0 <= iteration < total_iterations:
            raise ValueError(f"iteration must be in [0, {total_iterations}), got {iteration}")
        out = dict(state)
        out[EPSILON] = torch.full_like(state[EPSILON], 1.0 - iteration / total_iterations)
        return out

    def adapt(self, params: Params, xs: Tensor, ys: Tensor, steps: int | None = None,
              lr: float | None = None) -> Params:
        return self._inner_loop(params, xs, ys, steps, lr)[0]

    def _inner_loop(self, params: Params, xs: Tensor, ys: Tensor, steps: int | None,
                    lr: float | None) -> tuple[Params, Tensor]:
        """(φ̃, support loss of the last step). Nothing is differentiated through it."""
        steps = self.inner_steps if steps is None else steps
        lr = self.inner_lr if lr is None else lr
        if steps < 1:
            raise ValueError(f"inner steps must be >= 1, got {steps}")
        fast = {n: t.detach() for n, t in params.items()}
        adam = Adam(lr=lr, betas=self.inner_adam.betas, eps=self.inner_adam.eps)
        state = adam.init(fast) if self.inner_optimizer == "adam" else {}
        with torch.enable_grad():
            for i in range(steps):
                leaves = {n: t.requires_grad_(True) for n, t in fast.items()}
                with scope(f"inner{i}", "forward"):
                    prediction = self.forward(leaves, xs)
                with scope(f"inner{i}", "loss"):
                    loss = self.loss(prediction, ys)
                with scope(f"inner{i}", "backward"):
                    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
                with scope(f"inner{i}", "update"):
                    if self.inner_optimizer == "adam":
                        fast, state = adam.update({n: t.detach() for n, t in leaves.items()}, grads, state)
                    else:
                        fast = {n: t.detach() - lr * grads[n] for n, t in leaves.items()}
        return fast, loss.detach()

    def task_meta_grad(self, params: Params, task: TaskBatch) -> tuple[Tensor, Params]:
        adapted, loss = self._inner_loop(params, task.xs, task.ys, None, None)
        with scope("meta_grad"):
            return loss, {n: params[n] - adapted[n] for n in params}

    def task_query_loss(self, params: Params, task: TaskBatch) -> Tensor:
        adapted = self.adapt(params, task.xs, task.ys)
        with scope("query"):
            return self.loss(self.forward(adapted, task.xq), task.yq)

    def outer_update(self, params: Params, grads: Params, state: Params) -> tuple[Params, Params]:
        eps = state[EPSILON]
        return {n: p - eps * grads[n] for n, p in params.items()}, dict(state)

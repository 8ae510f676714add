"""MAML (Finn et al. 2017) and its first-order approximation FOMAML, as pure functions of the
parameters.

Inner loop (per task, k steps of SGD with step size α on the support loss):
    θ_0 = θ,   θ_{i+1} = θ_i − α ∇L_support(θ_i)
Meta-gradient of the query loss L_query(θ_k):
    MAML    differentiates through the inner loop (second order: for k = 1 it is
            (I − α ∇²L_support(θ)) ∇L_query(θ_1));
    FOMAML  treats the inner gradients as constants, so it is ∇L_query(θ_k) itself.
The meta-gradients are averaged over the meta-batch and applied with Adam (lr 1e-3, §5.1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Algorithm, Params, TaskBatch, register, requiring_grad, scope


@register
class MAML(Algorithm):
    name = "maml"
    first_order = False

    def adapt(self, params: Params, xs: Tensor, ys: Tensor, steps: int | None = None,
              lr: float | None = None, *, differentiable: bool = False) -> Params:
        """k inner SGD steps on the support set (xs, ys) of one task. With `differentiable`
        the result keeps the graph through the inner gradients (what second-order MAML needs);
        otherwise the inner gradients are constants."""
        steps = self.inner_steps if steps is None else steps
        lr = self.inner_lr if lr is None else lr
        if steps < 1:
            raise ValueError(f"inner steps must be >= 1, got {steps}")
        with torch.enable_grad():
            fast = requiring_grad(params)
            for i in range(steps):
                with scope(f"inner{i}", "forward"):
                    prediction = self.forward(fast, xs)
                with scope(f"inner{i}", "loss"):
                    loss = self.loss(prediction, ys)
                with scope(f"inner{i}", "backward"):
                    grads = torch.autograd.grad(loss, list(fast.values()), create_graph=differentiable)
                with scope(f"inner{i}", "update"):
                    fast = {n: p - lr * g for (n, p), g in zip(fast.items(), grads)}
        return fast

    def task_query_loss(self, params: Params, task: TaskBatch) -> Tensor:
        adapted = self.adapt(params, task.xs, task.ys, differentiable=not self.first_order)
        with scope("query"):
            return self.loss(self.forward(adapted, task.xq), task.yq)


@register
class FOMAML(MAML):
    name = "fomaml"
    first_order = True

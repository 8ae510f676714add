"""MAML (Finn et al. 2017), its first-order approximation FOMAML, Meta-SGD (Li et al. 2017) and
ANIL (Raghu et al. 2020), as pure functions of the parameters. They share one inner loop:

    θ_0 = θ,   θ_{i+1} = θ_i − α ⊙ ∇L_support(θ_i)                 (i = 0 … k−1)

MAML     α is the scalar inner learning rate; the meta-gradient of L_query(θ_k) differentiates
         through the inner loop (second order: for k = 1 it is (I − α∇²L_support(θ))∇L_query(θ_1)).
FOMAML   the inner gradients are constants, so the meta-gradient is ∇L_query(θ_k) itself.
Meta-SGD one inner step with a learned α of θ's shape ("lr.<name>"), meta-learned with θ.
ANIL     the inner loop updates the head only; the body is frozen inside it (its features of
         the support set are computed once) and meta-learned in the outer loop, second order.
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
        if steps < 1:
            raise ValueError(f"inner steps must be >= 1, got {steps}")
        with torch.enable_grad():
            params = requiring_grad(params)
            fast = {n: params[n] for n in self.adapted_names(params)}
            for i in range(steps):
                with scope(f"inner{i}", "forward"):
                    prediction = self.forward({**params, **fast}, xs)
                with scope(f"inner{i}", "loss"):
                    loss = self.loss(prediction, ys)
                with scope(f"inner{i}", "backward"):
                    grads = torch.autograd.grad(loss, list(fast.values()), create_graph=differentiable)
                with scope(f"inner{i}", "update"):
                    fast = self.inner_update(params, fast, dict(zip(fast, grads)), lr)
        return {**params, **fast}

    def inner_update(self, params: Params, fast: Params, grads: Params, lr: float | None) -> Params:
        lr = self.inner_lr if lr is None else lr
        return {n: p - lr * grads[n] for n, p in fast.items()}

    def task_query_loss(self, params: Params, task: TaskBatch) -> Tensor:
        adapted = self.adapt(params, task.xs, task.ys, differentiable=not self.first_order)
        with scope("query"):
            return self.loss(self.forward(adapted, task.xq), task.yq)


@register
class FOMAML(MAML):
    name = "fomaml"
    first_order = True


@register
class MetaSGD(MAML):
    """Meta-SGD: θ' = θ − α ⊙ ∇L_support(θ), one step, with α ("lr.<name>", θ-shaped) a
    meta-parameter. α starts at the inner learning rate everywhere (Li et al. 2017 draw it
    from a small uniform range; a constant start keeps MAML as the special case at step 0)."""

    name = "metasgd"
    first_order = False
    LR_PREFIX = "lr."

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("inner_steps", 1)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def init_params(self, seed: int) -> Params:
        theta = super().init_params(seed)
        return {**theta, **{self.LR_PREFIX + n: torch.full_like(p, self.inner_lr) for n, p in theta.items()}}

    def learner_names(self, params: Params) -> tuple[str, ...]:
        return tuple(n for n in params if not n.startswith(self.LR_PREFIX))

    def inner_update(self, params: Params, fast: Params, grads: Params, lr: float | None) -> Params:
        if lr is not None:  # an explicit scalar rate overrides the learned one (ablations)
            return super().inner_update(params, fast, grads, lr)
        return {n: p - params[self.LR_PREFIX + n] * grads[n] for n, p in fast.items()}


@register
class ANIL(MAML):
    """ANIL: MAML whose inner loop adapts the head only (Raghu et al. 2020, "almost no inner
    loop"). The support features are computed once, since the body does not change inside the
    inner loop; the meta-gradient still reaches the body through them and through the query."""

    name = "anil"
    first_order = False

    def adapted_names(self, params: Params) -> tuple[str, ...]:
        if not self.head_names:
            raise ValueError("anil needs a backbone with a head (head_names)")
        return self.head_names

    def adapt(self, params: Params, xs: Tensor, ys: Tensor, steps: int | None = None,
              lr: float | None = None, *, differentiable: bool = False) -> Params:
        assert self.embed is not None and self.head is not None, "anil needs embed and head"
        steps = self.inner_steps if steps is None else steps
        if steps < 1:
            raise ValueError(f"inner steps must be >= 1, got {steps}")
        with torch.enable_grad():
            params = requiring_grad(params)
            with scope("inner0", "forward"):
                features = self.embed(params, xs)
            fast = {n: params[n] for n in self.adapted_names(params)}
            for i in range(steps):
                with scope(f"inner{i}", "forward"):
                    prediction = self.head(fast, features)
                with scope(f"inner{i}", "loss"):
                    loss = self.loss(prediction, ys)
                with scope(f"inner{i}", "backward"):
                    grads = torch.autograd.grad(loss, list(fast.values()), create_graph=differentiable)
                with scope(f"inner{i}", "update"):
                    fast = self.inner_update(params, fast, dict(zip(fast, grads)), lr)
        return {**params, **fast}

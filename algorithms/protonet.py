"""Prototypical Networks (Snell, Swersky & Zemel 2017), as pure functions of the parameters.

Adaptation is no gradient step: it embeds the support set and takes each class's mean embedding
as its prototype. A query is classified by the softmax over negative squared Euclidean
distances to the prototypes; the meta-parameters (the body only, there is no head) are trained
with Adam on the query cross-entropy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Algorithm, Params, TaskBatch, register, scope

PROTOTYPES = "prototypes"


@register
class ProtoNet(Algorithm):
    name = "protonet"
    first_order = False  # no inner gradient: the meta-gradient is exact
    needs_classification = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.embed is None:
            raise ValueError("protonet needs a classification backbone (embed and head)")

    def init_params(self, seed: int) -> Params:
        """The body's parameters: a prototypical network has no classification head."""
        return {n: p for n, p in super().init_params(seed).items() if n not in self.head_names}

    def adapted_names(self, params: Params) -> tuple[str, ...]:
        return (PROTOTYPES,)

    def adapt(self, params: Params, xs: Tensor, ys: Tensor, steps: int | None = None,
              lr: float | None = None, *, way: int | None = None) -> Params:
        """The class prototypes of one support set: mean embedding per label. `way` defaults to
        the largest label + 1 read eagerly; traced code passes it (labels are data)."""
        if way is None:
            way = self.way if self.way is not None else int(ys.max()) + 1
        with scope("forward"):
            z = self.embed(params, xs)
        with scope("update"):
            classes = torch.arange(way, device=ys.device)
            members = (ys.unsqueeze(0) == classes.unsqueeze(1)).to(z.dtype)  # [way, N]
            prototypes = (members @ z) / members.sum(1, keepdim=True)
        return {**params, PROTOTYPES: prototypes}

    def infer(self, params: Params, x: Tensor) -> Tensor:
        """Logits: −‖f(x) − c_k‖² for every prototype c_k, written as −‖f‖² + 2 f·c − ‖c‖² so
        that the distances are one matrix product."""
        assert self.embed is not None
        with scope("forward"):
            return neg_squared_distances(self.embed(params, x), params[PROTOTYPES])

    def task_query_loss(self, params: Params, task: TaskBatch) -> Tensor:
        adapted = self.adapt(params, task.xs, task.ys)
        with scope("query"):
            logits = neg_squared_distances(self.embed(adapted, task.xq), adapted[PROTOTYPES])
            return self.loss(logits, task.yq)


def neg_squared_distances(z: Tensor, prototypes: Tensor) -> Tensor:
    """−‖z_i − c_k‖² for z[N, D] and prototypes c[way, D] -> [N, way]."""
    return 2 * z @ prototypes.T - (z * z).sum(1, keepdim=True) - (prototypes * prototypes).sum(1)

"""What every meta-learning algorithm shares: the task batch, the scope annotations that let the
exporter attribute each operation to its part of the meta-learning step, the outer optimizer,
and the registry through which the CLI and the exporter find an algorithm by name.

An algorithm is a set of pure functions of named tensors (`Params`, a dict in a fixed order):

    init_params(seed)                    -> Params      (meta-parameters)
    init_outer_state(params)             -> Params      (e.g. Adam moments and step count)
    adapt(params, xs, ys)                -> Params      (one task; what `infer` takes)
    infer(adapted, x)                    -> prediction
    task_meta_grad(params, task)         -> (loss, meta-gradient Params)       (one task)
    meta_loss(params, batch)             -> mean query loss after adaptation
    meta_grads(params, batch)            -> (mean loss, mean meta-gradient)
    outer_update(params, grads, state)   -> (new Params, new state)
    meta_step(params, state, batch)      -> (meta loss, new Params, new state)

so that tracing and export treat all of them alike. A meta-training step is always B
independent per-task computations (`task_meta_grad`), their mean (`meta_reduce`) and one outer
update: the exporter relies on that structure to trace one task and instantiate it B times.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, NamedTuple

import torch
import torch.fx.traceback as fx_traceback
from torch import Tensor

from hwsim.registry import Registry

Params = dict[str, Tensor]

# Key under which the scope string travels in an FX node's meta["custom"].
SCOPE_KEY = "hwsim_scope"


class TaskBatch(NamedTuple):
    """B tasks stacked: support xs[B,K,...], ys[B,K,...] and query xq[B,Q,...], yq[B,Q,...]."""

    xs: Tensor
    ys: Tensor
    xq: Tensor
    yq: Tensor

    @property
    def meta_batch(self) -> int:
        return self.xs.shape[0]


# ---------------------------------------------------------------- scopes

_scope_path: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("hwsim_scope", default=())


@contextlib.contextmanager
def scope(*parts: str) -> Iterator[None]:
    """Attribute the operations traced inside to `[task<j>/][inner<i>/]<part>`.

    Nested calls join with "/", so `scope("task3")` around `scope("inner1", "backward")` yields
    "task3/inner1/backward". Outside tracing this only sets a dict entry, so eager code pays
    nothing measurable for it."""
    path = _scope_path.get() + parts
    token = _scope_path.set(path)
    try:
        with fx_traceback.annotate({SCOPE_KEY: "/".join(path)}):
            yield
    finally:
        _scope_path.reset(token)


# ---------------------------------------------------------------- outer optimizer


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) as a pure function; same arithmetic as `torch.optim.Adam`.

    The state is named tensors: "adam.step" (a scalar, so one exported graph serves every
    iteration) and "adam.m.<param>", "adam.v.<param>"."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def describe(self) -> str:
        return f"adam(lr={self.lr:g},betas=({self.betas[0]:g},{self.betas[1]:g}),eps={self.eps:g})"

    def init(self, params: Params) -> Params:
        any_p = next(iter(params.values()))
        state = {"adam.step": torch.zeros((), dtype=any_p.dtype)}
        state.update({f"adam.m.{n}": torch.zeros_like(p) for n, p in params.items()})
        state.update({f"adam.v.{n}": torch.zeros_like(p) for n, p in params.items()})
        return state

    def update(self, params: Params, grads: Params, state: Params) -> tuple[Params, Params]:
        b1, b2 = self.betas
        step = state["adam.step"] + 1
        bias1 = 1 - b1 ** step
        bias2 = 1 - b2 ** step
        new_params: Params = {}
        new_state: Params = {"adam.step": step}
        for n, p in params.items():
            g = grads[n]
            m = b1 * state[f"adam.m.{n}"] + (1 - b1) * g
            v = b2 * state[f"adam.v.{n}"] + (1 - b2) * g * g
            new_params[n] = p - self.lr * (m / bias1) / (torch.sqrt(v / bias2) + self.eps)
            new_state[f"adam.m.{n}"] = m
            new_state[f"adam.v.{n}"] = v
        # Keep the state's documented order: step, all m, all v.
        ordered = {"adam.step": new_state["adam.step"]}
        ordered.update({k: new_state[k] for k in new_state if k.startswith("adam.m.")})
        ordered.update({k: new_state[k] for k in new_state if k.startswith("adam.v.")})
        return new_params, ordered


# ---------------------------------------------------------------- registry

Forward = Callable[[Params, Tensor], Tensor]
Loss = Callable[[Tensor, Tensor], Tensor]


class Algorithm:
    """Base of every algorithm. Subclasses set `name`, `first_order` and implement `adapt` and
    `task_query_loss` (and override `task_meta_grad` when the meta-gradient is not the
    gradient of the query loss, e.g. Reptile); the meta-batch loop, the reduction and the outer update live here."""

    name: ClassVar[str] = ""
    first_order: ClassVar[bool] = False

    # Entries of the outer state that the training loop sets before each step (a schedule) and
    # that `meta_step` passes through unchanged; exported graphs take them as inputs only.
    schedule_names: ClassVar[tuple[str, ...]] = ()
    # Whether the algorithm needs `embed`/`head` (a backbone split into body and head).
    needs_classification: ClassVar[bool] = False

    def __init__(self, forward: Forward, loss: Loss, init_params: Callable[[int], Params], *,
                 inner_steps: int = 1, inner_lr: float = 0.01,
                 outer: Adam = Adam(), embed: Forward | None = None,
                 head: Forward | None = None, head_names: tuple[str, ...] = (),
                 way: int | None = None) -> None:
        if inner_steps < 1:
            raise ValueError(f"inner steps must be >= 1, got {inner_steps}")
        self.forward = forward
        self.loss = loss
        self._init_params = init_params
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.outer = outer
        self.embed = embed
        self.head = head
        self.head_names = head_names
        self.way = way  # classes per task (classification), known before tracing

    # -- state
    def init_params(self, seed: int) -> Params:
        return self._init_params(seed)

    def init_outer_state(self, params: Params) -> Params:
        return self.outer.init(params)

    def set_schedule(self, state: Params, iteration: int, total_iterations: int) -> Params:
        """The outer state for meta-training iteration `iteration` of `total_iterations`, with
        every schedule entry (`schedule_names`) set; a copy, `state` is not changed."""
        return dict(state)

    # -- names
    def learner_names(self, params: Params) -> tuple[str, ...]:
        """The meta-parameters the backbone itself consumes (not learning rates, not a learned
        optimizer's weights)."""
        return tuple(params)

    def adapted_names(self, params: Params) -> tuple[str, ...]:
        """The entries of `adapt`'s result that adaptation changes or creates: the outputs of
        the exported adapt phase."""
        return self.learner_names(params)

    def infer_names(self, params: Params) -> tuple[str, ...]:
        """The entries of `adapt`'s result that `infer` reads: the inputs of the infer phase."""
        learner = self.learner_names(params)
        return learner + tuple(n for n in self.adapted_names(params) if n not in learner)

    # -- phases
    def infer(self, params: Params, x: Tensor) -> Tensor:
        with scope("forward"):
            return self.forward(params, x)

    def adapt(self, params: Params, xs: Tensor, ys: Tensor, steps: int | None = None,
              lr: float | None = None) -> Params:
        """Adapt to one task's support set; returns `params` updated with the adapted entries,
        ready for `infer`."""
        raise NotImplementedError

    def task_query_loss(self, params: Params, task: TaskBatch) -> Tensor:
        """Query loss of one task after its inner loop, differentiable w.r.t. `params` as far
        as the algorithm wants (second order through the inner loop, or not)."""
        raise NotImplementedError

    def task_meta_grad(self, params: Params, task: TaskBatch) -> tuple[Tensor, Params]:
        """Query loss of one task after adaptation and its meta-gradient w.r.t. `params`."""
        with torch.enable_grad():
            leaves = requiring_grad(params)
            loss = self.task_query_loss(leaves, task)
            with scope("meta_grad"):
                grads = torch.autograd.grad(loss, list(leaves.values()))
        return loss.detach(), dict(zip(params, grads))

    def meta_grads(self, params: Params, batch: TaskBatch) -> tuple[Tensor, Params]:
        """Mean query loss over the meta-batch and the mean meta-gradient. Each task's inner
        loop, query pass and meta-gradient are traced separately, so every node belongs to one
        task; only the averaging is shared."""
        losses, grads = [], []
        for j in range(batch.meta_batch):
            with scope(f"task{j}"):
                loss_j, grads_j = self.task_meta_grad(params, _select_task(batch, j))
            losses.append(loss_j)
            grads.append(grads_j)
        with scope("meta_reduce"):
            stacked_losses = torch.stack(losses)
            stacked = {n: torch.stack([g[n] for g in grads]) for n in params}
        return meta_reduce(stacked_losses, stacked)

    def meta_loss(self, params: Params, batch: TaskBatch) -> Tensor:
        """Mean query loss over the meta-batch after each task's inner loop (differentiable
        w.r.t. `params` when they require grad)."""
        losses = []
        for j in range(batch.meta_batch):
            with scope(f"task{j}"):
                losses.append(self.task_query_loss(params, _select_task(batch, j)))
        with scope("meta_reduce"):
            return torch.stack(losses).mean()

    def meta_step(self, params: Params, state: Params, batch: TaskBatch
                  ) -> tuple[Tensor, Params, Params]:
        loss, grads = self.meta_grads(params, batch)
        with scope("outer_update"):
            new_params, new_state = self.outer_update(params, grads, state)
        return loss, new_params, new_state

    def outer_update(self, params: Params, grads: Params, state: Params) -> tuple[Params, Params]:
        """Apply the mean meta-gradient: Adam (Finn et al. 2017) unless an algorithm says otherwise."""
        return self.outer.update(params, grads, state)


def meta_reduce(losses: Tensor, grads: Params) -> tuple[Tensor, Params]:
    """Mean over the meta-batch of the stacked task losses [B] and task meta-gradients [B, ...]."""
    with scope("meta_reduce"):
        return losses.mean(), {n: g.mean(0) for n, g in grads.items()}


def requiring_grad(params: Params) -> Params:
    """`params` as tensors that autograd tracks: kept as they are when they already do (so
    callers can differentiate further), otherwise fresh leaves."""
    return {n: t if t.requires_grad else t.detach().requires_grad_(True) for n, t in params.items()}


def _select_task(batch: TaskBatch, j: int) -> TaskBatch:
    # Selecting task j's support feeds its first inner step; its query set feeds the query pass.
    with scope("inner0", "forward"):
        xs, ys = batch.xs[j], batch.ys[j]
    with scope("query"):
        xq, yq = batch.xq[j], batch.yq[j]
    return TaskBatch(xs, ys, xq, yq)


# The algorithms by name; the modules listed register theirs when first read.
ALGORITHMS: Registry[type[Algorithm]] = Registry(
    "algorithm", error=ValueError,
    modules=("algorithms.maml", "algorithms.metalstm", "algorithms.protonet", "algorithms.reptile"))


def register(cls: type[Algorithm]) -> type[Algorithm]:
    """Class decorator: add an Algorithm subclass to ALGORITHMS under its `name`."""
    if not cls.name:
        raise ValueError(f"algorithm class {cls.__name__} needs a name")
    return ALGORITHMS.add(cls.name, cls)


def make_algorithm(name: str, forward: Forward, loss: Loss,
                   init_params: Callable[[int], Params], **hyper: object) -> Algorithm:
    return ALGORITHMS.lookup(name)(forward, loss, init_params, **hyper)  # type: ignore[arg-type]

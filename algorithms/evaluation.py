"""Meta-test evaluation: adapt to each test episode's support set, score its query set, and
report the mean with a 95 % confidence interval over the episodes.

    results = evaluate(algo, params, test_tasks, episodes=600, seed=0, steps=(1, 5, 10))
    results[5]  # Estimate(metric="mse", mean=..., ci95=..., episodes=600)

The metric is the query accuracy in % for classification and the query mean squared error for
regression. The interval is the normal approximation used throughout the few-shot literature
(e.g. Finn et al. 2017, Snell et al. 2017): mean ± 1.96·s/√n, with s the sample standard
deviation (n − 1 in the denominator) of the n per-episode scores.

Episode i is drawn from its own generator seeded by (seed, "test", i), so a result does not
depend on anything but the parameters, the source, the seed and the number of episodes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import IO, Any, Sequence

import torch
from torch import Tensor

from .base import Algorithm, Params, TaskBatch
from .data import TaskSource, episode_generator
from .training import Progress

Z_95 = 1.96  # two-sided 95 % quantile of the standard normal


@dataclass(frozen=True)
class Estimate:
    metric: str      # "accuracy" (%) or "mse"
    mean: float
    ci95: float      # half-width of the 95 % interval
    episodes: int

    def __str__(self) -> str:
        digits = 2 if self.metric == "accuracy" else 3
        unit = " %" if self.metric == "accuracy" else ""
        return f"{self.mean:.{digits}f} ± {self.ci95:.{digits}f}{unit}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def confidence_interval(values: Sequence[float] | Tensor, metric: str = "") -> Estimate:
    """Mean and the half-width 1.96·s/√n of its 95 % interval (s: sample standard deviation)."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = x.numel()
    if n < 2:
        raise ValueError(f"a confidence interval needs at least 2 values, got {n}")
    return Estimate(metric, float(x.mean()), float(Z_95 * x.std(correction=1) / math.sqrt(n)), n)


def evaluate(algo: Algorithm, params: Params, source: TaskSource, *, episodes: int = 600,
             seed: int = 0, steps: Sequence[int | None] = (None,), lr: float | None = None,
             progress: bool | IO[str] = False) -> dict[int, Estimate]:
    """Score `params` on `episodes` test episodes after each number of inner steps in `steps`
    (None: the algorithm's own), with inner learning rate `lr` (None: the algorithm's own).
    Returns {steps taken: Estimate}."""
    if episodes < 2:
        raise ValueError(f"evaluation needs at least 2 episodes, got {episodes}")
    counts = [algo.inner_steps if s is None else s for s in steps]
    if any(k < 1 for k in counts):
        raise ValueError(f"inner steps must be >= 1, got {counts}")
    metric = "accuracy" if source.family == "classification" else "mse"
    scores: dict[int, list[float]] = {k: [] for k in counts}
    bar = Progress(episodes, f"evaluate {algo.name}", stream=progress)
    try:
        for i in range(episodes):
            task = _only_task(source.sample(1, episode_generator(seed, "test", i)))
            for k in scores:
                prediction = query_prediction(algo, params, task, steps=k, lr=lr)
                scores[k].append(_score(metric, prediction, task.yq))
            bar.update()
    finally:
        bar.close()
    return {k: confidence_interval(v, metric) for k, v in scores.items()}


def query_prediction(algo: Algorithm, params: Params, task: TaskBatch, *, steps: int,
                     lr: float | None = None) -> Tensor:
    """The algorithm's prediction for the query inputs of one task after adapting to its
    support set: `infer(adapt(params, support), query)`."""
    adapted = algo.adapt(params, task.xs, task.ys, steps=steps, lr=lr)
    with torch.no_grad():
        return algo.infer({n: t.detach() for n, t in adapted.items()}, task.xq)


def _score(metric: str, prediction: Tensor, target: Tensor) -> float:
    if metric == "accuracy":
        return 100.0 * float((prediction.argmax(-1) == target).double().mean())
    return float(((prediction.double() - target.double()) ** 2).mean())


def _only_task(batch: TaskBatch) -> TaskBatch:
    return TaskBatch(*(t[0] for t in batch))

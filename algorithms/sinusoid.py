"""The sinusoid regression task distribution of Finn et al. 2017 (MAML, §5.1).

A task is y = A·sin(x + φ) with amplitude A ~ U[0.1, 5] and phase φ ~ U[0, π]; its support and
query inputs are drawn from x ~ U[-5, 5]. The loss is the mean squared error. Sampling is driven
only by an explicit seed or `torch.Generator`, so the same seed gives the same tasks bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import TaskBatch

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, math.pi)
X_RANGE = (-5.0, 5.0)


def sample_batch(meta_batch: int, shot: int, query: int, *, seed: int | None = None,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> TaskBatch:
    """B sinusoid tasks with K support and Q query points each: xs[B,K,1], ys[B,K,1],
    xq[B,Q,1], yq[B,Q,1]. Pass exactly one of `seed` or `generator`."""
    if (seed is None) == (generator is None):
        raise ValueError("sample_batch needs exactly one of seed= or generator=")
    if min(meta_batch, shot, query) < 1:
        raise ValueError(f"meta_batch, shot and query must be >= 1, got {meta_batch}, {shot}, {query}")
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    # Draw in float64 and cast once, so float32 and float64 batches describe the same tasks.
    amplitude = _uniform((meta_batch, 1, 1), AMPLITUDE, generator)
    phase = _uniform((meta_batch, 1, 1), PHASE, generator)
    x = _uniform((meta_batch, shot + query, 1), X_RANGE, generator)
    y = amplitude * torch.sin(x + phase)
    x, y = x.to(dtype), y.to(dtype)
    return TaskBatch(x[:, :shot].contiguous(), y[:, :shot].contiguous(),
                     x[:, shot:].contiguous(), y[:, shot:].contiguous())


def loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error, the regression loss of the sinusoid task."""
    return ((prediction - target) ** 2).mean()


def _uniform(shape: tuple[int, ...], bounds: tuple[float, float], generator: torch.Generator) -> Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)

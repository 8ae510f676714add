"""N-way K-shot Q-query episodes from a pool of labelled images.

An episode draws N distinct classes of one split, assigns them the labels 0..N-1 in random
order, and draws K + Q distinct images of each class: the first K form the support set, the
other Q the query set. Support and query are class-major (label 0's K images, then label 1's,
...). All randomness comes from the `torch.Generator` passed in, so an episode is a function of
the generator's seed alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..base import TaskBatch
from .errors import DataError


@dataclass(frozen=True)
class ClassPool:
    """The images of one split, grouped by class: `images[c]` is [n_c, C, H, W] float32."""

    name: str                     # e.g. "digits/test", for messages
    images: tuple[Tensor, ...]
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.class_names):
            raise ValueError("one class name per class")
        shapes = {tuple(x.shape[1:]) for x in self.images}
        if len(shapes) > 1:
            raise ValueError(f"{self.name}: images of different shapes {sorted(shapes)}")

    @property
    def num_classes(self) -> int:
        return len(self.images)

    @property
    def min_per_class(self) -> int:
        return min((x.shape[0] for x in self.images), default=0)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images[0].shape[1:]) if self.images else ()


class Episodes:
    """The task source of a classification split: `sample(B, generator)` gives B episodes as a
    TaskBatch with xs[B, N·K, C, H, W], ys[B, N·K] (int64 labels), xq[B, N·Q, ...], yq[B, N·Q]."""

    family = "classification"

    def __init__(self, pool: ClassPool, way: int, shot: int, query: int) -> None:
        for name, value in (("way", way), ("shot", shot), ("query", query)):
            if value < 1:
                raise DataError(f"{name} must be >= 1, got {value}")
        if way > pool.num_classes:
            raise DataError(f"{way}-way needs {way} classes but {pool.name} has "
                            f"{pool.num_classes}; use --way <= {pool.num_classes}")
        if shot + query > pool.min_per_class:
            raise DataError(f"shot + query = {shot + query} images per class, but {pool.name} "
                            f"has only {pool.min_per_class} images in its smallest class")
        self.pool, self.way, self.shot, self.query = pool, way, shot, query

    def describe(self) -> str:
        return f"{self.pool.name} {self.way}-way {self.shot}-shot {self.query}-query"

    def sample(self, meta_batch: int, generator: torch.Generator) -> TaskBatch:
        if meta_batch < 1:
            raise DataError(f"meta_batch must be >= 1, got {meta_batch}")
        episodes = [self._episode(generator) for _ in range(meta_batch)]
        return TaskBatch(*(torch.stack(part) for part in zip(*episodes)))

    def _episode(self, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, k, q = self.way, self.shot, self.query
        classes = torch.randperm(self.pool.num_classes, generator=generator)[:n].tolist()
        support, query = [], []
        for c in classes:
            images = self.pool.images[c]
            pick = torch.randperm(images.shape[0], generator=generator)[:k + q]
            support.append(images[pick[:k]])
            query.append(images[pick[k:]])
        labels = torch.arange(n, dtype=torch.int64)
        return (torch.cat(support), labels.repeat_interleave(k),
                torch.cat(query), labels.repeat_interleave(q))

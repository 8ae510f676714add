"""Synthetic N-way K-shot episodes: Gaussian images with balanced integer labels, fully
determined by a seed. The exporter traces and verifies classification phases on them (shapes
and label layout matter there, not the pictures); real episodes come from `algorithms.data`."""

from __future__ import annotations

import torch

from .base import TaskBatch


def sample_batch(meta_batch: int, way: int, shot: int, query: int, image_shape: tuple[int, ...],
                 *, seed: int, dtype: torch.dtype = torch.float32) -> TaskBatch:
    """xs[B, way·shot, C, H, W], ys[B, way·shot] (int64), xq[B, way·query, C, H, W],
    yq[B, way·query]. Labels run 0, 1, …, way−1, 0, 1, … so every class has shot (query) examples."""
    if min(meta_batch, way, shot, query) < 1:
        raise ValueError(f"meta_batch, way, shot and query must be >= 1, got "
                         f"{meta_batch}, {way}, {shot}, {query}")
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn((meta_batch, way * shot, *image_shape), generator=gen, dtype=torch.float64)
    xq = torch.randn((meta_batch, way * query, *image_shape), generator=gen, dtype=torch.float64)
    ys = torch.arange(way).repeat(shot).expand(meta_batch, -1).contiguous()
    yq = torch.arange(way).repeat(query).expand(meta_batch, -1).contiguous()
    return TaskBatch(xs.to(dtype), ys, xq.to(dtype), yq)

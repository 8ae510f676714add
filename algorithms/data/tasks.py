"""Task sources by dataset name, and the seeds that make episode sampling reproducible.

Every batch of tasks is drawn from its own generator, seeded by (run seed, stream, index) —
e.g. (0, "train", 417) for the 417th meta-training batch, (0, "test", 12) for the 12th test
episode. A batch therefore depends on nothing but those three values: a resumed run draws
exactly the batches an uninterrupted one would, and evaluation does not depend on how the
episodes are grouped.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import torch

from .. import sinusoid
from ..base import TaskBatch
from . import digits, omniglot
from .episodes import Episodes
from .errors import DataError

DATASETS = ("sinusoid", "digits", "omniglot")


class TaskSource(Protocol):
    family: str  # "regression" or "classification"

    def sample(self, meta_batch: int, generator: torch.Generator) -> TaskBatch: ...

    def describe(self) -> str: ...


class SinusoidTasks:
    """The sinusoid regression tasks of Finn et al. 2017 (see `algorithms.sinusoid`)."""

    family = "regression"

    def __init__(self, shot: int, query: int) -> None:
        for name, value in (("shot", shot), ("query", query)):
            if value < 1:
                raise DataError(f"{name} must be >= 1, got {value}")
        self.way, self.shot, self.query = 1, shot, query

    def describe(self) -> str:
        return f"sinusoid {self.shot}-shot {self.query}-query"

    def sample(self, meta_batch: int, generator: torch.Generator) -> TaskBatch:
        if meta_batch < 1:
            raise DataError(f"meta_batch must be >= 1, got {meta_batch}")
        return sinusoid.sample_batch(meta_batch, self.shot, self.query, generator=generator)


def task_sources(data: str, *, way: int, shot: int, query: int,
                 eval_shot: int | None = None, eval_query: int | None = None,
                 data_dir: str | Path | None = None, image_size: int = 28,
                 rotations: bool = False) -> tuple[TaskSource, TaskSource]:
    """(meta-train source, meta-test source) of `data`. The test source uses `eval_shot` and
    `eval_query` when given (the MAML sinusoid setup trains with K=10 and tests with K=5)."""
    eval_shot = shot if eval_shot is None else eval_shot
    eval_query = query if eval_query is None else eval_query
    if data == "sinusoid":
        if way != 1:
            raise DataError(f"the sinusoid task is regression: --way must be 1, got {way}")
        return SinusoidTasks(shot, query), SinusoidTasks(eval_shot, eval_query)
    if data == "digits":
        pools = [digits.load_split(s, image_size) for s in ("train", "test")]
    elif data == "omniglot":
        pools = [omniglot.load_split(data_dir, s, image_size=image_size, rotations=rotations)
                 for s in ("train", "test")]
    else:
        raise DataError(f"unknown data {data!r}; allowed: {', '.join(DATASETS)}")
    return Episodes(pools[0], way, shot, query), Episodes(pools[1], way, eval_shot, eval_query)


def episode_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for batch `index` of `stream` in the run seeded `seed` (a hash, so nearby
    seeds and indices give unrelated generators)."""
    digest = hashlib.blake2b(f"{seed}/{stream}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def episode_generator(seed: int, stream: str, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(episode_seed(seed, stream, index))

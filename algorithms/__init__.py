"""Meta-learning algorithms as pure functions of their parameters, their tasks, and ONNX export
of every phase (infer, adapt, meta_train). Knows nothing of hardware."""

from . import maml as _maml  # noqa: F401  (registers "maml" and "fomaml")
from .base import ALGORITHMS, Algorithm, TaskBatch, make_algorithm

__all__ = ["ALGORITHMS", "Algorithm", "TaskBatch", "make_algorithm"]

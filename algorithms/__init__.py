"""Meta-learning algorithms as pure functions of their parameters, their tasks, and ONNX export
of every phase (infer, adapt, meta_train). Knows nothing of hardware."""

from .base import ALGORITHMS, Algorithm, TaskBatch, make_algorithm
from .phases import build_algorithm
from .spec import PhaseSpec, SpecError

__all__ = ["ALGORITHMS", "Algorithm", "PhaseSpec", "SpecError", "TaskBatch", "build_algorithm",
           "make_algorithm"]

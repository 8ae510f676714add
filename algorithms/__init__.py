"""Meta-learning algorithms as pure functions of their parameters, their tasks, and ONNX export
of every phase (infer, adapt, meta_train). Knows nothing of hardware."""

# Importing the modules registers their algorithms.
from . import maml as _maml  # noqa: F401  ("maml", "fomaml", "metasgd", "anil")
from . import metalstm as _metalstm  # noqa: F401  ("metalstm")
from . import protonet as _protonet  # noqa: F401  ("protonet")
from . import reptile as _reptile  # noqa: F401  ("reptile")
from .base import ALGORITHMS, Algorithm, TaskBatch, make_algorithm
from .phases import build_algorithm

__all__ = ["ALGORITHMS", "Algorithm", "TaskBatch", "build_algorithm", "make_algorithm"]

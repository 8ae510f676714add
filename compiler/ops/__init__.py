"""Workload rules, one module per family of ONNX ops; importing this package registers them all.

Every rule follows the operand convention of `operands.py` (each input read once, each output
written once, per-input byte counts in dims as `bytes_in<i>`). Families:

* `matmul` — MatMul, Gemm, Einsum
* `conv` — Conv, ConvTranspose
* `pool` — MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool
* `elementwise` — arithmetic, activations, comparisons, logic, Cast, variadic Max/Min/Sum/Mean
* `reduction` — Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax
* `normalization` — BatchNormalization, LayerNormalization
* `data_movement` — views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) and copies
* `metadata` — Shape, Size, Constant, ConstantOfShape, Range
"""

from . import conv, data_movement, elementwise, matmul, metadata, normalization, pool, reduction  # noqa: F401

"""Workload rules, one module per family of ONNX ops; importing this package registers them all
in `compiler.workload.RULES`.

Every rule follows the operand convention of `operands.py` (each input read once, each output
written once, per-input byte counts in dims as `bytes_in<i>`). Families:

* `matmul` — MatMul, Gemm, Einsum, MatMulInteger, QLinearMatMul
* `recurrent` — LSTM, GRU, RNN (their gate GEMMs are MACs)
* `conv` — Conv, ConvTranspose, ConvInteger, QLinearConv
* `pool` — Max/Average/Lp pools and their Global forms, RoiAlign
* `elementwise` — arithmetic, activations, comparisons, logic, Cast, variadic Max/Min/Sum/Mean
* `resize` — Resize, Upsample
* `quantization` — QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear
* `reduction` — Reduce*, ArgMax/ArgMin, Softmax family, TopK, CumSum/CumProd, losses
* `normalization` — Batch/Layer/Instance/Group/RMS/LRN/Lp/MeanVariance normalizations
* `data_movement` — views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) and copies
* `metadata` — Shape, Size, Constant, ConstantOfShape, EyeLike, Range

`docs/ops.md` lists every op type with its kind and formula; `docs/make_ops.py`
regenerates it from the registry.
"""

from . import (conv, data_movement, elementwise, matmul, metadata, normalization, pool,  # noqa: F401
               quantization, recurrent, reduction, resize)

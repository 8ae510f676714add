"""Evaluate an ONNX graph with torch kernels, in the graph's own precision: the float64
evaluator behind export verification.

    values = evaluate(model, {"x": x64, ...})            # {output name: Tensor}
    values = evaluate(model, feeds, watch=budget.observe) # also shows every node's values

Why not onnxruntime: it has no float64 Conv or ConvTranspose kernel, so the float64 twin of a
Conv4 graph cannot run there. Why not `onnx.reference`: on these graphs its MaxPool indices
disagree with onnxruntime's (the indices of the 1×1 helper pool of max_pool2d_with_indices), its
GatherElements rejects index tensors smaller than the data (which ONNX allows), and its
ScatterElements and Conv loop in Python (minutes for one Conv4 task). Here every op type is one
small kernel found through a registry keyed by op type, written from the ONNX operator
specification (opset 18); `tests/algorithms/test_onnx_eval.py` checks every kernel against
onnxruntime on every op of real exported graphs. An op type without a kernel is an error naming
it, never a silent pass-through.

Values are freed after their last reader, so memory stays near the live set of the graph.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import Tensor

from hwsim.registry import Registry

Kernel = Callable[..., "Tensor | tuple[Tensor, ...]"]


class UnsupportedOnnxOp(NotImplementedError):
    """The graph uses an op type (or attribute) the evaluator has no kernel for."""


KERNELS: Registry[Kernel] = Registry("ONNX kernel", error=UnsupportedOnnxOp)

# ONNX TensorProto element types <-> torch dtypes (those the exported graphs use).
TORCH_DTYPES = {
    onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.FLOAT16: torch.float16, onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.INT32: torch.int32, onnx.TensorProto.BOOL: torch.bool,
    onnx.TensorProto.UINT8: torch.uint8, onnx.TensorProto.INT8: torch.int8,
}


def evaluate(model: onnx.ModelProto, feeds: Mapping[str, Tensor], *,
             outputs: Sequence[str] | None = None,
             watch: Callable[[onnx.NodeProto, list, tuple], None] | None = None
             ) -> dict[str, Tensor]:
    """The values of `outputs` (default: the graph outputs) for the graph inputs `feeds`.
    `watch(node, inputs, outputs)` is called after each node with its input and output values
    (None for an omitted optional input)."""
    graph = model.graph
    wanted = list(outputs) if outputs is not None else [o.name for o in graph.output]
    values: dict[str, Tensor] = {}
    for init in graph.initializer:
        values[init.name] = _tensor(init)
    for inp in graph.input:
        if inp.name in values:
            continue
        if inp.name not in feeds:
            raise ValueError(f"no value fed for graph input {inp.name!r}")
        values[inp.name] = feeds[inp.name]
    last_use = _last_use(graph, wanted)
    for position, node in enumerate(graph.node):
        kernel = KERNELS.get(node.op_type)
        if kernel is None or node.domain not in ("", "ai.onnx"):
            raise UnsupportedOnnxOp(f"no evaluator kernel for op {node.op_type!r} "
                                    f"(domain {node.domain!r}, node {node.name!r})")
        args = [values[name] if name else None for name in node.input]
        attrs = {a.name: _attribute(a) for a in node.attribute}
        try:
            result = kernel(*args, **attrs)
        except UnsupportedOnnxOp:
            raise
        except Exception as e:  # noqa: BLE001 - name the node, keep the cause
            raise RuntimeError(f"evaluating node {node.name!r} ({node.op_type}): {e}") from e
        results = result if isinstance(result, tuple) else (result,)
        for name, value in zip(node.output, results):
            if name:
                values[name] = value
        if watch is not None:
            watch(node, args, results)
        for name in set(node.input):
            if name and last_use.get(name) == position:
                del values[name]
    return {name: values[name] for name in wanted}


def _last_use(graph: onnx.GraphProto, keep: Sequence[str]) -> dict[str, int]:
    last: dict[str, int] = {}
    for position, node in enumerate(graph.node):
        for name in node.input:
            if name:
                last[name] = position
    for name in keep:
        last.pop(name, None)
    return last


def _tensor(proto: onnx.TensorProto) -> Tensor:
    array = numpy_helper.to_array(proto)
    return torch.from_numpy(np.array(array, copy=True))


def _attribute(a: onnx.AttributeProto) -> object:
    if a.type == onnx.AttributeProto.TENSOR:
        return _tensor(a.t)
    value = onnx.helper.get_attribute_value(a)
    return value.decode() if isinstance(value, bytes) else value


def _ints(t: Tensor | None) -> list[int] | None:
    return None if t is None else [int(v) for v in t.reshape(-1).tolist()]


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# ---------------------------------------------------------------- elementwise


def _register_elementwise() -> None:
    unary = {
        "Abs": torch.abs, "Neg": torch.neg, "Sign": torch.sign, "Sqrt": torch.sqrt,
        "Reciprocal": torch.reciprocal, "Exp": torch.exp, "Log": torch.log, "Relu": torch.relu,
        "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Identity": lambda x: x,
    }
    for name, fn in unary.items():
        KERNELS.add(name, lambda x, _fn=fn: _fn(x))
    binary = {
        "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Equal": torch.eq,
        "LessOrEqual": torch.le, "GreaterOrEqual": torch.ge, "Less": torch.lt,
        "Greater": torch.gt,
    }
    for name, fn in binary.items():
        KERNELS.add(name, lambda a, b, _fn=fn: _fn(a, b))


_register_elementwise()


@KERNELS.register("Div")
def _div(a: Tensor, b: Tensor) -> Tensor:
    # Integer Div truncates (C semantics, as onnxruntime does).
    return torch.div(a, b, rounding_mode="trunc") if not a.is_floating_point() else a / b


@KERNELS.register("Pow")
def _pow(x: Tensor, y: Tensor) -> Tensor:
    return torch.pow(x, y.to(x.dtype) if x.is_floating_point() else y).to(x.dtype)


@KERNELS.register("Max")
def _max(*xs: Tensor) -> Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = torch.maximum(out, x)
    return out


@KERNELS.register("Min")
def _min(*xs: Tensor) -> Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = torch.minimum(out, x)
    return out


@KERNELS.register("Where")
def _where(cond: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return torch.where(cond, x, y)


@KERNELS.register("Clip")
def _clip(x: Tensor, low: Tensor | None = None, high: Tensor | None = None) -> Tensor:
    if low is not None:
        x = torch.maximum(x, low.to(x.dtype))
    if high is not None:
        x = torch.minimum(x, high.to(x.dtype))
    return x


@KERNELS.register("Cast")
def _cast(x: Tensor, *, to: int, saturate: int = 1) -> Tensor:
    if to not in TORCH_DTYPES:
        raise UnsupportedOnnxOp(f"Cast to ONNX element type {to}")
    return x.to(TORCH_DTYPES[to])


# ---------------------------------------------------------------- shapes and data movement


@KERNELS.register("Reshape")
def _reshape(x: Tensor, shape: Tensor, *, allowzero: int = 0) -> Tensor:
    dims = _ints(shape)
    if not allowzero:
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


@KERNELS.register("Expand")
def _expand(x: Tensor, shape: Tensor) -> Tensor:
    return x.expand(*np.broadcast_shapes(tuple(x.shape), tuple(_ints(shape))))


@KERNELS.register("Squeeze")
def _squeeze(x: Tensor, axes: Tensor | None = None) -> Tensor:
    if axes is None:
        return x.reshape([d for d in x.shape if d != 1])
    drop = {_axis(a, x.dim()) for a in _ints(axes)}
    if any(x.shape[a] != 1 for a in drop):
        raise ValueError(f"Squeeze of axes {sorted(drop)} of a {list(x.shape)} tensor")
    return x.reshape([d for i, d in enumerate(x.shape) if i not in drop])


@KERNELS.register("Unsqueeze")
def _unsqueeze(x: Tensor, axes: Tensor) -> Tensor:
    rank = x.dim() + len(_ints(axes))
    shape = list(x.shape)
    for a in sorted(_axis(a, rank) for a in _ints(axes)):
        shape.insert(a, 1)
    return x.reshape(shape)


@KERNELS.register("Transpose")
def _transpose(x: Tensor, *, perm: list[int] | None = None) -> Tensor:
    return x.permute(perm if perm is not None else list(range(x.dim()))[::-1])


@KERNELS.register("Concat")
def _concat(*xs: Tensor, axis: int) -> Tensor:
    return torch.cat(xs, _axis(axis, xs[0].dim()))


@KERNELS.register("Split")
def _split(x: Tensor, split: Tensor | None = None, *, axis: int = 0,
           num_outputs: int | None = None) -> tuple[Tensor, ...]:
    axis = _axis(axis, x.dim())
    if split is not None:
        return tuple(torch.split(x, _ints(split), axis))
    if num_outputs is None:
        raise UnsupportedOnnxOp("Split without split sizes or num_outputs")
    size = -(-x.shape[axis] // num_outputs)  # ceil: the last chunk may be smaller (opset 18)
    return tuple(torch.split(x, size, axis))


@KERNELS.register("Slice")
def _slice(x: Tensor, starts: Tensor, ends: Tensor, axes: Tensor | None = None,
           steps: Tensor | None = None) -> Tensor:
    starts_, ends_ = _ints(starts), _ints(ends)
    axes_ = _ints(axes) if axes is not None else list(range(len(starts_)))
    steps_ = _ints(steps) if steps is not None else [1] * len(starts_)
    for start, end, axis, step in zip(starts_, ends_, axes_, steps_):
        axis = _axis(axis, x.dim())
        # ONNX clamps start/end into [0, dim] (step > 0) or [-1, dim - 1] (step < 0).
        index = range(x.shape[axis])[slice(start, end, step)]
        x = x.index_select(axis, torch.tensor(list(index), dtype=torch.int64))
    return x


@KERNELS.register("Gather")
def _gather(x: Tensor, indices: Tensor, *, axis: int = 0) -> Tensor:
    axis = _axis(axis, x.dim())
    idx = torch.where(indices < 0, indices + x.shape[axis], indices).to(torch.int64)
    picked = x.index_select(axis, idx.reshape(-1))
    return picked.reshape(*x.shape[:axis], *indices.shape, *x.shape[axis + 1:])


@KERNELS.register("GatherElements")
def _gather_elements(x: Tensor, indices: Tensor, *, axis: int = 0) -> Tensor:
    axis = _axis(axis, x.dim())
    idx = torch.where(indices < 0, indices + x.shape[axis], indices).to(torch.int64)
    return torch.gather(x, axis, idx)


@KERNELS.register("ScatterElements")
def _scatter_elements(x: Tensor, indices: Tensor, updates: Tensor, *, axis: int = 0,
                      reduction: str = "none") -> Tensor:
    axis = _axis(axis, x.dim())
    idx = torch.where(indices < 0, indices + x.shape[axis], indices).to(torch.int64)
    if reduction == "none":
        return x.scatter(axis, idx, updates)
    if reduction == "add":
        return x.scatter_add(axis, idx, updates)
    raise UnsupportedOnnxOp(f"ScatterElements reduction {reduction!r}")


@KERNELS.register("ConstantOfShape")
def _constant_of_shape(shape: Tensor, *, value: Tensor | None = None) -> Tensor:
    fill = value if value is not None else torch.zeros(1, dtype=torch.float32)
    return fill.reshape(()).expand(*_ints(shape)).clone()


@KERNELS.register("Constant")
def _constant(*, value: Tensor) -> Tensor:
    return value


# ---------------------------------------------------------------- reductions and products


def _reduce(fn: Callable[..., Tensor]) -> Kernel:
    def kernel(x: Tensor, axes: Tensor | None = None, *, keepdims: int = 1,
               noop_with_empty_axes: int = 0) -> Tensor:
        dims = _ints(axes) or []
        if not dims:
            if noop_with_empty_axes:
                return x
            dims = list(range(x.dim()))
        dims = sorted({_axis(a, x.dim()) for a in dims})
        return fn(x, dim=dims, keepdim=bool(keepdims)) if dims else x
    return kernel


KERNELS.add("ReduceSum", _reduce(torch.sum))
KERNELS.add("ReduceMean", _reduce(torch.mean))


@KERNELS.register("LogSoftmax")
def _log_softmax(x: Tensor, *, axis: int = -1) -> Tensor:
    return torch.log_softmax(x, _axis(axis, x.dim()))


@KERNELS.register("MatMul")
def _matmul(a: Tensor, b: Tensor) -> Tensor:
    return torch.matmul(a, b)


@KERNELS.register("Gemm")
def _gemm(a: Tensor, b: Tensor, c: Tensor | None = None, *, alpha: float = 1.0, beta: float = 1.0,
          transA: int = 0, transB: int = 0) -> Tensor:
    y = (a.T if transA else a) @ (b.T if transB else b)
    if alpha != 1.0:
        y = alpha * y
    if c is not None:
        y = y + (beta * c if beta != 1.0 else c)
    return y


def _spatial(attrs_pads: list[int] | None, rank: int) -> tuple[list[int], list[int]]:
    pads = attrs_pads or [0] * (2 * rank)
    return pads[:rank], pads[rank:]


def _check_auto_pad(auto_pad: str) -> None:
    if auto_pad not in ("NOTSET", ""):
        raise UnsupportedOnnxOp(f"auto_pad {auto_pad!r}")


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@KERNELS.register("Conv")
def _conv(x: Tensor, w: Tensor, b: Tensor | None = None, *, auto_pad: str = "NOTSET",
          dilations: list[int] | None = None, group: int = 1, kernel_shape: list[int] | None = None,
          pads: list[int] | None = None, strides: list[int] | None = None) -> Tensor:
    _check_auto_pad(auto_pad)
    rank = x.dim() - 2
    begin, end = _spatial(pads, rank)
    if begin != end:  # asymmetric: pad explicitly (F.pad takes the last axis first)
        x = F.pad(x, [p for d in reversed(range(rank)) for p in (begin[d], end[d])])
        begin = [0] * rank
    stride, dilation = strides or [1] * rank, dilations or [1] * rank
    if rank == 2 and group == 1 and x.dtype == torch.float64:
        out = [(x.shape[2 + d] + 2 * begin[d] - dilation[d] * (w.shape[2 + d] - 1) - 1) // stride[d] + 1
               for d in range(2)]
        if out[0] * out[1] >= w.shape[2] * w.shape[3]:
            # A small kernel over a large map: float64 F.conv2d (no mkldnn) is ~1.5× slower than
            # unfolding the windows and one matrix product.
            cols = F.unfold(x, w.shape[2:], dilation=dilation, padding=begin, stride=stride)
            y = (w.reshape(w.shape[0], -1) @ cols).reshape(x.shape[0], w.shape[0], *out)
            return y + b.reshape(1, -1, 1, 1) if b is not None else y
    return _CONV[rank](x, w, b, stride=stride, padding=begin, dilation=dilation, groups=group)


@KERNELS.register("ConvTranspose")
def _conv_transpose(x: Tensor, w: Tensor, b: Tensor | None = None, *, auto_pad: str = "NOTSET",
                    dilations: list[int] | None = None, group: int = 1,
                    kernel_shape: list[int] | None = None, output_padding: list[int] | None = None,
                    output_shape: list[int] | None = None, pads: list[int] | None = None,
                    strides: list[int] | None = None) -> Tensor:
    _check_auto_pad(auto_pad)
    if output_shape is not None:
        raise UnsupportedOnnxOp("ConvTranspose with output_shape")
    rank = x.dim() - 2
    begin, end = _spatial(pads, rank)
    y = _CONV_T[rank](x, w, b, stride=strides or 1, padding=0, output_padding=output_padding or 0,
                      groups=group, dilation=dilations or 1)
    # Padding of a transposed convolution removes rows: crop begin/end explicitly (asymmetric ok).
    crop = tuple(slice(begin[d], y.shape[2 + d] - end[d]) for d in range(rank))
    return y[(slice(None), slice(None), *crop)]


@KERNELS.register("MaxPool")
def _max_pool(x: Tensor, *, auto_pad: str = "NOTSET", ceil_mode: int = 0,
              dilations: list[int] | None = None, kernel_shape: list[int],
              pads: list[int] | None = None, storage_order: int = 0,
              strides: list[int] | None = None) -> tuple[Tensor, Tensor]:
    """Values and indices; the indices count over the whole flattened N×C×spatial input
    (row-major, storage_order 0), as the ONNX specification says."""
    _check_auto_pad(auto_pad)
    rank = x.dim() - 2
    if rank != 2 or storage_order:
        raise UnsupportedOnnxOp(f"MaxPool over {rank} spatial axes / storage_order {storage_order}")
    begin, end = _spatial(pads, rank)
    if begin != end:
        raise UnsupportedOnnxOp(f"MaxPool with asymmetric pads {pads}")
    y, plane = F.max_pool2d(x, kernel_shape, stride=strides or [1] * rank, padding=begin,
                            dilation=dilations or 1, ceil_mode=bool(ceil_mode), return_indices=True)
    n, c, h, w = x.shape
    offset = torch.arange(n * c, dtype=torch.int64).reshape(n, c, 1, 1) * (h * w)
    return y, plane + offset

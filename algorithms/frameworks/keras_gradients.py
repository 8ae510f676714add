"""Gradients that tf2onnx can convert, for the TensorFlow ops of common Keras layers.

Runs inside the TensorFlow venv (imported by `keras_worker.py`); imports nothing from hwsim.

A `tf.GradientTape` differentiates Conv2D, MaxPool, Relu, Tanh, Sigmoid, BiasAdd and Rsqrt (the
variance term of BatchNormalization) into dedicated gradient kernels: Conv2DBackpropFilter,
Conv2DBackpropInput fed by a ShapeN, MaxPoolGrad, ReluGrad, TanhGrad, SigmoidGrad, BiasAddGrad and
RsqrtGrad. tf2onnx 1.17.0 converts none of them except Conv2DBackpropInput with a constant shape.
Within `convertible_gradients()` the tape uses the functions below instead. Each computes the
same gradient from ops that tf2onnx maps onto standard ONNX ops:

    Conv2D      input: conv2d_transpose with a static output shape (-> ConvTranspose);
                kernel: a forward conv2d of the padded input, batch and channels swapped, with the
                output gradient as its kernel (-> Conv whose kernel has the output's spatial size)
    MaxPool     the output gradient goes to the window elements equal to the window's maximum
                (-> Reshape, Expand, Equal, Cast, Mul, Slice/Pad)
    Relu, Tanh, Sigmoid, Rsqrt
                the closed-form derivative from the op's output (-> Greater, Cast, Mul, Sub)
    BiasAdd     the output gradient summed over all but the channel axis (-> ReduceSum)

`keras_worker` compares every exported training step with the same step under TensorFlow's own
gradient kernels. The one semantic difference: where a max-pool window holds several equal
maxima, MaxPoolGrad routes the gradient to one of them and the function here to all of them.
After a ReLU such ties are zeros whose gradient the ReLU discards; elsewhere they need equal
floats, which random inputs do not produce.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
# The gradient registry has no public way to replace a registration (tf.RegisterGradient refuses
# a name that is taken), and GradientTape looks gradient functions up there by op type.
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.framework import registry as tf_registry


class UnconvertibleGradient(ValueError):
    """An op configuration whose gradient has no ONNX-convertible form here."""


def _skipped(op, index: int) -> bool:
    """True when the tape does not need the gradient of input `index` (e.g. the model input)."""
    skip = getattr(op, "skip_input_indices", None)
    return skip is not None and index in skip


def _relu(op, dy):
    return dy * tf.cast(op.outputs[0] > 0, dy.dtype)


def _tanh(op, dy):
    y = op.outputs[0]
    return dy * (1 - y * y)


def _sigmoid(op, dy):
    y = op.outputs[0]
    return dy * (y * (1 - y))


def _rsqrt(op, dy):
    y = op.outputs[0]  # d/dx x^(-1/2) = -1/2 · y³
    return dy * (-0.5 * y * y * y)


def _bias_add(op, dy):
    channel = 1 if op.get_attr("data_format").decode().startswith("NC") else dy.shape.rank - 1
    return dy, tf.reduce_sum(dy, axis=[a for a in range(dy.shape.rank) if a != channel])


def _max_pool(op, dy):
    x, y = op.inputs[0], op.outputs[0]
    ksize, strides = list(op.get_attr("ksize")), list(op.get_attr("strides"))
    padding = op.get_attr("padding").decode()
    if op.get_attr("data_format").decode() != "NHWC":
        raise UnconvertibleGradient("MaxPool in NCHW layout: only NHWC (Keras' default) is supported")
    if ksize != strides or ksize[0] != 1 or ksize[3] != 1:
        raise UnconvertibleGradient(
            f"MaxPool with pool size {ksize[1:3]} and strides {strides[1:3]}: only non-overlapping "
            "windows (strides equal to the pool size) have a convertible gradient")
    n, H, W, c = x.shape
    _, h, w, _ = y.shape
    kh, kw = ksize[1], ksize[2]
    if padding == "SAME" and (H % kh or W % kw):
        raise UnconvertibleGradient(
            f"MaxPool with padding 'same' on {H}x{W} inputs not divisible by the pool size {kh}x{kw}")

    def spread(t):  # [n, h, w, c] -> [n, h·kh, w·kw, c], each value over its window
        t = tf.broadcast_to(tf.reshape(t, [n, h, 1, w, 1, c]), [n, h, kh, w, kw, c])
        return tf.reshape(t, [n, h * kh, w * kw, c])

    covered = x[:, :h * kh, :w * kw, :]  # 'valid' pooling leaves the last rows/columns out
    dx = tf.cast(tf.equal(covered, spread(y)), dy.dtype) * spread(dy)
    if H > h * kh or W > w * kw:
        dx = tf.pad(dx, [[0, 0], [0, H - h * kh], [0, W - w * kw], [0, 0]])
    return dx


def _conv2d(op, dy):
    x, kernel = op.inputs
    strides, dilations = list(op.get_attr("strides")), list(op.get_attr("dilations"))
    padding = op.get_attr("padding").decode()
    if op.get_attr("data_format").decode() != "NHWC":
        raise UnconvertibleGradient("Conv2D in NCHW layout: only NHWC (Keras' default) is supported")
    if padding not in ("SAME", "VALID"):
        raise UnconvertibleGradient(f"Conv2D with {padding} padding: only 'same' and 'valid' are supported")
    n, H, W, cin = x.shape
    kh, kw, kin, cout = kernel.shape
    if kin != cin:
        raise UnconvertibleGradient(f"grouped Conv2D ({cin} input channels, kernel for {kin}): not supported")
    s, d = strides[1:3], dilations[1:3]
    if max(s) > 1 and max(d) > 1:  # TensorFlow's CPU kernels do not run this either
        raise UnconvertibleGradient("Conv2D with both strides and dilations above 1: not supported")
    _, oh, ow, _ = dy.shape

    dx = None
    if not _skipped(op, 0):
        dx = tf.nn.conv2d_transpose(dy, kernel, output_shape=[n, H, W, cin], strides=s,
                                    padding=padding, dilations=d)
    dk = None
    if not _skipped(op, 1):
        xp = x
        if padding == "SAME":  # TensorFlow pads the extra row/column at the end
            ph = max((oh - 1) * s[0] + (kh - 1) * d[0] + 1 - H, 0)
            pw = max((ow - 1) * s[1] + (kw - 1) * d[1] + 1 - W, 0)
            xp = tf.pad(x, [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]])
        # dK[i, j, ci, co] = Σ_{b, y, x} xp[b, y·s + i·d, x·s + j·d, ci] · dy[b, y, x, co]: a
        # convolution over (y, x) with the batch as its reduction channel. The input's channels
        # become the batch, dy[oh, ow, n, cout] the kernel; strides and dilations trade places.
        dk = tf.nn.conv2d(tf.transpose(xp, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]),
                          strides=d, dilations=s, padding="VALID")
        dk = tf.transpose(dk[:, :kh, :kw, :], [1, 2, 0, 3])
    return dx, dk


GRADIENTS = {
    "Conv2D": _conv2d,
    "MaxPool": _max_pool,
    "Relu": _relu,
    "Tanh": _tanh,
    "Sigmoid": _sigmoid,
    "Rsqrt": _rsqrt,
    "BiasAdd": _bias_add,
}


@contextlib.contextmanager
def convertible_gradients():
    """Within the block, GradientTape differentiates the ops of `GRADIENTS` with the functions
    above. A tf.function takes its gradients when it is traced: trace it inside the block."""
    registry = tf_ops.gradient_registry._registry
    saved = {name: registry[name] for name in GRADIENTS}
    try:
        for name, fn in GRADIENTS.items():
            registry[name] = {**saved[name], tf_registry._TYPE_TAG: fn}
        yield
    finally:
        registry.update(saved)

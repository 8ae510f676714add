"""Workload rules of the op types that model-zoo graphs bring (CNN, RNN, transformer, quantized):
one-node graphs whose MACs, flops and bytes are worked out by hand in the comments.

`test_every_rule_is_tested` ties the registry to the tests: an op type with a rule but no case
here or in test_ops.py fails it.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.frontend import load_graph
from compiler.workload import RULES, Kind, UnsupportedOpError, workload_of

from .graphs import graph_of, one_node

F32 = np.float32
# Op types whose rules test_ops.py checks by hand.
TESTED_IN_TEST_OPS = set("""Add Sub Mul Div Neg Abs Relu LeakyRelu Sigmoid Tanh Exp Log Sqrt Reciprocal
Pow Erf Sign Clip Where Equal Less Greater LessOrEqual GreaterOrEqual Not And Or Cast Max Min Sum
Mean ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL2 ReduceSumSquare ArgMax ArgMin
Softmax LogSoftmax BatchNormalization LayerNormalization MaxPool AveragePool GlobalAveragePool
GlobalMaxPool Conv ConvTranspose MatMul Gemm Reshape Flatten Transpose Squeeze Unsqueeze Concat Split
Slice Gather GatherElements ScatterElements ScatterND Expand Tile Pad Identity Shape Size Constant
ConstantOfShape Range Dropout Einsum""".split())


def x(*shape, dtype=F32):
    return np.ones(shape, dtype)


def check(model, kind, macs=0, flops=0, read=None, written=None, node=0, **dims):
    g = load_graph(model)
    w = workload_of(g, g.nodes[node])
    assert w.kind is kind
    assert (w.macs, w.flops) == (macs, flops)
    if read is not None:
        assert w.bytes_read == read
    if written is not None:
        assert w.bytes_written == written
    for k, v in dims.items():
        assert w.dims[k] == v, k
    return w


# ---------------------------------------------------------------- elementwise: 30 elements (2, 3, 5)
@pytest.mark.parametrize("op,per,trans,opset", [
    ("Acos", 1, 1, 20), ("Asin", 1, 1, 20), ("Atan", 1, 1, 20), ("Acosh", 1, 1, 20),
    ("Asinh", 1, 1, 20), ("Atanh", 1, 1, 20), ("Sinh", 1, 1, 20), ("Cosh", 1, 1, 20),
    ("Tan", 1, 1, 20), ("Sin", 1, 1, 20), ("Cos", 1, 1, 20),
    ("Celu", 6, 1, 20),        # x/α, exp, α·e − α, min, max, add
    ("Softsign", 3, 0, 20),    # abs, add, divide
    ("HardSwish", 4, 0, 20),   # α·x + β, min, max, · x
    ("HardSigmoid", 3, 0, 20), ("Shrink", 3, 0, 20), ("ThresholdedRelu", 1, 0, 20),
    ("Mish", 8, 3, 20),        # softplus (exp, add, log) + tanh (4, one exp) + multiply
    ("Swish", 6, 1, 24),       # α·x, sigmoid (4), · x
    ("Elu", 3, 1, 20), ("Selu", 4, 1, 20), ("Softplus", 3, 2, 20),
    ("Floor", 1, 0, 20), ("Ceil", 1, 0, 20), ("Round", 1, 0, 20), ("IsNaN", 1, 0, 20),
    ("IsInf", 1, 0, 20), ("Trilu", 1, 0, 20),
])
def test_unary_elementwise(op, per, trans, opset):
    written = 30 if op in ("IsNaN", "IsInf") else 120   # bool results
    check(one_node(op, {"a": (2, 3, 5)}, opset=opset), Kind.ELEMENTWISE, flops=30 * per,
          read=120, written=written, transcendental=30 * trans, ops_per_element=per)


@pytest.mark.parametrize("approximate,flops", [("none", 5 * 30), ("tanh", 11 * 30)])
def test_gelu_counts_its_approximation(approximate, flops):
    check(one_node("Gelu", {"a": (2, 3, 5)}, approximate=approximate), Kind.ELEMENTWISE,
          flops=flops, transcendental=30)


def test_gelu_with_an_unknown_approximation_is_unsupported():
    g = load_graph(one_node("Gelu", {"a": (2, 3)}))
    node = g.nodes[0]
    odd = node.__class__(node.name, node.op_type, node.inputs, node.outputs, {"approximate": "erf2"})
    with pytest.raises(UnsupportedOpError, match="erf2"):
        workload_of(g.with_nodes([odd]), odd)


def test_prelu_reads_its_slope():
    # 30 outputs x (compare, multiply); x 120 bytes + slope (3, 1) 12 bytes
    check(one_node("PRelu", {"a": (2, 3, 5)}, inits={"slope": x(3, 1)}), Kind.ELEMENTWISE,
          flops=60, read=132, written=120)


def test_castlike_writes_the_target_type():
    # 30 int64 results = 240 bytes; reads x (120) and the 1-element int64 target (8)
    check(one_node("CastLike", {"a": (2, 3, 5)}, inits={"t": np.zeros(1, np.int64)}), Kind.ELEMENTWISE,
          flops=30, read=128, written=240)


@pytest.mark.parametrize("op,attrs,dtype", [
    ("BitShift", {"direction": "LEFT"}, np.uint8), ("BitwiseAnd", {}, np.int32),
    ("BitwiseOr", {}, np.int32), ("BitwiseXor", {}, np.int32), ("Mod", {}, np.int32),
    ("Xor", {}, np.bool_)])
def test_bitwise_binary(op, attrs, dtype):
    a, b = np.arange(1, 5).astype(dtype), np.ones(4, dtype)
    size = a.itemsize * 4
    check(one_node(op, {}, inits={"a": a, "b": b}, **attrs), Kind.ELEMENTWISE, flops=4,
          read=2 * size, written=size)


def test_bitwise_not():
    check(one_node("BitwiseNot", {}, inits={"a": np.arange(6, dtype=np.int32)}), Kind.ELEMENTWISE,
          flops=6, read=24, written=24)


# ---------------------------------------------------------------- interpolation
def _resize(x_shape, scales, mode, **attrs):
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="n0", mode=mode, **attrs)
    return graph_of([node], {"x": x_shape}, ["y"], {"scales": np.array(scales, F32)}, opset=13)


@pytest.mark.parametrize("x_shape,scales,mode,out,per", [
    ((1, 2, 3, 4), [1, 1, 2, 2], "linear", 96, 7),    # 2 axes change: 4 taps, 4 mul + 3 add
    ((1, 2, 3, 4), [1, 1, 2, 2], "nearest", 96, 0),   # a copy
    ((1, 1, 4, 4), [1, 1, 1, 2], "cubic", 32, 7),     # 1 axis changes: 4 taps
    ((1, 1, 2, 2), [1, 1, 2, 2], "cubic", 16, 31),    # 2 axes: 16 taps, 16 mul + 15 add
])
def test_resize(x_shape, scales, mode, out, per):
    n_in = int(np.prod(x_shape))
    check(_resize(x_shape, scales, mode), Kind.ELEMENTWISE, flops=out * per,
          read=4 * n_in + 16, written=4 * out, numel=out)


def test_resize_antialias_when_shrinking_is_unsupported():
    g = load_graph(_resize((1, 1, 8, 8), [1, 1, 0.5, 0.5], "linear"))
    node = g.nodes[0]
    aa = node.__class__(node.name, node.op_type, node.inputs, node.outputs, {"mode": "linear", "antialias": 1})
    with pytest.raises(UnsupportedOpError, match="antialias"):
        workload_of(g.with_nodes([aa]), aa)


def test_upsample_opset9_scales_input():
    # (1, 3, 4, 4) -> (1, 3, 8, 8) = 192 results, nearest: no arithmetic; reads x 192 B + scales 16 B
    node = helper.make_node("Upsample", ["x", "s"], ["y"], name="n0", mode="nearest")
    g = load_graph(graph_of([node], {"x": (1, 3, 4, 4)}, ["y"], {"s": np.array([1, 1, 2, 2], F32)}, opset=9))
    assert g.tensor("y").shape == (1, 3, 8, 8)
    w = workload_of(g, g.nodes[0])
    assert (w.kind, w.flops, w.bytes_read, w.bytes_written) == (Kind.ELEMENTWISE, 0, 208, 768)


def test_upsample_opset7_scales_attribute_linear():
    # (1, 1, 2, 3) -> (1, 1, 4, 6) = 24 results x (4 taps: 4 mul + 3 add)
    node = helper.make_node("Upsample", ["x"], ["y"], name="n0", mode="linear", scales=[1.0, 1.0, 2.0, 2.0])
    g = load_graph(graph_of([node], {"x": (1, 1, 2, 3)}, ["y"], opset=7))
    assert g.tensor("y").shape == (1, 1, 4, 6)
    assert workload_of(g, g.nodes[0]).flops == 24 * 7


# ---------------------------------------------------------------- normalizations
def test_instance_norm():
    # 96 elements x 7; one rsqrt per (n, c) = 6
    check(one_node("InstanceNormalization", {"a": (2, 3, 4, 4)}, inits={"s": x(3), "b": x(3)}),
          Kind.NORMALIZATION, flops=672, read=384 + 24, written=384, transcendental=6)


def test_group_norm():
    # 72 elements x 7; one rsqrt per (n, group) = 2 x 2
    check(one_node("GroupNormalization", {"a": (2, 4, 3, 3)}, inits={"s": x(4), "b": x(4)},
                   opset=21, num_groups=2),
          Kind.NORMALIZATION, flops=504, transcendental=4, groups=4)


def test_lrn():
    # 36 elements x (2·3 + 2): 3 squares, 2 adds, scale-and-bias, pow, divide; one pow each
    check(one_node("LRN", {"a": (1, 4, 3, 3)}, size=3), Kind.NORMALIZATION, flops=288,
          read=144, written=144, transcendental=36)


def test_mean_variance_norm():
    # default axes (0, 2, 3): 3 groups (the channels); 96 elements x 6
    check(one_node("MeanVarianceNormalization", {"a": (2, 3, 4, 4)}), Kind.NORMALIZATION, flops=576,
          transcendental=3)


def test_rms_norm():
    # rows 2 x 3 = 6 of 4 elements; 24 x 4 flops, one rsqrt per row
    check(one_node("RMSNormalization", {"a": (2, 3, 4)}, inits={"s": x(4)}, opset=23),
          Kind.NORMALIZATION, flops=96, transcendental=6)


@pytest.mark.parametrize("p,trans", [(2, 6), (1, 0)])
def test_lp_norm(p, trans):
    check(one_node("LpNormalization", {"a": (2, 3, 4)}, p=p), Kind.NORMALIZATION, flops=72,
          transcendental=trans)


# ---------------------------------------------------------------- reductions and scans
def test_reduce_log_sum():
    # 24 adds, one log per output (2)
    check(one_node("ReduceLogSum", {"a": (2, 3, 4)}, inits={"axes": np.array([1, 2], np.int64)},
                   keepdims=0),
          Kind.REDUCTION, flops=24, transcendental=2)


@pytest.mark.parametrize("ReduceL1_axes", [[1]])
def test_reduce_l1(ReduceL1_axes):
    check(one_node("ReduceL1", {"a": (2, 3, 4)}, inits={"axes": np.array(ReduceL1_axes, np.int64)}),
          Kind.REDUCTION, flops=48, transcendental=0)


def test_reduce_log_sum_exp():
    # 24 x 3; one exp per input, one log per output (2 x 4 = 8)
    check(one_node("ReduceLogSumExp", {"a": (2, 3, 4)}, inits={"axes": np.array([1], np.int64)}),
          Kind.REDUCTION, flops=72, transcendental=24 + 8)


@pytest.mark.parametrize("opset,shape,rows", [(13, (4, 10), 4), (11, (2, 3, 5), 2)])
def test_hardmax(opset, shape, rows):
    # one compare per element; before opset 13 the input is 2-D at axis 1: rows = 2
    n = int(np.prod(shape))
    check(one_node("Hardmax", {"a": shape}, opset=opset), Kind.REDUCTION, flops=n, rows=rows)


def test_softmax_before_opset_13_coerces_to_2d():
    # axis default 1 on (2, 3, 5): rows = 2, LogSoftmax one log per row
    check(one_node("LogSoftmax", {"a": (2, 3, 5)}, opset=11), Kind.REDUCTION, flops=150,
          transcendental=30 + 2, rows=2)


@pytest.mark.parametrize("k,per", [(4, 2), (1, 1), (5, 3)])
def test_topk(k, per):
    # 3 rows of 10: 30 x max(1, ceil(log2 k)) compares; values (f32) and indices (i64) written
    g = load_graph(one_node("TopK", {"a": (3, 10)}, {"v": None, "i": None},
                            inits={"k": np.array([k], np.int64)}))
    w = workload_of(g, g.nodes[0])
    assert (w.kind, w.flops, w.dims["k"]) == (Kind.REDUCTION, 30 * per, k)
    assert (w.bytes_read, w.bytes_written) == (120 + 8, 3 * k * (4 + 8))


@pytest.mark.parametrize("op,opset", [("CumSum", 14), ("CumProd", 26)])
def test_scans(op, opset):
    # 3 rows of 4 along axis 1: 3 operations each
    check(one_node(op, {"a": (3, 4)}, inits={"axis": np.array(1, np.int64)}, opset=opset),
          Kind.REDUCTION, flops=9, read=48 + 8, written=48)


@pytest.mark.parametrize("weighted,flops", [(False, 3 * 2 + 1), (True, 3 * 3 + 1)])
def test_nll_loss(weighted, flops):
    # 3 targets: negate (+ weight) + add for the mean's sum, then one divide
    inits = {"t": np.array([0, 2, 4], np.int64)}
    if weighted:
        inits["w"] = x(5)
    check(one_node("NegativeLogLikelihoodLoss", {"a": (3, 5)}, inits=inits), Kind.REDUCTION, flops=flops)


def test_softmax_cross_entropy_loss():
    # LogSoftmax of 15 scores (5 each), 3 rows; then the loss over 3 targets (7 flops)
    check(one_node("SoftmaxCrossEntropyLoss", {"a": (3, 5)}, inits={"t": np.array([0, 2, 4], np.int64)}),
          Kind.REDUCTION, flops=75 + 7, transcendental=15 + 3)


# ---------------------------------------------------------------- quantization
def test_quantize_linear():
    # 6 elements x (divide, round, add, min, max); reads x 24 B, scale 4 B, zero point 1 B
    check(one_node("QuantizeLinear", {"a": (2, 3)}, inits={"s": np.array(0.5, F32),
                                                           "z": np.array(3, np.uint8)}),
          Kind.ELEMENTWISE, flops=30, read=29, written=6)


def test_dequantize_linear():
    check(one_node("DequantizeLinear", {}, inits={"q": np.ones((2, 3), np.uint8), "s": np.array(0.5, F32),
                                                  "z": np.array(3, np.uint8)}),
          Kind.ELEMENTWISE, flops=12, read=11, written=24)


def test_dynamic_quantize_linear():
    # 6 x (min, max, then quantize: 5); writes y (6 B), scale (4 B), zero point (1 B)
    check(one_node("DynamicQuantizeLinear", {"a": (2, 3)}, {"y": None, "s": None, "z": None}),
          Kind.REDUCTION, flops=42, read=24, written=11)


# ---------------------------------------------------------------- integer and quantized products
U8 = np.uint8


def test_conv_integer():
    # y (1, 3, 3, 3): MACs 27 outputs x 2 channels x 9 taps = 486; x zero point: 50 subtracts
    check(one_node("ConvInteger", {}, inits={"x": np.ones((1, 2, 5, 5), U8), "w": np.ones((3, 2, 3, 3), U8),
                                             "xz": np.array(1, U8)}),
          Kind.CONV, macs=486, flops=50, read=50 + 54 + 1, written=27 * 4)


def test_qlinear_conv():
    # MACs 486; flops: bias 27 + zero points 50 (x) + 54 (w) + requantising 27 x 5
    inits = {"x": np.ones((1, 2, 5, 5), U8), "xs": np.array(0.1, F32), "xz": np.array(1, U8),
             "w": np.ones((3, 2, 3, 3), U8), "ws": np.array(0.1, F32), "wz": np.array(1, U8),
             "ys": np.array(0.2, F32), "yz": np.array(2, U8), "b": np.zeros(3, np.int32)}
    check(one_node("QLinearConv", {}, inits=inits), Kind.CONV, macs=486, flops=27 + 50 + 54 + 135,
          written=27, k=3, c=2, r=3)


def test_matmul_integer():
    # (2, 4) x (4, 3): 24 MACs; a zero point: 8 subtracts; int32 result 24 B
    check(one_node("MatMulInteger", {}, inits={"a": np.ones((2, 4), U8), "b": np.ones((4, 3), U8),
                                               "az": np.array(1, U8)}),
          Kind.MATMUL, macs=24, flops=8, written=24, m=2, k=4, n=3)


def test_qlinear_matmul():
    # 24 MACs; zero points 8 + 12; requantising 6 x 5
    inits = {"a": np.ones((2, 4), U8), "as": np.array(0.1, F32), "az": np.array(1, U8),
             "b": np.ones((4, 3), U8), "bs": np.array(0.1, F32), "bz": np.array(1, U8),
             "ys": np.array(0.2, F32), "yz": np.array(2, U8)}
    check(one_node("QLinearMatMul", {}, inits=inits), Kind.MATMUL, macs=24, flops=8 + 12 + 30, written=6)


# ---------------------------------------------------------------- recurrent layers
def _rnn(op, seq=3, batch=2, inp=4, hidden=5, dirs=1, bias=True, peep=False, **attrs):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    inits = {"W": x(dirs, gates * hidden, inp), "R": x(dirs, gates * hidden, hidden)}
    names = ["X", "W", "R"]
    if bias:
        inits["B"] = x(dirs, 2 * gates * hidden)
        names.append("B")
    if peep:
        inits["P"] = x(dirs, 3 * hidden)
        names += ["", "", "", "P"]
    outs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    direction = "bidirectional" if dirs == 2 else "forward"
    node = helper.make_node(op, names, outs, name="n0", hidden_size=hidden, direction=direction, **attrs)
    return graph_of([node], {"X": (seq, batch, inp)}, outs, inits, opset=14)


def test_lstm_gate_gemms_are_macs():
    # MACs = dirs·seq·batch·(input + hidden)·4·hidden = 1·3·2·9·4·5 = 1,080.
    # Flops per (step, row, hidden unit): 4 gate sums + 8 biases + 3 cell + 1 output + activations
    # (3 sigmoid + 2 tanh, 4 each) = 36; x 3·2·5 = 30 -> 1,080. Transcendentals 5 x 30.
    check(_rnn("LSTM"), Kind.MATMUL, macs=1080, flops=1080, transcendental=150,
          b=3, m=2, k=9, n=20)


def test_bidirectional_lstm_with_peepholes():
    # MACs 2·3·2·9·20 = 2,160. Per direction 4 + 8 + 4 + 6 (peepholes) = 22, both 44, plus
    # activations of both directions 40: 84 x 30 = 2,520.
    check(_rnn("LSTM", dirs=2, peep=True), Kind.MATMUL, macs=2160, flops=2520, transcendental=300,
          b=6, directions=2)


def test_gru():
    # MACs 3·2·9·3·5 = 810. Per unit: 3 gate sums + 5 (reset, output) + 2 sigmoid + 1 tanh (12) = 20
    check(_rnn("GRU", bias=False), Kind.MATMUL, macs=810, flops=600, transcendental=90)


@pytest.mark.parametrize("activations,flops,trans", [(None, (1 + 2 + 4) * 30, 30),
                                                     (["Relu"], (1 + 2 + 1) * 30, 0)])
def test_rnn(activations, flops, trans):
    # MACs 3·2·9·5 = 270; per unit: 1 sum + 2 biases + the activation (Tanh 4, Relu 1)
    attrs = {"activations": activations} if activations else {}
    check(_rnn("RNN", **attrs), Kind.MATMUL, macs=270, flops=flops, transcendental=trans)


def test_rnn_layout_1_puts_the_batch_first():
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y"], name="n0", hidden_size=5, layout=1)
    model = graph_of([node], {"X": (2, 3, 4)}, ["Y"], {"W": x(1, 15, 4), "R": x(1, 15, 5)}, opset=14)
    check(model, Kind.MATMUL, macs=810, flops=600, seq=3, m=2)


def test_recurrent_activation_outside_the_spec_is_unsupported():
    with pytest.raises(UnsupportedOpError, match="activation 'Gelu'"):
        g = load_graph(_rnn("RNN"))
        node = g.nodes[0]
        odd = node.__class__(node.name, node.op_type, node.inputs, node.outputs,
                             {**node.attrs, "activations": ["Gelu"]})
        workload_of(g.with_nodes([odd]), odd)


# ---------------------------------------------------------------- pools
@pytest.mark.parametrize("p,flops,trans", [(2, 2 * 32 + 8, 8), (3, 3 * 32 + 8, 32 + 8)])
def test_lp_pool(p, flops, trans):
    # (1, 2, 4, 4), 2x2 stride 2: 8 outputs x 4 taps = 32 taps; one root per output
    check(one_node("LpPool", {"a": (1, 2, 4, 4)}, kernel_shape=[2, 2], strides=[2, 2], p=p),
          Kind.POOL, flops=flops, transcendental=trans, r=2, oh=2)


def test_global_lp_pool():
    # 2 outputs over 9 taps each: 18 x 2 + 2 roots
    check(one_node("GlobalLpPool", {"a": (1, 2, 3, 3)}), Kind.POOL, flops=38, transcendental=2)


def test_roi_align():
    # 3 rois x 2 channels x 2 x 2 bins = 24 bins x (2·2 samples x 8 + 1)
    inits = {"rois": np.array([[0, 0, 4, 4], [1, 1, 5, 5], [2, 2, 7, 7]], F32),
             "idx": np.zeros(3, np.int64)}
    check(one_node("RoiAlign", {"a": (1, 2, 8, 8)}, inits=inits, output_height=2, output_width=2,
                   sampling_ratio=2),
          Kind.POOL, flops=24 * 33, written=24 * 4, n=3, r=2)


def test_roi_align_adaptive_sampling_is_unsupported():
    inits = {"rois": np.array([[0, 0, 4, 4]], F32), "idx": np.zeros(1, np.int64)}
    g = load_graph(one_node("RoiAlign", {"a": (1, 2, 8, 8)}, inits=inits))
    with pytest.raises(UnsupportedOpError, match="sampling_ratio=0"):
        workload_of(g, g.nodes[0])


# ---------------------------------------------------------------- data movement and fills
@pytest.mark.parametrize("op,inputs,inits,attrs,opset,read,written", [
    ("DepthToSpace", {"a": (1, 8, 2, 2)}, {}, {"blocksize": 2}, 20, 128, 128),
    ("SpaceToDepth", {"a": (1, 2, 4, 4)}, {}, {"blocksize": 2}, 20, 128, 128),
    # (2, 3) gathered at 2 index pairs -> 2 values: 24 + 32 read, 8 written
    ("GatherND", {"a": (2, 3)}, {"i": np.array([[0, 1], [1, 2]], np.int64)}, {}, 20, 56, 8),
    ("ReverseSequence", {"a": (4, 2, 3)}, {"l": np.array([4, 2], np.int64)}, {}, 20, 96 + 16, 96),
    # crop (4, 6) to (2, 4): 96 + 16 read, 32 written
    ("CenterCropPad", {"a": (4, 6)}, {"s": np.array([2, 4], np.int64)}, {}, 18, 112, 32),
    # keep 2 of 3 rows of (3, 4): 48 + 3 read, 32 written
    ("Compress", {"a": (3, 4)}, {"c": np.array([True, False, True])}, {"axis": 0}, 20, 51, 32),
    # 3 indices, depth 4, values (2,): writes (3, 4) float32
    ("OneHot", {}, {"i": np.array([0, 2, 3], np.int64), "d": np.array(4, np.int64),
                    "v": np.array([0, 1], F32)}, {}, 20, 24 + 8 + 8, 48),
    ("Scatter", {"a": (3, 3)}, {"i": np.zeros((1, 3), np.int64), "u": x(1, 3)}, {}, 10, 36 + 24 + 12, 36),
])
def test_copies(op, inputs, inits, attrs, opset, read, written):
    check(one_node(op, inputs, inits=inits, opset=opset, **attrs), Kind.DATA_MOVEMENT,
          read=read, written=written, view=0)


def test_max_unpool():
    # (1, 1, 2, 2) values with their indices, 2x2 stride 2 -> (1, 1, 4, 4): 16 + 32 read, 64 written
    inits = {"ix": np.array([0, 3, 8, 15], np.int64).reshape(1, 1, 2, 2)}
    check(one_node("MaxUnpool", {"a": (1, 1, 2, 2)}, inits=inits, kernel_shape=[2, 2], strides=[2, 2]),
          Kind.DATA_MOVEMENT, read=48, written=64)


def test_eye_like_reads_no_values():
    check(one_node("EyeLike", {"a": (3, 4)}), Kind.DATA_MOVEMENT, read=0, written=48, fill=1)


# ---------------------------------------------------------------- Einsum variants
@pytest.mark.parametrize("eq,a,b,macs,flops,dims", [
    ("...ij,...jk->...ik", (2, 1, 4, 5), (1, 3, 5, 6), 6 * 4 * 5 * 6, 0, (6, 4, 5, 6)),  # broadcast batch
    ("ij,jk", (3, 4), (4, 5), 60, 0, (1, 3, 4, 5)),                                # implicit output
    ("bhid,bhjd->bhij", (2, 3, 4, 8), (2, 3, 5, 8), 6 * 4 * 8 * 5, 0, (6, 4, 8, 5)),  # attention
    ("ij,k->i", (3, 4), (5,), 3, 12 + 5, (1, 3, 1, 1)),                       # one-sided sums first
])
def test_einsum_variants(eq, a, b, macs, flops, dims):
    w = check(one_node("Einsum", {"a": a, "b": b}, equation=eq), Kind.MATMUL, macs=macs, flops=flops)
    assert (w.dims["b"], w.dims["m"], w.dims["k"], w.dims["n"]) == dims


@pytest.mark.parametrize("eq,shapes,why", [
    ("ij->ji", [(3, 4)], "two-operand"),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], "two-operand"),
])
def test_einsum_outside_matrix_products_is_unsupported(eq, shapes, why):
    inputs = {f"t{i}": s for i, s in enumerate(shapes)}
    g = load_graph(one_node("Einsum", inputs, equation=eq))
    with pytest.raises(UnsupportedOpError, match=why):
        workload_of(g, g.nodes[0])


# ---------------------------------------------------------------- the registry itself
def test_every_rule_is_tested():
    import sys
    module = sys.modules[__name__]
    source = open(module.__file__).read()
    covered = TESTED_IN_TEST_OPS | {op for op in RULES.names() if f'"{op}"' in source}
    assert set(RULES.names()) <= covered, sorted(set(RULES.names()) - covered)


def test_each_op_type_has_exactly_one_rule():
    from compiler.workload import rule
    with pytest.raises(RuntimeError, match="two workload rules named 'Conv'"):
        rule("Conv", kind=Kind.CONV, formula="again")(lambda g, n: None)

"""Workload rules on one-node graphs with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.frontend import load_graph
from compiler.workload import Kind, UnsupportedOpError, supported_ops, workload_of

from .graphs import one_node

REQUIRED = set("""Add Sub Mul Div Neg Abs Relu LeakyRelu Sigmoid Tanh Exp Log Sqrt Reciprocal Pow Erf
Sign Clip Where Equal Less Greater LessOrEqual GreaterOrEqual Not And Or Cast Max Min Sum Mean
ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL2 ReduceSumSquare ArgMax ArgMin Softmax
LogSoftmax BatchNormalization LayerNormalization MaxPool AveragePool GlobalAveragePool
GlobalMaxPool Conv ConvTranspose MatMul Gemm Reshape Flatten Transpose Squeeze Unsqueeze Concat
Split Slice Gather GatherElements ScatterElements ScatterND Expand Tile Pad Identity Shape Size
Constant ConstantOfShape Range Dropout Einsum""".split())


def load(model):
    g = load_graph(model)
    return g, workload_of(g, g.nodes[0])


def test_every_required_op_has_a_rule():
    assert REQUIRED <= supported_ops()


@pytest.mark.parametrize("a,b,macs,dims", [
    ((3, 4), (4, 5), 60, (1, 3, 4, 5)),
    ((2, 1, 3, 4), (7, 4, 5), 2 * 7 * 60, (14, 3, 4, 5)),   # batch dims broadcast
    ((4,), (4, 5), 20, (1, 1, 4, 5)),                        # 1-D left operand
    ((6, 3, 4), (4,), 72, (6, 3, 4, 1)),                     # 1-D right operand
])
def test_matmul(a, b, macs, dims):
    g, w = load(one_node("MatMul", {"a": a, "b": b}))
    assert w.kind is Kind.MATMUL and w.macs == macs
    assert (w.dims["b"], w.dims["m"], w.dims["k"], w.dims["n"]) == dims
    assert w.bytes_read == 4 * (np.prod(a) + np.prod(b)) and w.dims["bytes_in1"] == 4 * np.prod(b)
    assert w.bytes_written == g.tensor("y").nbytes


def test_gemm_transb_bias_alpha():
    inits = {"w": np.ones((5, 4), np.float32), "c": np.ones(5, np.float32)}
    _, w = load(one_node("Gemm", {"a": (3, 4)}, inits=inits, transB=1, alpha=2.0))
    assert (w.macs, w.flops) == (3 * 4 * 5, 2 * 3 * 5)
    _, w = load(one_node("Gemm", {"a": (4, 3), "b": (4, 5)}, transA=1))
    assert (w.macs, w.flops, w.dims["m"], w.dims["k"]) == (60, 0, 3, 4)


@pytest.mark.parametrize("x,wt,attrs,out_hw,macs", [
    ((1, 3, 8, 8), (4, 3, 3, 3), {}, (6, 6), 4 * 36 * 27),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}, (4, 4), 2 * 4 * 16 * 27),
    ((1, 4, 8, 8), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}, (8, 8), 6 * 64 * 2 * 9),
    ((1, 2, 9, 9), (2, 2, 3, 3), {"dilations": [2, 2]}, (5, 5), 2 * 25 * 18),
    ((1, 2, 7, 7), (2, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (4, 4), 2 * 16 * 18),
    ((5, 64, 7, 7), (64, 64, 7, 7), {"pads": [3, 3, 3, 3]}, (7, 7), 5 * 64 * 49 * 64 * 49),  # large kernel
])
def test_conv(x, wt, attrs, out_hw, macs):
    g, w = load(one_node("Conv", {"x": x}, inits={"w": np.ones(wt, np.float32)}, **attrs))
    assert g.tensor("y").shape[2:] == out_hw
    assert w.kind is Kind.CONV and w.macs == macs and w.dims["transposed"] == 0
    assert w.dims["g"] == attrs.get("group", 1)


def test_conv_same_pads_and_unknown_auto_pad():
    _, w = load(one_node("Conv", {"x": (1, 1, 7, 7)}, inits={"w": np.ones((1, 1, 4, 4), np.float32)},
                         auto_pad="SAME_LOWER"))
    assert (w.dims["pad_h"], w.dims["pad_h_end"]) == (2, 1)
    g = load_graph(one_node("Conv", {"x": (1, 1, 7, 7)}, inits={"w": np.ones((1, 1, 3, 3), np.float32)}))
    node = g.nodes[0]
    bad = node.__class__(node.name, node.op_type, node.inputs, node.outputs, {"auto_pad": "MAGIC"})
    with pytest.raises(UnsupportedOpError, match="auto_pad"):
        workload_of(g.with_nodes([bad]), bad)


def test_conv_transpose():
    # input 1x4x5x5, weight [c_in=4, c_out/g=3, 3, 3], stride 2 -> 11x11
    g, w = load(one_node("ConvTranspose", {"x": (1, 4, 5, 5)},
                         inits={"w": np.ones((4, 3, 3, 3), np.float32)}, strides=[2, 2]))
    assert g.tensor("y").shape == (1, 3, 11, 11)
    assert w.macs == 1 * 4 * 25 * 3 * 9 and w.dims["transposed"] == 1 and w.dims["k"] == 3


@pytest.mark.parametrize("op,attrs,out,flops", [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}, (2, 3, 4, 4), 2 * 3 * 16 * 4),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, (2, 3, 8, 8), 2 * 3 * 64 * 9),
    ("GlobalAveragePool", {}, (2, 3, 1, 1), 2 * 3 * 64),
    ("GlobalMaxPool", {}, (2, 3, 1, 1), 2 * 3 * 64),
])
def test_pooling(op, attrs, out, flops):
    g, w = load(one_node(op, {"x": (2, 3, 8, 8)}, **attrs))
    assert g.tensor("y").shape == out and w.kind is Kind.POOL and w.flops == flops and w.macs == 0


@pytest.mark.parametrize("op,flops,trans", [
    ("ReduceSum", 24, 0), ("ReduceMean", 24, 0), ("ReduceMax", 24, 0), ("ReduceMin", 24, 0),
    ("ReduceProd", 24, 0), ("ReduceSumSquare", 48, 0), ("ReduceL2", 48, 2), ("ArgMax", 24, 0),
    ("ArgMin", 24, 0),
])
def test_reductions(op, flops, trans):
    attrs = {"axis": 1, "keepdims": 0} if op.startswith("Arg") else {"keepdims": 0}
    inits = {} if op.startswith("Arg") else {"axes": np.array([1, 2], np.int64)}
    g, w = load(one_node(op, {"x": (2, 3, 4)}, inits=inits, **attrs))
    assert w.kind is Kind.REDUCTION and w.flops == flops and w.dims["transcendental"] == trans


def test_softmax():
    _, w = load(one_node("Softmax", {"x": (4, 10)}, axis=-1))
    assert w.flops == 5 * 40 and w.dims["transcendental"] == 40
    _, w = load(one_node("LogSoftmax", {"x": (4, 10)}, axis=1))
    assert w.dims["transcendental"] == 44


@pytest.mark.parametrize("op,per,trans", [("Add", 1, 0), ("Relu", 1, 0), ("Sigmoid", 4, 1),
                                          ("Exp", 1, 1), ("Erf", 1, 1), ("LeakyRelu", 2, 0)])
def test_elementwise(op, per, trans):
    inputs = {"a": (2, 1, 5), "b": (3, 1)} if op == "Add" else {"a": (2, 3, 5)}
    _, w = load(one_node(op, inputs))
    assert w.kind is Kind.ELEMENTWISE and w.flops == 30 * per and w.dims["transcendental"] == 30 * trans


def test_variadic_and_where():
    _, w = load(one_node("Sum", {"a": (4,), "b": (4,), "c": (4,)}))
    assert w.flops == 8
    _, w = load(one_node("Mean", {"a": (4,), "b": (4,)}))
    assert w.flops == 8


def test_batch_norm_modes():
    inits = {k: np.ones(3, np.float32) for k in ("g", "b", "m", "v")}
    _, w = load(one_node("BatchNormalization", {"x": (2, 3, 4, 4)}, inits=inits))
    assert w.kind is Kind.NORMALIZATION and w.flops == 2 * 96
    _, w = load(one_node("BatchNormalization", {"x": (2, 3, 4, 4)}, inits=inits,
                         output_shapes={"y": None, "rm": None, "rv": None}, training_mode=1))
    assert w.flops == 7 * 96 and w.dims["training"] == 1


def test_views_and_copies():
    g, w = load(one_node("Reshape", {"x": (2, 6)}, inits={"s": np.array([3, 4], np.int64)}))
    assert (w.kind, w.bytes_read, w.bytes_written, w.dims["view"]) == (Kind.DATA_MOVEMENT, 0, 0, 1)
    _, w = load(one_node("Transpose", {"x": (2, 6)}, perm=[1, 0]))
    assert (w.bytes_read, w.bytes_written, w.flops, w.dims["view"]) == (48, 48, 0, 0)
    _, w = load(one_node("Pad", {"x": (2, 6)}, inits={"p": np.array([1, 1, 1, 1], np.int64)}, mode="reflect"))
    assert w.bytes_written == 4 * 4 * 8
    g = load_graph(one_node("Pad", {"x": (2, 6)}, inits={"p": np.array([1, 1, 1, 1], np.int64)}))
    node = g.nodes[0]
    odd = node.__class__(node.name, node.op_type, node.inputs, node.outputs, {"mode": "mirror"})
    with pytest.raises(UnsupportedOpError, match="mirror"):
        workload_of(g.with_nodes([odd]), odd)


def test_metadata_ops():
    _, w = load(one_node("Shape", {"x": (2, 6)}))
    assert w.kind is Kind.NONE and w.bytes_read == 0


@pytest.mark.parametrize("eq,macs,ok", [("bij,bjk->bik", 2 * 3 * 4 * 5, True),
                                        ("ij,kj->ik", 3 * 4 * 5, True),
                                        ("ii,ij->ij", 0, False)])
def test_einsum(eq, macs, ok):
    shapes = {"bij,bjk->bik": ((2, 3, 4), (2, 4, 5)), "ij,kj->ik": ((3, 4), (5, 4)),
              "ii,ij->ij": ((3, 3), (3, 4))}[eq]
    g = load_graph(one_node("Einsum", {"a": shapes[0], "b": shapes[1]}, equation=eq))
    if ok:
        assert workload_of(g, g.nodes[0]).macs == macs
    else:
        with pytest.raises(UnsupportedOpError, match="Einsum.*n0.*repeated"):
            workload_of(g, g.nodes[0])

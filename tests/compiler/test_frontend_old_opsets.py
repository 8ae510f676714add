"""Graphs at opsets 7-10, built by hand with onnx.helper as old model-zoo files are: operators
that carry in attributes what later opsets take as inputs, Dropout with a ratio and a mask,
Upsample, Reshape from constant shapes, weights from ConstantOfShape. Static shapes resolve and
the workloads match hand-worked values without any exporter involved."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from compiler.frontend import load_graph
from compiler.ir import Role
from compiler.passes import run_pipeline
from compiler.workload import Kind, graph_workloads, workload_of

from .graphs import graph_of

F32 = np.float32


@pytest.mark.parametrize("opset,mask_dtype", [(7, "float32"), (9, "float32"), (10, "bool")])
def test_old_dropout_with_ratio_and_mask(opset, mask_dtype):
    # onnx's inference leaves the mask of Dropout-7/9 open; the spec gives it the data's shape
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop", ratio=0.3),
             helper.make_node("Relu", ["d"], ["y"], name="relu")]
    g = load_graph(graph_of(nodes, {"x": (2, 3)}, ["y"], opset=opset))
    assert g.tensor("mask").shape == (2, 3) and g.tensor("mask").dtype == mask_dtype
    w = workload_of(g, g.nodes[0])   # inference: a view that writes its all-true mask
    assert (w.kind, w.flops, w.bytes_read, w.bytes_written) == (Kind.DATA_MOVEMENT, 0, 0, g.tensor("mask").nbytes)
    assert [n.op_type for n in run_pipeline(g).nodes] == ["Relu"]   # nobody reads the mask


def test_dropout_mask_read_downstream_stays():
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], ratio=0.5),
             helper.make_node("Mul", ["d", "mask"], ["y"])]
    g = run_pipeline(load_graph(graph_of(nodes, {"x": (2, 3)}, ["y"], opset=9)))
    assert [n.op_type for n in g.nodes] == ["Dropout", "Mul"]


def test_upsample_opset7_attribute_and_opset9_input():
    up7 = helper.make_node("Upsample", ["x"], ["y"], mode="nearest", scales=[1.0, 1.0, 2.0, 3.0])
    assert load_graph(graph_of([up7], {"x": (1, 2, 4, 4)}, ["y"], opset=7)).tensor("y").shape == (1, 2, 8, 12)
    up9 = helper.make_node("Upsample", ["x", "s"], ["y"], mode="linear")
    g = load_graph(graph_of([up9], {"x": (1, 2, 4, 4)}, ["y"], {"s": np.array([1, 1, 2, 2], F32)}, opset=9))
    assert g.tensor("y").shape == (1, 2, 8, 8)
    assert graph_workloads(g)[g.nodes[0].name].flops == 128 * 7   # bilinear: 4 taps


def test_reshape_from_an_initializer_and_from_a_constant_node():
    shape = numpy_helper.from_array(np.array([3, -1], np.int64))
    nodes = [helper.make_node("Reshape", ["x", "s"], ["a"]),
             helper.make_node("Constant", [], ["t"], value=shape),
             helper.make_node("Reshape", ["a", "t"], ["y"])]
    g = load_graph(graph_of(nodes, {"x": (2, 6)}, ["y"], {"s": np.array([4, 3], np.int64)}, opset=7))
    assert g.tensor("a").shape == (4, 3) and g.tensor("y").shape == (3, 4)
    assert list(g.constants["t"]) == [3, -1] and g.tensor("t").role is Role.CONSTANT


@pytest.mark.parametrize("opset,attrs", [(7, {"spatial": 1, "momentum": 0.9, "epsilon": 1e-5}),
                                         (9, {"momentum": 0.9, "epsilon": 1e-5})])
def test_batch_norm_with_old_attributes(opset, attrs):
    inits = {k: np.ones(3, F32) for k in ("g", "b", "m", "v")}
    node = helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], **attrs)
    g = load_graph(graph_of([node], {"x": (2, 3, 4, 4)}, ["y"], inits, opset=opset))
    w = workload_of(g, g.nodes[0])
    assert (w.kind, w.flops, w.dims["training"]) == (Kind.NORMALIZATION, 2 * 96, 0)
    assert all(g.tensor(k).role is Role.PARAMETER for k in inits)


def test_weights_from_constant_of_shape():
    # a Conv whose weight is a fill: its shape comes from a constant, its MACs from the shape
    fill = helper.make_node("ConstantOfShape", ["ws"], ["w"],
                            value=numpy_helper.from_array(np.array([0.5], F32)))
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    g = load_graph(graph_of([fill, conv], {"x": (1, 3, 8, 8)}, ["y"],
                            {"ws": np.array([4, 3, 3, 3], np.int64)}, opset=9))
    assert g.tensor("w").shape == (4, 3, 3, 3) and g.tensor("w").role is Role.CONSTANT
    assert graph_workloads(g)[g.nodes[1].name].macs == 4 * 64 * 27


def test_a_classic_cnn_at_opset_7_with_attribute_operands():
    """Pad (pads attribute), MaxPool, Squeeze/Unsqueeze (axes attributes), ReduceMean (axes
    attribute), Split (split attribute), Softmax with the 2-D coercion of opset < 13, Gemm."""
    inits = {"w": np.ones((8, 3, 3, 3), F32), "fc": np.ones((10, 8), F32), "fb": np.zeros(10, F32)}
    nodes = [
        helper.make_node("Pad", ["x"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="constant"),
        helper.make_node("Conv", ["p", "w"], ["c"]),                           # (1, 8, 8, 8)
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),   # (1, 8, 4, 4)
        helper.make_node("Split", ["m"], ["s0", "s1"], axis=1, split=[4, 4]),
        helper.make_node("Concat", ["s1", "s0"], ["cat"], axis=1),
        helper.make_node("ReduceMean", ["cat"], ["avg"], axes=[2, 3], keepdims=1),        # (1, 8, 1, 1)
        helper.make_node("Squeeze", ["avg"], ["sq"], axes=[2, 3]),                         # (1, 8)
        helper.make_node("Gemm", ["sq", "fc", "fb"], ["logits"], transB=1),                # (1, 10)
        helper.make_node("Unsqueeze", ["logits"], ["u"], axes=[1]),                        # (1, 1, 10)
        helper.make_node("Softmax", ["u"], ["y"], axis=1),
    ]
    g = load_graph(graph_of(nodes, {"x": (1, 3, 8, 8)}, ["y"], inits, opset=7))
    shapes = {n: g.tensor(n).shape for n in ("p", "c", "m", "s0", "avg", "sq", "logits", "y")}
    assert shapes == {"p": (1, 3, 10, 10), "c": (1, 8, 8, 8), "m": (1, 8, 4, 4), "s0": (1, 4, 4, 4),
                      "avg": (1, 8, 1, 1), "sq": (1, 8), "logits": (1, 10), "y": (1, 1, 10)}
    loads = graph_workloads(run_pipeline(g))
    assert sum(w.macs for w in loads.values()) == 8 * 64 * 27 + 8 * 10
    softmax = next(n for n in g.nodes if n.op_type == "Softmax")
    assert workload_of(g, softmax).dims["rows"] == 1   # opset 7: 2-D at axis 1 -> 1 row of 10


def test_slice_and_topk_with_attribute_operands_at_opset_9():
    nodes = [helper.make_node("Slice", ["x"], ["s"], axes=[1], starts=[1], ends=[5]),
             helper.make_node("TopK", ["s"], ["v", "i"], k=2, axis=1)]
    g = load_graph(graph_of(nodes, {"x": (3, 8)}, ["v", "i"], opset=9))
    assert g.tensor("s").shape == (3, 4) and g.tensor("v").shape == (3, 2)
    assert workload_of(g, g.nodes[1]).flops == 12   # k = 2: one compare per element
    assert g.tensor("i").dtype == "int64" and g.tensor("i").role is Role.OUTPUT

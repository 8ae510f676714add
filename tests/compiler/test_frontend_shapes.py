"""compiler.shapes: shapes that ONNX inference alone leaves open are resolved from computed values
without onnx's data propagation, with a bounded number of inference runs, and without the
memory onnx's data propagation would take."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import load_graph
from compiler.shapes import Resolver

from .graphs import graph_of

ROOT = Path(__file__).resolve().parents[2]


def _reshape_chain(layers: int, ops_per_layer: int):
    """`layers` times: a Reshape whose target is computed from the current shape (Shape ->
    Gather -> Concat, as torch's exporter writes a flatten), then `ops_per_layer` elementwise
    ops. Inference alone stops at every Reshape."""
    inits = {"i0": np.array(0, np.int64), "ax": np.array([0], np.int64), "m1": np.array([-1], np.int64)}
    nodes, cur = [], "x"
    for k in range(layers):
        nodes += [helper.make_node("Shape", [cur], [f"s{k}"]),
                  helper.make_node("Gather", [f"s{k}", "i0"], [f"d{k}"], axis=0),
                  helper.make_node("Unsqueeze", [f"d{k}", "ax"], [f"u{k}"]),
                  helper.make_node("Concat", [f"u{k}", "m1"], [f"t{k}"], axis=0),
                  helper.make_node("Reshape", [cur, f"t{k}"], [f"r{k}"])]
        cur = f"r{k}"
        for j in range(ops_per_layer):
            nodes.append(helper.make_node("Relu" if j % 2 else "Neg", [cur], [f"a{k}_{j}"]))
            cur = f"a{k}_{j}"
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    return graph_of(nodes, {"x": (3, 4, 5)}, ["y"], inits, opset=17)


def test_shapes_behind_computed_reshape_targets_resolve(monkeypatch):
    calls = []
    real = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes",
                        lambda *a, **k: calls.append(k) or real(*a, **k))
    g = load_graph(_reshape_chain(layers=3, ops_per_layer=100))
    assert g.tensor("y").shape == (3, 20) and g.tensor("r2").shape == (3, 20)
    assert all(not k.get("data_prop") for k in calls)   # never onnx's data propagation
    # 3 x 100 nodes behind unresolved Reshapes: whole-graph re-inference after at most
    # REINFER_AFTER single-node inferences, not one inference per node
    assert len(calls) <= 3 * (Resolver.REINFER_AFTER + 4)


def test_a_long_vector_costs_no_memory_in_shape_inference():
    # onnx 1.23's data propagation for Add/Sub/Mul builds one shape dimension (~150 bytes) per
    # element of a 1-D operand: 4 M elements would take ~600 MB. Measured in a fresh process.
    code = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
from onnx import helper, TensorProto
from compiler.frontend import load_graph
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2**22])
nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "r"], ["y"])]
model = helper.make_model(helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", 0, None)]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
g = load_graph(model)
assert g.tensor("y").shape == (2**22,)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) < 100, f"load_graph grew the peak RSS by {out.stdout.strip()} MiB"


@pytest.mark.parametrize("op", ["MeanVarianceNormalization", "GroupNormalization"])
def test_ops_whose_onnx_inference_fails_take_their_shape_from_the_spec(op):
    # onnx 1.23 cannot infer these function ops in strict mode; their output has the input's shape
    attrs = {"num_groups": 2} if op == "GroupNormalization" else {}
    inits = {"s": np.ones(4, np.float32), "b": np.zeros(4, np.float32)} if op == "GroupNormalization" else {}
    node = helper.make_node(op, ["x", *inits], ["n"], **attrs)
    after = helper.make_node("Relu", ["n"], ["y"])
    g = load_graph(graph_of([node, after], {"x": (2, 4, 3, 3)}, ["y"], inits, opset=21))
    assert g.tensor("n").shape == (2, 4, 3, 3) and g.tensor("y").shape == (2, 4, 3, 3)


def test_compress_with_a_constant_condition():
    node = helper.make_node("Compress", ["x", "c"], ["y"], axis=1)
    g = load_graph(graph_of([node], {"x": (2, 5)}, ["y"], {"c": np.array([1, 0, 1, 1, 0], bool)}))
    assert g.tensor("y").shape == (2, 3)


def test_nonzero_of_a_constant_is_evaluated():
    nodes = [helper.make_node("NonZero", ["c"], ["nz"]), helper.make_node("Cast", ["nz"], ["y"], to=1)]
    g = load_graph(graph_of(nodes, {}, ["y"], {"c": np.array([[1, 0], [0, 1]], np.int64)}))
    assert g.tensor("y").shape == (2, 2) and g.constants["nz"].tolist() == [[0, 1], [0, 1]]


def test_a_shape_from_the_files_value_info_is_not_trusted_when_inference_fails():
    # MatMul of mismatched operands, its output declared (2, 5) in the file: strict inference
    # fails, and the declared shape must not stand in for an inferred one
    model = graph_of([helper.make_node("MatMul", ["a", "b"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
                     {"a": (2, 3), "b": (4, 5)}, ["y"])
    model.graph.value_info.append(helper.make_tensor_value_info("m", TensorProto.FLOAT, [2, 5]))
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    model.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 2
    model.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 5
    from compiler.errors import ModelError
    with pytest.raises(ModelError, match="cannot resolve a static shape for tensor 'm'"):
        load_graph(model)


def test_initializer_values_feed_reshape_without_data_propagation():
    shape = numpy_helper.from_array(np.array([5, -1], np.int64), "s")
    model = graph_of([helper.make_node("Reshape", ["x", "s"], ["y"])], {"x": (2, 10)}, ["y"])
    model.graph.initializer.append(shape)
    assert load_graph(model).tensor("y").shape == (5, 4)


def test_a_constant_einsum_of_many_operands_is_not_evaluated():
    # three 4096-element constant vectors contracted to a scalar: evaluating it would take
    # 4096^3 steps; its shape is all the compiler needs
    v = {k: np.ones(4096, np.float32) for k in "abc"}
    node = helper.make_node("Einsum", ["a", "b", "c"], ["s"], equation="i,j,k->")
    g = load_graph(graph_of([node, helper.make_node("Relu", ["s"], ["y"])], {}, ["y"], v))
    assert g.tensor("s").shape == () and "s" not in g.constants

"""compiler.frontend node order: a file already in topological order keeps its order, any other
is put in one; a cycle or a tensor nothing produces is an error."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from compiler.frontend import ModelError, load_graph


def _model(nodes):
    # every intermediate tensor typed, so that shape inference accepts a file out of order
    graph = helper.make_graph(
        nodes, "order", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        value_info=[helper.make_tensor_value_info(t, TensorProto.FLOAT, [2, 3]) for t in "abc"])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _chain():
    return [helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("Neg", ["a"], ["b"], name="neg"),
            helper.make_node("Exp", ["x"], ["c"], name="exp"),
            helper.make_node("Add", ["b", "c"], ["y"], name="add")]


def test_a_file_in_order_keeps_its_order():
    assert [n.name for n in load_graph(_model(_chain())).nodes] == ["relu", "neg", "exp", "add"]


def test_a_file_out_of_order_is_sorted_producers_first():
    relu, neg, exp, add = _chain()
    graph = load_graph(_model([add, neg, exp, relu]))
    # depth-first from each node in file order, its producers before it
    assert [n.name for n in graph.nodes] == ["relu", "neg", "exp", "add"]
    assert graph.tensor("y").shape == (2, 3)


def test_a_node_reading_its_own_output_is_a_cycle():
    nodes = [helper.make_node("Add", ["x", "y"], ["y"], name="loop")]
    with pytest.raises(ModelError, match="cycle"):
        load_graph(_model(nodes))


def test_reading_a_tensor_nothing_produces_is_an_error():
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    with pytest.raises(ModelError, match="'ghost', which is neither an input"):
        load_graph(_model(nodes))

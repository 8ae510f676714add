"""compiler.frontend node order: a file already in topological order keeps its order, any other
is put in one (graphlib; among the nodes ready to run, the earliest in the file first); a cycle,
a tensor produced twice or a tensor nothing produces is an error."""

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
    # ready at first: exp (file position 2) and relu (3); exp goes first; relu frees neg (1),
    # which frees add (0)
    assert [n.name for n in graph.nodes] == ["exp", "relu", "neg", "add"]
    assert graph.tensor("y").shape == (2, 3)


def test_the_order_does_not_depend_on_anything_but_the_file():
    relu, neg, exp, add = _chain()
    orders = {tuple(n.name for n in load_graph(_model([add, relu, exp, neg])).nodes) for _ in range(3)}
    assert orders == {("relu", "exp", "neg", "add")}


def test_a_node_reading_its_own_output_is_a_cycle():
    nodes = [helper.make_node("Add", ["x", "y"], ["y"], name="loop")]
    with pytest.raises(ModelError, match="cycle through node 'loop'"):
        load_graph(_model(nodes))


def test_a_longer_cycle_names_its_nodes_in_data_flow_order():
    nodes = [helper.make_node("Relu", ["c"], ["a"], name="p"),
             helper.make_node("Neg", ["a"], ["b"], name="q"),
             helper.make_node("Exp", ["b"], ["c"], name="r"),
             helper.make_node("Add", ["x", "c"], ["y"], name="out")]
    with pytest.raises(ModelError, match=r"cycle through node '(p|q|r)' \((p|q|r) -> (p|q|r) -> (p|q|r) -> \1\)"):
        load_graph(_model(nodes))


def test_a_tensor_produced_twice_names_both_producers():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="first"),
             helper.make_node("Neg", ["x"], ["a"], name="second"),
             helper.make_node("Add", ["a", "x"], ["y"], name="add")]
    with pytest.raises(ModelError, match="'a' is produced twice, by nodes 'first' \\(Relu\\) and 'second'"):
        load_graph(_model(nodes))


def test_overwriting_a_graph_input_is_an_error():
    nodes = [helper.make_node("Relu", ["x"], ["x"], name="clobber"),
             helper.make_node("Neg", ["x"], ["y"], name="neg")]
    with pytest.raises(ModelError, match="'clobber' \\(Relu\\) writes 'x', which is a graph input"):
        load_graph(_model(nodes))


def test_reading_a_tensor_nothing_produces_is_an_error():
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    with pytest.raises(ModelError, match="'ghost', which is neither an input"):
        load_graph(_model(nodes))

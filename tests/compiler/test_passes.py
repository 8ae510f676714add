"""compiler.passes: each pass keeps what the graph computes (checked by running the IR graph,
turned back into ONNX, in the ONNX reference evaluator) and keeps the graph valid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.errors import InternalError
from compiler.frontend import load_graph
from compiler.ir import Graph, Role
from compiler.passes import (PIPELINE, check_graph, eliminate_dead_nodes, fold_constants_metadata,
                             remove_identities, run_pipeline)
from compiler.workload import graph_workloads

from ..goldens import CONV4_64_MACS
from .graphs import FIXTURES, conv4_hand

_NP_TO_ONNX = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "bool": TensorProto.BOOL}


def evaluate(graph: Graph, feeds: dict[str, np.ndarray], params: dict[str, np.ndarray]):
    """Run an IR graph: rebuild ONNX from it (values of sources from `params`/constants)."""
    sources = {t.name for t in graph.tensors.values()
               if t.role in (Role.PARAMETER, Role.CONSTANT) and t.name not in graph.inputs}
    produced = {o for n in graph.nodes for o in n.outputs}
    inits = []
    for name in sorted(sources - produced):
        value = params.get(name, graph.constants.get(name))
        inits.append(numpy_helper.from_array(np.asarray(value), name))
    nodes = [helper.make_node(n.op_type, list(n.inputs), list(n.outputs), name=n.name,
                              **{k: (numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v)
                                 for k, v in n.attrs.items()}) for n in graph.nodes]
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(i, _NP_TO_ONNX[graph.tensor(i).dtype], graph.tensor(i).shape)
         for i in graph.inputs],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in graph.outputs], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    return ReferenceEvaluator(model).run(None, feeds)


def chain_model(ops: list[str]):
    """x -> ops... -> y, with a dead side branch and a computed reshape target."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    nodes, cur = [], "x"
    for i, op in enumerate(ops):
        out = f"t{i}"
        if op == "Reshape":
            nodes += [helper.make_node("Shape", [cur], [f"s{i}"]),
                      helper.make_node("Reshape", [cur, f"s{i}"], [out])]
        elif op == "Flatten":
            nodes.append(helper.make_node("Flatten", [cur], [out], axis=0))
            nodes.append(helper.make_node("Reshape", [out, "shape234"], [f"{out}b"]))
            out = f"{out}b"
        else:
            nodes.append(helper.make_node(op, [cur], [out]))
        nodes.append(helper.make_node("Exp", [cur], [f"dead{i}"]))
        cur = out
    nodes.append(helper.make_node("Add", [cur, "x"], ["y"]))
    inits = [numpy_helper.from_array(np.array([2, 3, 4], np.int64), "shape234")]
    g = helper.make_graph(nodes, "chain", [x], [helper.make_tensor_value_info("y", 1, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])


OPS = st.lists(st.sampled_from(["Identity", "Relu", "Neg", "Reshape", "Flatten", "Dropout"]),
               min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(ops=OPS, seed=st.integers(0, 2**16))
def test_passes_keep_semantics(ops, seed):
    graph = load_graph(chain_model(ops))
    x = np.random.default_rng(seed).standard_normal((2, 3, 4)).astype(np.float32)
    want = evaluate(graph, {"x": x}, {})
    for step in (*PIPELINE, run_pipeline):
        out = check_graph(step(graph))
        np.testing.assert_allclose(evaluate(out, {"x": x}, {})[0], want[0], rtol=1e-6)
    final = run_pipeline(graph)
    assert not any(n.op_type in ("Identity", "Dropout", "Exp", "Shape") for n in final.nodes)
    assert final.outputs == graph.outputs


def test_passes_keep_conv4_semantics_and_costs():
    model = conv4_hand(reshape=True)
    graph = load_graph(model)
    params = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    x = np.random.default_rng(1).standard_normal((1, 1, 28, 28)).astype(np.float32)
    after = run_pipeline(graph)
    np.testing.assert_allclose(evaluate(after, {"x": x}, params)[0],
                               evaluate(graph, {"x": x}, params)[0], rtol=1e-5)
    assert sum(w.macs for w in graph_workloads(after).values()) == CONV4_64_MACS


@pytest.mark.parametrize("name", ["sine_maml", "conv4_train", "conv4_infer_torch"])
def test_pipeline_on_exported_graphs_keeps_arithmetic(name):
    graph = load_graph(FIXTURES / f"{name}.onnx")
    after = run_pipeline(graph)
    before_w, after_w = graph_workloads(graph), graph_workloads(after)
    assert sum(w.macs for w in after_w.values()) == sum(w.macs for w in before_w.values())
    # only folded metadata/constant arithmetic may disappear
    assert sum(w.flops for w in after_w.values()) <= sum(w.flops for w in before_w.values())
    assert set(after.outputs) == set(graph.outputs)


def test_passes_are_pure():
    graph = load_graph(chain_model(["Identity", "Reshape"]))
    nodes, tensors = list(graph.nodes), dict(graph.tensors)
    for step in (eliminate_dead_nodes, fold_constants_metadata, remove_identities):
        step(graph)
    assert graph.nodes == nodes and graph.tensors == tensors


def test_check_graph_rejects_bad_order_as_an_internal_error():
    # load_graph rejects bad input itself; a broken IR graph is a compiler bug (exit code 1)
    graph = load_graph(chain_model(["Relu", "Neg"]))
    with pytest.raises(InternalError, match="before it is produced") as err:
        check_graph(graph.with_nodes(reversed(graph.nodes)))
    assert not isinstance(err.value, ValueError)


def test_check_graph_holds_without_assert_statements():
    # python -O strips `assert`; the checks must be real exceptions
    import ast
    import inspect

    import compiler.passes as passes
    tree = ast.parse(inspect.getsource(passes))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Assert)]


@pytest.mark.parametrize("break_it,message", [
    (lambda g: g.with_nodes(g.nodes + g.nodes[-1:]), "duplicate node name"),
    (lambda g: g.with_nodes([g.nodes[0].__class__(g.nodes[0].name, "Relu", ("ghost",), g.nodes[0].outputs)]
                            + g.nodes[1:]), "unknown tensor 'ghost'"),
])
def test_check_graph_names_the_broken_invariant(break_it, message):
    graph = load_graph(chain_model(["Relu", "Neg"]))
    with pytest.raises(InternalError, match=message):
        check_graph(break_it(graph))


def test_an_unread_dropout_mask_is_removed_with_its_dropout():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], ratio=0.5),
             helper.make_node("Relu", ["d"], ["y"])]
    g = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", 1, None)])
    graph = load_graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)]))
    after = run_pipeline(graph)
    assert [n.op_type for n in after.nodes] == ["Relu"] and after.nodes[0].inputs == ("x",)
    assert "mask" not in after.tensors

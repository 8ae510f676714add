"""compiler.frontend: safe reading, static shapes, roles, scopes, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import ModelError, load_graph
from compiler.ir import Role
from hwsim.scope import Scope
from compiler.workload import UnsupportedOpError, graph_workloads

from .graphs import FIXTURES, conv4_hand, one_node

from tests.goldens import CONV4_64_MACS as CONV4_MACS
CONV4_PARAMS = 112_261      # learnable parameters incl. BN gamma/beta, 5-way head
BN_RUNNING_STATS = 4 * 2 * 64


def _macs(graph):
    return sum(w.macs for w in graph_workloads(graph).values())


@pytest.mark.parametrize("source", ["torch", "hand_flatten", "hand_reshape"])
def test_conv4_macs_and_parameters(source):
    if source == "torch":
        graph = load_graph(FIXTURES / "conv4_infer_torch.onnx")
    else:
        graph = load_graph(conv4_hand(reshape=source == "hand_reshape"))
    assert _macs(graph) == CONV4_MACS
    bn_stats = {n.inputs[i] for n in graph.nodes if n.op_type == "BatchNormalization" for i in (3, 4)}
    params = [t for t in graph.tensors.values() if t.role is Role.PARAMETER]
    learnable = sum(t.nbytes for t in params if t.name not in bn_stats)
    assert learnable == CONV4_PARAMS * 4
    assert sum(graph.tensor(n).nbytes for n in bn_stats) == BN_RUNNING_STATS * 4
    assert all(graph.tensor(n).role is Role.PARAMETER for n in bn_stats)


def test_conv4_batch_dims():
    assert _macs(load_graph(conv4_hand(batch=2))) == 2 * CONV4_MACS
    with pytest.raises(ModelError, match="batch_size"):
        load_graph(conv4_hand(batch="batch_size"))
    g = load_graph(conv4_hand(batch="batch_size"), dims={"batch_size": 2})
    assert _macs(g) == 2 * CONV4_MACS
    assert g.tensor("logits").shape == (2, 5)


@pytest.mark.parametrize("name", ["sine_maml", "sine_fomaml"])
def test_sine_meta_training_graph(name):
    graph = load_graph(FIXTURES / f"{name}.onnx")
    loads = graph_workloads(graph)
    assert set(loads) == {n.name for n in graph.nodes}
    assert all(isinstance(d, int) and d >= 0 for t in graph.tensors.values() for d in t.shape)
    roles = {n: graph.tensor(n).role for n in graph.inputs}
    params = graph.metadata["parameter_inputs"].split(",")
    assert [roles[p] for p in params] == [Role.PARAMETER] * 6
    assert sum(graph.tensor(p).numel for p in params) == 1_761   # sine MLP, REFERENCE.md §5
    assert sorted(n for n, r in roles.items() if r is Role.INPUT) == ["xq_1", "xs_1", "yq_1", "ys_1"]
    grads = [t for t in graph.tensors.values() if t.role is Role.GRADIENT]
    assert grads
    producers = graph.producers()
    assert all(producers[t.name].scope.part in ("backward", "meta_grad") for t in grads)
    parts = {n.scope.part for n in graph.nodes}
    # the support loss value is dead code (only its gradient is used): the exporter drops it
    assert {"forward", "backward", "update", "query", "meta_grad", "outer_update"} <= parts
    # support forward of 10 samples: 10 x 1,680 MACs (REFERENCE.md §5)
    fwd = sum(loads[n.name].macs for n in graph.nodes if n.scope.part == "forward")
    assert fwd == 10 * 1_680
    assert sum(loads[n.name].macs for n in graph.nodes if n.scope.part == "query") == 10 * 1_680


def test_conv4_training_graph():
    graph = load_graph(FIXTURES / "conv4_train.onnx")
    loads = graph_workloads(graph)
    assert {"ConvTranspose", "BatchNormalization", "ScatterElements"} <= graph.op_types()
    fwd = sum(loads[n.name].macs for n in graph.nodes if n.scope.part == "forward")
    assert fwd == 5 * CONV4_MACS
    assert any(t.role is Role.GRADIENT for t in graph.tensors.values())


def test_scopes_and_metadata():
    model = one_node("Relu", {"x": (2, 3)})
    model.graph.node[0].metadata_props.add(key="hwsim.scope", value="task2/inner1/backward")
    model.metadata_props.add(key="phase", value="meta_train")
    g = load_graph(model)
    assert g.nodes[0].scope == Scope("backward", task=2, inner_step=1)
    assert g.metadata["phase"] == "meta_train"
    assert g.tensor("y").role is Role.OUTPUT
    model.graph.node[0].metadata_props[0].value = "task2/sideways"
    with pytest.raises(ModelError, match="n0"):
        load_graph(model)


def test_default_scope_and_unnamed_nodes():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", 1, None)]))
    g = load_graph(model)
    assert [n.name for n in g.nodes] == ["Relu_0", "Neg_1"]
    assert {n.scope for n in g.nodes} == {Scope("forward")}
    model.metadata_props.add(key="phase", value="infer")
    assert {n.scope for n in load_graph(model).nodes} == {Scope("other")}


def test_shapes_through_computed_shape_subgraph():
    # Reshape whose target shape is computed: Shape -> Gather -> Unsqueeze -> Concat
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])
    inits = [numpy_helper.from_array(np.array(0, np.int64), "i0"),
             numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1")]
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
             helper.make_node("Unsqueeze", ["d0", "ax"], ["d0u"]),
             helper.make_node("Concat", ["d0u", "m1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["r"]),
             helper.make_node("ConstantOfShape", ["s"], ["z"]),
             helper.make_node("Reshape", ["z", "shp"], ["zr"]),
             helper.make_node("Add", ["r", "zr"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", 1, None)], inits))
    g = load_graph(model)
    assert g.tensor("r").shape == (3, 20)
    assert list(g.constants["shp"]) == [3, -1]
    assert g.tensor("y").role is Role.OUTPUT


def test_unresolvable_shape_names_tensor_and_node():
    # the Reshape target is a graph input: no static shape can be known
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape_me")
    model = helper.make_model(helper.make_graph([node], "g", [x, s], [helper.make_tensor_value_info("y", 1, None)]))
    with pytest.raises(ModelError, match=r"'y'.*reshape_me"):
        load_graph(model)


@pytest.mark.parametrize("op", ["FooBar", "Loop"])
def test_unknown_op_is_an_error(op):
    model = one_node(op, {"x": (2,)})
    if op == "FooBar":
        model.graph.node[0].domain = "com.example"
        with pytest.raises(UnsupportedOpError, match="FooBar.*n0"):
            load_graph(model)
        return
    body = helper.make_graph([], "body", [], [])
    model.graph.node[0].attribute.append(helper.make_attribute("body", body))
    with pytest.raises(ModelError, match="n0.*Loop"):
        load_graph(model)


def test_ops_without_rules_are_all_named_in_one_error():
    # standard-domain ops the compiler has no rule for: Det twice, Bernoulli once
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])
    nodes = [helper.make_node("Det", ["x"], ["d0"], name="det_a"),
             helper.make_node("Bernoulli", ["x"], ["b"], name="coin"),
             helper.make_node("Det", ["b"], ["d1"], name="det_b"),
             helper.make_node("Add", ["d0", "d1"], ["y"], name="add")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", 1, None)]))
    g = load_graph(model)
    with pytest.raises(UnsupportedOpError) as err:
        graph_workloads(g)
    assert err.value.missing == {"Det": "det_a", "Bernoulli": "coin"}
    text = str(err.value)
    assert "2 unsupported op types: 'Det' (node 'det_a'), 'Bernoulli' (node 'coin')" in text
    assert text.startswith("model 'g': ") and "\n" not in text and "det_b" not in text


@pytest.mark.parametrize("content", [b"", b"this is not a model at all\x00\xff",
                                     b"\x08\x07\x12\x04abcd"])
def test_non_onnx_file(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="bad.onnx") as err:
        load_graph(path)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load_graph(tmp_path / "nope.onnx")


def _external_model(tmp_path, location: str):
    w = np.ones((8, 8), np.float32)
    model = one_node("MatMul", {"x": (2, 8)}, inits={"w": w})
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    t.external_data.add(key="offset", value="0")
    t.external_data.add(key="length", value=str(w.nbytes))
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir(exist_ok=True)
    onnx.save(model, str(path))
    return path, w


def test_external_data_inside_folder(tmp_path):
    path, w = _external_model(tmp_path, "weights.bin")
    (path.parent / "weights.bin").write_bytes(w.tobytes())
    g = load_graph(path)
    assert g.tensor("w").role is Role.PARAMETER and g.tensor("y").shape == (2, 8)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin", "link.bin"])
def test_external_data_escaping_folder(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 256)
    path, _ = _external_model(tmp_path, location)
    (path.parent / "link.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(ModelError, match="relative path|leaves the model's folder"):
        load_graph(path)


def test_roles_of_initializers_and_constants():
    inits = {"w": np.ones((4, 5), np.float32), "tiny": np.ones(3, np.float32)}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"]),
             helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones(5, np.float32))),
             helper.make_node("Add", ["a", "c"], ["y"])]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [x], [helper.make_tensor_value_info("y", 1, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()]))
    g = load_graph(model)
    assert g.tensor("w").role is Role.PARAMETER
    assert g.tensor("tiny").role is Role.CONSTANT
    assert g.tensor("c").role is Role.CONSTANT and "c" in g.constants
    assert g.tensor("a").role is Role.ACTIVATION
    assert g.tensor("x").role is Role.INPUT

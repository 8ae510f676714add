"""Hostile and careless models at the frontend: each is one `ModelError` line naming the file,
the node or tensor, what is wrong and what is allowed — never a crash, a large allocation or
silent acceptance (issue #13, frontend classes)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import ModelError, UnsupportedOpError
from compiler.frontend import Limits, load_graph
from compiler.workload import graph_workloads

from .graphs import graph_of, one_node


def fails(model, *fragments, tmp_path=None, **kwargs):
    """load_graph raises one ModelError line containing every fragment; returns its text."""
    source = model
    if tmp_path is not None:
        source = tmp_path / "hostile.onnx"
        onnx.save(model, str(source))
    with pytest.raises(ModelError) as err:
        load_graph(source, **kwargs)
    text = str(err.value)
    assert "\n" not in text
    for f in fragments:
        assert f in text, text
    return text


def relu(shape=(2,), opset=17):
    return graph_of([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": shape}, ["y"], opset=opset)


# ---------------------------------------------------------------- malformed graphs
def test_the_file_name_starts_every_message(tmp_path):
    model = relu()
    model.graph.node[0].input[0] = "nowhere"
    text = fails(model, "'nowhere'", "node 'r'", tmp_path=tmp_path)
    assert text.startswith(str(tmp_path / "hostile.onnx") + ": ")


def test_a_graph_output_never_produced():
    model = relu()
    model.graph.output.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [2]))
    fails(model, "graph output 'ghost' is never produced")


def test_non_utf8_string_attribute(tmp_path):
    model = one_node("Pad", {"x": (4,)}, inits={"p": np.array([1, 1], np.int64)}, mode="constant")
    model.graph.node[0].attribute[0].s = b"\xff\xfeconstant"
    fails(model, "node 'n0' (Pad) attribute 'mode' is not UTF-8 text", tmp_path=tmp_path)


@pytest.mark.parametrize("data,message", [
    (dict(raw_data=np.ones(3, np.float32).tobytes()), "12 bytes of data but its dims [4, 4] need 64"),
    (dict(), "0 values of data but its dims [4, 4] need 16"),
    (dict(float_data=[1.0] * 17), "17 values of data but its dims [4, 4] need 16"),
])
def test_initializer_data_must_match_its_dims(data, message):
    t = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], **data)
    model = graph_of([helper.make_node("Add", ["x", "w"], ["y"], name="add")], {"x": (4, 4)}, ["y"])
    model.graph.initializer.append(t)
    fails(model, "initializer 'w' has", message)


def test_constant_attribute_without_data():
    value = onnx.TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[1000, 1000])
    node = helper.make_node("Constant", [], ["c"], name="k", value=value)
    model = graph_of([node, helper.make_node("Relu", ["c"], ["y"])], {}, ["y"])
    fails(model, "node 'k' (Constant) attribute 'value' has 0 values of data but its dims [1000, 1000] need 1,000,000")


@pytest.mark.parametrize("dims,message", [
    ([-2, 3], "input 'x' has shape [-2, 3]; input dimensions must be positive"),
    ([0, 3], "input 'x' has shape [0, 3]; input dimensions must be positive"),
])
def test_input_dims_must_be_positive(dims, message):
    fails(relu(tuple(dims)), message)


def test_negative_initializer_dims():
    t = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1, 4])
    model = graph_of([helper.make_node("Add", ["x", "w"], ["y"])], {"x": (4,)}, ["y"])
    model.graph.initializer.append(t)
    fails(model, "initializer 'w' has dims [-1, 4]; dimensions must not be negative")


def test_an_empty_activation_is_refused():
    # a convolution with zero output channels produces an empty tensor
    model = one_node("Conv", {"x": (1, 3, 8, 8)}, inits={"w": np.ones((0, 3, 3, 3), np.float32)})
    fails(model, "tensor 'y' (produced by node 'n0' (Conv)) is empty (shape [1, 0, 6, 6])")


@pytest.mark.parametrize("attrs,wshape,message", [
    ({"group": 0}, (4, 3, 3, 3), "group = 0; it must be a positive integer"),
    ({"group": 2}, (4, 3, 3, 3), "channels do not match"),
    ({"dilations": [0, 1]}, (4, 3, 3, 3), "dilations"),
])
def test_malformed_convolutions(attrs, wshape, message):
    model = one_node("Conv", {"x": (1, 3, 8, 8)}, inits={"w": np.ones(wshape, np.float32)}, **attrs)
    fails(model, "node 'n0' (Conv)", message)


def test_zero_sized_kernel():
    model = one_node("Conv", {"x": (1, 3, 8, 8)}, inits={"w": np.ones((4, 3, 0, 0), np.float32)})
    fails(model, "'n0'", "kernel")


def test_shape_inference_errors_are_reported_with_the_tensor():
    # inner dimensions differ: onnx's strict inference fails, nothing else resolves the product
    model = one_node("MatMul", {"a": (2, 3), "b": (4, 5)})
    fails(model, "cannot resolve a static shape for tensor 'y' produced by node 'n0' (MatMul)",
          "ONNX shape inference")


def test_a_cycle_is_a_model_error():
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="p"), helper.make_node("Neg", ["a"], ["b"], name="q"),
             helper.make_node("Add", ["x", "b"], ["y"], name="out")]
    model = graph_of(nodes, {"x": (2,)}, ["y"])
    model.graph.value_info.extend([helper.make_tensor_value_info(t, TensorProto.FLOAT, [2]) for t in "ab"])
    fails(model, "cycle through node")


def test_sparse_initializers_are_refused():
    model = relu()
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(1, np.float32), "s"),
                                       numpy_helper.from_array(np.zeros(1, np.int64), "i"), [4])
    model.graph.sparse_initializer.append(sparse)
    fails(model, "sparse initializers are not supported")


# ---------------------------------------------------------------- versions
def test_an_ir_version_newer_than_onnx_knows():
    model = relu()
    model.ir_version = onnx.IR_VERSION + 1
    fails(model, f"IR version {onnx.IR_VERSION + 1} is newer than the installed onnx",
          f"up to {onnx.IR_VERSION}")


def test_an_opset_newer_than_onnx_knows():
    newest = onnx.defs.onnx_opset_version()
    fails(relu(opset=newest + 1), f"opset {newest + 1} is newer", f"opsets 7-{newest} are read")


def test_an_opset_older_than_7():
    fails(relu(opset=6), "opset 6 is older than 7")


def test_no_onnx_opset():
    model = relu()
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    fails(model, "imports no ai.onnx opset")


# ---------------------------------------------------------------- dims given by the caller
def _symbolic():
    return graph_of([helper.make_node("Relu", ["x"], ["y"])], {"x": ("batch", 3)}, ["y"])


def test_dims_naming_a_dimension_the_model_does_not_have():
    fails(_symbolic(), "dims names 'batchsize', which the model does not have",
          "its symbolic dimensions: 'batch'", dims={"batch": 2, "batchsize": 2})


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "2"])
def test_dims_must_be_positive_integers(value):
    fails(_symbolic(), f"dims['batch'] = {value!r}; a dimension must be a positive integer",
          dims={"batch": value})


def test_numpy_integer_dims_are_accepted():
    assert load_graph(_symbolic(), dims={"batch": np.int64(4)}).tensor("y").shape == (4, 3)


# ---------------------------------------------------------------- size limits
def _fill(shape):
    """ConstantOfShape of a constant shape: a few hundred bytes declaring a tensor of any size."""
    node = helper.make_node("ConstantOfShape", ["s"], ["c"], name="fill",
                            value=numpy_helper.from_array(np.array([1.0], np.float32)))
    add = helper.make_node("Add", ["c", "x"], ["y"], name="add")
    return graph_of([node, add], {"x": (1,)}, ["y"], {"s": np.array(shape, np.int64)})


def test_a_huge_constant_is_refused_with_the_limit_and_how_to_raise_it(tmp_path):
    model = _fill([100_000, 100_000])
    assert len(model.SerializeToString()) < 300
    fails(model, "tensor 'c' produced by node 'fill' (ConstantOfShape) would have 10,000,000,000 elements",
          "the limit is 2,147,483,648", "Limits.max_tensor_elements", "--max-tensor-elements",
          tmp_path=tmp_path)


def test_the_limits_can_be_raised_and_lowered():
    model = _fill([3000, 1000])
    fails(model, "would have 3,000,000 elements", "the limit is 1,000,000",
          limits=Limits(max_tensor_elements=1_000_000))
    assert load_graph(model, limits=Limits(max_tensor_elements=3_000_000)).tensor("c").numel == 3_000_000
    fails(model, "the graph's tensors exceed 1,000,000 bytes", "Limits.max_total_bytes", "--max-total-bytes",
          limits=Limits(max_total_bytes=1_000_000))
    fails(model, "the graph has 2 nodes; the limit is 1", "--max-nodes", limits=Limits(max_nodes=1))


@pytest.mark.parametrize("bad", [{"max_nodes": 0}, {"max_tensor_elements": -5}, {"max_total_bytes": 1.5},
                                 {"max_nodes": True}])
def test_limits_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="must be a positive integer"):
        Limits(**bad)


def _generators():
    """Tiny files whose constant-producing ops declare 64-256 MB tensors (within the limits)."""
    big = 8192
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    yield "ConstantOfShape", _fill([big, big])
    yield "Expand", graph_of(
        [helper.make_node("Expand", ["one", "s"], ["c"]), helper.make_node("Add", ["c", "x"], ["y"])],
        {"x": (1,)}, ["y"], {"one": np.ones(1, np.float32), "s": i64([big, big])})
    yield "Range", graph_of(
        [helper.make_node("Range", ["a", "b", "d"], ["c"]), helper.make_node("Add", ["c", "x"], ["y"])],
        {"x": (1,)}, ["y"], {"a": i64(0), "b": i64(big * big), "d": i64(1)}, dtype=TensorProto.INT64)
    yield "Tile", graph_of(
        [helper.make_node("Tile", ["one", "r"], ["c"]), helper.make_node("Add", ["c", "x"], ["y"])],
        {"x": (1, 1)}, ["y"], {"one": np.ones((1, 1), np.float32), "r": i64([big, big])})


@pytest.mark.parametrize("op,model", list(_generators()), ids=[op for op, _ in _generators()])
def test_constant_generators_are_not_materialised(op, model):
    assert len(model.SerializeToString()) < 400
    tracemalloc.start()
    try:
        graph = load_graph(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert graph.tensor("c").numel == 8192 * 8192
    assert "c" not in graph.constants
    assert peak < 32 * 2**20, f"load_graph allocated {peak / 2**20:.0f} MiB for a {op} of 64-256 MB"
    graph_workloads(graph)   # and the rules cost it from its shape


# ---------------------------------------------------------------- external data
def _external(tmp_path, nbytes: int, length: int | None, offset: int = 0):
    w = np.ones((8, 8), np.float32)
    model = one_node("MatMul", {"x": (2, 8)}, inits={"w": w})
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="w.bin")
    t.external_data.add(key="offset", value=str(offset))
    if length is not None:
        t.external_data.add(key="length", value=str(length))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"\0" * nbytes)
    onnx.save(model, str(folder / "m.onnx"))
    return folder / "m.onnx"


def test_external_data_shorter_than_its_tensor(tmp_path):
    with pytest.raises(ModelError, match=r"external data has 100 bytes but its dims \[8, 8\] need 256"):
        load_graph(_external(tmp_path, 100, None))


def test_external_data_outside_its_file(tmp_path):
    with pytest.raises(ModelError, match=r"bytes 64..320 lie outside 'w.bin' \(256 bytes\)"):
        load_graph(_external(tmp_path, 256, 256, offset=64))


def test_external_data_of_the_right_length_loads(tmp_path):
    assert load_graph(_external(tmp_path, 256, 256)).tensor("w").shape == (8, 8)


def test_external_data_given_in_memory():
    model = one_node("MatMul", {"x": (2, 8)}, inits={"w": np.ones((8, 8), np.float32)})
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="w.bin")
    fails(model, "external data but the model was given in memory")


# ---------------------------------------------------------------- operator schemas
def test_too_few_inputs_for_the_schema():
    fails(one_node("MatMul", {"a": (2, 3)}), "node 'n0' (MatMul) has 1 inputs; MatMul-13 takes 2")


def test_too_many_outputs_for_the_schema():
    fails(one_node("Relu", {"a": (2, 3)}, {"y": None, "z": None}), "(Relu) has 2 outputs; Relu-14 takes 1")


def test_a_missing_required_attribute():
    fails(one_node("MaxPool", {"a": (1, 1, 4, 4)}), "(MaxPool) lacks the required attribute 'kernel_shape'")


def test_an_attribute_of_the_wrong_type():
    model = one_node("Conv", {"x": (1, 3, 8, 8)}, inits={"w": np.ones((4, 3, 3, 3), np.float32)}, group=1)
    model.graph.node[0].attribute[0].type = onnx.AttributeProto.FLOAT
    fails(model, "attribute 'group' is of type FLOAT where Conv-11 takes INT")


def test_op_types_onnx_does_not_know_are_named_together():
    nodes = [helper.make_node("Frobnicate", ["x"], ["a"], name="f1"),
             helper.make_node("Gelu", ["a"], ["b"], name="g1"),          # Gelu arrived in opset 20
             helper.make_node("Frobnicate", ["b"], ["y"], name="f2")]
    with pytest.raises(UnsupportedOpError) as err:
        load_graph(graph_of(nodes, {"x": (2,)}, ["y"], opset=17))
    assert err.value.missing == {"Frobnicate": "f1", "Gelu": "g1"}
    assert "not an ai.onnx operator at opset 17" in str(err.value)


def test_names_that_are_not_utf8(tmp_path):
    # protobuf accepts any bytes in a string field and hands them out as bytes
    model = relu()
    blob = model.SerializeToString().replace(b"Relu", b"R\xffl\xfe")
    path = tmp_path / "bad.onnx"
    path.write_bytes(blob)
    with pytest.raises(ModelError, match="node 0 has a name, op type, domain or tensor name that is not UTF-8"):
        load_graph(path)


def test_an_initializer_may_be_a_graph_output():
    model = relu()
    model.graph.initializer.append(numpy_helper.from_array(np.ones(3, np.float32), "w"))
    model.graph.output.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [3]))
    from compiler.passes import run_pipeline
    g = run_pipeline(load_graph(model))
    assert g.tensor("w").role.value == "constant" and "w" in g.outputs

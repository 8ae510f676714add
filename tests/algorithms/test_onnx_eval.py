"""The float64 evaluator computes what onnxruntime computes: every kernel on every op of real
exported graphs (run here in float32, where onnxruntime has every kernel), and an op it does
not know is an error naming it."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from algorithms import ALGORITHMS, phases
from algorithms.export import export_phase
from algorithms.onnx_eval import KERNELS, UnsupportedOnnxOp, evaluate
from algorithms.rounding import accumulation
from algorithms.spec import PhaseSpec


def _specs(sine_setting, conv_setting):
    for name, cls in ALGORITHMS.items():
        for setting in (sine_setting, conv_setting):
            if cls.needs_classification and setting is sine_setting:
                continue
            for phase in ("infer", "adapt", "meta_train"):
                yield PhaseSpec(algorithm=name, phase=phase, **setting)


def test_every_kernel_agrees_with_onnxruntime_on_real_graphs(sine_setting, conv_setting, export_cache):
    seen = set()
    for spec in _specs(sine_setting, conv_setting):
        model = export_phase(spec, cache_dir=export_cache, verify=False)  # float32
        phase = phases.phase_function(spec)
        feeds = dict(zip(phase.input_names, phases.example_inputs(spec, 1)))
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        want = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        got = evaluate(model, feeds)
        for w, (name, g) in zip(want, got.items()):
            scale = max(1.0, float(np.abs(w).max(initial=0.0)))
            if spec.phase == "meta_train":
                # Adam divides rounding noise by ε where a gradient is 0 in exact arithmetic
                # (conv biases under a batch norm); the moments, not the step, must agree.
                if name.startswith("new.") and not name.startswith("new.adam."):
                    continue
            assert np.abs(g.numpy() - w).max(initial=0.0) <= 1e-5 * scale, (spec, name)
        seen |= {n.op_type for n in model.graph.node}
    # Every kernel but the few the exporter does not emit today ran against onnxruntime.
    assert set(KERNELS.names()) - seen <= {"Constant", "Identity", "Less", "Greater", "Min", "Max", "Clip"}
    assert seen <= set(KERNELS.names())


def _one_node(op: str, inputs: dict[str, np.ndarray], n_out: int = 1, **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, list(inputs), [f"y{i}" for i in range(n_out)], **attrs)
    types = {"Less": TensorProto.BOOL, "Greater": TensorProto.BOOL}
    out_types = [types.get(op, TensorProto.FLOAT), TensorProto.INT64][:n_out]
    graph = helper.make_graph(
        [node], "one",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(f"y{i}", t, None) for i, t in enumerate(out_types)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("op, inputs, attrs", [
    ("Identity", {"a": np.array([1.0, 5.0], np.float32)}, {}),
    ("Min", {"a": np.array([1.0, 5.0], np.float32), "b": np.array([3.0, 2.0], np.float32)}, {}),
    ("Max", {"a": np.array([1.0, 5.0], np.float32), "b": np.array([3.0, 2.0], np.float32)}, {}),
    ("Clip", {"a": np.array([-1.0, 0.5, 4.0], np.float32), "lo": np.array(0.0, np.float32),
              "hi": np.array(1.0, np.float32)}, {}),
    ("Less", {"a": np.array([1.0, 5.0], np.float32), "b": np.array([3.0, 2.0], np.float32)}, {}),
    ("Greater", {"a": np.array([1.0, 5.0], np.float32), "b": np.array([3.0, 2.0], np.float32)}, {}),
    ("Slice", {"x": np.arange(24, dtype=np.float32).reshape(4, 6), "s": np.array([3, -1]),
               "e": np.array([0, -7]), "a": np.array([0, 1]), "t": np.array([-2, -2])}, {}),
    ("MaxPool", {"x": np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)},
     dict(kernel_shape=[2, 2], strides=[2, 2], n_out=2)),
    ("Conv", {"x": np.random.default_rng(1).standard_normal((2, 3, 7, 7)).astype(np.float32),
              "w": np.random.default_rng(2).standard_normal((4, 3, 3, 3)).astype(np.float32)},
     dict(pads=[2, 1, 0, 1], strides=[2, 1])),
    ("ConvTranspose", {"x": np.random.default_rng(3).standard_normal((2, 4, 4, 4)).astype(np.float32),
                       "w": np.random.default_rng(4).standard_normal((4, 3, 3, 3)).astype(np.float32)},
     dict(pads=[1, 0, 0, 1], strides=[2, 2], output_padding=[1, 0])),
])
def test_kernels_for_cases_the_exporter_rarely_emits(op, inputs, attrs):
    n_out = attrs.pop("n_out", 1)
    model = _one_node(op, inputs, n_out, **attrs)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, inputs)
    got = evaluate(model, {k: torch.from_numpy(v) for k, v in inputs.items()})
    for w, g in zip(want, got.values()):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-5, atol=1e-5)


def test_an_unknown_op_is_an_error_naming_it_and_its_node():
    model = _one_node("Erf", {"x": np.zeros(2, np.float32)})
    with pytest.raises(UnsupportedOnnxOp, match="'Erf'.*node"):
        evaluate(model, {"x": torch.zeros(2)})


def test_every_kernel_has_a_rounding_rule():
    """The rounding budget knows every op the evaluator runs (an unknown one is a KeyError)."""
    dummy = torch.zeros(2, 2, 3, 3)
    for op in KERNELS.names():
        node = helper.make_node(op, ["a", "b", "c"], ["y"])
        assert accumulation(node, [dummy, dummy, dummy]) >= 0.0

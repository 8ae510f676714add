"""The TensorFlow bridge: Keras phases exported in .venv-tf (`make tf`, part of `make test`),
verified in onnxruntime against TensorFlow, compiled and simulated by hwsim, with the MACs of
hwsim's PyTorch Conv4."""

import json
import subprocess
from pathlib import Path

import onnx
import pytest

from algorithms.export import ExportMismatchError, export_phase
from algorithms.spec import PhaseSpec
from algorithms.frameworks import FrameworkError, KerasPhaseSpec, convert_keras_phase, export_keras_phase
from algorithms.frameworks import tensorflow_export
from compiler.compile import compile_model
from compiler.workload import Kind
from hwsim.config import load_hardware
from hwsim.energy import energy_table
from hwsim.engine import simulate
from hwsim.scope import SCOPE_PROP, Scope
from tests.hwsim.cli_run import assert_bad_input, run_cli

USER_MODELS = Path(__file__).resolve().parents[1] / "data" / "keras" / "user_models.py"
# 5-way 1-shot, one query per class, one SGD step with MAML's Omniglot α (Finn et al. 2017).
EPISODE = dict(way=5, shot=1, query=1, inner_steps=1, inner_lr=0.4, seed=0)
# Forward MACs per 28×28×1 image of Conv4-64 (REFERENCE §5): conv1 28·28·64·9, conv2 14·14·64·64·9,
# conv3 7·7·64·64·9, conv4 3·3·64·64·9, and the 5-way head 64·5.
CONV_MACS = (28 * 28 * 64 * 9, 14 * 14 * 64 * 64 * 9, 7 * 7 * 64 * 64 * 9, 3 * 3 * 64 * 64 * 9)
HEAD_MACS = 64 * 5
CONV4_MACS = sum(CONV_MACS) + HEAD_MACS


@pytest.fixture(scope="session")
def keras_conv4():
    """phase -> KerasExport of the Keras Conv4-64, converted once for the session (TensorFlow
    start-up and tf2onnx take most of the ~5-10 s each)."""
    return {phase: convert_keras_phase(KerasPhaseSpec("conv4_64_28x28x1", phase, **EPISODE))
            for phase in ("infer", "adapt")}


@pytest.fixture(scope="session")
def torch_conv4(tmp_path_factory):
    cache = tmp_path_factory.mktemp("torch-exports")
    return {phase: export_phase(PhaseSpec(algorithm="maml", phase=phase, backbone="conv4_64_28x28x1", **EPISODE), cache_dir=cache)
            for phase in ("infer", "adapt")}


def run(model):
    hw = load_hardware("edge-npu")
    compiled = compile_model(model, hw)
    result = simulate(compiled.program, energy_table=energy_table(hw), static_power_mw=hw.technology.static_power_mw)
    return compiled, result


def parts(result) -> dict[str, float]:
    return {row["phase_part"]: row["macs"] for row in result.phase_breakdown()}


# ---------------------------------------------------------------- the Keras Conv4


@pytest.mark.parametrize("phase", ["infer", "adapt"])
def test_conv4_runs_in_onnxruntime_like_tensorflow(keras_conv4, phase):
    export = keras_conv4[phase]
    onnx.checker.check_model(export.model)
    outputs = [o.name for o in export.model.graph.output]
    assert {f"onnxruntime/{n}" for n in outputs} <= set(export.errors)
    if phase == "adapt":  # the convertible gradients are TensorFlow's own, to rounding
        assert {f"tf_gradients/{n}" for n in outputs} <= set(export.errors)
    assert max(export.errors.values()) <= 1e-4
    assert {k.split(".")[0] for k in export.reference} == {"s1", "s2"}


def test_export_is_deterministic(keras_conv4):
    again = convert_keras_phase(KerasPhaseSpec("conv4_64_28x28x1", "infer", **EPISODE))
    assert again.model.SerializeToString() == keras_conv4["infer"].model.SerializeToString()
    assert again.reference.keys() == keras_conv4["infer"].reference.keys()
    assert all((again.reference[k] == v).all() for k, v in keras_conv4["infer"].reference.items())


def test_verification_fails_on_a_changed_update(keras_conv4):
    """The same graph with one parameter update's subtraction turned into an addition."""
    export = keras_conv4["adapt"]
    broken = onnx.ModelProto()
    broken.CopyFrom(export.model)
    update = next(n for n in broken.graph.node if n.op_type == "Sub" and n.output[0] == "adapted.head.kernel")
    update.op_type = "Add"
    with pytest.raises(ExportMismatchError, match="adapted.head.kernel"):
        tensorflow_export.verify_keras_export(broken, export.reference)


@pytest.mark.parametrize("phase", ["infer", "adapt"])
def test_conv4_macs_equal_the_pytorch_conv4(keras_conv4, torch_conv4, phase):
    keras_compiled, keras_result = run(keras_conv4[phase].model)
    torch_compiled, torch_result = run(torch_conv4[phase])
    assert keras_compiled.macs == keras_result.macs == torch_compiled.macs == torch_result.macs
    if phase == "infer":
        assert keras_result.macs == 5 * CONV4_MACS


def test_conv4_training_step_costs_per_part(keras_conv4):
    """One SGD step on 5 images, by hand: the forward pass; backward = every conv's weight
    gradient, the input gradients of conv2..conv4 (the image needs none) and the head's two
    products; loss and update are elementwise."""
    _, result = run(keras_conv4["adapt"].model)
    n = 5
    assert parts(result) == {
        "inner0/forward": n * CONV4_MACS,
        "inner0/loss": 0,
        "inner0/backward": n * (sum(CONV_MACS) + sum(CONV_MACS[1:]) + 2 * HEAD_MACS),
        "inner0/update": 0,
    }


def test_conv4_training_step_graph(keras_conv4):
    """What tf2onnx makes of the GradientTape step: forward Conv, weight gradients as Conv,
    input gradients as ConvTranspose, max-pool gradients as masks; no TensorFlow gradient op."""
    export = keras_conv4["adapt"]
    by_scope: dict[str, list[str]] = {}
    for node in export.model.graph.node:
        by_scope.setdefault(_scope(node).part, []).append(node.op_type)
    assert by_scope["forward"].count("Conv") == 4 and by_scope["forward"].count("MaxPool") == 4
    assert by_scope["backward"].count("Conv") == 4 and by_scope["backward"].count("ConvTranspose") == 3
    assert by_scope["backward"].count("Equal") == 4  # one max-pool mask per block
    gradient_kernels = {t for t in export.manifest["tf_ops"] if t.endswith("Grad") or "Backprop" in t}
    assert gradient_kernels == {"Conv2DBackpropInput"}  # with a constant shape: ConvTranspose
    assert all(onnx.defs.has(n.op_type) for n in export.model.graph.node)


def test_conv4_layout_transposes_are_data_movement(keras_conv4):
    """Keras is NHWC, ONNX Conv NCHW: tf2onnx adds Transposes, which move data and cost no MACs."""
    compiled, _ = run(keras_conv4["infer"].model)
    transposes = [node for node in compiled.graph.nodes if node.op_type == "Transpose"]
    assert transposes
    for node in transposes:
        assert compiled.workloads[node.name].kind == Kind.DATA_MOVEMENT
        assert compiled.workloads[node.name].macs == 0


@pytest.mark.parametrize("phase", ["infer", "adapt"])
def test_conv4_metadata_and_scopes(keras_conv4, phase):
    model = keras_conv4[phase].model
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["algorithm"] == "maml" and meta["phase"] == phase
    assert meta["backbone"] == "conv4_64_28x28x1" and meta["framework"] == "tensorflow"
    assert (meta["way"], meta["shot"], meta["query"], meta["inner_steps"]) == ("5", "1", "1", "1")
    pins = Path(tensorflow_export.TF_CONSTRAINTS).read_text()
    for package, version in (("tensorflow", "tensorflow_cpu=="), ("tf2onnx", "tf2onnx==")):
        pinned = next(line.split("==")[1] for line in pins.splitlines() if line.startswith(version))
        assert f"{package} {pinned}" in meta["framework_versions"]
    inputs = [i.name for i in model.graph.input]
    params = meta["parameter_inputs"].split(",")
    assert params[:4] == ["conv1.kernel", "conv1.bias", "bn1.gamma", "bn1.beta"] and set(params) <= set(inputs)
    outputs = [o.name for o in model.graph.output]
    if phase == "infer":
        assert inputs[-1] == "x" and outputs == ["y"]
        assert {str(_scope(n)) for n in model.graph.node} == {"forward"}
    else:
        assert inputs[-2:] == ["support_x", "support_y"] and outputs == [f"adapted.{p}" for p in params]
        assert {str(_scope(n)) for n in model.graph.node} == {
            "inner0/forward", "inner0/loss", "inner0/backward", "inner0/update"}


def test_conv4_84x84x3_macs_equal_the_pytorch_conv4():
    """The miniImageNet-sized Conv4-32: odd feature maps (21 -> 10 -> 5) pool the same way."""
    spec = dict(way=5, shot=1, query=1)
    keras_compiled, _ = run(export_keras_phase(KerasPhaseSpec("conv4_32_84x84x3", "infer", **spec)))
    torch_compiled, _ = run(export_phase(PhaseSpec(algorithm="maml", phase="infer", backbone="conv4_32_84x84x3", **spec)))
    assert keras_compiled.macs == torch_compiled.macs > 0


# ---------------------------------------------------------------- the user's own model


def test_user_model_two_training_steps():
    """tests/data/keras/user_models.py:small (strided conv, tanh, sigmoid), 3-way 2-shot, k=2."""
    export = convert_keras_phase(KerasPhaseSpec(f"{USER_MODELS}:small", "adapt", way=3, shot=2, inner_steps=2))
    assert max(export.errors.values()) <= 1e-4 and any(k.startswith("tf_gradients/") for k in export.errors)
    meta = {p.key: p.value for p in export.model.metadata_props}
    assert meta["backbone"] == "keras:user_models.py:small"
    _, result = run(export.model)
    n, conv, dense1, dense2 = 6, 6 * 6 * 8 * 27, 72 * 16, 16 * 3
    forward = n * (conv + dense1 + dense2)
    backward = n * (conv + 2 * dense1 + 2 * dense2)  # the image needs no input gradient
    assert parts(result) == {f"inner{i}/{part}": macs for i in (0, 1)
                             for part, macs in (("forward", forward), ("loss", 0), ("backward", backward), ("update", 0))}


def test_unconvertible_gradient_is_named():
    with pytest.raises(FrameworkError, match=r"AvgPoolGrad ×1"):
        convert_keras_phase(KerasPhaseSpec(f"{USER_MODELS}:average_pooled", "adapt", way=3))


def test_tf_venv_is_exactly_the_pinned_one():
    python = tensorflow_export.TF_VENV / "bin" / "python"
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    pinned = [line for line in Path(tensorflow_export.TF_CONSTRAINTS).read_text().splitlines()
              if line and not line.startswith("#")]
    assert sorted(frozen.splitlines()) == sorted(pinned)


# ---------------------------------------------------------------- the command


def test_cli_exports_simulates_and_caches(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "conv4.onnx"
    args = ["export", "--framework", "tensorflow", "--backbone", "conv4_64_28x28x1", "--way", "5",
            "--shot", "1", "--query", "1", "--phase", "infer", "-o", out]
    code, stdout, _ = run_cli(*args, capsys=capsys)
    assert code == 0 and "maml infer" in stdout
    code, stdout, _ = run_cli("simulate", out, "--json", tmp_path / "r.json", capsys=capsys)
    assert code == 0 and json.loads((tmp_path / "r.json").read_text())["summary"]["macs"] == 5 * CONV4_MACS

    # From the cache, the venv is not needed: the same export succeeds without it.
    _without_tf_venv(monkeypatch, tmp_path)
    out.unlink()
    code, _, _ = run_cli(*args, capsys=capsys)
    assert code == 0 and onnx.load(out).graph.output[0].name == "y"


def test_cli_missing_tf_venv_says_how_to_make_it(tmp_path, capsys, monkeypatch):
    _without_tf_venv(monkeypatch, tmp_path)
    out = tmp_path / "m.onnx"
    code, _, err = run_cli("export", "--framework", "tensorflow", "--backbone", "conv4_64_28x28x1", "--way", "5",
                           "--phase", "adapt", "--no-cache", "-o", out, capsys=capsys)
    assert_bad_input(code, err, "TensorFlow venv", "make tf")
    assert not out.exists()


@pytest.mark.parametrize("model, fragments", [
    ("nowhere.py:build", ["nowhere.py", "no such file"]),
    ("conv4", ["'conv4'", "path/to/file.py:build_fn"]),
    (f"{USER_MODELS}:not_a_model", ["not_a_model() returned list", "keras.Model"]),
    (f"{USER_MODELS}:small", ["outputs 3 classes", "--way 3"]),
])
def test_cli_bad_model_is_one_line(tmp_path, capsys, model, fragments):
    out = tmp_path / "m.onnx"
    code, _, err = run_cli("export", "--framework", "tensorflow", "--model", model, "--way", "5",
                           "--phase", "infer", "--no-cache", "-o", out, capsys=capsys)
    assert_bad_input(code, err, *fragments)
    assert not out.exists()


def test_cli_rejects_what_tensorflow_cannot_export(tmp_path, capsys):
    for args, fragment in ((["--phase", "meta_train"], "phase must be one of infer, adapt"),
                           (["--phase", "adapt", "--algo", "protonet"], "algorithm must be one of maml, fomaml")):
        code, _, err = run_cli("export", "--framework", "tensorflow", "--backbone", "conv4_64_28x28x1",
                               "--way", "5", *args, "-o", tmp_path / "m.onnx", capsys=capsys)
        assert_bad_input(code, err, fragment)
    code, _, err = run_cli("export", "--model", f"{USER_MODELS}:small", "-o", tmp_path / "m.onnx", capsys=capsys)
    assert_bad_input(code, err, "--model", "--framework tensorflow")


def _without_tf_venv(monkeypatch, tmp_path):
    monkeypatch.setattr(tensorflow_export, "TF_VENV", tmp_path / "no-venv")
    monkeypatch.setattr(tensorflow_export, "TF_READY", tmp_path / "no-venv" / ".installed")


def _scope(node: onnx.NodeProto) -> Scope:
    values = [p.value for p in node.metadata_props if p.key == SCOPE_PROP]
    assert len(values) == 1, node.name
    return Scope.parse(values[0])

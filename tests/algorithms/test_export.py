"""Every phase of every registered algorithm exports, runs in onnxruntime like eager torch,
and carries the metadata and per-node scopes the compiler reads."""

import collections
import dataclasses

import onnx
import pytest

from algorithms import ALGORITHMS
from algorithms.export import (PhaseSpec, SpecError, export_phase, save_phase, verify_export)
from algorithms.trace import SCOPE_PROP
from hwsim.scope import Scope

PHASES = ("infer", "adapt", "meta_train")
# Small specs keep the folder fast: k=2 and B=2 exercise every kind of scope.
SMALL = dict(inner_steps=2, meta_batch=2, shot=5, query=5)


@pytest.fixture(scope="module")
def exported():
    """(algorithm, phase) -> model, exported once for the module (verified on export)."""
    return {(a, p): export_phase(PhaseSpec(a, p, **SMALL))
            for a in ("maml", "fomaml") for p in PHASES}


def _scopes(model: onnx.ModelProto) -> list[Scope]:
    out = []
    for node in model.graph.node:
        values = [p.value for p in node.metadata_props if p.key == SCOPE_PROP]
        assert len(values) == 1, f"node {node.name} ({node.op_type}) has scopes {values}"
        out.append(Scope.parse(values[0]))
    return out


@pytest.mark.parametrize("algorithm", ["maml", "fomaml"])
@pytest.mark.parametrize("phase", PHASES)
def test_phase_matches_eager_torch_on_two_input_sets(exported, algorithm, phase):
    model = exported[(algorithm, phase)]
    onnx.checker.check_model(model)
    errors = verify_export(model, PhaseSpec(algorithm, phase, **SMALL))
    assert errors and max(errors.values()) <= 1e-4


@pytest.mark.parametrize("algorithm", ["maml", "fomaml"])
@pytest.mark.parametrize("phase", PHASES)
def test_metadata_and_names(exported, algorithm, phase):
    model = exported[(algorithm, phase)]
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("algorithm", "phase", "backbone", "way", "shot", "query", "inner_steps",
                "meta_batch", "first_order", "dtype", "inner_lr", "outer_optimizer", "seed",
                "spec_hash", "hwsim_export_version", "parameter_inputs", "optimizer_state_inputs"):
        assert key in meta, key
    assert meta["algorithm"] == algorithm and meta["phase"] == phase
    assert meta["first_order"] == ("true" if algorithm == "fomaml" else "false")
    assert meta["inner_steps"] == "2" and meta["shot"] == "5"
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    params = meta["parameter_inputs"].split(",")
    assert params == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert inputs[:6] == params
    if phase == "infer":
        assert inputs[6:] == ["x"] and outputs == ["y"]
    elif phase == "adapt":
        assert inputs[6:] == ["support_x", "support_y"]
        assert outputs == [f"adapted.{p}" for p in params]
    else:
        state = meta["optimizer_state_inputs"].split(",")
        assert state[0] == "adam.step" and len(state) == 13
        assert inputs[6:] == state + ["support_x", "support_y", "query_x", "query_y"]
        assert outputs == ["loss"] + [f"new.{n}" for n in params + state]
    # No bulky torch metadata left on the nodes.
    assert all(p.key == SCOPE_PROP for n in model.graph.node for p in n.metadata_props)


@pytest.mark.parametrize("algorithm", ["maml", "fomaml"])
def test_scopes_of_meta_train(exported, algorithm):
    model = exported[(algorithm, "meta_train")]
    scopes = _scopes(model)
    labels = {str(s) for s in scopes}
    for task in (0, 1):
        for step in (0, 1):
            for part in ("forward", "loss", "backward", "update"):
                assert f"task{task}/inner{step}/{part}" in labels
        assert f"task{task}/query" in labels and f"task{task}/meta_grad" in labels
    assert {"meta_reduce", "outer_update"} <= labels
    assert "other" not in labels
    # Tasks are unrolled: no value flows from one task's nodes into another task's.
    task_of = {o: s.task for n, s in zip(model.graph.node, scopes) for o in n.output}
    for node, s in zip(model.graph.node, scopes):
        for name in node.input:
            if s.task is not None and task_of.get(name) is not None:
                assert task_of[name] == s.task, f"{node.name} in task {s.task} reads {name}"
    # Both tasks have identical work.
    per_task = [collections.Counter((s.inner_step, s.part, n.op_type)
                                    for n, s in zip(model.graph.node, scopes) if s.task == t)
                for t in (0, 1)]
    assert per_task[0] == per_task[1]


def test_second_order_graph_is_larger_than_first_order(exported):
    def meta_grad_nodes(m):
        return sum(s.part == "meta_grad" for s in _scopes(m))
    assert meta_grad_nodes(exported[("maml", "meta_train")]) > 2 * meta_grad_nodes(exported[("fomaml", "meta_train")])


def test_scopes_of_infer_and_adapt(exported):
    assert {str(s) for s in _scopes(exported[("maml", "infer")])} == {"forward"}
    labels = {str(s) for s in _scopes(exported[("maml", "adapt")])}
    assert labels == {f"inner{i}/{p}" for i in (0, 1) for p in ("forward", "loss", "backward", "update")}


def test_no_bloated_constants(exported):
    for model in exported.values():
        for init in model.graph.initializer:
            arr = onnx.numpy_helper.to_array(init)
            assert arr.size <= 1 or arr.dtype.kind != "f" or len(set(arr.ravel().tolist())) > 1, init.name
        assert model.ByteSize() < 200_000


def test_same_spec_gives_identical_bytes():
    spec = PhaseSpec("maml", "meta_train", inner_steps=1, meta_batch=2, shot=5, query=5)
    a = export_phase(spec, verify=False).SerializeToString()
    b = export_phase(spec, verify=False).SerializeToString()
    assert a == b


def test_cache_hit_returns_identical_bytes(tmp_path, monkeypatch):
    spec = PhaseSpec("fomaml", "adapt", inner_steps=1, shot=5, query=5)
    first = export_phase(spec, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and spec.hash()[:32] in files[0].name
    # A hit must not re-export: make exporting impossible and ask again.
    import algorithms.trace as trace
    monkeypatch.setattr(trace, "to_onnx", lambda *a, **k: pytest.fail("re-exported on a cache hit"))
    second = export_phase(spec, cache_dir=tmp_path)
    assert second.SerializeToString() == first.SerializeToString() == files[0].read_bytes()
    assert spec.hash() != dataclasses.replace(spec, inner_lr=0.02).hash()


def test_save_phase_writes_a_loadable_model(tmp_path):
    spec = PhaseSpec("maml", "infer", query=4)
    path = tmp_path / "sub" / "maml_infer.onnx"
    model = save_phase(spec, path)
    assert onnx.load(path).SerializeToString() == model.SerializeToString()
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["maml_infer.onnx"]


def test_verification_catches_a_wrong_graph(exported):
    from algorithms.export import ExportMismatchError
    model = onnx.ModelProto()
    model.CopyFrom(exported[("maml", "infer")])
    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    relus[0].op_type = "Sigmoid"
    with pytest.raises(ExportMismatchError, match="'y'"):
        verify_export(model, PhaseSpec("maml", "infer", **SMALL))


@pytest.mark.parametrize("fields, field, allowed", [
    (dict(algorithm="nope", phase="infer"), "algorithm", "maml"),
    (dict(algorithm="maml", phase="train"), "phase", "meta_train"),
    (dict(algorithm="maml", phase="adapt", inner_steps=0), "inner_steps", ">= 1"),
    (dict(algorithm="maml", phase="meta_train", meta_batch=0), "meta_batch", ">= 1"),
    (dict(algorithm="maml", phase="infer", backbone="conv9"), "backbone", "sine_mlp"),
    (dict(algorithm="maml", phase="infer", dtype="int8"), "dtype", "float32"),
    (dict(algorithm="maml", phase="infer", way=5), "way", "1"),
    (dict(algorithm="maml", phase="infer", backbone="conv4_64_28x28x1", way=1), "way", "2..64"),
    (dict(algorithm="maml", phase="infer", backbone="conv4_64_28x28x1", way=5, dtype="float64"), "dtype", "float32"),
    (dict(algorithm="maml", phase="infer", shot=0), "shot", ">= 1"),
    (dict(algorithm="maml", phase="infer", inner_lr=-1.0), "inner_lr", "positive"),
])
def test_bad_specs_are_rejected_naming_field_and_allowed_values(fields, field, allowed):
    with pytest.raises(SpecError) as err:
        PhaseSpec(**fields)
    assert isinstance(err.value, ValueError)
    assert field in str(err.value) and allowed in str(err.value)


def test_every_registered_algorithm_is_exportable_alike():
    # The exporter has no per-algorithm code: the spec validates against the registry.
    for name in ALGORITHMS:
        PhaseSpec(name, "meta_train", backbone="conv4_64_28x28x1", way=5, shot=1)
        if not ALGORITHMS[name].needs_classification:
            PhaseSpec(name, "meta_train")


def test_protonet_needs_a_classification_backbone():
    with pytest.raises(SpecError, match="classification backbone"):
        PhaseSpec("protonet", "meta_train")


def test_identical_bytes_across_processes():
    import subprocess
    import sys
    code = ("import sys; from algorithms.export import PhaseSpec, export_phase; "
            "sys.stdout.buffer.write(export_phase(PhaseSpec('fomaml', 'adapt', shot=3), verify=False)"
            ".SerializeToString())")
    here = export_phase(PhaseSpec("fomaml", "adapt", shot=3), verify=False).SerializeToString()
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert there == here

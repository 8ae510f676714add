"""Every phase of MAML and FOMAML exports in float32, carries the metadata and per-node scopes
the compiler reads, and the same spec gives the same bytes."""

import collections

import onnx
import pytest

from algorithms.export import export_phase, save_phase, trace_phase
from algorithms.precision import float_type, narrow
from algorithms.spec import PhaseSpec
from hwsim.scope import SCOPE_PROP, Scope

PHASES = ("infer", "adapt", "meta_train")
# Small specs keep the file fast: k=2 and B=2 exercise every kind of scope.
SMALL = dict(inner_steps=2, meta_batch=2, shot=5, query=5)


@pytest.fixture(scope="module")
def exported(export_cache):
    """(algorithm, phase) -> model, exported (and verified) once for the session."""
    return {(a, p): export_phase(PhaseSpec(algorithm=a, phase=p, **SMALL), cache_dir=export_cache)
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
def test_metadata_and_names(exported, algorithm, phase):
    model = exported[(algorithm, phase)]
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("algorithm", "phase", "backbone", "way", "shot", "query", "inner_steps",
                "meta_batch", "first_order", "dtype", "inner_lr", "outer_optimizer", "seed",
                "spec_hash", "hwsim_export_version", "parameter_inputs", "optimizer_state_inputs"):
        assert key in meta, key
    assert meta["algorithm"] == algorithm and meta["phase"] == phase and meta["dtype"] == "float32"
    assert meta["first_order"] == ("true" if algorithm == "fomaml" else "false")
    assert meta["inner_steps"] == "2" and meta["shot"] == "5"
    assert float_type(model) == "float32"
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


def test_the_float32_graph_is_the_float64_master_narrowed():
    """Same nodes, attributes and wiring; every float64 type and constant made float32; the
    master's constants are the exact Python scalars (Adam's β₂ = 0.999, not its float32 rounding)."""
    spec = PhaseSpec(algorithm="maml", phase="meta_train", inner_steps=1, meta_batch=2, shot=2, query=2)
    master = trace_phase(spec)
    model = export_phase(spec, verify=False)
    assert float_type(master) == "float64"
    assert model.graph.node == narrow(master).graph.node
    doubles = [float(v) for i in master.graph.initializer if i.data_type == onnx.TensorProto.DOUBLE
               for v in onnx.numpy_helper.to_array(i).ravel()]
    assert 0.999 in doubles and 1e-8 in doubles and 0.9 in doubles
    assert not any(i.data_type == onnx.TensorProto.DOUBLE for i in model.graph.initializer)


def test_same_spec_gives_identical_bytes():
    spec = PhaseSpec(algorithm="maml", phase="meta_train", inner_steps=1, meta_batch=2, shot=5, query=5)
    a = export_phase(spec, verify=False).SerializeToString()
    b = export_phase(spec, verify=False).SerializeToString()
    assert a == b


def test_save_phase_writes_a_loadable_model(tmp_path):
    spec = PhaseSpec(algorithm="maml", phase="infer", query=4)
    path = tmp_path / "sub" / "maml_infer.onnx"
    model = save_phase(spec, path)
    assert onnx.load(path).SerializeToString() == model.SerializeToString()
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["maml_infer.onnx"]


def test_identical_bytes_across_processes():
    import subprocess
    import sys
    code = ("import sys; from algorithms.export import export_phase; from algorithms.spec import PhaseSpec; "
            "sys.stdout.buffer.write(export_phase(PhaseSpec(algorithm='fomaml', phase='adapt', shot=3), "
            "verify=False).SerializeToString())")
    here = export_phase(PhaseSpec(algorithm="fomaml", phase="adapt", shot=3), verify=False).SerializeToString()
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert there == here

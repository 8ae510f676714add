"""Every algorithm × phase exports for both backbone families and verifies (the fast slice of
the configuration matrix; tests/algorithms/test_export_matrix.py is the whole), keeps its
scopes, and the two silent traps of REFERENCE §6 stay away."""

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from algorithms import ALGORITHMS
from algorithms.export import export_phase
from algorithms.phases import PhaseFunction
from algorithms.spec import PhaseSpec
from algorithms.trace import to_onnx
from hwsim.scope import SCOPE_PROP, Scope

PHASES = ("infer", "adapt", "meta_train")
CASES = [(a, fam) for a in ALGORITHMS for fam in ("sine", "conv")
         if not (ALGORITHMS.lookup(a).needs_classification and fam == "sine")]


@pytest.fixture(scope="module")
def spec_of(sine_setting, conv_setting):
    def spec(algorithm: str, family: str, phase: str) -> PhaseSpec:
        return PhaseSpec(algorithm=algorithm, phase=phase,
                         **(sine_setting if family == "sine" else conv_setting))
    return spec


@pytest.fixture(scope="module")
def exported(spec_of, export_cache):
    """(algorithm, family, phase) -> model, exported and verified once for the session."""
    def get(algorithm: str, family: str, phase: str) -> onnx.ModelProto:
        return export_phase(spec_of(algorithm, family, phase), cache_dir=export_cache)
    return get


def _scopes(model: onnx.ModelProto) -> list[Scope]:
    out = []
    for node in model.graph.node:
        values = [p.value for p in node.metadata_props if p.key == SCOPE_PROP]
        assert len(values) == 1, f"node {node.name} ({node.op_type}) has scopes {values}"
        out.append(Scope.parse(values[0]))
    return out


@pytest.mark.parametrize("algorithm, family", CASES)
@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_exports_verified(exported, export_cache, spec_of, algorithm, family, phase):
    """Exported with verification (ExportMismatchError otherwise) and recorded as verified."""
    import json
    from algorithms.export_cache import ExportCache
    model = exported(algorithm, family, phase)
    onnx.checker.check_model(model)
    manifest = json.loads(ExportCache(export_cache).paths(spec_of(algorithm, family, phase))[1].read_text())
    assert manifest["verification"].startswith(f"verified {algorithm}/{phase} on 2 input sets")
    assert "LSTM" not in {n.op_type for n in model.graph.node}


@pytest.mark.parametrize("algorithm, family", CASES)
def test_meta_train_scopes_are_per_task_and_identical_across_tasks(exported, algorithm, family):
    model = exported(algorithm, family, "meta_train")
    scopes = _scopes(model)
    labels = {str(s) for s in scopes}
    assert "other" not in labels
    assert {"meta_reduce", "outer_update"} <= labels
    for task in (0, 1):
        assert f"task{task}/meta_grad" in labels
    task_of = {o: s.task for n, s in zip(model.graph.node, scopes) for o in n.output}
    for node, s in zip(model.graph.node, scopes):
        for name in node.input:
            if s.task is not None and task_of.get(name) is not None:
                assert task_of[name] == s.task, f"{node.name} in task {s.task} reads {name}"
    per_task = [collections.Counter((s.inner_step, s.part, n.op_type)
                                    for n, s in zip(model.graph.node, scopes) if s.task == t)
                for t in (0, 1)]
    assert per_task[0] == per_task[1] and per_task[0]


@pytest.mark.parametrize("algorithm", ["maml", "reptile", "metalstm", "anil"])
def test_inner_steps_are_attributed(exported, algorithm):
    labels = {str(s) for s in _scopes(exported(algorithm, "sine", "meta_train"))}
    for step in (0, 1):
        for part in ("forward", "loss", "backward", "update"):
            assert f"task1/inner{step}/{part}" in labels, (algorithm, step, part)


def test_protonet_adapt_has_no_backward_nodes(exported):
    model = exported("protonet", "conv", "adapt")
    parts = {s.part for s in _scopes(model)}
    assert parts <= {"forward", "update"}
    ops = {n.op_type for n in model.graph.node}
    # A backward pass would bring transposed convolutions and scatters of max-pool gradients.
    assert not ops & {"ConvTranspose", "ScatterElements", "ScatterND"}
    assert [o.name for o in model.graph.output] == ["adapted.prototypes"]


def test_conv_meta_train_has_forward_only_conv_ops_and_pool_backward(exported):
    ops = collections.Counter(n.op_type for n in exported("maml", "conv", "meta_train").graph.node)
    assert ops["Conv"] and ops["ConvTranspose"] and ops["ScatterElements"]
    assert "BatchNormalization" not in ops  # batch statistics are explicit reductions


def test_metasgd_learning_rates_are_graph_inputs_and_updated(exported):
    model = exported("metasgd", "sine", "meta_train")
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    assert "lr.fc1.weight" in inputs and "new.lr.fc1.weight" in outputs
    assert [i.name for i in exported("metasgd", "sine", "infer").graph.input][:6] == \
        ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


def test_reptile_epsilon_is_an_input_only(exported):
    model = exported("reptile", "sine", "meta_train")
    assert "reptile.epsilon" in [i.name for i in model.graph.input]
    assert not any("epsilon" in o.name for o in model.graph.output)


def test_batchnorm_uses_batch_statistics_in_the_exported_graph(exported):
    """Changing the other images of a batch changes an image's logits: batch statistics, not
    inference-mode running statistics (REFERENCE §6)."""
    model = exported("maml", "conv", "infer")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    feeds = {i.name: np.random.default_rng(0).standard_normal(
        [d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32) for i in sess.get_inputs()}
    first = sess.run(None, feeds)[0]
    feeds[names[-1]] = feeds[names[-1]].copy()
    feeds[names[-1]][1:] *= 3.0
    second = sess.run(None, feeds)[0]
    assert not np.allclose(first[0], second[0], atol=1e-4)


# ---------------------------------------------------------------- the traps of REFERENCE §6


def _export_and_compare(fn, args, names, outs):
    model = to_onnx(PhaseFunction(fn, names, outs, (), ()), args)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})
    want = [t.detach().numpy() for t in fn(*args)]
    return model, got, want


def test_trap_cross_entropy_normaliser_with_batch_above_one():
    """F.cross_entropy's gradient for N = 6 must match eager: without the core decompositions
    the NLL normaliser is exported as 1 and the gradient is 6× too large."""
    def ce_grad(logits, labels):
        with torch.enable_grad():
            leaf = logits.detach().requires_grad_()
            loss = F.cross_entropy(leaf, labels)
            return loss, torch.autograd.grad(loss, [leaf])[0]
    args = [torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3, 1, 0])]
    _, got, want = _export_and_compare(ce_grad, args, ("logits", "labels"), ("loss", "grad"))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-7)


def test_trap_convolution_backward_exports_as_forward_convolutions():
    """aten.convolution_backward has no ONNX translation: both gradients of a strided conv
    (odd input size) and of a max-pool must come out as Conv / ConvTranspose / ScatterElements
    and match eager."""
    def grads(x, w, b):
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (x, w, b)]
            y = F.max_pool2d(F.relu(F.conv2d(leaves[0], leaves[1], leaves[2], stride=2, padding=1)), 2)
            return tuple(torch.autograd.grad((y * y).sum(), leaves))
    gen = torch.Generator().manual_seed(1)
    args = [torch.randn(3, 2, 9, 9, generator=gen), torch.randn(4, 2, 3, 3, generator=gen), torch.randn(4, generator=gen)]
    model, got, want = _export_and_compare(grads, args, ("x", "w", "b"), ("gx", "gw", "gb"))
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "ConvTranspose", "ScatterElements"} <= ops
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_a_meta_batch_of_25_verifies_as_25_proven_copies_of_one_task():
    """The default meta-batch of the CLI: verification checks task 0 and the outer part and
    proves the other 24 tasks identical copies (its cost does not grow with B)."""
    from algorithms.export import trace_phase
    from algorithms.verification import verify_master
    spec = PhaseSpec(algorithm="maml", phase="meta_train", meta_batch=25, shot=10, query=10)
    master = trace_phase(spec)
    report = verify_master(master, spec)
    assert report.task_copies == 25
    per_task = collections.Counter(Scope.parse(n.metadata_props[0].value).task for n in master.graph.node)
    assert len({per_task[j] for j in range(25)}) == 1 and per_task[None] > 0

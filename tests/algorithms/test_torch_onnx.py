"""The fence around torch's private ONNX exporter API: the only module using it, node
attribution that fails loudly when the exporter's metadata format changes, and the documented
fallback to the public exporter."""

import logging
import re
from pathlib import Path

import pytest

import algorithms
from algorithms import phases, torch_onnx, trace
from algorithms.phase_graph import float64
from algorithms.spec import PhaseSpec
from algorithms.trace import node_scope
from hwsim.scope import Scope

PRIVATE = re.compile(r"\btorch\.(?:_[a-z]|onnx\._internal)|from torch\._|import torch\._")


@pytest.fixture(scope="module")
def adapt(sine_setting):
    """A small phase with every inner-loop scope, and its float64 example inputs."""
    spec = PhaseSpec(algorithm="maml", phase="adapt", **sine_setting)
    return phases.phase_function(spec), float64(phases.example_inputs(spec, 0))


def test_only_the_bridge_module_touches_private_torch_api():
    package = Path(algorithms.__file__).parent
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                   if PRIVATE.search(p.read_text(encoding="utf-8")))
    assert users == ["torch_onnx.py"]


def test_every_node_is_attributed_to_its_scope(adapt):
    model = trace.to_onnx(*adapt)
    scopes = [Scope.parse(node_scope(n)) for n in model.graph.node]
    assert {str(s) for s in scopes} == {f"inner{i}/{p}" for i in (0, 1)
                                        for p in ("forward", "loss", "backward", "update")}


def test_a_changed_metadata_format_fails_loudly_instead_of_scoping_everything_other(adapt, monkeypatch):
    # The exporter writes its provenance under another key: no node can be attributed.
    monkeypatch.setattr(torch_onnx, "FX_NODE_PROP", "pkg.torch.onnx.provenance")
    with pytest.raises(torch_onnx.ExporterFormatError, match="metadata format changed"):
        trace.to_onnx(*adapt)


def test_a_changed_metadata_text_fails_loudly(adapt, monkeypatch):
    # ... or under the same key in another text format.
    monkeypatch.setattr(torch_onnx, "_FX_NAME_RE", re.compile(r"^node=(\S+)$"))
    with pytest.raises(torch_onnx.ExporterFormatError, match="torch 2.13"):
        trace.to_onnx(*adapt)


def test_the_public_exporter_gives_the_same_graph(adapt):
    private = trace.to_onnx(*adapt, route="private")
    public = trace.to_onnx(*adapt, route="public")
    assert [(n.op_type, node_scope(n)) for n in public.graph.node] == \
        [(n.op_type, node_scope(n)) for n in private.graph.node]


def test_an_unusable_private_api_falls_back_to_the_public_exporter(adapt, monkeypatch, caplog):
    def moved(*args, **kwargs):
        raise AttributeError("module 'torch.onnx._internal.exporter._core' has no attribute '_translate_fx_graph'")
    monkeypatch.setattr(torch_onnx, "_translate_private", moved)
    fn, args = adapt
    with caplog.at_level(logging.WARNING, logger="algorithms.torch_onnx"):
        lowered = torch_onnx.aten_to_onnx(fn.fn, args, decompositions=trace.decompositions(),
                                          prepare=trace.make_translatable)
    assert lowered.route == "public"
    assert any("public exporter" in r.getMessage() for r in caplog.records)


def test_an_unknown_route_is_refused(adapt):
    fn, args = adapt
    with pytest.raises(ValueError, match="HWSIM_ONNX_ROUTE must be one of private, public"):
        torch_onnx.aten_to_onnx(fn.fn, args, decompositions={}, prepare=lambda gm: None, route="fast")

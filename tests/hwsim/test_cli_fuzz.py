"""Hostile input through the whole command: `hwsim simulate` on mutated ONNX models and mutated
hardware configs exits 0 or 2 — never 1 —, says what was wrong in one line without a traceback,
writes nothing when it fails, and keeps its memory bounded.

Derandomized and without an example database, so every run checks the same cases.
"""

from __future__ import annotations

import resource
from pathlib import Path

import onnx
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.config import PRESET_DIR

from .cli_run import run_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"
MODELS = {p.stem: p.read_bytes() for p in sorted(DATA.glob("*.onnx"))}
EDGE = yaml.safe_load((PRESET_DIR / "edge-npu.yaml").read_text())
# The command may use this much more memory than before it ran (the graphs here need ~100 MB).
RSS_BOUND_MB = 1500

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _check(code: int, err: str, written: Path) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert not written.exists()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- mutated models ---------------------------------------------------------------------------------

def _mutate_model(data: st.DataObject, model: onnx.ModelProto) -> bytes:
    g = model.graph
    kind = data.draw(st.sampled_from(["dims", "op", "drop_input", "dup_output", "attr", "dtype", "opset",
                                      "initializer", "bytes", "truncate"]))
    if kind in ("bytes", "truncate"):
        blob = bytearray(model.SerializeToString())
        if kind == "truncate":
            return bytes(blob[:data.draw(st.integers(0, len(blob) - 1))])
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        return bytes(blob)
    node = g.node[data.draw(st.integers(0, len(g.node) - 1))]
    if kind == "dims":
        vis = [vi for vi in (*g.input, *g.output, *g.value_info) if vi.type.tensor_type.shape.dim]
        if vis:
            vi = data.draw(st.sampled_from(vis))
            d = vi.type.tensor_type.shape.dim[data.draw(st.integers(0, len(vi.type.tensor_type.shape.dim) - 1))]
            d.dim_value = data.draw(st.sampled_from([0, 1, 3, 10**6, 10**10, 2**40]))
    elif kind == "op":
        node.op_type = data.draw(st.sampled_from(["Conv", "MatMul", "Relu", "Reshape", "Loop", "Nope", "Gather",
                                                  "ConstantOfShape", "Expand", "Range", ""]))
    elif kind == "drop_input" and node.input:
        del node.input[data.draw(st.integers(0, len(node.input) - 1))]
    elif kind == "dup_output" and len(g.node) > 1:
        other = g.node[(list(g.node).index(node) + 1) % len(g.node)]
        if other.output and node.output:
            other.output[0] = node.output[0]
    elif kind == "attr" and node.attribute:
        a = node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))]
        choice = data.draw(st.sampled_from(["i", "ints", "s", "type"]))
        if choice == "i":
            a.i = data.draw(st.sampled_from([0, -1, 10**9]))
        elif choice == "ints":
            del a.ints[:]
            a.ints.extend(data.draw(st.lists(st.integers(-5, 10**6), max_size=6)))
        elif choice == "s":
            a.s = data.draw(st.sampled_from([b"\xff\xfe", b"", b"NOTSET"]))
        else:
            a.type = data.draw(st.sampled_from([1, 2, 3, 5, 7, 99]))
    elif kind == "dtype" and g.input:
        g.input[0].type.tensor_type.elem_type = data.draw(st.sampled_from([0, 2, 8, 13, 16, 40]))
    elif kind == "opset":
        model.opset_import[0].version = data.draw(st.sampled_from([1, 6, 99, 10**6]))
        model.ir_version = data.draw(st.sampled_from([0, 3, 99]))
    elif kind == "initializer" and g.initializer:
        init = g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
        init.dims[:] = data.draw(st.lists(st.integers(0, 10**7), min_size=1, max_size=4))
    return model.SerializeToString()


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(MODELS)))
def test_mutated_models_exit_0_or_2_in_one_line_and_write_nothing_on_failure(tmp_path, capsys, data, name):
    model = onnx.load_from_string(MODELS[name])
    path = tmp_path / "m.onnx"
    path.write_bytes(_mutate_model(data, model))
    out = tmp_path / "r.json"
    out.unlink(missing_ok=True)
    before = _rss_mb()
    code, _, err = run_cli("simulate", path, "--json", out, capsys=capsys)
    _check(code, err, out)
    assert _rss_mb() - before < RSS_BOUND_MB


# ---- mutated hardware configs --------------------------------------------------------------------------

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["WS", "DDR4", "1e400", "-0", "512KiB"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=6)


def _paths(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


@FUZZ
@given(data=st.data())
def test_mutated_configs_exit_0_or_2_in_one_line(tmp_path, capsys, data):
    cfg = yaml.safe_load(yaml.safe_dump(EDGE))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(cfg)) or [("kind",)]))
        node = cfg
        for key in path[:-1]:
            node = node[key]
        action = data.draw(st.sampled_from(["set", "delete", "add"]))
        if action == "delete":
            node.pop(path[-1], None)
        elif action == "add" and isinstance(node, dict):
            node[data.draw(st.text(min_size=1, max_size=8))] = data.draw(_VALUES)
        elif isinstance(node, dict):
            node[path[-1]] = data.draw(_VALUES)
    hw = tmp_path / "hw.yaml"
    hw.write_text(yaml.safe_dump(cfg) if isinstance(cfg, dict) else "x")
    out = tmp_path / "r.json"
    out.unlink(missing_ok=True)
    code, _, err = run_cli("simulate", DATA / "conv4_infer_torch.onnx", "--hw", hw, "--json", out, capsys=capsys)
    _check(code, err, out)

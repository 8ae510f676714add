"""The co-design options of the NPU lowering leave today's numbers alone by default, and reject
bad values in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from compiler.compile import front_end, lower
from compiler.lowering import LoweringError
from compiler.lowering.npu import OPTIONS
from hwsim.config import load_hardware

HERE = Path(__file__).resolve().parents[1] / "data" / "codesign"
DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"


def test_default_options_reproduce_the_recorded_programs_and_results():
    """Program and SimResult JSON, byte for byte, of every fixture and two exported MAML phases
    on every NPU preset in both streaming forms, as recorded before the options existed
    (tests/data/codesign/make_fingerprints.py)."""
    sys.path.insert(0, str(HERE))
    try:
        import make_fingerprints
    finally:
        sys.path.remove(str(HERE))
    recorded = json.loads((HERE / "default_fingerprints.json").read_text())
    now = make_fingerprints.fingerprints()
    assert sorted(now) == sorted(recorded)
    assert [k for k in recorded if now[k] != recorded[k]] == []


@pytest.mark.parametrize("preset", ["edge-npu", "server-npu"])
def test_naming_every_default_changes_nothing(preset):
    front = front_end(DATA / "conv4_train.onnx")
    hw = load_hardware(preset)
    defaults = {name: default for name, (_, default) in OPTIONS.items()}
    assert lower(front, hw, **defaults).to_json() == lower(front, hw).to_json()


def test_fp32_on_an_npu_without_datatype_is_the_exported_graph_itself():
    front = front_end(DATA / "conv4_train.onnx")
    hw = load_hardware("edge-npu")
    assert hw.datatype is None
    _same_but_recorded(lower(front, hw, precision="fp32"), lower(front, hw), "precision", "fp32")


def test_a_precision_equal_to_the_npus_datatype_keeps_the_hardwares_rule():
    front = front_end(DATA / "conv4_train.onnx")
    hw = load_hardware("server-npu")   # bfloat16 hardware: every floating tensor in bf16
    _same_but_recorded(lower(front, hw, precision="bf16"), lower(front, hw), "precision", "bf16")


def _same_but_recorded(chosen, plain, option, value):
    """The same Program, with the option the user named recorded in its metadata."""
    assert chosen.tasks == plain.tasks and chosen.resources == plain.resources
    assert chosen.metadata == {**plain.metadata, f"compile.{option}": value}


@pytest.mark.parametrize("option,value,message", [
    ("fusion", "deep", "unknown fusion 'deep'; known: none, layer, depth_first"),
    ("halo", "share", "unknown halo 'share'; known: cache, recompute"),
    ("recompute", "some", "unknown recompute 'some'; known: stash_all, per_step, all"),
    ("precision", "fp8", "unknown precision 'fp8'; known: unset, fp32, bf16, fp16, int8"),
    ("detail", "cycles", "unknown detail 'cycles'; known: node, tiles"),
    ("tiling", "rows", "unknown NPU lowering option 'tiling'; known: detail, precision, fusion, halo, recompute"),
])
def test_a_bad_option_is_one_line_naming_the_allowed_values(option, value, message):
    front = front_end(DATA / "conv4_train.onnx")
    with pytest.raises(LoweringError) as e:
        lower(front, load_hardware("edge-npu"), **{option: value})
    assert str(e.value) == message

"""docs/ops.md is generated from the workload-rule registry by docs/make_ops.py and must match it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from compiler.workload import RULES, Kind

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "make_ops.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_ops", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ops_doc_is_current():
    make_ops = _script()
    assert make_ops.DOC.read_text() == make_ops.render(), \
        "docs/ops.md is stale: run .venv/bin/python docs/make_ops.py"


def test_every_rule_has_a_row_with_its_kind_and_unit():
    text = _script().render()
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    for op, spec in RULES.items():
        assert op in rows, op
        assert f"| {spec.kind.value} |" in rows[op]
    assert rows["Conv"].endswith("| systolic array |") and rows["LSTM"].endswith("| systolic array |")
    assert rows["Relu"].endswith("| vector unit |") and rows["Reshape"].endswith("| none (a view of its input) |")
    assert rows["Shape"].endswith("| none (known at compile time) |")
    assert all(spec.summary(op) for op, spec in RULES.items() if spec.kind is not Kind.NONE)

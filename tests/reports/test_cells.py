"""Names from inputs cannot break Markdown tables, inject markup, or run in a spreadsheet."""

import io

import pandas as pd

from hwsim.engine import simulate
from hwsim.program import Program, ResourceSpec, Task, TaskKind
from hwsim.technology import Price
from reports.cells import csv_safe, csv_text, md, plain
from reports.compare import Run, comparison_markdown
from reports.tables import render

EVIL = "a|b\nc <script>alert(1)</script> *x* [l](u) _e_ `c` \\"


def test_md_keeps_one_cell_and_no_markup():
    cell = md(EVIL)
    assert "\n" not in cell and "<" not in cell and ">" not in cell
    assert "|" not in cell.replace("\\|", "")            # every pipe is escaped
    assert "\\*x\\*" in cell and "\\[l\\]" in cell and "\\_e\\_" in cell and "\\`c\\`" in cell
    assert cell.endswith("\\\\")                        # a trailing backslash cannot escape the pipe
    assert md("meta_train") == "meta_train"              # intraword underscores stay readable


def test_plain_drops_control_characters():
    assert plain("x\x1b[31mred\ny") == "x [31mred y"


def test_markdown_table_keeps_its_columns_with_hostile_names():
    t = render(("name", "value"), [(EVIL, 1), ("ok", 2)], markdown=True).splitlines()
    assert len(t) == 4
    for line in t:
        # count unescaped separators: every row has exactly 3
        assert line.replace("\\|", "").count("|") == 3, line


def test_csv_cells_starting_a_formula_are_neutralised():
    assert csv_safe("=cmd()") == "'=cmd()" and csv_safe("+1") == "'+1" and csv_safe("@x") == "'@x"
    assert csv_safe("-2+3") == "'-2+3" and csv_safe("\tx") == "'\tx"
    assert csv_safe(-1.5) == -1.5 and csv_safe("maml") == "maml"
    df = pd.DataFrame({"target": ["=HYPERLINK(\"x\")", "edge-npu"], "cycles": [-1, 2]})
    back = pd.read_csv(io.StringIO(csv_text(df)))
    assert list(back["target"]) == ["'=HYPERLINK(\"x\")", "edge-npu"]
    assert list(back["cycles"]) == [-1, 2]                # numbers are left alone


def _result(target: str):
    tasks = [Task(0, TaskKind.COMPUTE, "mm", ("array",), cycles=10, actions={"mac.float32": 100},
                  scope="task0/inner0/forward", op_type="MatMul")]
    return simulate(Program("p", target, 1e9, {"array": ResourceSpec("array")}, tasks),
                    energy_table={"mac.float32": Price(1.0, "MAC", "t")})


def test_comparison_markdown_escapes_target_and_algorithm_names():
    runs = [Run("maml", "adapt", _result("npu|<b>x</b>\nnext")), Run("fo|maml", "adapt", _result("npu|<b>x</b>\nnext"))]
    text = comparison_markdown(runs, title="T <i>", notes=["note | with pipe"])
    assert "<b>" not in text and "<i>" not in text
    totals = text.split("## Totals")[1].split("\n\n")[1].splitlines()
    widths = {line.replace("\\|", "").count("|") for line in totals}
    assert widths == {11}, totals                        # 10 columns in every row

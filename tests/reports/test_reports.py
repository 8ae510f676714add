"""Reports read SimResults only: tables, comparison frames, Markdown."""

import pytest

from hwsim.technology import Price
from hwsim.engine import simulate
from hwsim.program import Program, ResourceSpec, Task, TaskKind
from reports.compare import Run, comparison_markdown, phases_frame, totals_frame
from reports.tables import phase_table, render, si, summary_table

PRICES = {"mac.float32": Price(4.6, "MAC", "t"), "dram.read": Price(160.0, "byte", "t")}
RES = {"array": ResourceSpec("array"), "dma": ResourceSpec("dma", bytes_per_cycle=8.0)}


def result(macs, name="p"):
    tasks = [Task(0, TaskKind.TRANSFER, "ld", ("dma",), bytes=64, actions={"dram.read": 64}, scope="task0/inner0/forward"),
             Task(1, TaskKind.COMPUTE, "mm", ("array",), deps=(0,), cycles=macs / 16,
                  actions={"mac.float32": macs}, scope="task0/inner0/forward", op_type="MatMul"),
             Task(2, TaskKind.COMPUTE, "upd", ("array",), deps=(1,), cycles=4, scope="outer_update", op_type="Sub")]
    return simulate(Program(name, "npu-x", 1e9, dict(RES), tasks), energy_table=PRICES)


@pytest.mark.parametrize("value, unit, text", [(0, "J", "0 J"), (1.5e-6, "s", "1.5 µs"), (2048, "B", "2.05 kB"),
                                               (3.2e9, "B", "3.2 GB")])
def test_si(value, unit, text):
    assert si(value, unit) == text


def test_render_aligns_markdown_columns():
    t = render(("a", "bb"), [("x", 1), ("yyy", 22)], markdown=True).splitlines()
    assert len({len(line) for line in t}) == 1 and t[1].startswith("|--")


def test_summary_and_phase_tables_show_the_numbers():
    r = result(1600)
    s = summary_table(r)
    assert "1,600" in s and "npu-x" in s and "busy array" in s and "MAC efficiency" in s
    p = phase_table(r)
    assert "inner0/forward" in p and "outer_update" in p


def test_comparison_frames_and_ratio():
    runs = [Run("maml", "meta_train", result(3200)), Run("fomaml", "meta_train", result(1600))]
    tot = totals_frame(runs)
    assert list(tot["macs"]) == [3200, 1600]
    ph = phases_frame(runs)
    assert set(ph["phase_part"]) == {"inner0/forward", "outer_update"}
    md = comparison_markdown(runs, title="T", notes=["n1"])
    assert md.startswith("# T") and "fomaml / maml" in md and "| 0.500 |" in md

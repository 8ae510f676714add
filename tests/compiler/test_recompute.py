"""Recomputation of the inner loop (compiler/recompute.py): what is recomputed, where the copies
go, that they compute what the originals did, and the memory it saves for the MACs it adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.compile import front_end
from compiler.lowering import LoweringError
from compiler.lowering.npu import lower_npu
from compiler.passes import check_graph
from compiler.recompute import RECOMPUTES, recompute
from compiler.workload import graph_workloads
from hwsim import pipeline
from hwsim.config import load_hardware

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"


def _peak_demand(program) -> int:
    return max(v for points in program.memory_demand.values() for _, v in points)


def test_stash_all_is_the_exported_graph(maml_conv4):
    assert recompute(maml_conv4.graph, "stash_all") is maml_conv4.graph
    assert RECOMPUTES == ("stash_all", "per_step", "all")


def test_a_graph_without_inner_steps_is_left_alone():
    g = front_end(DATA / "conv4_train.onnx").graph
    assert recompute(g, "per_step") is g and recompute(g, "all") is g


@pytest.mark.parametrize("policy", ["per_step", "all"])
def test_copies_compute_what_the_originals_did_and_feed_only_the_meta_gradient(maml_conv4, policy):
    g = maml_conv4.graph
    out = check_graph(recompute(g, policy))
    original = {n.name: n for n in g.nodes}
    copies = [n for n in out.nodes if "@rc" in n.name]
    assert copies
    copy_of = {}   # copied tensor -> original tensor
    for c in copies:
        o = original[c.name.split("@rc")[0]]
        assert (c.op_type, dict(c.attrs)) == (o.op_type, dict(o.attrs))
        assert c.scope.part == "recompute" and c.scope.task == o.scope.task
        assert c.scope.inner_step >= o.scope.inner_step
        if policy == "per_step":
            assert c.scope.inner_step == o.scope.inner_step and o.scope.part in ("forward", "loss", "backward")
        for co, oo in zip(c.outputs, o.outputs):
            copy_of[co] = oo
            assert out.tensor(co).shape == g.tensor(oo).shape and out.tensor(co).dtype == g.tensor(oo).dtype
        for ci, oi in zip(c.inputs, o.inputs):   # a copy reads copies of what the original read, or the same
            assert copy_of.get(ci, ci) == oi
    readers = {n.scope.part for n in out.nodes for i in n.inputs if i in copy_of}
    assert readers <= {"meta_grad", "recompute"}
    # what is kept is never recomputed: the batch (no parameter behind it)
    assert not any(copy_of[t].endswith("support_x") for t in copy_of)


def test_per_step_recomputes_each_step_once_and_all_reruns_the_earlier_steps(maml_conv4):
    hw = load_hardware("edge-npu")
    runs = {p: pipeline.simulate(maml_conv4, hw, recompute=p) for p in RECOMPUTES}

    def extra(policy):
        return {row["phase_part"]: row["macs"] for row in runs[policy].result.phase_breakdown()
                if row["phase_part"].endswith("/recompute")}
    per_step, everything = extra("per_step"), extra("all")
    assert set(per_step) == set(everything) == {"inner0/recompute", "inner1/recompute"}
    assert per_step["inner0/recompute"] == per_step["inner1/recompute"] > 0
    assert everything["inner1/recompute"] > everything["inner0/recompute"] >= per_step["inner0/recompute"]
    base = runs["stash_all"].result.macs
    assert base + sum(per_step.values()) == pytest.approx(runs["per_step"].result.macs)
    assert runs["all"].result.macs > runs["per_step"].result.macs > base
    # the stash it frees: less on-chip demand for the meta-gradient
    demand = {p: _peak_demand(r.program) for p, r in runs.items()}
    assert demand["per_step"] < demand["stash_all"] and demand["all"] < demand["stash_all"]


def test_copies_run_right_before_the_meta_gradient_reads_them(maml_conv4):
    out = recompute(maml_conv4.graph, "per_step")
    position = {n.name: k for k, n in enumerate(out.nodes)}
    producer = {o: n for n in out.nodes for o in n.outputs if o}
    first_meta_grad = min(position[n.name] for n in out.nodes if n.scope.part == "meta_grad" and
                          any(producer.get(i) is not None and "@rc" in producer[i].name for i in n.inputs if i))
    query = max(position[n.name] for n in out.nodes if n.scope.part == "query")
    copies = [position[n.name] for n in out.nodes if "@rc" in n.name]
    assert min(copies) > query   # not during the inner loop or the query: after them
    assert min(copies) < first_meta_grad


def test_recompute_workloads_are_those_of_the_originals(maml_conv4):
    out = recompute(maml_conv4.graph, "all")
    wl = graph_workloads(out)
    for n in out.nodes:
        if "@rc" in n.name:
            assert wl[n.name] == maml_conv4.workloads[n.name.split("@rc")[0]]


def test_unknown_policy_is_a_one_line_lowering_error(maml_conv4):
    with pytest.raises(LoweringError, match=r"^unknown recompute 'half'; known: stash_all, per_step, all$"):
        lower_npu(maml_conv4.graph, maml_conv4.workloads, load_hardware("edge-npu"), recompute="half")

"""Precision as a compiler choice (compiler/precision.py) and its lowering: which tensors stay
float32, bytes and prices at the chosen types, int8 only where the phase allows, and the NPU's
own datatype winning over the option."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from compiler.compile import front_end, lower
from compiler.ir import Role
from compiler.precision import PrecisionError, numeric_plan
from compiler.workload import Kind
from hwsim import pipeline
from hwsim.config import load_hardware

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"


@pytest.fixture
def maml(maml_conv4):
    return maml_conv4


def test_mixed_precision_keeps_masters_updates_and_reductions_at_float32(maml):
    g, wl = maml.graph, maml.workloads
    plan = numeric_plan(g, wl, "bf16")
    producer = {o: n for n in g.nodes for o in n.outputs if o}
    wide = narrow = 0
    for name, t in g.tensors.items():
        stored = plan.tensor[name]
        if not (t.dtype.startswith("float") or t.dtype == "bfloat16"):
            assert stored == t.dtype   # indices, shapes, masks keep their type
            continue
        p = producer.get(name)
        master = t.role in (Role.PARAMETER, Role.CONSTANT) or (
            p is not None and p.scope.part in ("update", "meta_reduce", "outer_update"))
        reduced = p is not None and wl[p.name].kind is Kind.REDUCTION and \
            max(x.numel for x in g.out_tensors(p)) < max(x.numel for x in g.in_tensors(p) if x.dtype == "float32")
        expected = "float32" if master or reduced else "bfloat16"
        assert stored == expected, name
        wide += expected == "float32"
        narrow += expected == "bfloat16"
    assert wide and narrow
    convs = [n for n in g.nodes if n.op_type in ("Conv", "ConvTranspose")]
    assert {plan.node[n.name] for n in convs} == {"bfloat16"}
    updates = [n for n in g.nodes if n.scope.part == "update" and wl[n.name].kind is Kind.ELEMENTWISE]
    assert updates and {plan.node[n.name] for n in updates} == {"float32"}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_sixteen_bit_storage_halves_the_traffic_and_prices_sixteen_bit_macs(maml, precision):
    hw = load_hardware("edge-npu")
    full = pipeline.simulate(maml, hw).result
    half = pipeline.simulate(maml, hw, precision=precision).result
    moved = lambda r: r.traffic()["dram.read"] + r.traffic()["dram.write"]   # noqa: E731
    # half the bytes per tensor, and more of them fit on chip: at most about half the traffic,
    # never less than reading every input and parameter once and writing every output once
    g = maml.graph
    plan = numeric_plan(g, maml.workloads, precision)
    read = {i for n in g.nodes for i in n.inputs if i}
    compulsory = sum(plan.nbytes(g, t) for t in g.tensors if g.tensor(t).role in (Role.INPUT, Role.PARAMETER)
                     and t in read) + sum(plan.nbytes(g, o) for o in set(g.outputs) if o not in g.inputs)
    assert compulsory <= moved(half) <= 0.55 * moved(full)
    dtype = {"bf16": "bfloat16", "fp16": "float16"}[precision]
    totals = half.action_totals()
    assert totals[f"mac.{dtype}"] == full.macs and "mac.float32" not in totals
    assert totals["vector.float32"] > 0 and totals[f"vector.{dtype}"] > 0   # masters update at fp32
    assert half.energy_pj < 0.7 * full.energy_pj
    assert half.peak_memory["sram"] <= hw.sram.size_bytes


def test_inference_keeps_no_master_copy():
    front = front_end(DATA / "conv4_infer_torch.onnx")
    plan = numeric_plan(front.graph, front.workloads, "int8")
    params = [n for n, t in front.graph.tensors.items() if t.role is Role.PARAMETER]
    assert params and {plan.tensor[p] for p in params} == {"int8"}
    r = pipeline.simulate(front, load_hardware("edge-npu"), precision="int8").result
    totals = r.action_totals()
    assert totals["mac.int8"] == r.macs and "mac.float32" not in totals


def test_int8_is_for_inference_and_adaptation_only():
    front = front_end(DATA / "conv4_train.onnx")
    hw = load_hardware("edge-npu")
    for phase in ("infer", "adapt"):
        g = replace(front.graph, metadata={**front.graph.metadata, "phase": phase})
        assert lower(replace(front, graph=g), hw, precision="int8").tasks
    g = replace(front.graph, metadata={**front.graph.metadata, "phase": "meta_train"})
    with pytest.raises(PrecisionError) as e:
        lower(replace(front, graph=g), hw, precision="int8")
    assert str(e.value) == ("precision 'int8' is for the infer and adapt phases; this graph is meta_train "
                            "(use fp32, bf16 or fp16)")


def test_the_npus_own_datatype_wins_and_a_different_precision_is_an_error():
    front = front_end(DATA / "conv4_infer_torch.onnx")
    tpu = load_hardware("tpu-v1-like")
    same, plain = lower(front, tpu, precision="int8"), lower(front, tpu)
    assert same.tasks == plain.tasks and same.resources == plain.resources   # nothing changes but
    assert same.metadata == {**plain.metadata, "compile.precision": "int8"}   # the record of the option
    with pytest.raises(PrecisionError) as e:
        lower(front, tpu, precision="bf16")
    assert str(e.value) == ("precision 'bf16' conflicts with tpu-v1-like's datatype 'int8' (the hardware "
                            "computes and stores only int8); leave precision unset or choose 'int8'")


def test_more_macs_per_pe_at_a_type_shorten_the_array_work_only():
    """`array.macs_per_pe` (a proposed config field, default 1): a PE finishing two bf16 MACs a
    cycle halves the array's reduction folds; MACs and buffer bytes stay."""
    front = front_end(DATA / "conv4_infer_torch.onnx")
    hw = load_hardware("edge-npu")
    a = hw.array
    doubled = hw.model_copy(update={"array": SimpleNamespace(rows=a.rows, cols=a.cols, dataflow=a.dataflow,
                                                             pes=a.pes, macs_per_pe={"bfloat16": 2})})
    one = lower(front, hw, precision="bf16")
    two = lower(front, doubled, precision="bf16")
    array = lambda p: sum(t.cycles for t in p.tasks if t.resources[0].endswith("array"))   # noqa: E731
    assert array(two) < 0.75 * array(one)
    counts = lambda p, what: sum(c for t in p.tasks for k, c in t.actions.items() if k.startswith(what))  # noqa: E731
    assert counts(two, "mac.") == counts(one, "mac.")
    # buffer reads: the same elements, but a reduction of odd length (conv1: 1 x 3 x 3) is padded
    # to whole pairs
    assert counts(one, "sram.read") < counts(two, "sram.read") < 1.01 * counts(one, "sram.read")
    # float32 work is untouched by a bfloat16 entry
    assert array(lower(front, doubled)) == array(lower(front, hw))

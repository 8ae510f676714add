"""Fabric lowering (FPGA, CGRA): FINN and fpgaConvNet closed forms reproduced exactly, pipeline
and resource invariants, reconfiguration accounting, every exported phase within bounds."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from algorithms.export import export_phase
from algorithms.spec import PhaseSpec
from compiler.compile import compile_model
from compiler.ir import Graph, Node, Role, Tensor
from hwsim.scope import Scope
from compiler.lowering.fabric import (CHUNKS, FabricFitError, chunk_items, finn_bram18, finn_uram,
                                      fpgaconvnet_pipelined_cycles, fpgaconvnet_sequential_seconds,
                                      mvau_cycles, plan_fpga)
from compiler.lowering import LoweringError
from compiler.lowering.npu import compulsory_dram_bytes
from compiler.workload import graph_workloads
from hwsim.pipeline import default_cache_dir
from hwsim.config import load_hardware, parse_hardware
from hwsim.energy import energy_table
from hwsim.engine import simulate
from hwsim.program import TaskKind

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"

FPGA = """kind: fpga
name: tiny
clock_mhz: 100
resources: {{dsp: {dsp}, bram18: {bram}, uram: 0, lut: {lut}, ff: {ff}}}
usable_fraction: 1.0
dram: {{type: DDR4, bandwidth_gbps: {bw}, latency_ns: 0}}
config_port: {{width_bits: 32, clock_mhz: 100}}
bitstream: {{full_bytes: 40000, partial_regions: 0}}
"""


def fpga(dsp=2000, bram=1000, lut=1_000_000, ff=2_000_000, bw=1e5):
    return parse_hardware(FPGA.format(dsp=dsp, bram=bram, lut=lut, ff=ff, bw=bw))


def chain(ops, n=4, d=16, weights=(), phase=None):
    """x[n, d] through `ops` in order: "mm<k>" is a MatMul with a [d_in, k] weight, anything
    else a unary elementwise op of that ONNX type."""
    tensors, nodes = {}, []
    def t(name, shape, role=Role.ACTIVATION):
        tensors[name] = Tensor(name, tuple(shape), "float32", role)
        return name
    x, width = t("x", (n, d), Role.INPUT), d
    for i, op in enumerate(ops):
        if op.startswith("mm"):
            k = int(op[2:])
            w = t(f"w{i}", (width, k), Role.PARAMETER)
            y = t(f"y{i}", (n, k))
            nodes.append(Node(f"n{i}", "MatMul", (x, w), (y,), scope=Scope("forward")))
            width = k
        else:
            y = t(f"y{i}", (n, width))
            nodes.append(Node(f"n{i}", op, (x,), (y,), scope=Scope("forward")))
        x = y
    tensors[x] = Tensor(x, tensors[x].shape, "float32", Role.OUTPUT)
    g = Graph("chain", nodes, tensors, [k for k, v in tensors.items() if v.role in (Role.INPUT, Role.PARAMETER)],
              [x], metadata={"phase": phase} if phase else {})
    return g, graph_workloads(g)


def run(g, hw):
    compiled = compile_model(g, hw)
    return compiled, simulate(compiled.program, energy_table=energy_table(hw),
                              static_power_mw=hw.technology.static_power_mw)


def compute_span(r):
    rec = [x for x in r.timeline if x.kind == "compute"]
    return max(x.end for x in rec) - min(x.start for x in rec)


# ---- FINN ---------------------------------------------------------------------------------------

@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 32), st.integers(1, 32), st.integers(1, 500))
def test_mvau_cycles_is_finns_formula(a, b, pe, simd, nv):
    mh, mw = a * pe, b * simd
    assert mvau_cycles(mh, mw, pe, simd, nv) == (mh // pe) * (mw // simd) * nv == a * b * nv
    if pe > 1:
        with pytest.raises(ValueError):
            mvau_cycles(mh + 1, mw, pe, simd, nv)


@pytest.mark.parametrize("words, width, bram", [
    (16384, 1, 1), (16385, 1, 2), (8192, 2, 1), (4096, 4, 1), (4096, 3, 1), (4097, 4, 2),
    (2048, 9, 1), (2048, 5, 1), (2049, 9, 2), (1024, 18, 1), (1025, 18, 2), (600, 36, 2),
    (512, 36, 1), (512, 72, 2), (300, 20, 1), (513, 20, 2)])
def test_finn_bram18_cases(words, width, bram):
    assert finn_bram18(words, width) == bram


@given(st.integers(1, 200_000), st.integers(1, 4096))
def test_finn_memories_hold_the_bits(words, width):
    # each aspect ratio of a BRAM18 holds 18 Kib at most (16 Kib in the 1/2/4-bit modes)
    b = finn_bram18(words, width)
    assert b * 18 * 1024 >= words * width
    assert finn_uram(words, width) == math.ceil(width / 72) * math.ceil(words / 4096)
    assert finn_uram(words, width) * 288 * 1024 >= words * width


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([8, 16, 24, 48, 64]), st.sampled_from([4, 16, 40, 96]), st.integers(1, 12))
def test_lowering_uses_finns_fold_for_a_matmul(d, k, n):
    g, wl = chain([f"mm{k}"], n=n, d=d)
    hw = fpga(dsp=200)
    plan = plan_fpga(g, wl, hw)
    fold = plan.stages[0].fold
    assert k % fold.pe == 0 and d % fold.simd == 0
    compiled, r = run(g, hw)
    cycles = sum(t.cycles for t in compiled.program.tasks if t.kind is TaskKind.COMPUTE)
    assert cycles == pytest.approx(mvau_cycles(k, d, fold.pe, fold.simd, n))
    assert fold.get("dsp") == math.ceil(fold.lanes * hw.lane("float32").dsp_per_mac) <= 200


# ---- fpgaConvNet --------------------------------------------------------------------------------

def test_sequential_partitions_match_fpgaconvnet():
    """One layer per configuration (the device holds one at a time): the latency is fpgaConvNet's
    sequential form with the delay = bitstream / port bandwidth; DRAM is made near-free."""
    ops = ["mm32", "mm16", "mm48", "mm8"]
    g, wl = chain(ops, n=3, d=16)
    hw = fpga(dsp=100, lut=600)   # one matrix unit at minimum parallelism (550 LUTs) per configuration
    plan = plan_fpga(g, wl, hw)
    assert plan.mode == "full" and len(plan.configs) == len(ops)
    compiled, r = run(g, hw)
    part = [sum(plan.stages[s].fold.cycles * len(plan.stages[s].nodes) for s in c.stages) for c in plan.configs]
    delay = hw.reconfiguration_seconds(hw.bitstream.full_bytes)
    expected = fpgaconvnet_sequential_seconds(part, hw.clock_hz, delay)
    assert r.seconds == pytest.approx(expected, rel=1e-4)
    reconf = [t for t in compiled.program.tasks if t.kind is TaskKind.RECONFIG]
    assert len(reconf) == len(ops) and all(t.bytes == 40000 for t in reconf)
    prices = energy_table(hw)
    assert r.energy_by_component()["reconfig"] == pytest.approx(4 * 40000 * prices["reconfig.byte"].pj)
    assert "reconfig" in {p["phase_part"] for p in r.phase_breakdown()}
    # one partition: fpgaConvNet charges no delay; hwsim charges the entry load unless the
    # phase is a meta-training step (amortised over the loop)
    assert fpgaconvnet_sequential_seconds([100.0], 1e6, 5.0) == pytest.approx(1e-4)
    assert fpgaconvnet_sequential_seconds([100.0, 50.0], 1e6, 5.0) == pytest.approx(1.5e-4 + 10)


@pytest.mark.parametrize("n", [1, 2, 3, CHUNKS])
def test_pipelined_configuration_matches_fpgaconvnet(n):
    """A chain of distinct stages streaming n <= CHUNKS items: the compute span is the flow-shop
    makespan Σ depths + (n - 1)·II, i.e. fpgaConvNet's interval·batch + Σ depths less one
    interval (its depth already contains the first item)."""
    g, wl = chain(["Relu", "Sigmoid", "Neg", "Exp", "Abs"], n=n, d=64)
    hw = fpga()
    plan = plan_fpga(g, wl, hw)
    assert plan.mode == "single"
    t = [plan.stages[i.stage].fold.cycles / n for i in plan.nodes]
    _, r = run(g, hw)
    assert compute_span(r) == pytest.approx(fpgaconvnet_pipelined_cycles(t, t, n) - max(t))
    assert fpgaconvnet_pipelined_cycles([2, 5, 3], [1, 1, 1], 10) == 53


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["Relu", "Sigmoid", "Neg", "Exp", "mm8", "mm32", "mm16"]), min_size=1, max_size=7),
       st.integers(1, 40), st.sampled_from([8, 16, 32]), st.sampled_from([60, 400, 3000]))
def test_pipeline_between_slowest_stage_and_sum_of_stages(ops, n, d, dsp):
    g, wl = chain(ops, n=n, d=d)
    hw = fpga(dsp=dsp, lut=200_000)
    plan = plan_fpga(g, wl, hw)
    stage_cycles = [plan.stages[i.stage].fold.cycles for i in plan.nodes]
    _, r = run(g, hw)
    if len(plan.configs) == 1:
        span = compute_span(r)
        assert max(stage_cycles) - 1e-6 <= span <= sum(stage_cycles) + 1e-6
    assert r.cycles >= max(stage_cycles)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["mm8", "mm24", "mm64", "mm100", "Relu", "Tanh", "Softmax"]), min_size=1, max_size=8),
       st.integers(1, 64), st.integers(30, 3000), st.integers(20, 400), st.integers(20_000, 400_000),
       st.booleans())
def test_resources_never_exceed_the_budget(ops, n, dsp, bram, lut, regions):
    g, wl = chain(ops, n=n, d=32)
    text = FPGA.format(dsp=dsp, bram=bram, lut=lut, ff=2 * lut, bw=10)
    if regions:
        text = text.replace("partial_regions: 0", "partial_regions: 2, partial_bytes: 15000")
    hw = parse_hardware(text)
    try:
        plan = plan_fpga(g, wl, hw)
    except FabricFitError as e:
        # the refusal is about resources: the same graph plans on a device 50x larger
        assert "short by" in str(e)
        big = FPGA.format(dsp=min(50 * dsp, 100_000), bram=min(50 * bram, 100_000), lut=50 * lut, ff=100 * lut, bw=10)
        assert plan_fpga(g, wl, parse_hardware(big)).configs
        return
    for c in plan.configs:
        for k, v in c.used.items():
            assert v <= c.budget[k] <= hw.resources.as_dict()[k], (k, c.index)
    assert {s.config for s in plan.stages} == set(range(len(plan.configs)))


def test_chunks_start_with_one_item_and_cover_all():
    for items in (1, 2, 3, 4, 5, 17, 1000):
        sizes = chunk_items(items)
        assert sum(sizes) == items and sizes[0] == 1 and len(sizes) <= CHUNKS and min(sizes) >= 1


# ---- bad input ----------------------------------------------------------------------------------

def test_a_layer_that_cannot_fit_names_resource_and_shortfall():
    g, wl = chain(["mm4096"], n=8192, d=2048)
    with pytest.raises(FabricFitError) as e:
        compile_model(g, load_hardware("zcu102-like"))
    msg = str(e.value)
    assert "'n0'" in msg and "MatMul" in msg and "bram18" in msg and "short by" in msg
    assert isinstance(e.value, LoweringError) and isinstance(e.value, ValueError)


# ---- reconfiguration policy ---------------------------------------------------------------------

def test_one_configuration_holds_a_meta_training_phase_without_reloads():
    g, wl = chain(["mm16", "Relu", "mm8"], phase="meta_train")
    compiled, r = run(g, load_hardware("zcu102-like"))
    assert not [t for t in compiled.program.tasks if t.kind is TaskKind.RECONFIG]
    assert compiled.program.metadata["fabric.reconfigurations"] == "0"
    g, wl = chain(["mm16", "Relu", "mm8"], phase="adapt")
    compiled, r = run(g, load_hardware("zcu102-like"))
    assert [t.bytes for t in compiled.program.tasks if t.kind is TaskKind.RECONFIG] == [10_600_000]


def test_partial_regions_reload_less_and_overlap():
    ops = ["mm32", "mm16", "mm48", "mm8", "mm24"]
    g, wl = chain(ops, n=3, d=16)
    full = fpga(dsp=100, lut=600)
    part = parse_hardware(FPGA.format(dsp=100, bram=1000, lut=1200, ff=2_000_000, bw=1e5)
                          .replace("partial_regions: 0", "partial_regions: 2, partial_bytes: 15000"))
    _, rf = run(g, full)
    cp, rp = run(g, part)
    assert json.loads(cp.program.metadata["fabric.configurations"])[0]["region_sized"]
    assert rp.action_totals()["reconfig.byte"] < rf.action_totals()["reconfig.byte"]


# ---- every exported phase -----------------------------------------------------------------------

SMALL = dict(inner_steps=2, meta_batch=2, shot=5, query=5)


@pytest.fixture(scope="module")
def exported():
    models = {f"{a}-{p}": export_phase(PhaseSpec(algorithm=a, phase=p, **SMALL), cache_dir=default_cache_dir())
              for a in ("maml", "fomaml") for p in ("infer", "adapt", "meta_train")}
    for name in ("conv4_infer_torch", "conv4_train", "sine_maml", "sine_fomaml"):
        models[name] = DATA / f"{name}.onnx"
    return models


@pytest.mark.parametrize("hw_name", ["zcu102-like", "cgra-8x8"])
def test_every_exported_phase_simulates_within_bounds(exported, hw_name):
    hw = load_hardware(hw_name)
    prices = energy_table(hw)
    for name, model in exported.items():
        compiled = compile_model(model, hw)
        r = simulate(compiled.program, energy_table=prices, static_power_mw=hw.technology.static_power_mw)
        macs = compiled.macs
        comp = compulsory_dram_bytes(compiled.graph)
        assert r.macs == macs, name
        assert r.cycles >= macs / hw.peak_macs_per_cycle, name
        assert r.cycles >= comp / hw.dram_bytes_per_cycle, name
        assert r.energy_pj >= macs * prices["mac.float32"].pj + comp * prices["dram.read"].pj, name
        t = r.traffic()
        assert t.get("dram.read", 0) + t.get("dram.write", 0) >= comp, name
        assert all(0 <= u <= 1 + 1e-9 for u in r.utilization().values()), name
        report = json.loads(r.metadata["fabric.configurations"])
        assert r.peak_memory.get("sram", 0) <= max(hw.scratchpad.size_bytes if hw_name == "cgra-8x8" else
                                                   c["available"]["bram18"] * 2304 for c in report), name
        for c in report:
            assert all(c["used"][k] <= c["available"][k] for k in c["used"]), name
        loads = [x for x in compiled.program.tasks if x.kind is TaskKind.RECONFIG]
        assert r.action_totals().get("reconfig.byte", 0) == sum(x.bytes for x in loads), name


def test_lowering_is_deterministic(exported):
    for hw_name in ("zcu102-like", "cgra-8x8"):
        hw = load_hardware(hw_name)
        a = compile_model(exported["maml-meta_train"], hw).program.to_json()
        b = compile_model(exported["maml-meta_train"], hw).program.to_json()
        assert a == b


def test_fabric_dram_transfers_interleave_over_channels():
    g, _ = chain(["mm64", "Relu"], n=64, d=64)
    hw = load_hardware("u250-like")                      # 4 DDR4 channels
    prog = compile_model(g, hw).program
    assert prog.resources["dram"].striped
    widths = {t.name: t.width for t in prog.tasks if t.kind is TaskKind.TRANSFER}
    assert max(widths.values()) == hw.dram.channels      # a 16 KiB tensor spans every channel
    ports = hw.model_copy(update={"dram": hw.dram.model_copy(update={"interleave_bytes": None})})
    single = compile_model(g, ports).program
    assert not single.resources["dram"].striped
    assert all(t.width == 1 for t in single.tasks)
    assert simulate(prog).cycles <= simulate(single).cycles

"""Properties of the NPU model on random small graphs (hypothesis): more bandwidth, larger
buffers or more cores never make latency worse; energy and traffic never fall below what any
schedule must pay; results are deterministic; buffers never overflow."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.ir import Graph, Node, Role, Tensor
from hwsim.scope import Scope
from compiler.lowering.npu import compulsory_dram_bytes, lower_npu
from compiler.workload import graph_workloads
from hwsim.config import parse_hardware
from hwsim.energy import energy_table
from hwsim.engine import simulate

HW = """kind: npu
name: p
clock_mhz: 1000
cores: {cores}
array: {{rows: {rows}, cols: {rows}, dataflow: {df}}}
vector: {{lanes: 8}}
{buffers}
dram: {{type: DDR4, bandwidth_gbps: {bw}, latency_ns: 50, channels: {channels}}}
interconnect: {{bytes_per_cycle: 32}}
"""
UNIFIED = "sram: {{size_kib: {kib}, bytes_per_cycle: 64}}"
SPLIT = ("buffers: {{ifmap: {{size_kib: {kib}, bytes_per_cycle: 64}}, "
         "filter: {{size_kib: {kib}, bytes_per_cycle: 64}}, ofmap: {{size_kib: {kib}, bytes_per_cycle: 64}}}}")


def machine(*, kib=32, bw=8.0, cores=1, rows=8, df="WS", split=False, channels=1):
    buffers = (SPLIT if split else UNIFIED).format(kib=kib)
    return parse_hardware(HW.format(kib=kib, bw=bw, cores=cores, rows=rows, df=df, buffers=buffers,
                                    channels=channels))


@st.composite
def mlp_graphs(draw, reduce=True):
    """A meta-batch of 1-3 tasks, each an MLP of 1-3 layers (MatMul, Add bias, Relu) with its own
    widths, and (with `reduce`) a Sum of the task outputs when there are several tasks."""
    tasks = draw(st.integers(1, 3))
    m = draw(st.sampled_from([4, 16, 48]))
    widths = draw(st.lists(st.sampled_from([8, 24, 64, 96]), min_size=2, max_size=4))
    tensors: dict[str, Tensor] = {}
    nodes: list[Node] = []

    def t(name, shape, role=Role.ACTIVATION):
        tensors[name] = Tensor(name, tuple(shape), "float32", role)
        return name

    outs = []
    for j in range(tasks):
        x = t(f"x{j}", (m, widths[0]), Role.INPUT)
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            sc = Scope("forward", task=j if tasks > 1 else None)
            w = t(f"w{j}_{i}", (a, b), Role.PARAMETER)
            bias = t(f"b{j}_{i}", (b,), Role.PARAMETER)
            y = t(f"y{j}_{i}", (m, b))
            z = t(f"z{j}_{i}", (m, b))
            r = t(f"r{j}_{i}", (m, b))
            nodes += [Node(f"mm{j}_{i}", "MatMul", (x, w), (y,), scope=sc),
                      Node(f"add{j}_{i}", "Add", (y, bias), (z,), scope=sc),
                      Node(f"relu{j}_{i}", "Relu", (z,), (r,), scope=sc)]
            x = r
        outs.append(x)
    if reduce and tasks > 1 and len({tensors[o].shape for o in outs}) == 1:
        s = t("sum", tensors[outs[0]].shape)
        nodes.append(Node("reduce", "Sum", tuple(outs), (s,), scope=Scope("meta_reduce")))
        outs = [s]
    g = Graph("mlp", nodes, tensors, [n for n, v in tensors.items() if v.role in (Role.INPUT, Role.PARAMETER)],
              outs)
    return g, graph_workloads(g)


def run(graph, wl, hw):
    return simulate(lower_npu(graph, wl, hw), energy_table=energy_table(hw))


# Derandomized and without the example database: every run, here and in CI, checks the same
# examples (Determinism: seeds are explicit).
COMMON = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(mlp_graphs(), st.sampled_from([1, 4, 32]), st.sampled_from(["WS", "OS", "IS"]), st.booleans())
def test_more_dram_bandwidth_never_slower(gw, kib, df, split):
    g, wl = gw
    slow = run(g, wl, machine(kib=kib, bw=2, df=df, split=split))
    fast = run(g, wl, machine(kib=kib, bw=16, df=df, split=split))
    assert fast.cycles <= slow.cycles


# Larger buffers may still cost a little time, bounded here rather than hidden. Loads now overlap
# compute whether a node is resident (it computes on its loads' chunks as they land) or streamed,
# so what is left comes from the greedy whole-tensor residency policy: a buffer just large enough
# to keep a tensor can trade a streamed pass for a write-back plus a reload, or queue a spill's
# write-back ahead of a load on the same DMA engine. Measured exhaustively over this strategy's
# space (1-3 tasks, m in {4, 16, 48}, 1-2 layers of widths in {8, 24, 64, 96}, WS/OS/IS, unified
# and split, every pair of 1, 2, 4, 8, 16, 32, 64, 256 KiB: 120,960 pairs): 48 pairs slower, worst
# 10.5 % (3 tasks, 48 x 96 -> 8 -> 96, OS, split, 32 -> 64 KiB); before the overlap, 14.7 %.
# Traffic never grows. docs/npu_model.md, "Properties".
BUFFER_POLICY_SLACK = 1.11
@COMMON
@given(mlp_graphs(), st.sampled_from([(1, 4), (4, 32), (2, 256), (1, 256)]), st.sampled_from(["WS", "OS"]),
       st.booleans())
def test_larger_buffers_never_slower(gw, sizes, df, split):
    g, wl = gw
    small, large = sizes
    a = run(g, wl, machine(kib=small, df=df, split=split))
    b = run(g, wl, machine(kib=large, df=df, split=split))
    assert b.cycles <= a.cycles * BUFFER_POLICY_SLACK
    dram = lambda r: sum(v for k, v in r.traffic().items() if k.startswith("dram."))  # noqa: E731
    assert dram(b) <= dram(a)


# Tasks whose results are graph outputs need no data from each other: more cores only add
# parallelism. (When a shared node gathers the task results on core 0, each result from another
# core makes a DRAM round trip; for tiny tasks that costs more than the parallelism gains — a
# real effect, shown in tests/compiler/test_lowering_npu.py and documented in docs/npu_model.md.)
# Tolerance: with cores sharing one DRAM channel, first-come-first-served arbitration can order
# the same transfers worse than one core issues them (a list-scheduling anomaly, Graham 1969:
# greedy schedules on more processors can be longer). Exhaustively over this strategy's space
# with identical tasks (2-3 tasks, m in {4, 16, 48}, 1-2 layers of widths in {8, 24, 64, 96},
# 1->2, 1->3 and 2->3 cores, 4 and 64 KiB): worst 2.65 % (3 tasks, m=48, 8->24, 2->3 cores,
# 3,322 -> 3,410 cycles: with a core per task all loads contend at t=0 and the three result
# stores queue at the end; with two cores the prefetch window staggers them). Allowed: 3 %.
ARBITRATION_SLACK = 1.03
@COMMON
@given(mlp_graphs(reduce=False), st.sampled_from([(1, 2), (1, 3), (2, 3)]), st.sampled_from([4, 64]))
def test_more_cores_never_slower_for_independent_tasks(gw, cores, kib):
    g, wl = gw
    few, many = cores
    a = run(g, wl, machine(kib=kib, cores=few))
    b = run(g, wl, machine(kib=kib, cores=many))
    assert b.cycles <= a.cycles * ARBITRATION_SLACK


@COMMON
@given(mlp_graphs(), st.sampled_from([1, 4, 64]), st.integers(1, 3), st.booleans())
def test_bounds_capacity_and_determinism(gw, kib, cores, split):
    g, wl = gw
    hw = machine(kib=kib, cores=cores, split=split)
    r = run(g, wl, hw)
    macs = sum(w.macs for w in wl.values())
    comp = compulsory_dram_bytes(g, hw)
    t = r.traffic()
    assert r.macs == macs
    assert t.get("dram.read", 0) + t.get("dram.write", 0) >= comp
    prices = energy_table(hw)
    assert r.energy_pj >= macs * prices["mac.float32"].pj + comp * min(prices["dram.read"].pj,
                                                                       prices["dram.write"].pj)
    assert r.cycles >= max(macs / hw.peak_macs_per_cycle, comp / hw.dram_bytes_per_cycle)
    for c in range(cores):
        for name, buf in hw.on_chip_buffers.items():
            assert r.peak_memory.get(f"core{c}.{name}", 0) <= buf.size_bytes
    assert r.peak_memory["dram"] >= sum(g.tensor(i).nbytes for i in g.inputs)
    assert run(g, wl, hw).to_json() == r.to_json()

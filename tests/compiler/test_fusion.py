"""Layer fusion and depth-first tiling (compiler/fusion.py) and its lowering on the NPU: a
hand-worked example of halos and recomputation, the batch-norm barrier, legality of the groups,
and the fused Program against its tile-level reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.compile import front_end
from compiler.fusion import POLICIES, Rows, fuse, tiling
from compiler.lowering import LoweringError
from compiler.lowering.npu import lower_npu
from compiler.lowering.npu.memory import fusion_budget
from hwsim import pipeline
from hwsim.config import load_hardware, parse_hardware

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"

NPU = """kind: npu
name: fuse-test
clock_mhz: 1000
array: {{rows: 8, cols: 8, dataflow: WS}}
vector: {{lanes: 8}}
sram: {{size_kib: {kib}, bytes_per_cycle: 64}}
dram: {{type: DDR4, bandwidth_gbps: 8, latency_ns: 20}}
"""


def npu(kib: int):
    return parse_hardware(NPU.format(kib=kib))


def conv_relu_conv(channels: int = 16, size: int = 32):
    """x (1x1xSxS) -> Conv 3x3 pad 1 (1->C) -> Relu -> Conv 3x3 pad 1 (C->C) -> y."""
    rng = np.random.default_rng(0)
    wa = rng.standard_normal((channels, 1, 3, 3)).astype(np.float32)
    wb = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "wb"], ["y"], name="conv_b", pads=[1, 1, 1, 1], kernel_shape=[3, 3])]
    graph = helper.make_graph(nodes, "crc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(wa, "wa"), numpy_helper.from_array(wb, "wb")])
    return front_end(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]))


# ---- the hand-worked example --------------------------------------------------------------------
#
# conv_relu_conv(16, 32) on a 128 KiB SRAM. One sample holds x (4 KiB, double-buffered), the
# conv_a map (64 KiB; relu writes over it) and y (64 KiB, double-buffered): more than 128 KiB, so
# the group runs in two bands of y's rows, [0, 16) and [16, 32).
# Halos recomputed (DeFiNES's fully-recompute mode):
#   * conv_b's band [0,16) needs relu rows [-1, 17) -> [0, 17); band [16, 32) needs [15, 32):
#     17 + 17 = 34 rows of relu and of conv_a computed for 32 needed: recompute 34/32 = 1.0625;
#   * conv_a's rows [0, 17) need x rows [0, 18), rows [15, 32) need x rows [14, 32): 18 + 18 = 36
#     rows of x read for 32: load factor 36/32 = 1.125;
#   * conv_b computes its own rows once (y leaves the group): factor 1.
#   Off chip: x 4,096 B x 1.125 = 4,608 B, both weights once (576 + 9,216 B), y 65,536 B once;
#   the relu map never leaves the chip.
# Halos cached (line buffers): the second band computes relu and conv_a rows [17, 32) only, keeping
# rows 15 and 16 from the first, and loads x rows [18, 32): every factor 1, x read once (4,096 B);
# the band holds the same rows as when recomputing.

X, WA, WB, Y = 4096, 16 * 9 * 4, 16 * 16 * 9 * 4, 16 * 32 * 32 * 4


def test_hand_worked_two_bands_recompute_and_halo_reads():
    front = conv_relu_conv()
    g = front.graph
    plan = fuse(g, front.workloads, "depth_first")
    (group,) = plan.groups
    assert group.nodes == ("conv_a", "relu", "conv_b")
    assert set(group.inputs) == {"x", "wa", "wb"} and group.outputs == ("y",) and set(group.kept) == {"a", "r"}
    assert group.rows
    size = lambda name: g.tensor(name).nbytes   # noqa: E731
    t = tiling(group, size, 128 * 1024, "recompute")
    assert (t.tiles, t.sample_block, t.pieces, t.split) == (2, 1, 2, "rows")
    assert t.recompute == {"conv_a": 34 / 32, "relu": 34 / 32, "conv_b": 1.0}
    assert t.load == {"x": 36 / 32}
    c = tiling(group, size, 128 * 1024, "cache")
    assert (c.tiles, c.pieces, c.working_set) == (2, 2, t.working_set)
    assert c.recompute == {"conv_a": 1.0, "relu": 1.0, "conv_b": 1.0} and c.load == {"x": 1.0}


def vgg_e_first_five(size: int = 224):
    """VGG-E's first five conv layers (conv1_1, conv1_2, pool, conv2_1, conv2_2, pool, conv3_1),
    each with its ReLU, on one 3 x size x size image, fp32 (zero weights: only shapes matter)."""
    layers = [(3, 64), (64, 64), "pool", (64, 128), (128, 128), "pool", (128, 256)]
    nodes, inits, x = [], [], "x"
    for k, layer in enumerate(layers):
        if layer == "pool":
            nodes.append(helper.make_node("MaxPool", [x], [f"p{k}"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"p{k}"
            continue
        ci, co = layer
        inits += [numpy_helper.from_array(np.zeros((co, ci, 3, 3), np.float32), f"w{k}"),
                  numpy_helper.from_array(np.zeros(co, np.float32), f"b{k}")]
        nodes += [helper.make_node("Conv", [x, f"w{k}", f"b{k}"], [f"c{k}"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
                  helper.make_node("Relu", [f"c{k}"], [f"r{k}"])]
        x = f"r{k}"
    graph = helper.make_graph(nodes, "vgg_e_5", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    return front_end(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]))


def test_fused_vgg_e_five_layers_move_their_input_and_output_only_as_in_alwani_2016():
    """Alwani et al., "Fused-Layer CNN Accelerators", MICRO 2016 (abstract): fusing the first
    five conv layers of VGGNet-E cuts the feature-map transfer per image to 3.6 MB (their on-chip
    storage: 362 KB). Fused with cached halos, hwsim moves the input (3x224x224) and conv3_1's
    output (256x56x56) once, fp32: 3.64 MiB. Its whole-width bands hold about six rows of each
    224-wide map (Alwani's pyramids are narrower), so it needs ~1.4 MB for tiles rather than
    362 KB; with 362 KB it cuts the group once and moves more."""
    front = vgg_e_first_five()
    g = front.graph
    weights = sum(t.nbytes for t in g.tensors.values() if t.name.startswith(("w", "b")))
    fm = lambda r: r.traffic()["dram.read"] + r.traffic()["dram.write"] - weights   # noqa: E731
    roomy = parse_hardware(NPU.format(kib=(weights + 1400 * 1024) / 1024))
    fused = pipeline.simulate(front, roomy, fusion="depth_first").result
    assert fm(fused) == (3 * 224 * 224 + 256 * 56 * 56) * 4
    assert fm(fused) / 2 ** 20 == pytest.approx(3.6, abs=0.05)
    tight = parse_hardware(NPU.format(kib=(weights + 362 * 1024) / 1024))
    assert fm(fused) < fm(pipeline.simulate(front, tight, fusion="depth_first").result) < \
        fm(pipeline.simulate(front, tight).result) / 10


def test_hand_worked_example_lowers_to_its_off_chip_bytes_and_extra_macs():
    front = conv_relu_conv()
    h = npu(128)
    run = pipeline.simulate(front, h, fusion="depth_first", halo="recompute")
    traffic = run.result.traffic()
    assert traffic["dram.read"] == 4608 + WA + WB
    assert traffic["dram.write"] == Y
    macs_a, macs_b = 16 * 9 * 32 * 32, 16 * 16 * 9 * 32 * 32
    assert run.result.macs == pytest.approx(macs_a * 34 / 32 + macs_b)
    assert run.result.peak_memory["sram"] <= 128 * 1024
    cached = pipeline.simulate(front, h, fusion="depth_first").result
    assert cached.traffic()["dram.read"] == X + WA + WB and cached.traffic()["dram.write"] == Y
    assert cached.macs == macs_a + macs_b and cached.peak_memory["sram"] <= 128 * 1024
    # unfused, conv_b cannot hold relu's map, its weights and its result at once: it streams, and
    # relu's map (64 KiB) makes a round trip through DRAM; x is read once
    plain = pipeline.simulate(front, h).result.traffic()
    assert plain["dram.read"] == X + WA + WB + Y
    assert plain["dram.write"] == 2 * Y


def test_a_band_needs_the_rows_its_window_reaches():
    conv = Rows("window", stride=1, pad=1, extent=3)
    assert conv.need(0, 16, 32) == (0, 17) and conv.need(16, 32, 32) == (15, 32)
    pool = Rows("window", stride=2, pad=0, extent=2)
    assert pool.need(3, 5, 28) == (6, 10)
    up = Rows("transposed", stride=1, pad=1, extent=3)   # ConvTranspose 3x3 pad 1: same rows plus one each side
    assert up.need(4, 8, 16) == (3, 9)
    assert Rows("fixed", pad=0, extent=1).need(10, 20, 28) == (0, 1)
    assert Rows("broadcast").need(5, 9, 1) == (0, 1)


def test_layer_policy_keeps_an_array_op_at_the_head_of_its_group():
    front = conv_relu_conv()
    plan = fuse(front.graph, front.workloads, "layer")
    assert [g.nodes for g in plan.groups] == [("conv_a", "relu")]
    h = npu(128)
    layer = pipeline.simulate(front, h, fusion="layer").result.traffic()
    deep = pipeline.simulate(front, h, fusion="depth_first").result.traffic()
    assert layer["dram.write"] > deep["dram.write"]   # relu's map goes to DRAM between the groups


@pytest.mark.parametrize("kib", [96, 512, 64 * 1024])
def test_samples_are_tiled_before_pieces_of_a_sample_and_chunks_before_halos(kib):
    """A group runs in blocks of samples while one sample fits; only then is a sample cut, in
    chunks or planes (no halo) when every member allows it, else in bands of rows (halo)."""
    front = front_end(DATA / "conv4_train.onnx")
    g = front.graph
    size = lambda t: g.tensor(t).nbytes   # noqa: E731
    plan = fuse(g, front.workloads, "depth_first", nbytes=size, budget=kib * 1024)
    pieces = 0
    for group in plan.groups:
        t = tiling(group, size, kib * 1024)
        assert t is not None and t.working_set <= kib * 1024
        assert t.tiles == -(-group.samples // t.sample_block) * t.pieces
        if t.pieces > 1:
            pieces += 1
            assert t.sample_block == 1
        assert (t.split == "none") == (t.pieces == 1)
        if t.split != "rows":
            assert set(t.recompute.values()) == {1.0} and set(t.load.values()) <= {1.0}
        else:
            assert not group.flat and group.rows
    assert (pieces > 0) == (kib <= 512)


# ---- barriers and legality ----------------------------------------------------------------------


def test_batch_statistics_are_a_barrier_nothing_reading_them_joins_their_group():
    front = front_end(DATA / "conv4_train.onnx")
    g = front.graph
    plan = fuse(g, front.workloads, "depth_first")
    producer = {o: n for n in g.nodes for o in n.outputs if o}
    with_sinks = 0
    for group in plan.groups:
        sinks = {o for m in group.members if m.sink for o in (*m.whole_out, *m.tiled_out)}
        with_sinks += bool(sinks)
        downstream = set(sinks)
        for n in g.nodes:   # program order: what depends on a sink of the group
            if any(i in downstream for i in n.inputs if i):
                downstream.update(o for o in n.outputs if o)
                assert n.name not in group.nodes, f"{n.name} reads a statistic of its own group"
    assert with_sinks >= 8   # the statistics of 4 batch norms and the gradient sums of 4 convs
    assert any(len(x.members) >= 4 for x in plan.groups)
    assert producer


@pytest.mark.parametrize("policy", ["layer", "depth_first"])
@pytest.mark.parametrize("graph", ["conv4_train", "sine_maml", "conv4_infer_torch"])
def test_groups_contract_to_a_dag_of_one_scope_each(graph, policy):
    front = front_end(DATA / f"{graph}.onnx")
    g = front.graph
    plan = fuse(g, front.workloads, policy)
    producer = {o: n.name for n in g.nodes for o in n.outputs if o}
    done: set[str] = set()
    alias = {n.outputs[0]: n.inputs[0] for n in g.nodes if front.workloads[n.name].dims.get("view")}

    def base(t):
        while t in alias:
            t = alias[t]
        return t
    lowered = {n for n in (x.name for x in g.nodes) if n in producer.values()}
    seen_nodes = []
    for unit in plan.order:
        names = plan.groups[unit].nodes if isinstance(unit, int) else (unit,)
        if isinstance(unit, int):
            assert len({str(g.nodes[[n.name for n in g.nodes].index(m)].scope) for m in names}) == 1
        inside = set(names)
        for name in names:
            node = next(n for n in g.nodes if n.name == name)
            for i in node.inputs:
                p = producer.get(base(i)) if i else None
                assert p is None or p in done or p in inside, f"{name} runs before {p}"
        done |= inside
        seen_nodes += names
    assert len(seen_nodes) == len(set(seen_nodes))
    assert set(seen_nodes) <= lowered | set(seen_nodes)


def test_none_policy_makes_no_group_and_keeps_program_order():
    front = front_end(DATA / "conv4_train.onnx")
    plan = fuse(front.graph, front.workloads, "none")
    assert plan.groups == () and len(plan.order) == len(set(plan.order))
    assert POLICIES == ("none", "layer", "depth_first")


def test_unknown_fusion_policy_is_a_one_line_lowering_error():
    front = conv_relu_conv()
    with pytest.raises(LoweringError, match=r"^unknown fusion 'deep'; known: none, layer, depth_first$"):
        lower_npu(front.graph, front.workloads, npu(128), fusion="deep")


# ---- the fused Program ----------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["edge-npu", "eyeriss-like", "server-npu", "tpu-v1-like"])
@pytest.mark.parametrize("graph", ["conv4_train", "sine_maml"])
def test_fused_closed_form_agrees_with_its_tile_level_reference(graph, preset):
    front = front_end(DATA / f"{graph}.onnx")
    h = load_hardware(preset)
    node = pipeline.simulate(front, h, fusion="depth_first").result
    tiles = pipeline.simulate(front, h, fusion="depth_first", detail="tiles").result
    assert node.cycles == pytest.approx(tiles.cycles, rel=0.02)
    assert node.action_totals() == pytest.approx(tiles.action_totals(), rel=1e-9)
    for level, cap in (("sram", None),):
        assert node.peak_memory[level] == pytest.approx(tiles.peak_memory[level], rel=0.02)


@pytest.mark.parametrize("kib", [64, 128, 512])
def test_fusion_moves_fewer_bytes_and_never_overfills_a_buffer(kib):
    front = front_end(DATA / "conv4_train.onnx")
    h = npu(kib)
    plain = pipeline.simulate(front, h).result
    fused = pipeline.simulate(front, h, fusion="depth_first")
    r = fused.result
    assert r.peak_memory["sram"] <= kib * 1024
    moved = lambda res: res.traffic()["dram.read"] + res.traffic()["dram.write"]   # noqa: E731
    assert moved(r) < moved(plain)
    assert r.macs >= plain.macs   # halos may add work, never remove it
    assert any(t.op_type == "Fused" for t in fused.program.tasks)


def test_fusion_keeps_the_phase_breakdown_exact():
    """Groups never mix scopes, so MACs per phase part are those of the unfused lowering (no
    halo recompute on this graph: its groups tile by samples)."""
    front = front_end(DATA / "conv4_train.onnx")
    h = load_hardware("edge-npu")
    macs = lambda r: {p["phase_part"]: p["macs"] for p in r.phase_breakdown()}   # noqa: E731
    assert macs(pipeline.simulate(front, h, fusion="depth_first").result) == \
        pytest.approx(macs(pipeline.simulate(front, h).result))


def test_fusion_budget_is_the_result_buffer():
    assert fusion_budget(load_hardware("edge-npu")) == 512 * 1024
    assert fusion_budget(load_hardware("tpu-v1-like")) == 4096 * 1024

"""Lowering an IR graph onto a reconfigurable fabric (FPGA or CGRA): a `Program` of compute,
transfer and reconfiguration tasks. docs/fabric.md gives the model, its equations and where it
departs from FINN and fpgaConvNet.

1. **Stages.** Nodes that do the same work (op type, element type, shapes) share one hardware
   stage: the tasks of a meta-batch and the inner steps reuse it instead of unrolling.
2. **Partition** (`plan`). Stages, in the order they first occur, are packed greedily into
   configurations whose resources at minimum parallelism fit the budget (the device, or one
   partial-reconfiguration region when the graph does not fit the device at once).
3. **Fold.** Inside a configuration each FPGA stage gets the smallest parallelism (FINN PE x
   SIMD for matrix products, ALU lanes otherwise) that brings its total time under a target T;
   T is the smallest value for which the configuration still fits (binary search over every
   stage's breakpoints), i.e. the pipeline is balanced to its slowest stage. A CGRA kernel is
   modulo scheduled: II = max(resource II, memory II, recurrence II), II contexts each.
4. **Schedule.** List scheduling over the node DAG that keeps the loaded configuration while any
   of its nodes is ready; each switch is an *activation* that loads a configuration (a RECONFIG
   task of its bitstream or context bytes) unless it is still resident in a region.
5. **Program.** A node's stage streams it in up to `CHUNKS` chunks (the first one item), chained
   to its producers' chunks, so a configuration behaves as a dataflow pipeline: latency = fill
   (the depths) + interval x items. Tensors crossing activations (and those that do not fit in
   the spare on-chip memory) go through DRAM.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hwsim.config import CGRA, FPGA
from hwsim.technology import BRAM18_BYTES, URAM_BYTES
from hwsim.program import Program, ResourceSpec, Task, TaskKind

from ..ir import DTYPE_BYTES, Graph, Node
from ..workload import Kind, Workload
from . import LOWERINGS, LoweringError
from .gemm import as_gemm, compute_dtype

NOT_MODELLED = [
    "place-and-route: a configuration that fits the resource budget is assumed to close timing at the clock",
    "buffering of the whole input of a barrier stage (batch-norm statistics, transposes); only its timing is a barrier",
    "stream FIFO energy and depth beyond a fixed LUT overhead per stage",
    "a tensor loaded from DRAM is loaded whole before its consumer starts (no overlap within one load)",
    "DRAM row-buffer locality and refresh; configuration-port contention with user traffic",
]

CHUNKS = 4                 # a node streams in at most this many chunks (the first one is one item)
STAGE_LUT_OVERHEAD = 200   # control, stream FIFOs (SRL) and handshakes per stage: an assumption
STAGE_FF_OVERHEAD = 300


class FabricFitError(LoweringError):
    """A node that does not fit the fabric even at minimum parallelism (names the resource and by how much)."""


@LOWERINGS.register("fpga")
def lower_fpga(graph: Graph, workloads: dict[str, Workload], hw: FPGA) -> Program:
    return _Builder(graph, workloads, hw, plan_fpga(graph, workloads, hw)).build()


@LOWERINGS.register("cgra")
def lower_cgra(graph: Graph, workloads: dict[str, Workload], hw: CGRA) -> Program:
    return _Builder(graph, workloads, hw, plan_cgra(graph, workloads, hw)).build()


# ---- closed forms (REFERENCE.md §3) -------------------------------------------------------------


def mvau_cycles(mh: int, mw: int, pe: int, simd: int, n_vectors: int) -> int:
    """FINN matrix-vector unit: (MH/PE)·(MW/SIMD)·N_vectors; PE must divide MH and SIMD MW."""
    if mh % pe or mw % simd:
        raise ValueError(f"PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
    return (mh // pe) * (mw // simd) * n_vectors


def finn_bram18(words: int, width: int) -> int:
    """FINN's BRAM18 count for `words` words of `width` bits (its aspect-ratio cases)."""
    if words <= 0 or width <= 0:
        return 0
    c = math.ceil
    if width == 1:
        return c(words / 16384)
    if width == 2:
        return c(words / 8192)
    if width <= 4:
        return c(words / 4096) * c(width / 4)
    if width <= 9:
        return c(words / 2048) * c(width / 9)
    if width <= 18 or words > 512:
        return c(words / 1024) * c(width / 18)
    return c(words / 512) * c(width / 36)


def finn_uram(words: int, width: int) -> int:
    """FINN's URAM count: ⌈w/72⌉·⌈ω/4096⌉."""
    if words <= 0 or width <= 0:
        return 0
    return math.ceil(width / 72) * math.ceil(words / 4096)


def fpgaconvnet_sequential_seconds(partition_cycles: list[float], clock_hz: float,
                                   reconfiguration_seconds: float) -> float:
    """fpgaConvNet: Σ partition cycles / f + n_partitions · reconfiguration delay (none with one)."""
    n = len(partition_cycles)
    return sum(partition_cycles) / clock_hz + (n * reconfiguration_seconds if n > 1 else 0.0)


def fpgaconvnet_pipelined_cycles(intervals: list[float], depths: list[float], batch: int) -> float:
    """fpgaConvNet: max partition interval · batch + Σ depths."""
    return max(intervals) * batch + sum(depths)


def chunk_items(items: int) -> list[int]:
    """Items per chunk of a stage streaming `items` items: the first chunk is one item (the
    pipeline fill), the rest are split evenly over at most CHUNKS - 1 chunks."""
    k = max(1, min(items, CHUNKS))
    if k == 1:
        return [max(items, 1)]
    ends = [1] + [1 + round((items - 1) * j / (k - 1)) for j in range(1, k)]
    return [ends[0]] + [ends[j] - ends[j - 1] for j in range(1, k)]


# ---- the plan: stages, configurations, activations ---------------------------------------------


@dataclass(frozen=True)
class Fold:
    """One parallelism choice of a stage: lanes (PE·SIMD for a matrix unit), cycles per node,
    resources (FPGA: dsp, bram18, uram, lut, ff; CGRA: contexts)."""

    lanes: int
    cycles: int
    res: tuple[tuple[str, int], ...]
    pe: int = 1
    simd: int = 1

    def get(self, kind: str) -> int:
        return dict(self.res).get(kind, 0)


@dataclass
class Stage:
    index: int
    key: tuple
    unit: str                   # "mvau", "alu", "move" (FPGA) or "kernel" (CGRA)
    op_type: str
    dtype: str
    first_node: str
    options: list[Fold]         # ascending lanes, descending cycles
    nodes: list[int] = field(default_factory=list)
    fold: Fold | None = None
    config: int = -1


@dataclass
class NodeInfo:
    index: int
    node: Node
    stage: int
    items: int                  # items the node streams (1: it emits only when done)
    barrier_inputs: frozenset   # input tensors (base names) it must hold whole before its first output
    out_barrier: bool           # its consumers wait for its last item


@dataclass
class Configuration:
    index: int
    stages: list[int]
    budget: dict[str, int]
    used: dict[str, int]
    load_bytes: int
    region_sized: bool
    spare_bytes: int            # on-chip memory left for intermediate tensors


@dataclass
class Plan:
    target: str
    mode: str                   # "single", "full" or "partial"
    regions: int                # configurations resident at once
    stages: list[Stage]
    nodes: list[NodeInfo]       # lowered nodes (not views / metadata), topological
    configs: list[Configuration]
    activations: list[tuple[int, list[int]]]   # (configuration, node indices in order)
    alias: dict[str, str]

    def report(self, hw: Any) -> list[dict[str, Any]]:
        counts = defaultdict(int)
        for c, _ in self.activations:
            counts[c] += 1
        return [{"configuration": c.index, "stages": len(c.stages), "activations": counts[c.index],
                 "load_bytes": c.load_bytes, "region_sized": c.region_sized,
                 "used": c.used, "available": c.budget,
                 "device": (hw.resources.as_dict() if isinstance(hw, FPGA)
                            else {"contexts": hw.contexts.slots})}
                for c in self.configs]


def _lowered(workloads: dict[str, Workload], node: Node) -> bool:
    wl = workloads[node.name]
    return wl.kind is not Kind.NONE and not wl.dims.get("view")


def _aliases(graph: Graph, workloads: dict[str, Workload]) -> dict[str, str]:
    alias = {}
    for n in graph.nodes:
        if workloads[n.name].dims.get("view"):
            for o in n.outputs:
                if o and n.inputs and n.inputs[0]:
                    alias[o] = n.inputs[0]
    return alias


def _base(alias: dict[str, str], name: str) -> str:
    while name in alias:
        name = alias[name]
    return name


def _stage_key(graph: Graph, node: Node, wl: Workload, dtype: str) -> tuple:
    shapes = tuple(graph.tensor(t).shape for t in node.inputs if t) + (None,) + \
        tuple(graph.tensor(t).shape for t in node.outputs if t)
    return (node.op_type, dtype, shapes, wl.macs, wl.flops, tuple(sorted(wl.dims.items())))


def _streaming_items(graph: Graph, node: Node, wl: Workload) -> int:
    """Rows a non-matrix node can stream: the leading dimension when it is kept from input to
    output (a row-wise op); 1 (a barrier) otherwise, and for batch-statistics normalization."""
    if wl.kind is Kind.NORMALIZATION and wl.dims.get("training"):
        return 1
    ins = [graph.tensor(t).shape for t in node.inputs if t]
    outs = [graph.tensor(t).shape for t in node.outputs if t]
    if not ins or not outs or len(outs[0]) < 2 or not ins[0] or outs[0][0] != ins[0][0]:
        return 1
    return max(1, outs[0][0])


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _fits(used: dict[str, int], budget: dict[str, int]) -> str | None:
    for k, v in used.items():
        if v > budget.get(k, 0):
            return k
    return None


def _add(a: dict[str, int], fold: Fold) -> None:
    for k, v in fold.res:
        a[k] = a.get(k, 0) + v


def _fit_error(hw: Any, stage: Stage, budget: dict[str, int], what: str) -> FabricFitError:
    need = stage.options[0].get(what)
    have = budget.get(what, 0)
    return FabricFitError(
        f"node {stage.first_node!r} ({stage.op_type}, {stage.dtype}) needs {need:,} {what} at minimum "
        f"parallelism but {hw.name} offers {have:,} per configuration: short by {need - have:,} {what}")


# ---- FPGA stages --------------------------------------------------------------------------------


def _fpga_stage_options(graph: Graph, node: Node, wl: Workload, hw: FPGA, dtype: str,
                        budget: dict[str, int]) -> tuple[str, list[Fold], int, frozenset, bool]:
    """(unit, folds, items, positions of the inputs held whole, output barrier) on the FPGA."""
    lane = hw.lane(dtype)
    bits = 8 * DTYPE_BYTES.get(dtype, 4)
    if wl.kind in (Kind.MATMUL, Kind.CONV):
        nv, mh, mw, repeats = as_gemm(graph, node, wl)
        nv *= repeats
        ins = [t for t in node.inputs if t][:2]
        sizes = [graph.tensor(t).numel for t in ins] + [graph.tensor(node.outputs[0]).numel]
        smallest = min(range(len(sizes)), key=lambda i: (sizes[i], -i))
        buffered = sizes[smallest]
        barrier = frozenset({smallest}) if smallest < len(ins) else frozenset()
        line = 0
        d = wl.dims
        if wl.kind is Kind.CONV and not d.get("transposed") and d.get("r", 1) * d.get("s", 1) > 1:
            line = d["r"] * d["w"] * (d["c"] // d.get("g", 1))   # sliding-window row buffer
        max_lanes = max(1, int(budget["dsp"] / lane.dsp_per_mac)) if lane.dsp_per_mac else mh * mw
        max_lanes = min(max_lanes, max(1, int(budget["lut"] / max(lane.lut_per_mac, 1))))
        per_mac = (lane.dsp_per_mac, lane.lut_per_mac, lane.ff_per_mac)
        device = (hw.resources.bram18, hw.resources.uram)
        best: dict[int, Fold] = {}
        for pe in _divisors(mh):
            for simd in _divisors(mw):
                lanes = pe * simd
                if lanes > max_lanes and lanes > 1:
                    continue
                fold = _mvau_fold(per_mac, device, bits, mh, mw, nv, pe, simd, buffered, line)
                prev = best.get(lanes)
                if prev is None or (fold.get("bram18") + fold.get("uram"), abs(pe - simd)) < \
                        (prev.get("bram18") + prev.get("uram"), abs(prev.pe - prev.simd)):
                    best[lanes] = fold
        return "mvau", [best[k] for k in sorted(best)], max(1, nv), barrier, smallest == 2
    if wl.kind is Kind.DATA_MOVEMENT:
        esize = DTYPE_BYTES.get(dtype, 4)
        work = max(1, wl.bytes_written // esize, wl.flops)
        per = (0, lane.lut_per_move, lane.lut_per_move)
        unit = "move"
    else:
        trans = int(wl.dims.get("transcendental", 0))
        work = max(1, wl.flops + trans * (lane.transcendental_ops - 1))
        per = (lane.dsp_per_op, lane.lut_per_op, lane.ff_per_op)
        unit = "alu"
    max_lanes = min(work, max(1, int(budget["lut"] / max(per[1], 1))),
                    max(1, int(budget["dsp"] / per[0])) if per[0] else work)
    folds, lanes = [], 1
    while True:
        folds.append(Fold(lanes, math.ceil(work / lanes),
                          (("dsp", math.ceil(lanes * per[0])), ("bram18", 0), ("uram", 0),
                           ("lut", math.ceil(lanes * per[1]) + STAGE_LUT_OVERHEAD),
                           ("ff", math.ceil(lanes * per[2]) + STAGE_FF_OVERHEAD))))
        if lanes >= max_lanes:
            break
        lanes = min(lanes * 2, max_lanes)
    return unit, folds, _streaming_items(graph, node, wl), frozenset(), False


@lru_cache(maxsize=65536)
def _mvau_fold(per_mac: tuple[float, float, float], device: tuple[int, int], bits: int, mh: int, mw: int, nv: int, pe: int, simd: int,
               buffered: int, line: int) -> Fold:
    lanes = pe * simd
    words, width = math.ceil(buffered / lanes), lanes * bits
    bram, uram = finn_bram18(words, width), finn_uram(words, width)
    if line:
        bram_line = finn_bram18(math.ceil(line / simd), simd * bits)
    else:
        bram_line = 0
    dev_bram, dev_uram = device
    # FINN's ram_style choice, made here by the smaller fraction of the device it takes
    if dev_uram and (uram / dev_uram) < (bram / max(dev_bram, 1)):
        bram = 0
    else:
        uram = 0
    return Fold(lanes, mvau_cycles(mh, mw, pe, simd, nv),
                (("dsp", math.ceil(lanes * per_mac[0])), ("bram18", bram + bram_line), ("uram", uram),
                 ("lut", math.ceil(lanes * per_mac[1]) + STAGE_LUT_OVERHEAD),
                 ("ff", math.ceil(lanes * per_mac[2]) + STAGE_FF_OVERHEAD)), pe, simd)


def fold_configuration(stages: list[Stage], budget: dict[str, int]) -> int:
    """Choose each stage's fold so that the slowest stage total (nodes x cycles per node) is as
    small as it can be within `budget`; returns that target. Exact over the breakpoints: a
    binary search on the sorted totals every option of every stage can reach."""
    def choose(target: int) -> list[Fold] | None:
        picked = []
        for s in stages:
            n = len(s.nodes)
            # options are in descending cycles: the first whose total is <= target
            cyc = [-f.cycles for f in s.options]
            i = bisect.bisect_left(cyc, -(target // n))
            if i >= len(s.options):
                return None
            picked.append(s.options[i])
        used: dict[str, int] = {}
        for f in picked:
            _add(used, f)
        return picked if _fits(used, budget) is None else None

    totals = sorted({len(s.nodes) * f.cycles for s in stages for f in s.options})
    lo, hi = 0, len(totals) - 1
    best = choose(totals[hi])
    if best is None:   # cannot happen: the minimum-parallelism folds were checked to fit
        raise LoweringError("configuration does not fit at minimum parallelism")
    while lo < hi:
        mid = (lo + hi) // 2
        picked = choose(totals[mid])
        if picked is None:
            lo = mid + 1
        else:
            hi, best = mid, picked
    for s, f in zip(stages, best):
        s.fold = f
    return totals[hi]


def plan_fpga(graph: Graph, workloads: dict[str, Workload], hw: FPGA) -> Plan:
    regions = hw.bitstream.partial_regions
    full = hw.budget(1)
    region = hw.budget(regions) if regions else full
    stages, nodes, alias = _stages(graph, workloads, hw, full)
    total: dict[str, int] = {}
    for s in stages:
        _add(total, s.options[0])
    for s in stages:   # a stage that does not fit the device at minimum parallelism
        what = _fits(dict(s.options[0].res), full)
        if what:
            raise _fit_error(hw, s, full, what)
    if _fits(total, full) is None:
        # one configuration holds the phase; when its load is charged (see `entry_charged`) and
        # it fits one region, fold it into a region so that the load is a partial bitstream
        small = regions and entry_charged(graph, 1) and _fits(total, region) is None
        mode, budget, resident = "single", (region if small else full), 1
    elif regions >= 2 and all(_fits(dict(s.options[0].res), region) is None for s in stages):
        mode, budget, resident = "partial", region, regions
    else:
        mode, budget, resident = "full", full, 1
    groups = _pack(stages, budget)
    configs = []
    for ci, group in enumerate(groups):
        members = [stages[i] for i in group]
        for s in members:
            s.config = ci
        fold_configuration(members, budget)
        used: dict[str, int] = {}
        for s in members:
            _add(used, s.fold)
        region_sized = bool(regions) and _fits(used, region) is None
        load = hw.bitstream.partial_bytes if region_sized else hw.bitstream.full_bytes
        spare = ((budget["bram18"] - used.get("bram18", 0)) * BRAM18_BYTES
                 + (budget["uram"] - used.get("uram", 0)) * URAM_BYTES)
        configs.append(Configuration(ci, group, budget, used, load, region_sized, max(0, spare)))
    return Plan(hw.name, mode, resident, stages, nodes, configs, _activations(nodes, stages, alias), alias)


def _pack(stages: list[Stage], budget: dict[str, int]) -> list[list[int]]:
    """Stages in first-occurrence order, greedily into configurations that fit at minimum
    parallelism (every stage is known to fit on its own)."""
    groups: list[list[int]] = [[]]
    used: dict[str, int] = {}
    for s in stages:
        trial = dict(used)
        _add(trial, s.options[0])
        if groups[-1] and _fits(trial, budget) is not None:
            groups.append([])
            trial = dict(s.options[0].res)
        groups[-1].append(s.index)
        used = trial
    return groups


def _stages(graph: Graph, workloads: dict[str, Workload], hw: Any, budget: dict[str, int]
            ) -> tuple[list[Stage], list[NodeInfo], dict[str, str]]:
    alias = _aliases(graph, workloads)
    by_key: dict[tuple, Stage] = {}
    stages: list[Stage] = []
    infos: list[NodeInfo] = []
    per_key: dict[tuple, tuple] = {}
    for node in graph.nodes:
        if not _lowered(workloads, node):
            continue
        wl = workloads[node.name]
        dtype = compute_dtype(graph, node)
        key = _stage_key(graph, node, wl, dtype)
        if key not in by_key:
            if isinstance(hw, FPGA):
                unit, options, items, barrier, out_barrier = _fpga_stage_options(graph, node, wl, hw, dtype, budget)
            else:
                unit, options, items, barrier, out_barrier = _cgra_stage_options(graph, node, wl, hw, dtype)
            by_key[key] = Stage(len(stages), key, unit, node.op_type, dtype, node.name, options)
            stages.append(by_key[key])
            per_key[key] = (items, barrier, out_barrier)
        stage = by_key[key]
        items, positions, out_barrier = per_key[key]
        operands = [t for t in node.inputs if t][:2]
        barrier = frozenset(_base(alias, operands[i]) for i in positions)
        stage.nodes.append(len(infos))
        infos.append(NodeInfo(len(infos), node, stage.index, items, barrier, out_barrier))
    return stages, infos, alias


# ---- CGRA kernels -------------------------------------------------------------------------------


def _cgra_stage_options(graph: Graph, node: Node, wl: Workload, hw: CGRA, dtype: str
                        ) -> tuple[str, list[Fold], int, frozenset, bool]:
    g = hw.grid
    slots = hw.contexts.slots
    if wl.kind in (Kind.MATMUL, Kind.CONV):
        iters, ops_iter = max(1, wl.macs), 1.0
        # an outer-product mapping reads rows + cols operands per rows x cols MACs
        mem_iter, rec = (g.rows + g.cols) / g.pes, 1
    else:
        trans = int(wl.dims.get("transcendental", 0))
        ops = wl.flops + trans * (g.transcendental_ops - 1)
        # one loop iteration per element of the largest operand; each iteration loads / stores
        # its share of every operand through the memory PEs
        numels = [graph.tensor(t).numel for t in node.inputs if t] + \
            [graph.tensor(t).numel for t in node.outputs if t]
        iters = max(1, max(numels, default=1))
        ops_iter = max(1.0, ops / iters)
        mem_iter = sum(numels) / iters
        rec = 1 if wl.kind in (Kind.REDUCTION, Kind.POOL, Kind.NORMALIZATION) else 0
    unroll = max(1, int(g.pes * g.ops_per_pe // ops_iter))
    while True:
        ii = max(math.ceil(unroll * ops_iter / (g.pes * g.ops_per_pe)),
                 math.ceil(unroll * mem_iter / g.memory_pes), rec, 1)
        if ii <= slots or unroll == 1:
            break
        unroll = max(1, unroll // 2)
    depth = g.rows + g.cols   # prologue + epilogue of the modulo schedule
    cycles = math.ceil(iters / unroll) * ii + depth
    cycles = max(cycles, math.ceil((wl.bytes_read + wl.bytes_written) / hw.scratchpad.bytes_per_cycle))
    fold = Fold(unroll, int(cycles), (("contexts", ii),))
    return "kernel", [fold], 1, frozenset(), False


def plan_cgra(graph: Graph, workloads: dict[str, Workload], hw: CGRA) -> Plan:
    budget = {"contexts": hw.contexts.slots}
    stages, nodes, alias = _stages(graph, workloads, hw, budget)
    for s in stages:
        s.fold = s.options[0]
        what = _fits(dict(s.fold.res), budget)
        if what:
            raise _fit_error(hw, s, budget, what)
    total: dict[str, int] = {}
    for s in stages:
        _add(total, s.fold)
    mode = "single" if _fits(total, budget) is None else "full"
    groups = _pack(stages, budget)
    configs = []
    for ci, group in enumerate(groups):
        used: dict[str, int] = {}
        for i in group:
            stages[i].config = ci
            _add(used, stages[i].fold)
        configs.append(Configuration(ci, group, budget, used, hw.context_bytes(used["contexts"]), False,
                                     hw.scratchpad.size_bytes))
    return Plan(hw.name, mode, 1, stages, nodes, configs, _activations(nodes, stages, alias), alias)


# ---- schedule -----------------------------------------------------------------------------------


def _activations(nodes: list[NodeInfo], stages: list[Stage], alias: dict[str, str]
                 ) -> list[tuple[int, list[int]]]:
    """List scheduling over the node DAG that stays in the loaded configuration while any of its
    nodes is ready, then switches to the configuration of the earliest ready node."""
    producer: dict[str, int] = {}
    for info in nodes:
        for o in info.node.outputs:
            if o:
                producer[o] = info.index
    succ: list[list[int]] = [[] for _ in nodes]
    indeg = [0] * len(nodes)
    for info in nodes:
        for p in {producer[b] for t in info.node.inputs if t and (b := _base(alias, t)) in producer}:
            succ[p].append(info.index)
            indeg[info.index] += 1
    config = [stages[i.stage].config for i in nodes]
    ready: dict[int, list[int]] = defaultdict(list)
    for i in range(len(nodes)):
        if indeg[i] == 0:
            heapq.heappush(ready[config[i]], i)
    out: list[tuple[int, list[int]]] = []
    current = config[0] if nodes else 0
    done = 0
    while done < len(nodes):
        if not ready.get(current):
            current = min((h[0], c) for c, h in ready.items() if h)[1]
        run: list[int] = []
        heap = ready[current]
        while heap:
            i = heapq.heappop(heap)
            run.append(i)
            for j in succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    heapq.heappush(ready[config[j]], j)
        done += len(run)
        out.append((current, run))
    return out


def entry_charged(graph: Graph, configurations: int) -> bool:
    """Loading the first configuration is charged unless the phase is a meta-training step held
    by one configuration: the training loop repeats it with nothing in between, so its load is
    amortised over all steps. Adapt and infer alternate at deployment (adapt to a task, then
    infer on its queries), so entering either is a switch and is charged."""
    return not (graph.metadata.get("phase") == "meta_train" and configurations == 1)


# ---- program ------------------------------------------------------------------------------------


@dataclass
class _OnChip:
    chunks: list[int]          # producer's chunk tasks
    ends: list[int]            # producer's cumulative items at the end of each chunk
    items: int
    out_barrier: bool
    nbytes: int
    uses: int                  # consumers left in this activation


class _Builder:
    def __init__(self, graph: Graph, workloads: dict[str, Workload], hw: Any, plan: Plan) -> None:
        self.g, self.w, self.hw, self.plan = graph, workloads, hw, plan
        self.fpga = isinstance(hw, FPGA)
        self.tasks: list[Task] = []
        self.alias = plan.alias
        self.outputs = {_base(self.alias, o) for o in graph.outputs} - set(graph.inputs)
        self.dram_ready: dict[str, int | None] = {}   # tensor -> task after which DRAM holds it
        self.producer_done: dict[str, int] = {}
        self.scope_of: dict[str, str] = {}
        self.stage_last: dict[int, int] = {}
        self.grid_last: int | None = None
        self.grid_stage: int | None = None
        act_of = {}
        for a, (_, run) in enumerate(plan.activations):
            for i in run:
                act_of[i] = a
        self.act_of = act_of
        producer = {}
        for info in plan.nodes:
            for o in info.node.outputs:
                if o:
                    producer[o] = info.index
        # consumers per tensor and activation
        self.uses: dict[tuple[str, int], int] = defaultdict(int)
        self.later: dict[str, set[int]] = defaultdict(set)
        for info in plan.nodes:
            for t in {_base(self.alias, t) for t in info.node.inputs if t}:
                self.uses[(t, act_of[info.index])] += 1
                if t in producer and act_of[producer[t]] != act_of[info.index]:
                    self.later[t].add(act_of[info.index])

    @property
    def entry_charged(self) -> bool:
        return entry_charged(self.g, len(self.plan.configs))

    def nbytes(self, t: str) -> int:
        return self.g.tensor(t).nbytes

    def _add(self, **kw) -> int:
        tid = len(self.tasks)
        kw["deps"] = tuple(sorted({d for d in kw.get("deps", ()) if d is not None}))
        self.tasks.append(Task(id=tid, **kw))
        return tid

    def _transfer(self, name: str, nbytes: int, deps, scope: str, *, load: bool) -> int:
        if self.fpga:   # streamed straight into / out of a stage
            actions = {"dram.read": nbytes} if load else {"dram.write": nbytes}
        else:           # through the scratchpad
            actions = ({"dram.read": nbytes, "sram.write": nbytes} if load
                       else {"sram.read": nbytes, "dram.write": nbytes})
        d = self.hw.dram
        width = (1 if d.interleave_bytes is None or d.channels == 1
                 else max(1, min(d.channels, -(-nbytes // d.interleave_bytes))))   # interleaved channels
        return self._add(kind=TaskKind.TRANSFER, name=name, resources=("dram",), deps=tuple(deps),
                         bytes=nbytes, actions=actions, scope=scope, op_type="dma", width=width)

    def resources(self) -> dict[str, ResourceSpec]:
        hw = self.hw
        res = {"dram": ResourceSpec("dram", capacity=hw.dram.channels,
                                    bytes_per_cycle=hw.dram_bytes_per_cycle / hw.dram.channels,
                                    latency_cycles=hw.dram_latency_cycles, component="dram",
                                    striped=hw.dram.interleave_bytes is not None and hw.dram.channels > 1),
               "config_port": ResourceSpec("config_port", bytes_per_cycle=hw.config_bytes_per_cycle,
                                           latency_cycles=hw.config_port.latency_ns * 1e-9 * hw.clock_hz,
                                           component="reconfig")}
        if self.fpga:
            res["fabric"] = ResourceSpec("fabric", capacity=max(1, len(self.plan.stages)), component="fabric")
        else:
            res["grid"] = ResourceSpec("grid", component="grid")
        return res

    # ---- whole program ---------------------------------------------------------------------------
    def build(self) -> Program:
        plan = self.plan
        region_of: list[int | None] = [None] * plan.regions      # configuration resident per region
        region_tasks: list[list[int]] = [[] for _ in range(plan.regions)]
        region_lru: list[int] = list(range(plan.regions))
        reconfigs = 0
        reconfig_bytes = 0
        if not self.entry_charged:   # the configuration is already loaded: the loop repeats it
            region_of[0] = plan.configs[0].index
        for a, (ci, run) in enumerate(plan.activations):
            config = plan.configs[ci]
            if ci in region_of:
                r = region_of.index(ci)
                start = None
            else:
                r = region_lru[0]
                start = self._add(kind=TaskKind.RECONFIG, name=f"load configuration {ci}",
                                  resources=("config_port",), deps=tuple(region_tasks[r]),
                                  bytes=config.load_bytes, actions={"reconfig.byte": float(config.load_bytes)},
                                  scope="reconfig", op_type="reconfig")
                region_of[r] = ci
                region_tasks[r] = []
                reconfigs += 1
                reconfig_bytes += config.load_bytes
            region_lru.remove(r)
            region_lru.append(r)
            first = len(self.tasks)
            self._activation(a, config, run, start)
            region_tasks[r].extend(range(first, len(self.tasks)))
            if start is not None:
                region_tasks[r].append(start)
        meta = dict(self.g.metadata)
        meta["fabric.mode"] = plan.mode
        meta["fabric.reconfigurations"] = str(reconfigs)
        meta["fabric.reconfiguration_bytes"] = str(reconfig_bytes)
        meta["fabric.entry_load"] = "charged" if self.entry_charged else "amortised over meta-training steps"
        meta["fabric.configurations"] = json.dumps(plan.report(self.hw))
        prog = Program(name=self.g.name, target=self.hw.name, clock_hz=self.hw.clock_hz,
                       resources=self.resources(), tasks=self.tasks, metadata=meta,
                       not_modelled=list(NOT_MODELLED))
        prog.validate()
        return prog

    def _store(self, t: str) -> int:
        tid = self._transfer(f"store {t}", self.nbytes(t), (self.producer_done[t],),
                             self.scope_of[t], load=False)
        self.dram_ready[t] = tid
        return tid

    # ---- one activation --------------------------------------------------------------------------
    def _activation(self, a: int, config: Configuration, run: list[int], start: int | None) -> None:
        capacity = config.spare_bytes
        onchip: dict[str, _OnChip] = {}
        used = 0
        pending: list[tuple[int, int]] = []
        for i in run:
            info = self.plan.nodes[i]
            node, stage = info.node, self.plan.stages[info.stage]
            scope = str(node.scope)
            ins = list(dict.fromkeys(_base(self.alias, t) for t in node.inputs if t))
            outs = [o for o in node.outputs if o]
            items = info.items
            sizes = chunk_items(items)
            ends = [sum(sizes[:k + 1]) for k in range(len(sizes))]
            chunk_deps: list[list[int | None]] = [[] for _ in sizes]
            chunk_deps[0] += [start, self.stage_last.get(stage.index)]
            if not self.fpga:
                chunk_deps[0].append(self.grid_last)
            actions = self._actions(node, stage)
            # inputs: streamed from an on-chip producer, or loaded from DRAM
            frees = 0
            for t in ins:
                src = onchip.get(t)
                if src is not None:
                    if t in info.barrier_inputs or src.out_barrier:
                        chunk_deps[0].append(src.chunks[-1])
                    else:
                        for k, e in enumerate(ends):
                            need = math.ceil(e / items * src.items)
                            j = min(bisect.bisect_left(src.ends, need), len(src.chunks) - 1)
                            chunk_deps[k].append(src.chunks[j])
                    actions["sram.read"] = actions.get("sram.read", 0.0) + src.nbytes
                    src.uses -= 1
                    if src.uses == 0:   # released when this node ends: its outputs cannot use it
                        frees += src.nbytes
                        del onchip[t]
                else:
                    if t in self.producer_done and t not in self.dram_ready:
                        self._store(t)   # guard: every tensor used outside its activation is stored
                    load = self._transfer(f"load {t}", self.nbytes(t), (self.dram_ready.get(t), start),
                                          scope, load=True)
                    chunk_deps[0].append(load)
            # outputs consumed in this activation stay on chip when the spare memory holds them
            keep, alloc = [], 0
            for o in outs:
                n_here = self.uses.get((o, a), 0)
                if n_here and used + self.nbytes(o) <= capacity:
                    short = used + sum(b for _, b in pending) + self.nbytes(o) - capacity
                    while short > 0 and pending:
                        tid, b = pending.pop(0)
                        chunk_deps[0].append(tid)
                        if b > short:
                            pending.insert(0, (tid, b - short))
                        short -= b
                    used += self.nbytes(o)
                    alloc += self.nbytes(o)
                    keep.append(o)
                    actions["sram.write"] = actions.get("sram.write", 0.0) + self.nbytes(o)
            # the node's chunks on its stage
            unit = "fabric" if self.fpga else "grid"
            chunks: list[int] = []
            cycles = stage.fold.cycles
            if not self.fpga and self.grid_stage is not None and self.grid_stage != stage.index:
                cycles += self.hw.contexts.switch_cycles
                actions["context.switch"] = 1.0
            for k, size in enumerate(sizes):
                last = k == len(sizes) - 1
                tid = self._add(kind=TaskKind.COMPUTE,
                                name=node.name if len(sizes) == 1 else f"{node.name} [{k + 1}/{len(sizes)}]",
                                resources=(unit,), deps=(*chunk_deps[k], chunks[-1] if chunks else None),
                                cycles=cycles * size / items if len(sizes) > 1 else float(cycles),
                                actions=actions if k == 0 else {},
                                mem_alloc={"sram": alloc} if (k == 0 and alloc) else {},
                                mem_free={"sram": frees} if (last and frees) else {},
                                scope=scope, op_type=node.op_type, nodes=(node.name,))
                chunks.append(tid)
            self.stage_last[stage.index] = chunks[-1]
            self.grid_last, self.grid_stage = chunks[-1], stage.index
            if frees:
                used -= frees
                pending.append((chunks[-1], frees))
            for o in outs:
                self.producer_done[o] = chunks[-1]
                self.scope_of[o] = scope
                if o in keep:
                    onchip[o] = _OnChip(chunks, ends, items, info.out_barrier, self.nbytes(o),
                                        self.uses[(o, a)])
                # DRAM gets a copy when the graph returns it, a later activation reads it, or it
                # is read here but did not fit on chip; a tensor nobody reads is dropped
                if o in self.outputs or self.later.get(o) or (o not in keep and self.uses.get((o, a))):
                    self._store(o)

    def _actions(self, node: Node, stage: Stage) -> dict[str, float]:
        wl = self.w[node.name]
        dt = stage.dtype
        esize = DTYPE_BYTES.get(dt, 4)
        fold = stage.fold
        if self.fpga:
            if stage.unit == "mvau":
                acts = {f"mac.{dt}": float(wl.macs), "sram.read": float(wl.macs * esize)}
                if wl.flops:
                    acts[f"lut.{dt}"] = float(wl.flops)
                return acts
            return {f"lut.{dt}": float(fold.cycles * fold.lanes if stage.unit == "move"
                                       else max(1, wl.flops + int(wl.dims.get("transcendental", 0))
                                                * (self.hw.lane(dt).transcendental_ops - 1)))}
        acts = {"sram.read": float(wl.bytes_read), "sram.write": float(wl.bytes_written)}
        if wl.macs:
            acts[f"mac.{dt}"] = float(wl.macs)
        trans = int(wl.dims.get("transcendental", 0))
        ops = wl.flops + trans * (self.hw.grid.transcendental_ops - 1)
        if wl.kind is Kind.DATA_MOVEMENT:
            ops = max(ops, wl.bytes_written // esize)
        if ops or not wl.macs:
            acts[f"pe.{dt}"] = float(max(ops, 1))
        return acts

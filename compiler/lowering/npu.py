"""Lowering an IR graph onto an NPU: a `Program` of DMA transfers and compute tasks.

Per node, in topological order:

1. **Placement.** A node of task j of a meta-batch runs on core j mod cores (task-level
   parallelism); nodes shared by all tasks (meta-reduce, outer update) run on core 0.
2. **Operands on chip.** Each core's SRAM holds whole tensors as an LRU cache. An operand that
   is not resident is loaded by DMA from DRAM (after its write-back, if it was spilled or lives
   on another core). Dead tensors are freed at their last use; live tensors that must make room
   are written back first (a spill). An op whose operands and results do not fit in the buffer
   at once is *streamed* from and to DRAM (see `_stream_traffic`).
3. **Compute.** MatMul/Gemm/Conv run on the systolic array with SCALE-Sim's fold structure
   (`compiler.lowering.systolic.gemm_cost`); every other op runs on the vector unit, bounded by
   its lanes and by SRAM port bandwidth. Reshape-like views cost nothing and alias their input;
   metadata ops (Shape, Constant) leave their tiny result in DRAM.
4. **Prefetch window.** The loads of node i may start once node i-2 on that core has finished
   when the buffer is double-buffered (i-1 otherwise), so they overlap the previous compute.

Outputs still on chip at the end are written back to DRAM.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field, replace
from functools import lru_cache

from hwsim.config import NPU
from hwsim.program import Program, ResourceSpec, Task, TaskKind

from ..ir import DTYPE_BYTES, Graph, Node, Role
from ..workload import Kind, Workload
from .systolic import gemm_cost

NOT_MODELLED = [
    "array stalls inside a layer from SRAM port bandwidth (SCALE-Sim's stall-free assumption within a tile)",
    "SRAM bank conflicts, DRAM row-buffer locality and refresh",
    "operator fusion: each node is one compute task (its intermediates stay on chip when they fit)",
    "off-chip footprint over time (only on-chip SRAM occupancy is traced)",
]


class LoweringError(ValueError):
    """The graph cannot be mapped onto this hardware."""


def lower_npu(graph: Graph, workloads: dict[str, Workload], hw: NPU) -> Program:
    builder = _Builder(graph, workloads, hw)
    for node in graph.nodes:
        wl = workloads[node.name]
        if wl.kind is not Kind.NONE and not wl.dims.get("view"):
            builder.lower_node(node, wl)
    builder.write_back_outputs()
    prog = Program(name=graph.name, target=hw.name, clock_hz=hw.clock_hz,
                   resources=builder.resources(), tasks=builder.tasks,
                   metadata=dict(graph.metadata), not_modelled=list(NOT_MODELLED))
    prog.validate()
    return prog


def compulsory_dram_bytes(graph: Graph) -> int:
    """Bytes any schedule must move off chip: each consumed input/parameter read once and each
    output written once. A lower bound used by the invariant tests and reports."""
    consumed = {i for n in graph.nodes for i in n.inputs if i}
    reads = sum(t.nbytes for name, t in graph.tensors.items()
                if t.role in (Role.INPUT, Role.PARAMETER) and name in consumed)
    writes = sum(graph.tensor(o).nbytes for o in set(graph.outputs)
                 if o not in graph.inputs)
    return reads + writes


# ---- state --------------------------------------------------------------------------------------


@dataclass
class _Core:
    index: int
    resident: "OrderedDict[str, int]" = field(default_factory=OrderedDict)  # tensor -> bytes, LRU first
    used: int = 0
    last_reader: dict[str, int] = field(default_factory=dict)  # tensor -> last task reading it here
    # Space the lowering already counts as free but that the simulation releases only when a
    # task ends (dead operands, spills, stream staging): (task, bytes), oldest first. An
    # allocation that needs this space waits for those tasks.
    pending: list[tuple[int, int]] = field(default_factory=list)
    compute_tasks: list[int] = field(default_factory=list)


@dataclass
class _TensorState:
    in_dram: bool = True                      # a valid copy exists in DRAM
    dram_ready: int | None = None             # task after which that copy is valid
    ready_on: dict[int, int] = field(default_factory=dict)  # core -> task making the on-chip copy valid
    remaining_uses: int = 0


class _Builder:
    def __init__(self, graph: Graph, workloads: dict[str, Workload], hw: NPU) -> None:
        self.g, self.w, self.hw = graph, workloads, hw
        self.tasks: list[Task] = []
        self.cores = [_Core(i) for i in range(hw.cores)]
        self.capacity = hw.sram.size_bytes
        self.lookback = 2 if hw.sram.double_buffered else 1
        self.alias: dict[str, str] = {}
        for n in graph.nodes:
            if workloads[n.name].dims.get("view"):
                for o in n.outputs:
                    if o:
                        self.alias[o] = n.inputs[0]
        self.outputs = {self.base(o) for o in graph.outputs}
        self.state: dict[str, _TensorState] = defaultdict(_TensorState)
        for n in graph.nodes:
            if self._is_task(n):
                for i in n.inputs:
                    if i:
                        self.state[self.base(i)].remaining_uses += 1

    def _is_task(self, n: Node) -> bool:
        wl = self.w[n.name]
        return wl.kind is not Kind.NONE and not wl.dims.get("view")

    def base(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def nbytes(self, name: str) -> int:
        return self.g.tensor(name).nbytes

    # ---- resources and tasks -------------------------------------------------------------------
    def resources(self) -> dict[str, ResourceSpec]:
        hw = self.hw
        res: dict[str, ResourceSpec] = {}
        for c in range(hw.cores):
            res[f"core{c}.array"] = ResourceSpec(f"core{c}.array", component="array")
            res[f"core{c}.vector"] = ResourceSpec(f"core{c}.vector", component="vector")
            res[f"core{c}.dma"] = ResourceSpec(f"core{c}.dma", capacity=hw.dma_engines,
                                               bytes_per_cycle=hw.sram.bytes_per_cycle, component="dma")
        res["dram"] = ResourceSpec("dram", capacity=hw.dram.channels,
                                   bytes_per_cycle=hw.dram_bytes_per_cycle / hw.dram.channels,
                                   latency_cycles=hw.dram_latency_cycles, component="dram")
        if hw.cores > 1 and hw.interconnect is not None:
            res["noc"] = ResourceSpec("noc", capacity=hw.cores,
                                      bytes_per_cycle=hw.interconnect.bytes_per_cycle,
                                      latency_cycles=hw.interconnect.latency_cycles, component="noc")
        return res

    def _add(self, **kw) -> int:
        tid = len(self.tasks)
        kw["deps"] = tuple(sorted({d for d in kw.get("deps", ()) if d is not None}))
        self.tasks.append(Task(id=tid, **kw))
        return tid

    def _transfer(self, core: int, name: str, nbytes: int, deps, scope: str, *, to_chip: bool,
                  alloc: int = 0, free: int = 0) -> int:
        path = (f"core{core}.dma", "dram") + (("noc",) if self.hw.cores > 1 else ())
        actions = ({"dram.read": nbytes, "sram.write": nbytes} if to_chip
                   else {"sram.read": nbytes, "dram.write": nbytes})
        if self.hw.cores > 1:
            actions["noc.transfer"] = nbytes
        return self._add(kind=TaskKind.TRANSFER, name=name, resources=path, deps=tuple(deps),
                         bytes=nbytes, actions=actions, scope=scope, op_type="dma",
                         mem_alloc={"sram": alloc} if alloc else {},
                         mem_free={"sram": free} if free else {})

    def _ensure_in_dram(self, name: str, scope: str) -> int | None:
        """Write a tensor that lives only on chip back to DRAM; the task the DRAM copy waits on."""
        s = self.state[name]
        if not s.in_dram:
            core, producer = next(iter(s.ready_on.items()))
            s.dram_ready = self._transfer(core, f"writeback {name}", self.nbytes(name), (producer,),
                                          scope, to_chip=False)
            s.in_dram = True
        return s.dram_ready

    # ---- on-chip residency ---------------------------------------------------------------------
    def _make_room(self, core: _Core, nbytes: int, pinned: set[str], scope: str) -> list[int]:
        """Evict LRU tensors (not pinned) until `nbytes` fit, then return the tasks the new
        allocation must wait for so that the space really is free when it starts.

        Evicted space is released in the simulation only when a task ends: a live tensor's
        spill, or the last reader of a clean one (no write-after-read hazard). Such space and
        every other release still in flight sits in `core.pending`; the allocation waits for
        the oldest releases until what it needs is covered, and leaves any remainder pending."""
        waits = []
        for name in list(core.resident):
            if core.used + nbytes <= self.capacity:
                break
            if name in pinned:
                continue
            size = core.resident.pop(name)
            core.used -= size
            s = self.state[name]
            producer = s.ready_on.pop(core.index)
            if not s.in_dram:  # live and dirty: spill
                s.dram_ready = self._transfer(core.index, f"spill {name}", size, (producer,), scope,
                                              to_chip=False, free=size)
                s.in_dram = True
                core.pending.append((s.dram_ready, size))
            else:
                last = core.last_reader.pop(name, producer)
                t = self.tasks[last]
                self.tasks[last] = replace(t, mem_free={"sram": t.mem_free.get("sram", 0) + size})
                core.pending.append((last, size))
        if core.used + nbytes > self.capacity:
            raise LoweringError(f"SRAM of {self.capacity} bytes on core {core.index} cannot hold "
                                f"the {nbytes} bytes one node needs at once")
        short = core.used + sum(b for _, b in core.pending) + nbytes - self.capacity
        while short > 0:
            tid, b = core.pending.pop(0)
            waits.append(tid)
            if b > short:   # only part of this release is needed: the rest stays pending
                core.pending.insert(0, (tid, b - short))
            short -= b
        return waits

    def _bring(self, core: _Core, name: str, pinned: set[str], scope: str, window: int | None,
               deps: list[int]) -> None:
        """Make `name` resident on `core`; add what the consumer waits for to `deps`."""
        s = self.state[name]
        if name in core.resident:
            core.resident.move_to_end(name)
            deps.append(s.ready_on[core.index])
            return
        self._ensure_in_dram(name, scope)
        size = self.nbytes(name)
        waits = self._make_room(core, size, pinned, scope)
        tid = self._transfer(core.index, f"load {name}", size, (s.dram_ready, window, *waits), scope,
                             to_chip=True, alloc=size)
        core.resident[name] = size
        core.used += size
        s.ready_on[core.index] = tid
        deps.append(tid)

    # ---- one node ------------------------------------------------------------------------------
    def lower_node(self, node: Node, wl: Workload) -> None:
        core = self.cores[0 if node.scope.task is None else node.scope.task % self.hw.cores]
        scope = str(node.scope)
        ins = list(dict.fromkeys(self.base(i) for i in node.inputs if i))
        outs = [o for o in node.outputs if o]
        window = core.compute_tasks[-self.lookback] if len(core.compute_tasks) >= self.lookback else None
        unit, cycles, actions = self._compute_cost(node, wl)
        out_bytes = sum(self.nbytes(o) for o in outs)
        streamed = sum(self.nbytes(i) for i in ins) + out_bytes > self.capacity

        if streamed:
            self._lower_streamed(node, core, ins, outs, unit, cycles, actions, window)
            return
        deps: list[int] = []
        pinned = set(ins) | set(outs)
        for i in ins:
            self._bring(core, i, pinned, scope, window, deps)
        deps += self._make_room(core, out_bytes, pinned, scope)
        free = 0
        # inputs whose last use this is leave the buffer when the node finishes
        for i in node.inputs:
            if i:
                self.state[self.base(i)].remaining_uses -= 1
        for i in ins:
            s = self.state[i]
            if s.remaining_uses <= 0 and i not in self.outputs and i in core.resident:
                free += core.resident.pop(i)
                core.used -= self.nbytes(i)
                s.ready_on.pop(core.index, None)
                core.last_reader.pop(i, None)
        dead_outs = [o for o in outs if self.state[o].remaining_uses == 0 and o not in self.outputs]
        free += sum(self.nbytes(o) for o in dead_outs)
        tid = self._add(kind=TaskKind.COMPUTE, name=node.name, resources=(f"core{core.index}.{unit}",),
                        deps=deps, cycles=cycles, actions=actions,
                        mem_alloc={"sram": out_bytes} if out_bytes else {},
                        mem_free={"sram": free} if free else {},
                        scope=scope, op_type=node.op_type, nodes=(node.name,))
        core.compute_tasks.append(tid)
        if free:
            core.pending.append((tid, free))
        for i in ins:
            if i in core.resident:
                core.last_reader[i] = tid
        for o in outs:
            if o in dead_outs:
                continue
            s = self.state[o]
            s.in_dram, s.dram_ready, s.ready_on = False, None, {core.index: tid}
            core.resident[o] = self.nbytes(o)
            core.used += self.nbytes(o)

    def _lower_streamed(self, node: Node, core: _Core, ins: list[str], outs: list[str], unit: str,
                        cycles: float, actions: dict[str, float], window: int | None) -> None:
        """An op too large for the buffer runs in tiles: load tile i+1 while computing tile i
        (double buffering), store each tile's results. Operands come from and go to DRAM."""
        scope = str(node.scope)
        load = self._stream_traffic(ins)
        out_bytes = sum(self.nbytes(o) for o in outs)
        tiles = max(1, min(MAX_STREAM_TILES, math.ceil(load / max(1, self.capacity // 2))))
        in_deps = [self._ensure_in_dram(i, scope) for i in ins]
        for i in node.inputs:
            if i:
                self.state[self.base(i)].remaining_uses -= 1
        computes: list[int] = []
        stores: list[int] = []
        # on-chip staging: half the buffer, as two input and two output tile buffers (a merged
        # tile stands for several real ones, so its staging is capped the same way)
        staging = self.capacity // 2
        room = self._make_room(core, staging, set(), scope)
        stage = max(1, staging // 4)
        for k in range(tiles):
            part = _share(load, tiles, k)
            gate = window if k < 2 else computes[k - 2]   # two tile buffers
            ld = self._transfer(core.index, f"stream-in {node.name} [{k + 1}/{tiles}]", part,
                                (*in_deps, gate, *(room if k < 2 else ())), scope, to_chip=True,
                                alloc=min(part, stage))
            out_part = _share(out_bytes, tiles, k)
            c = self._add(kind=TaskKind.COMPUTE, name=f"{node.name} [{k + 1}/{tiles}]",
                          resources=(f"core{core.index}.{unit}",),
                          deps=(ld, computes[-1] if computes else None), cycles=cycles / tiles,
                          actions=actions if k == 0 else {},   # counted once, exactly
                          mem_alloc={"sram": min(out_part, stage)} if out_part else {},
                          mem_free={"sram": min(part, stage)} if part else {},
                          scope=scope, op_type=node.op_type, nodes=(node.name,))
            computes.append(c)
            if out_part:
                stores.append(self._transfer(core.index, f"stream-out {node.name} [{k + 1}/{tiles}]",
                                             out_part, (c,), scope, to_chip=False,
                                             free=min(out_part, stage)))
        core.compute_tasks.append(computes[-1])
        done = stores[-1] if stores else computes[-1]
        if len(stores) > 1:   # the results are complete when every tile is stored
            done = self._add(kind=TaskKind.COMPUTE, name=f"{node.name} [stored]",
                             resources=(f"core{core.index}.{unit}",), deps=tuple(stores), cycles=0,
                             scope=scope, op_type=node.op_type, nodes=(node.name,))
        core.pending.append((done, staging))  # returned tile by tile; later users wait for it all
        for o in outs:
            self.state[o].in_dram, self.state[o].dram_ready = True, done

    def _stream_traffic(self, ins: list[str]) -> int:
        """Bytes loaded by a streamed op: the largest operand once, every other operand once per
        tile of it, a tile being what fits in half the buffer (the other half double-buffers)."""
        sizes = sorted((self.nbytes(i) for i in ins), reverse=True)
        if not sizes:
            return 0
        tiles = max(1, math.ceil(sizes[0] / max(1, self.capacity // 2)))
        return sizes[0] + tiles * sum(sizes[1:])

    def _compute_cost(self, node: Node, wl: Workload) -> tuple[str, float, dict[str, float]]:
        dtype = _compute_dtype(self.g, node)
        if wl.kind in (Kind.MATMUL, Kind.CONV):
            sr, sc, t, repeats = _as_gemm(self.g, node, wl)
            a = self.hw.array
            cost = gemm_cost(sr, sc, t, a.rows, a.cols, a.dataflow.value)
            esize = DTYPE_BYTES.get(dtype, 4)
            actions = {
                f"mac.{dtype}": float(wl.macs),
                "sram.read": float(repeats * esize * (cost.ifmap_sram_reads + cost.filter_sram_reads
                                                      + cost.ofmap_sram_reads)),
                "sram.write": float(repeats * esize * cost.ofmap_sram_writes),
            }
            if wl.flops:  # bias / alpha / beta on the accumulator path: counted, overlapped
                actions[f"vector.{dtype}"] = float(wl.flops)
            return "array", float(repeats * cost.cycles), actions
        v = self.hw.vector
        trans = int(wl.dims.get("transcendental", 0))
        lane_ops = wl.flops + trans * (v.transcendental_cycles - 1)
        cycles = _vector_cycles(lane_ops, wl.bytes_read + wl.bytes_written, v.lanes * v.ops_per_lane,
                                v.pipeline_depth, self.hw.sram.bytes_per_cycle)
        actions = {"sram.read": float(wl.bytes_read), "sram.write": float(wl.bytes_written)}
        if lane_ops:
            actions[f"vector.{dtype}"] = float(lane_ops)
        return "vector", cycles, actions

    def write_back_outputs(self) -> None:
        for o in sorted(self.outputs):
            s = self.state[o]
            if s.in_dram or not s.ready_on:
                continue
            core, producer = next(iter(s.ready_on.items()))
            size = self.nbytes(o)
            s.dram_ready = self._transfer(core, f"store {o}", size, (producer,),
                                          self.tasks[producer].scope, to_chip=False, free=size)
            s.in_dram = True


# Streamed ops are cut into at most this many tiles: enough to overlap transfers with compute,
# few enough that the event count stays small.
MAX_STREAM_TILES = 16


def _share(total: int, parts: int, k: int) -> int:
    """The k-th of `parts` integer shares of `total` (they add up to `total` exactly)."""
    return total * (k + 1) // parts - total * k // parts


def _compute_dtype(g: Graph, node: Node) -> str:
    """The arithmetic type of a node: its first floating operand or result, else its first."""
    ts = g.in_tensors(node) + g.out_tensors(node)
    for t in ts:
        if t.dtype.startswith("float") or t.dtype == "bfloat16":
            return t.dtype
    return ts[0].dtype if ts else "float32"


def _as_gemm(g: Graph, node: Node, wl: Workload) -> tuple[int, int, int, int]:
    """(Sr, Sc, T, repeats) in SCALE-Sim's terms: output rows, output columns (filters),
    reduction, and independent repetitions (batched GEMMs with distinct right operands, groups)."""
    d = wl.dims
    if wl.kind is Kind.CONV:
        groups = d.get("g", 1)
        if d.get("transposed"):
            # Each input pixel meets every kernel tap: Sr = n*h*w, T = c_in/g, Sc = (c_out/g)*r*s.
            return d["n"] * d["h"] * d["w"], (d["k"] // groups) * d["r"] * d["s"], d["c"] // groups, groups
        return d["n"] * d["oh"] * d["ow"], d["k"] // groups, (d["c"] // groups) * d["r"] * d["s"], groups
    b, m, k, n = d.get("b", 1), d["m"], d["k"], d["n"]
    rhs = [t for t in g.in_tensors(node)][1:2]
    if node.op_type == "Gemm" or (rhs and len(rhs[0].shape) <= 2):
        return b * m, n, k, 1          # one weight matrix shared by the whole batch
    return m, n, k, b


@lru_cache(maxsize=65536)
def _vector_cycles(lane_ops: int, nbytes: int, width: int, depth: int, sram_bw: float) -> float:
    """Pipelined SIMD: fill latency plus the larger of arithmetic time and SRAM-port time."""
    return float(depth + max(math.ceil(lane_ops / width), math.ceil(nbytes / sram_bw)))

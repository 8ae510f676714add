"""Lowering an IR graph onto an NPU: a `Program` of DMA transfers and compute tasks.

Per node, in topological order:

1. **Placement.** A node of task j of a meta-batch runs on core j mod cores (task-level
   parallelism); nodes shared by all tasks (meta-reduce, outer update) run on core 0.
2. **Operands on chip.** Each core's buffers hold whole tensors as LRU caches. With one unified
   buffer (`sram`) everything lives there; with separate buffers, parameters are loaded into
   `filter`, other operands into `ifmap`, and results are written into `ofmap` where later
   consumers read them. An operand that is not resident is loaded by DMA from DRAM (after its
   write-back, if it was spilled or lives on another core). Dead tensors are freed at their
   last use; live tensors that must make room are written back first (a spill). An op whose
   operands and results do not fit in their buffers at once is *streamed* from and to DRAM
   (see `_lower_streamed`). A buffer too small for an op's smallest tile is an error naming
   the buffer and the bytes needed.
3. **Compute.** MatMul/Gemm/Conv run on the systolic array with SCALE-Sim's fold structure
   (`compiler.lowering.systolic.gemm_cost`); every other op runs on the vector unit, bounded by
   its lanes, its transcendental throughput and the SRAM port bandwidth. Reshape-like views
   cost nothing and alias their input; metadata ops (Shape, Constant) leave their tiny result
   in DRAM.
4. **Prefetch window.** The loads of node i may start once node i-2 on that core has finished
   when the buffer is double-buffered (i-1 otherwise), so they overlap the previous compute.

Outputs still on chip at the end are written back to DRAM. Memory levels traced over time:
`sram` (all on-chip buffers of all cores), `core<c>.<buffer>` (each buffer of each core) and
`dram` (graph inputs and parameters from t=0, every tensor written off chip from its write until
its last consumer ends; graph outputs stay).
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
from . import LOWERINGS, LoweringError
from .gemm import as_gemm, compute_dtype
from .systolic import gemm_cost

NOT_MODELLED = [
    "array stalls inside a layer from SRAM port bandwidth (SCALE-Sim's stall-free assumption within a tile)",
    "SRAM bank conflicts, DRAM row-buffer locality and refresh; a transfer spread over several "
    "DRAM channels waits until that many are free (no partial start)",
    "operator fusion: each node is one compute task (its intermediates stay on chip when they fit)",
    "DRAM space of a dead intermediate returns when its last consumer in program order ends "
    "(with several cores another core's load of it may still be in flight)",
    "a result leaving a separate ofmap buffer moves to the ifmap buffer only if that has room "
    "without evicting anything; otherwise it is spilled to DRAM",
]




@LOWERINGS.register("npu")
def lower_npu(graph: Graph, workloads: dict[str, Workload], hw: NPU) -> Program:
    builder = _Builder(graph, workloads, hw)
    for node in graph.nodes:
        wl = workloads[node.name]
        if wl.kind is not Kind.NONE and not wl.dims.get("view"):
            builder.lower_node(node, wl)
    builder.write_back_outputs()
    prog = Program(name=graph.name, target=hw.name, clock_hz=hw.clock_hz,
                   resources=builder.resources(), tasks=builder.tasks,
                   metadata=dict(graph.metadata), not_modelled=list(NOT_MODELLED),
                   initial_memory={"dram": builder.initial_dram_bytes()})
    return prog   # `simulate` validates every Program it runs


def compulsory_dram_bytes(graph: Graph, hw: NPU | None = None) -> int:
    """Bytes any schedule must move off chip: each consumed input/parameter read once and each
    output written once (at `hw.datatype` width if the NPU sets one). A lower bound used by the
    invariant tests and reports."""
    size = (lambda name: stored_bytes(graph, name, hw.datatype)) if hw is not None \
        else (lambda name: graph.tensor(name).nbytes)
    consumed = {i for n in graph.nodes for i in n.inputs if i}
    reads = sum(size(name) for name, t in graph.tensors.items()
                if t.role in (Role.INPUT, Role.PARAMETER) and name in consumed)
    writes = sum(size(o) for o in set(graph.outputs) if o not in graph.inputs)
    return reads + writes


def stored_bytes(graph: Graph, name: str, datatype: str | None) -> int:
    """Bytes a tensor occupies on this NPU: floating tensors at the NPU's datatype if it has
    one, integer tensors (indices, shapes) at their own width."""
    t = graph.tensor(name)
    if datatype and _is_float(t.dtype):
        return t.numel * DTYPE_BYTES[datatype]
    return t.nbytes


# ---- state --------------------------------------------------------------------------------------


@dataclass
class _Pool:
    """One on-chip buffer of one core, managed as an LRU cache of whole tensors."""

    name: str
    capacity: int
    double_buffered: bool
    resident: "OrderedDict[str, int]" = field(default_factory=OrderedDict)  # tensor -> bytes, LRU first
    used: int = 0
    # Space the lowering already counts as free but that the simulation releases only when a
    # task ends (dead operands, spills, stream staging): (task, bytes), oldest first. An
    # allocation that needs this space waits for those tasks.
    pending: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Core:
    index: int
    pools: dict[str, _Pool]
    where: dict[str, str] = field(default_factory=dict)        # resident tensor -> pool name
    last_reader: dict[str, int] = field(default_factory=dict)  # tensor -> last task reading it here
    compute_tasks: list[int] = field(default_factory=list)


@dataclass
class _TensorState:
    in_dram: bool = True                      # a valid copy exists in DRAM
    dram_ready: int | None = None             # task after which that copy is valid
    ready_on: dict[int, int] = field(default_factory=dict)  # core -> task making the on-chip copy valid
    remaining_uses: int = 0
    dram_bytes: int = 0                       # off-chip space this program allocated for it


class _Builder:
    def __init__(self, graph: Graph, workloads: dict[str, Workload], hw: NPU) -> None:
        self.g, self.w, self.hw = graph, workloads, hw
        self.tasks: list[Task] = []
        self._nbytes: dict[str, int] = {}
        self.buffers = hw.on_chip_buffers
        self.unified = hw.sram is not None
        self.cores = [_Core(i, {n: _Pool(n, b.size_bytes, b.double_buffered) for n, b in self.buffers.items()})
                      for i in range(hw.cores)]
        self.out_pool = "sram" if self.unified else "ofmap"
        self.lookback = 2 if self.buffers[self.out_pool].double_buffered else 1
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
        n = self._nbytes.get(name)
        if n is None:
            n = self._nbytes[name] = stored_bytes(self.g, name, self.hw.datatype)
        return n

    def load_pool(self, name: str) -> str:
        """The buffer a tensor loaded from DRAM goes to."""
        if self.unified:
            return "sram"
        role = self.g.tensor(name).role
        return "filter" if role in (Role.PARAMETER, Role.CONSTANT) else "ifmap"

    def initial_dram_bytes(self) -> int:
        """Graph inputs, parameters and constants sit in DRAM before the first task."""
        return sum(self.nbytes(n) for n, t in self.g.tensors.items()
                   if t.role in (Role.INPUT, Role.PARAMETER, Role.CONSTANT) or n in self.g.inputs)

    def _mem(self, core: int, pool: str, nbytes: int) -> dict[str, int]:
        """Memory-level deltas of `nbytes` in one buffer: the buffer itself and the on-chip total."""
        if not nbytes:
            return {}
        return {"sram": nbytes, f"core{core}.{pool}": nbytes}

    # ---- resources and tasks -------------------------------------------------------------------
    def resources(self) -> dict[str, ResourceSpec]:
        hw = self.hw
        # A DMA engine writes one buffer at a time; with several buffers it is given the
        # fastest buffer's port bandwidth (the DRAM link is the narrower one in practice).
        dma_bw = max(b.bytes_per_cycle for b in self.buffers.values())
        res: dict[str, ResourceSpec] = {}
        for c in range(hw.cores):
            res[f"core{c}.array"] = ResourceSpec(f"core{c}.array", component="array")
            res[f"core{c}.vector"] = ResourceSpec(f"core{c}.vector", component="vector")
            res[f"core{c}.dma"] = ResourceSpec(f"core{c}.dma", capacity=hw.dma_engines,
                                               bytes_per_cycle=dma_bw, component="dma")
        res["dram"] = ResourceSpec("dram", capacity=hw.dram.channels,
                                   bytes_per_cycle=hw.dram_bytes_per_cycle / hw.dram.channels,
                                   latency_cycles=hw.dram_latency_cycles, component="dram",
                                   striped=hw.dram.interleave_bytes is not None and hw.dram.channels > 1)
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

    def _transfer(self, core: int, pool: str, name: str, nbytes: int, deps, scope: str, *,
                  to_chip: bool, alloc: int = 0, free: int = 0, dram_alloc: int = 0) -> int:
        """A DMA between DRAM and buffer `pool` of `core`. `dram_alloc`: bytes this write adds
        to the off-chip footprint (a tensor's first copy in DRAM)."""
        path = (f"core{core}.dma", "dram") + (("noc",) if self.hw.cores > 1 else ())
        actions = ({"dram.read": nbytes, f"{pool}.write": nbytes} if to_chip
                   else {f"{pool}.read": nbytes, "dram.write": nbytes})
        if self.hw.cores > 1:
            actions["noc.transfer"] = nbytes
        mem_alloc = self._mem(core, pool, alloc)
        if dram_alloc:
            mem_alloc["dram"] = dram_alloc
        return self._add(kind=TaskKind.TRANSFER, name=name, resources=path, deps=tuple(deps),
                         bytes=nbytes, actions=actions, scope=scope, op_type="dma",
                         mem_alloc=mem_alloc, mem_free=self._mem(core, pool, free),
                         width=self._channels(nbytes))

    def _channels(self, nbytes: int) -> int:
        """DRAM channels a transfer of `nbytes` spreads over (address interleaving)."""
        d = self.hw.dram
        if d.interleave_bytes is None or d.channels == 1:
            return 1
        return max(1, min(d.channels, -(-nbytes // d.interleave_bytes)))

    def _ensure_in_dram(self, name: str, scope: str) -> int | None:
        """Write a tensor that lives only on chip back to DRAM; the task the DRAM copy waits on."""
        s = self.state[name]
        if not s.in_dram:
            core, producer = next(iter(s.ready_on.items()))
            size = self.nbytes(name)
            s.dram_ready = self._transfer(core, self.cores[core].where[name], f"writeback {name}", size,
                                          (producer,), scope, to_chip=False, dram_alloc=size)
            s.in_dram, s.dram_bytes = True, size
        return s.dram_ready

    # ---- on-chip residency ---------------------------------------------------------------------
    def _make_room(self, core: _Core, pool: str, nbytes: int, pinned: set[str], scope: str) -> list[int]:
        """Evict LRU tensors (not pinned) from buffer `pool` until `nbytes` fit, then return the
        tasks the new allocation must wait for so that the space really is free when it starts.

        Evicted space is released in the simulation only when a task ends: a live tensor's
        spill, or the last reader of a clean one (no write-after-read hazard). Such space and
        every other release still in flight sits in `pending`; the allocation waits for the
        oldest releases until what it needs is covered, and leaves any remainder pending."""
        p = core.pools[pool]
        waits = []
        for name in list(p.resident):
            if p.used + nbytes <= p.capacity:
                break
            if name in pinned:
                continue
            size = p.resident.pop(name)
            del core.where[name]
            p.used -= size
            s = self.state[name]
            producer = s.ready_on.pop(core.index)
            if not s.in_dram and self._move_on_chip(core, pool, name, size, producer, pinned, scope):
                continue
            if not s.in_dram:  # live and dirty: spill
                s.dram_ready = self._transfer(core.index, pool, f"spill {name}", size, (producer,), scope,
                                              to_chip=False, free=size, dram_alloc=size)
                s.in_dram, s.dram_bytes = True, size
                p.pending.append((s.dram_ready, size))
            else:
                last = core.last_reader.pop(name, producer)
                t = self.tasks[last]
                self.tasks[last] = replace(t, mem_free=_merge(t.mem_free, self._mem(core.index, pool, size)))
                p.pending.append((last, size))
        if p.used + nbytes > p.capacity:
            raise LoweringError(f"{self._buffer_name(pool)} of {p.capacity} bytes on core {core.index} "
                                f"cannot hold the {nbytes} bytes one node needs at once")
        short = p.used + sum(b for _, b in p.pending) + nbytes - p.capacity
        while short > 0:
            tid, b = p.pending.pop(0)
            waits.append(tid)
            if b > short:   # only part of this release is needed: the rest stays pending
                p.pending.insert(0, (tid, b - short))
            short -= b
        return waits

    def _move_on_chip(self, core: _Core, pool: str, name: str, size: int, producer: int, pinned: set[str],
                      scope: str) -> bool:
        """A live result evicted from a separate `ofmap` buffer moves to the `ifmap` buffer of its
        core when that has room without evicting anything (the path a TPU's accumulators take to
        its unified buffer), instead of a spill to DRAM. The core's DMA engine copies it at the
        buffers' port rate; the ofmap space returns when the copy (and every earlier reader of
        the ofmap copy) is done. Returns whether it moved."""
        dest = core.pools.get("ifmap")
        if pool != "ofmap" or dest is None or dest.used + size > dest.capacity:
            return False
        waits = self._make_room(core, "ifmap", size, pinned, scope)
        reader = core.last_reader.pop(name, None)
        tid = self._add(kind=TaskKind.TRANSFER, name=f"move {name}", resources=(f"core{core.index}.dma",),
                        deps=(producer, reader, *waits), bytes=size,
                        actions={"ofmap.read": size, "ifmap.write": size}, scope=scope, op_type="dma",
                        mem_alloc=self._mem(core.index, "ifmap", size),
                        mem_free=self._mem(core.index, "ofmap", size))
        core.pools[pool].pending.append((tid, size))
        self._place(core, "ifmap", name, size)
        self.state[name].ready_on[core.index] = tid
        return True

    def _release_dram_if_dead(self, name: str, last: int) -> None:
        """Return the off-chip space of an intermediate nobody reads any more when task `last`
        (its last reader) ends. Graph inputs, parameters and outputs keep theirs."""
        s = self.state[name]
        if s.remaining_uses > 0 or name in self.outputs or not s.dram_bytes:
            return
        t = self.tasks[last]
        self.tasks[last] = replace(t, mem_free=_merge(t.mem_free, {"dram": s.dram_bytes}))
        s.dram_bytes = 0

    def _buffer_name(self, pool: str) -> str:
        return "SRAM" if pool == "sram" else f"{pool} buffer"

    def _bring(self, core: _Core, name: str, pinned: set[str], scope: str, window: int | None,
               deps: list[int], streams: list[int]) -> None:
        """Make `name` resident on `core`: what the consumer waits for goes to `deps`, a load
        issued for it here to `streams` (the consumer computes on its chunks as they land)."""
        s = self.state[name]
        if name in core.where:
            core.pools[core.where[name]].resident.move_to_end(name)
            deps.append(s.ready_on[core.index])
            return
        self._ensure_in_dram(name, scope)
        size = self.nbytes(name)
        pool = self.load_pool(name)
        waits = self._make_room(core, pool, size, pinned, scope)
        tid = self._transfer(core.index, pool, f"load {name}", size, (s.dram_ready, window, *waits), scope,
                             to_chip=True, alloc=size)
        self._place(core, pool, name, size)
        s.ready_on[core.index] = tid
        streams.append(tid)

    def _place(self, core: _Core, pool: str, name: str, size: int) -> None:
        p = core.pools[pool]
        p.resident[name] = size
        p.used += size
        core.where[name] = pool

    # ---- one node ------------------------------------------------------------------------------
    def lower_node(self, node: Node, wl: Workload) -> None:
        core = self.cores[0 if node.scope.task is None else node.scope.task % self.hw.cores]
        scope = str(node.scope)
        ins = list(dict.fromkeys(self.base(i) for i in node.inputs if i))
        outs = [o for o in node.outputs if o]
        window = core.compute_tasks[-self.lookback] if len(core.compute_tasks) >= self.lookback else None
        in_pools = {i: core.where.get(i) or self.load_pool(i) for i in ins}
        out_bytes = sum(self.nbytes(o) for o in outs)
        inplace = self._in_place_operand(node, wl, core, ins, outs)
        new_bytes = out_bytes - (self.nbytes(inplace) if inplace else 0)   # results' new space
        needs: dict[str, int] = defaultdict(int)
        for i in ins:
            needs[in_pools[i]] += self.nbytes(i)
        needs[self.out_pool] += new_bytes
        fits = all(b <= core.pools[p].capacity for p, b in needs.items())
        # A tile never needs more of a tensor than the tensor: when every distinct operand fits
        # whole, so does the smallest tile.
        if not fits or len(ins) < sum(1 for i in node.inputs if i):
            self._check_smallest_tile(node, wl, core, in_pools)
        unit, cycles, actions = self._compute_cost(node, wl, in_pools)
        if not fits:
            self._lower_streamed(node, wl, core, ins, outs, unit, cycles, actions, window)
            return
        deps: list[int] = []
        streams: list[int] = []
        pinned = set(ins) | set(outs)
        for i in ins:
            self._bring(core, i, pinned, scope, window, deps, streams)
        if inplace:   # overwriting its operand: after every earlier reader of it
            deps.append(core.last_reader.get(inplace))
        deps += self._make_room(core, self.out_pool, new_bytes, pinned, scope)
        free: dict[str, int] = {}   # memory-level deltas released when the node ends
        frees: dict[str, int] = defaultdict(int)   # pool -> bytes released when the node ends
        # inputs whose last use this is leave the buffer when the node finishes
        for i in node.inputs:
            if i:
                self.state[self.base(i)].remaining_uses -= 1
        for i in ins:
            s = self.state[i]
            if s.remaining_uses <= 0 and i not in self.outputs and i in core.where:
                pool = core.where.pop(i)
                p = core.pools[pool]
                size = p.resident.pop(i)
                if i != inplace:   # an in-place operand's space passes to the result
                    frees[pool] += size
                p.used -= self.nbytes(i)
                s.ready_on.pop(core.index, None)
                core.last_reader.pop(i, None)
        dead_outs = [o for o in outs if self.state[o].remaining_uses == 0 and o not in self.outputs]
        frees[self.out_pool] += sum(self.nbytes(o) for o in dead_outs)
        for pool, b in frees.items():
            free = _merge(free, self._mem(core.index, pool, b))
        # Loads issued for this node are consumed chunk by chunk as they land (at most
        # MAX_STREAM_TILES chunks, none smaller than a DRAM burst), like a streamed op's tiles:
        # only the last chunk's compute is left once the last byte is on chip.
        streamed = sum(self.tasks[t].bytes for t in streams)
        chunks = max(1, min(MAX_STREAM_TILES, streamed // DRAM_BURST_BYTES))
        tid = self._add(kind=TaskKind.COMPUTE, name=node.name, resources=(f"core{core.index}.{unit}",),
                        deps=deps, cycles=cycles, actions=actions,
                        mem_alloc=self._mem(core.index, self.out_pool, new_bytes), mem_free=free,
                        scope=scope, op_type=node.op_type, nodes=(node.name,),
                        streams=tuple(streams), stream_chunks=chunks)
        core.compute_tasks.append(tid)
        for pool, b in frees.items():
            if b:
                core.pools[pool].pending.append((tid, b))
        for i in ins:
            self._release_dram_if_dead(i, tid)
        for i in ins:
            if i in core.where:
                core.last_reader[i] = tid
        for o in outs:
            if o in dead_outs:
                continue
            s = self.state[o]
            s.in_dram, s.dram_ready, s.ready_on = False, None, {core.index: tid}
            self._place(core, self.out_pool, o, self.nbytes(o))

    def _in_place_operand(self, node: Node, wl: Workload, core: _Core, ins: list[str], outs: list[str]) -> str | None:
        """An elementwise op may write its result over an operand it reads for the last time:
        one of the same size, resident in the result buffer of this core and not a graph output
        (as compilers do for ReLU, Add, optimizer updates). Returns that operand, or None."""
        if wl.kind is not Kind.ELEMENTWISE or len(outs) != 1:
            return None
        o = outs[0]
        if o in self.outputs or self.state[o].remaining_uses == 0:
            return None
        uses = [self.base(i) for i in node.inputs if i]
        for i in ins:
            if (core.where.get(i) == self.out_pool and i not in self.outputs
                    and self.state[i].remaining_uses == uses.count(i) and self.nbytes(i) == self.nbytes(o)):
                return i
        return None

    def _lower_streamed(self, node: Node, wl: Workload, core: _Core, ins: list[str], outs: list[str], unit: str,
                        cycles: float, actions: dict[str, float], window: int | None) -> None:
        """An op too large for its buffers runs in tiles: load tile i+1 while computing tile i
        (double buffering), store each tile's results. Operands come from and go to DRAM.

        The op takes its buffers whole (evicting what they hold): input tiles are staged in the
        buffer the largest operand loads into, result tiles in the result buffer, each in two
        tile buffers of an eighth of it (a unified buffer: two input and two result tiles of a
        sixteenth). What `_stream_traffic` keeps on chip uses up to KEEP_SHARE of a buffer."""
        scope = str(node.scope)
        in_pool = self.load_pool(max(ins, key=self.nbytes)) if ins else self.out_pool
        out_pool = self.out_pool
        cap_in = core.pools[in_pool].capacity
        out_bytes = sum(self.nbytes(o) for o in outs)
        # The op takes its buffers whole. A kept operand (or a block of it, or a block of results)
        # may use up to KEEP_SHARE of a buffer; the rest holds double-buffered staging tiles.
        if in_pool == out_pool:
            rooms = {in_pool: cap_in}
            stage_in = stage_out = max(1, cap_in // 16)        # two input and two result tiles
            keep_in = keep_out = math.floor(cap_in * KEEP_SHARE)
        else:
            cap_out = core.pools[out_pool].capacity
            rooms = {in_pool: cap_in, out_pool: cap_out}
            stage_in, stage_out = max(1, cap_in // 8), max(1, cap_out // 8)
            keep_in, keep_out = math.floor(cap_in * KEEP_SHARE), math.floor(cap_out * KEEP_SHARE)
        load = self._stream_traffic(node, wl, ins, outs, keep_in, keep_out)
        tiles = max(math.ceil(load / max(1, 2 * stage_in)), math.ceil(out_bytes / max(1, 2 * stage_out)))
        tiles = max(1, min(MAX_STREAM_TILES, tiles))
        lookback = 2 if core.pools[in_pool].double_buffered else 1
        in_deps = [self._ensure_in_dram(i, scope) for i in ins]
        for i in node.inputs:
            if i:
                self.state[self.base(i)].remaining_uses -= 1
        computes: list[int] = []
        stores: list[int] = []
        room: list[int] = []
        for pool, b in rooms.items():
            room += self._make_room(core, pool, b, set(), scope)
        written = 0
        for k in range(tiles):
            part = _share(load, tiles, k)
            gate = window if k < lookback else computes[k - lookback]   # tile buffers
            ld = self._transfer(core.index, in_pool, f"stream-in {node.name} [{k + 1}/{tiles}]", part,
                                (*in_deps, gate, *(room if k < lookback else ())), scope, to_chip=True,
                                alloc=min(part, stage_in))
            out_part = _share(out_bytes, tiles, k)
            c = self._add(kind=TaskKind.COMPUTE, name=f"{node.name} [{k + 1}/{tiles}]",
                          resources=(f"core{core.index}.{unit}",),
                          deps=(ld, computes[-1] if computes else None), cycles=cycles / tiles,
                          actions=actions if k == 0 else {},   # counted once, exactly
                          mem_alloc=self._mem(core.index, out_pool, min(out_part, stage_out)),
                          mem_free=self._mem(core.index, in_pool, min(part, stage_in)),
                          scope=scope, op_type=node.op_type, nodes=(node.name,))
            computes.append(c)
            if out_part:
                stores.append(self._transfer(core.index, out_pool, f"stream-out {node.name} [{k + 1}/{tiles}]",
                                             out_part, (c,), scope, to_chip=False,
                                             free=min(out_part, stage_out), dram_alloc=out_part))
                written += out_part
        core.compute_tasks.append(computes[-1])
        done = stores[-1] if stores else computes[-1]
        if len(stores) > 1:   # the results are complete when every tile is stored
            done = self._add(kind=TaskKind.COMPUTE, name=f"{node.name} [stored]",
                             resources=(f"core{core.index}.{unit}",), deps=tuple(stores), cycles=0,
                             scope=scope, op_type=node.op_type, nodes=(node.name,))
        for pool, b in rooms.items():   # returned tile by tile; later users wait for it all
            core.pools[pool].pending.append((done, b))
        for o in outs:
            s = self.state[o]
            s.in_dram, s.dram_ready, s.dram_bytes = True, done, self.nbytes(o)
        for i in ins:
            self._release_dram_if_dead(i, computes[-1])

    def _stream_traffic(self, node: Node, wl: Workload, ins: list[str], outs: list[str], keep_in: int,
                        keep_out: int) -> int:
        """Bytes loaded by a streamed op: `keep_in` is the room for a kept input (or a block of
        one), `keep_out` the room for a kept result (or a block of results).

        Elementwise ops, reductions and data movement stream every operand once, tile by tile.
        A GEMM-like op (MatMul, Gemm, Conv: left operand A = Sr x T, right operand B = T x Sc,
        result C = Sr x Sc) reads each operand once as long as one of the three can stay on
        chip: the result (accumulated over reduction tiles, as for weight gradients), or either
        input (the other streams past it). Otherwise it takes the cheapest of three blockings:
        keep a block of A's rows and re-read B once per block; keep a block of B's columns and
        re-read A once per block; or keep a bm x bn block of C accumulating while slices of A and
        B stream past it along the reduction, which re-reads A once per column block and B once
        per row block (`_output_blocks`). For a conv, A is the ifmap itself (a block of output
        rows reads its band of input rows; the halo between bands is not counted)."""
        sizes = {i: self.nbytes(i) for i in ins}
        total = sum(sizes.values())
        if wl.kind not in (Kind.MATMUL, Kind.CONV) or len(ins) < 2:
            return total
        a, b = sizes[ins[0]], sizes[ins[1]]
        rest = total - a - b
        c = sum(self.nbytes(o) for o in outs)
        if min(a, b) <= keep_in or c <= keep_out:
            return total
        sr, sc, _, _ = as_gemm(self.g, node, wl)
        keep_a = a + b * min(sr, math.ceil(a / max(1, keep_in)))
        keep_b = b + a * min(sc, math.ceil(b / max(1, keep_in)))
        bm, bn = _output_blocks(a, b, c, max(1, keep_out), sr, sc)
        keep_c = a * bn + b * bm
        return min(keep_a, keep_b, keep_c) + rest

    def _check_smallest_tile(self, node: Node, wl: Workload, core: _Core, in_pools: dict[str, str]) -> None:
        """Raise if a buffer cannot hold the smallest tile of `node` even when streamed.

        Array ops: the stationary operand of one fold (rows x cols elements: the filter for WS,
        the ifmap for IS, the results for OS) plus one vector of each streamed operand per cycle
        (rows or cols elements), doubled when the buffer is double-buffered. Vector ops: one
        vector of `lanes` elements of each operand and result, doubled likewise. No tile needs
        more of an operand than the operand itself."""
        need: dict[str, int] = defaultdict(int)

        def add(pool: str, tensor: str, elements: int, stationary: bool = False) -> None:
            t = self.g.tensor(tensor)
            per = self.nbytes(tensor) // max(1, t.numel)
            db = 1 if stationary or not self.buffers[pool].double_buffered else 2
            need[pool] += min(self.nbytes(tensor), db * elements * per)

        ins = [self.base(i) for i in node.inputs if i]
        outs = [o for o in node.outputs if o]
        if wl.kind in (Kind.MATMUL, Kind.CONV) and len(ins) >= 2:
            a, df = self.hw.array, self.hw.array.dataflow.value
            r, c = a.rows, a.cols
            ifm, flt = ins[0], ins[1]
            add(in_pools[ifm], ifm, r * c if df == "IS" else r, stationary=df == "IS")
            add(in_pools[flt], flt, r * c if df == "WS" else (r if df == "IS" else c), stationary=df == "WS")
            for o in outs:
                add(self.out_pool, o, r * c if df == "OS" else c, stationary=df == "OS")
        else:
            lanes = self.hw.vector.lanes
            for i in dict.fromkeys(ins):
                add(in_pools[i], i, lanes)
            for o in outs:
                add(self.out_pool, o, lanes)
        for pool, b in need.items():
            cap = core.pools[pool].capacity
            if b > cap:
                raise LoweringError(
                    f"{self._buffer_name(pool)} of {cap} bytes on core {core.index} is too small for node "
                    f"{node.name!r} ({node.op_type}): its smallest tile needs {b} bytes there")

    def _compute_cost(self, node: Node, wl: Workload, in_pools: dict[str, str]) -> tuple[str, float, dict[str, float]]:
        graph_dtype = compute_dtype(self.g, node)
        dtype = self.hw.datatype if self.hw.datatype and _is_float(graph_dtype) else graph_dtype
        ins = [self.base(i) for i in node.inputs if i]
        out = self.out_pool
        if wl.kind in (Kind.MATMUL, Kind.CONV):
            sr, sc, t, repeats = as_gemm(self.g, node, wl)
            a = self.hw.array
            cost = gemm_cost(sr, sc, t, a.rows, a.cols, a.dataflow.value)
            esize = DTYPE_BYTES.get(dtype, 4)
            ifm = in_pools.get(ins[0], out) if ins else out
            flt = in_pools.get(ins[1], out) if len(ins) > 1 else ifm
            reads: dict[str, float] = defaultdict(float)
            reads[ifm] += repeats * esize * cost.ifmap_sram_reads
            reads[flt] += repeats * esize * cost.filter_sram_reads
            reads[out] += repeats * esize * cost.ofmap_sram_reads
            actions = {f"mac.{dtype}": float(wl.macs)}
            for pool, b in reads.items():
                actions[f"{pool}.read"] = float(b)
            actions[f"{out}.write"] = float(repeats * esize * cost.ofmap_sram_writes)
            if wl.flops:  # bias / alpha / beta on the accumulator path: counted, overlapped
                actions[f"vector.{dtype}"] = float(wl.flops)
            return "array", float(repeats * cost.cycles), actions
        v = self.hw.vector
        # bytes at the stored width: the workload counts the graph's types
        scale = (DTYPE_BYTES[dtype] / DTYPE_BYTES.get(graph_dtype, 4)) if dtype != graph_dtype else 1.0
        bytes_read = wl.bytes_read * scale
        bytes_written = wl.bytes_written * scale
        trans = int(wl.dims.get("transcendental", 0))
        lane_ops = wl.flops + trans * (v.transcendental_cycles - 1)
        port_bw = min(self.buffers[p].bytes_per_cycle for p in {*in_pools.values(), out})
        cycles = _vector_cycles(lane_ops, math.ceil(bytes_read + bytes_written), v.lanes * v.ops_per_lane,
                                v.pipeline_depth, port_bw)
        # reads are attributed to each operand's buffer in proportion to its size
        actions: dict[str, float] = defaultdict(float)
        sizes = {i: self.nbytes(i) for i in dict.fromkeys(ins)}
        total = sum(sizes.values())
        for i, b in sizes.items():
            actions[f"{in_pools.get(i, out)}.read"] += bytes_read * b / total if total else 0.0
        if not sizes:
            actions[f"{out}.read"] += bytes_read
        actions[f"{out}.write"] += bytes_written
        actions = {k: float(c) for k, c in actions.items() if c}
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
            s.dram_ready = self._transfer(core, self.cores[core].where[o], f"store {o}", size, (producer,),
                                          self.tasks[producer].scope, to_chip=False, free=size,
                                          dram_alloc=size)
            s.in_dram = True


def _merge(a, b) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float") or dtype == "bfloat16"


# Streamed ops are cut into at most this many tiles: enough to overlap transfers with compute,
# few enough that the event count stays small.
MAX_STREAM_TILES = 16

# The smallest chunk a consumer computes on as a load lands: one DDR burst, 8 beats of a 64-bit
# channel (JEDEC JESD79-4 DDR4 burst length BL8).
DRAM_BURST_BYTES = 64

# The share of a buffer a streamed op may fill with what it keeps on chip (a whole operand, a
# block of one, or a block of results); the remaining quarter holds its double-buffered staging
# tiles. A design choice: ZigZag, which stages without double buffering, keeps operands of up to
# 86 % of its buffer on the Conv4 cases of docs/validation.md.
KEEP_SHARE = 0.75


def _output_blocks(a: int, b: int, c: int, room: int, sr: int, sc: int) -> tuple[int, int]:
    """Row and column block counts (bm <= sr, bn <= sc) of an output-stationary GEMM whose result
    block fits `room` bytes (bm * bn >= ceil(c / room)), chosen to minimise the re-reads
    a * bn + b * bm. For each bm the least feasible bn is ceil(need / bm); every distinct pair is
    among bm <= sqrt(need) + 1 and bm = ceil(need / bn) for bn <= sqrt(need) + 1 (O(sqrt(need))
    candidates)."""
    need = math.ceil(c / room)
    k = math.isqrt(need) + 1
    best: tuple[int, int, int] | None = None
    for bm in {*range(1, k + 1), *(math.ceil(need / n) for n in range(1, k + 1))}:
        bm = min(bm, sr)
        bn = math.ceil(need / bm)
        if bn > sc:
            continue
        cand = (a * bn + b * bm, bm, bn)
        if best is None or cand < best:
            best = cand
    if best is None:   # not even one element of C per block fits: the finest blocking
        return sr, sc
    return best[1], best[2]


def _share(total: int, parts: int, k: int) -> int:
    """The k-th of `parts` integer shares of `total` (they add up to `total` exactly)."""
    return total * (k + 1) // parts - total * k // parts


@lru_cache(maxsize=65536)
def _vector_cycles(lane_ops: int, nbytes: int, width: int, depth: int, sram_bw: float) -> float:
    """Pipelined SIMD: fill latency plus the larger of arithmetic time and SRAM-port time; at
    least one cycle (only views and metadata ops, which never get here, cost nothing)."""
    return float(depth + max(math.ceil(lane_ops / width), math.ceil(nbytes / sram_bw), 1))

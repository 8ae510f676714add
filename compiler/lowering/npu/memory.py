"""The memory plan: which tensors sit in which buffer when, what is loaded, spilled, moved or
streamed. It decides; it builds no task (`emit` does).

Each core's buffers are LRU caches of whole tensors. With one unified buffer (`sram`)
everything lives there; with separate buffers, parameters load into `filter`, other operands
into `ifmap`, and results are written into `ofmap` where later consumers read them. An operand
that is not resident is loaded from DRAM (after its write-back, if it was spilled or lives on
another core). Dead tensors are freed at their last use; live tensors that must make room are
written back first (a spill), or, leaving a separate `ofmap`, moved to `ifmap` when it has room.
Elementwise ops write in place over an operand they read for the last time. A node whose
operands and results do not fit its buffers at once is streamed (`streaming.stream_layout`). A
buffer too small for a node's smallest tile is an error naming the buffer and the bytes needed.

Space the plan reuses is only reused in the simulation once the step that releases it is over
(`_Pool.pending`), so the traced peak never exceeds a buffer. The loads of node i may start once
node i-2 on that core is over when the buffer is double-buffered (i-1 otherwise): the prefetch
window, which lets DMA overlap compute.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwsim.config import NPU

from ...ir import DTYPE_BYTES, Graph, Node, Role
from ...workload import Kind, Workload
from .. import LoweringError
from .cost import CostContext, NodeCost, is_float, node_cost
from .placement import Placed
from .plan import COMPUTED, END, Compute, Fused, MemoryPlan, Ref, Step, Streamed, Transfer, merge_into
from .streaming import DRAM_BURST_BYTES, MAX_STREAM_TILES, stream_layout

if TYPE_CHECKING:
    from ...fusion import FusionPlan, Group
    from ...precision import NumericPlan


def fusion_budget(hw: NPU) -> int:
    """Bytes of its result buffer one tile of a fused group may hold: all of it, as a streamed
    op takes its buffers whole (what is resident is evicted, spilled if live)."""
    out_pool = "sram" if hw.sram is not None else "ofmap"
    return hw.on_chip_buffers[out_pool].size_bytes


def stored_bytes(graph: Graph, name: str, datatype: str | None) -> int:
    """Bytes a tensor occupies on this NPU: floating tensors at the NPU's datatype if it has
    one, integer tensors (indices, shapes) at their own width."""
    t = graph.tensor(name)
    if datatype and is_float(t.dtype):
        return t.numel * DTYPE_BYTES[datatype]
    return t.nbytes


def plan_memory(graph: Graph, workloads: dict[str, Workload], hw: NPU, placed: list[Placed],
                numeric: "NumericPlan | None" = None, fusion: "FusionPlan | None" = None,
                halo: str = "cache") -> MemoryPlan:
    """`numeric`: the stored and arithmetic types a precision option chose (None: the graph's
    types, or the NPU's datatype for every floating tensor). `fusion`: groups to run tile by
    tile (`placed` then lists each group's members together, in their order), with `halo` rows
    cached or recomputed."""
    planner = _Planner(graph, workloads, hw, placed, numeric)
    k = 0
    while k < len(placed):
        p = placed[k]
        index = fusion.group_of.get(p.node.name) if fusion is not None else None
        if index is None:
            planner.node(p.node, p.workload, planner.cores[p.core])
            k += 1
            continue
        group = fusion.groups[index]
        planner.group(group, placed[k:k + len(group.members)], planner.cores[p.core], halo)
        k += len(group.members)
    planner.write_back_outputs()
    return MemoryPlan(planner.steps, planner.initial_dram_bytes(), planner.demand.points)


# ---- state --------------------------------------------------------------------------------------


class _Demand:
    """The on-chip bytes a schedule with unbounded buffers would keep, per level, at each node:
    a tensor is wanted in the buffer it would live in (loaded: `load_pool`; produced: the result
    buffer) from its first use or production on a core until its last use on that core."""

    def __init__(self, planner: "_Planner", placed: list[Placed]) -> None:
        self.p = planner
        self.uses: list[dict[str, int]] = [defaultdict(int) for _ in range(planner.hw.cores)]
        for pl in placed:
            for i in pl.node.inputs:
                if i:
                    self.uses[pl.core][planner.base(i)] += 1
        self.wanted: list[dict[str, tuple[str, int]]] = [{} for _ in range(planner.hw.cores)]
        self.now: dict[str, int] = defaultdict(int)
        self.points: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def _want(self, core: int, tensor: str, pool: str) -> None:
        if tensor not in self.wanted[core]:
            size = self.p.nbytes(tensor)
            self.wanted[core][tensor] = (pool, size)
            self.now[f"core{core}.{pool}"] += size
            self.now["sram"] += size

    def _drop(self, core: int, tensor: str) -> None:
        pool, size = self.wanted[core].pop(tensor)
        self.now[f"core{core}.{pool}"] -= size
        self.now["sram"] -= size

    def node(self, node: Node, core: int, step: int) -> None:
        """Record the demand while `node` (the compute of plan step `step`) runs, then release
        what it used last on its core."""
        p = self.p
        ins = [p.base(i) for i in node.inputs if i]
        for i in ins:
            self._want(core, i, self.wanted[core].get(i, (p.load_pool(i), 0))[0])
        for o in node.outputs:
            if o:
                self._want(core, o, p.out_pool)
        for level, value in self.now.items():
            trace = self.points[level]
            if not trace or trace[-1][1] != value:
                trace.append((step, value))
        uses = self.uses[core]
        for i in ins:
            uses[i] -= 1
        for t in {*ins, *(o for o in node.outputs if o)}:
            if uses.get(t, 0) <= 0 and t in self.wanted[core]:
                self._drop(core, t)


@dataclass
class _Pool:
    """One on-chip buffer of one core, managed as an LRU cache of whole tensors."""

    name: str
    capacity: int
    double_buffered: bool
    resident: "OrderedDict[str, int]" = field(default_factory=OrderedDict)  # tensor -> bytes, LRU first
    used: int = 0
    # Space the plan already counts as free but that the simulation releases only when a step
    # is over (dead operands, spills, stream staging): (step, bytes), oldest first. An
    # allocation that needs this space waits for those steps.
    pending: list[tuple[Ref, int]] = field(default_factory=list)
    pending_bytes: int = 0

    def release_later(self, ref: Ref, nbytes: int) -> None:
        self.pending.append((ref, nbytes))
        self.pending_bytes += nbytes


@dataclass
class _Core:
    index: int
    pools: dict[str, _Pool]
    where: dict[str, str] = field(default_factory=dict)        # resident tensor -> pool name
    last_reader: dict[str, Ref] = field(default_factory=dict)  # tensor -> last compute reading it here
    computes: list[Ref] = field(default_factory=list)          # compute steps in order


@dataclass
class _TensorState:
    in_dram: bool = True                      # a valid copy exists in DRAM
    dram_ready: Ref | None = None             # step after which that copy is valid
    ready_on: dict[int, Ref] = field(default_factory=dict)  # core -> step making the on-chip copy valid
    remaining_uses: int = 0
    dram_bytes: int = 0                       # off-chip space this program allocated for it


class _Planner:
    def __init__(self, graph: Graph, workloads: dict[str, Workload], hw: NPU, placed: list[Placed],
                 numeric: "NumericPlan | None" = None) -> None:
        self.g, self.w, self.hw = graph, workloads, hw
        self.steps: list[Step] = []
        self.numeric = numeric
        self._nbytes = ({n: stored_bytes(graph, n, hw.datatype) for n in graph.tensors} if numeric is None
                        else {n: numeric.nbytes(graph, n) for n in graph.tensors})
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
        for p in placed:
            for i in p.node.inputs:
                if i:
                    self.state[self.base(i)].remaining_uses += 1
        self.cost = CostContext(graph, hw, self.out_pool, self.nbytes, self.base, numeric)
        self.demand = _Demand(self, placed)
        self._costs: dict[tuple, NodeCost] = {}

    def base(self, name: str) -> str:
        alias = self.alias
        while name in alias:
            name = alias[name]
        return name

    def nbytes(self, name: str) -> int:
        return self._nbytes[name]

    def load_pool(self, name: str) -> str:
        """The buffer a tensor loaded from DRAM goes to."""
        if self.unified:
            return "sram"
        role = self.g.tensor(name).role
        return "filter" if role in (Role.PARAMETER, Role.CONSTANT) else "ifmap"

    def initial_dram_bytes(self) -> int:
        """Graph inputs, parameters and constants sit in DRAM before the first step."""
        return sum(self.nbytes(n) for n, t in self.g.tensors.items()
                   if t.role in (Role.INPUT, Role.PARAMETER, Role.CONSTANT) or n in self.g.inputs)

    def _mem(self, core: int, pool: str, nbytes: int) -> dict[str, int]:
        """Memory-level deltas of `nbytes` in one buffer: the buffer itself and the on-chip total."""
        if not nbytes:
            return {}
        return {"sram": nbytes, f"core{core}.{pool}": nbytes}

    def _add(self, step: Step) -> Ref:
        self.steps.append(step)
        return (len(self.steps) - 1, END)

    def _free_at(self, ref: Ref, delta: dict[str, int]) -> None:
        self.steps[ref[0]].add_free(ref[1], delta)

    def _transfer(self, what: str, core: int, pool: str, name: str, nbytes: int, deps: list[Ref | None],
                  scope: str, *, to_chip: bool, alloc: int = 0, free: int = 0, dram_alloc: int = 0) -> Ref:
        """A DMA between DRAM and buffer `pool` of `core`. `dram_alloc`: bytes this write adds
        to the off-chip footprint (a tensor's first copy in DRAM)."""
        mem_alloc = self._mem(core, pool, alloc)
        if dram_alloc:
            mem_alloc["dram"] = dram_alloc
        return self._add(Transfer(what, name, core, pool, nbytes, to_chip, [d for d in deps if d is not None],
                                  scope, mem_alloc, self._mem(core, pool, free)))

    def _ensure_in_dram(self, name: str, scope: str) -> Ref | None:
        """Write a tensor that lives only on chip back to DRAM; the step the DRAM copy waits on."""
        s = self.state[name]
        if not s.in_dram:
            core, producer = next(iter(s.ready_on.items()))
            size = self.nbytes(name)
            s.dram_ready = self._transfer("writeback", core, self.cores[core].where[name], name, size,
                                          [producer], scope, to_chip=False, dram_alloc=size)
            s.in_dram, s.dram_bytes = True, size
        return s.dram_ready

    # ---- on-chip residency ---------------------------------------------------------------------
    def _make_room(self, core: _Core, pool: str, nbytes: int, pinned: set[str], scope: str) -> list[Ref]:
        """Evict LRU tensors (not pinned) from buffer `pool` until `nbytes` fit, then return the
        steps the new allocation must wait for so that the space really is free when it starts.

        Evicted space is released in the simulation only when a step is over: a live tensor's
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
                s.dram_ready = self._transfer("spill", core.index, pool, name, size, [producer], scope,
                                              to_chip=False, free=size, dram_alloc=size)
                s.in_dram, s.dram_bytes = True, size
                p.release_later(s.dram_ready, size)
            else:
                last = core.last_reader.pop(name, producer)
                self._free_at(last, self._mem(core.index, pool, size))
                p.release_later(last, size)
        if p.used + nbytes > p.capacity:
            raise LoweringError(f"{self._buffer_name(pool)} of {p.capacity} bytes on core {core.index} "
                                f"cannot hold the {nbytes} bytes one node needs at once")
        short = p.used + p.pending_bytes + nbytes - p.capacity
        while short > 0:
            ref, b = p.pending.pop(0)
            p.pending_bytes -= b
            waits.append(ref)
            if b > short:   # only part of this release is needed: the rest stays pending
                p.pending.insert(0, (ref, b - short))
                p.pending_bytes += b - short
            short -= b
        return waits

    def _move_on_chip(self, core: _Core, pool: str, name: str, size: int, producer: Ref, pinned: set[str],
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
        ref = self._add(Transfer("move", name, core.index, "ifmap", size, False,
                                 [d for d in (producer, reader, *waits) if d is not None], scope,
                                 self._mem(core.index, "ifmap", size), self._mem(core.index, "ofmap", size)))
        core.pools[pool].release_later(ref, size)
        self._place(core, "ifmap", name, size)
        self.state[name].ready_on[core.index] = ref
        return True

    def _release_dram_if_dead(self, name: str, last: Ref) -> None:
        """Return the off-chip space of an intermediate nobody reads any more when step `last`
        (its last reader) is over. Graph inputs, parameters and outputs keep theirs."""
        s = self.state[name]
        if s.remaining_uses > 0 or name in self.outputs or not s.dram_bytes:
            return
        self._free_at(last, {"dram": s.dram_bytes})
        s.dram_bytes = 0

    def _buffer_name(self, pool: str) -> str:
        return "SRAM" if pool == "sram" else f"{pool} buffer"

    def _bring(self, core: _Core, name: str, pinned: set[str], scope: str, window: Ref | None,
               deps: list[Ref | None], streams: list[Ref]) -> None:
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
        ref = self._transfer("load", core.index, pool, name, size, [s.dram_ready, window, *waits], scope,
                             to_chip=True, alloc=size)
        self._place(core, pool, name, size)
        s.ready_on[core.index] = ref
        streams.append(ref)

    def _place(self, core: _Core, pool: str, name: str, size: int) -> None:
        p = core.pools[pool]
        p.resident[name] = size
        p.used += size
        core.where[name] = pool

    # ---- one node ------------------------------------------------------------------------------
    def node(self, node: Node, wl: Workload, core: _Core) -> None:
        self.demand.node(node, core.index, len(self.steps))
        scope = str(node.scope)
        ins = list(dict.fromkeys(self.base(i) for i in node.inputs if i))
        outs = [o for o in node.outputs if o]
        window = core.computes[-self.lookback] if len(core.computes) >= self.lookback else None
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
        cost = self._node_cost(node, wl, ins, outs, in_pools)
        if not fits:
            self._streamed(node, wl, core, ins, outs, cost.unit, cost.cycles, cost.actions, window)
            return
        deps: list[Ref | None] = []
        streams: list[Ref] = []
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
            merge_into(free, self._mem(core.index, pool, b))
        # Loads issued for this node are consumed chunk by chunk as they land (at most
        # MAX_STREAM_TILES chunks, none smaller than a DRAM burst), like a streamed op's tiles:
        # only the last chunk's compute is left once the last byte is on chip.
        streamed = sum(self.steps[r[0]].nbytes for r in streams)
        chunks = max(1, min(MAX_STREAM_TILES, streamed // DRAM_BURST_BYTES))
        ref = self._add(Compute(node.name, node.op_type, core.index, cost.unit, cost.cycles, cost.actions,
                                [d for d in deps if d is not None], streams, chunks, scope,
                                self._mem(core.index, self.out_pool, new_bytes), free))
        core.computes.append(ref)
        for pool, b in frees.items():
            if b:
                core.pools[pool].release_later(ref, b)
        for i in ins:
            self._release_dram_if_dead(i, ref)
        for i in ins:
            if i in core.where:
                core.last_reader[i] = ref
        for o in outs:
            if o in dead_outs:
                continue
            s = self.state[o]
            s.in_dram, s.dram_ready, s.ready_on = False, None, {core.index: ref}
            self._place(core, self.out_pool, o, self.nbytes(o))

    def _node_cost(self, node: Node, wl: Workload, ins: list[str], outs: list[str],
                   in_pools: dict[str, str]) -> NodeCost:
        """`cost.node_cost`, memoised within the plan by everything a cost rule reads: the op,
        its workload, and each operand's and result's shape, type, size and buffer (the tasks of
        a meta-batch and the steps of an inner loop repeat the same nodes many times)."""
        t = self.g.tensors
        key = (node.op_type, wl.kind, wl.macs, wl.flops, wl.bytes_read, wl.bytes_written, tuple(wl.dims.items()),
               tuple((t[i].shape, t[i].dtype, in_pools[i]) for i in ins),
               tuple((t[i].shape, t[i].dtype) for i in (self.base(x) for x in node.inputs if x)),
               tuple((t[o].shape, t[o].dtype) for o in outs))
        if self.numeric is not None:   # one graph type may be stored at several widths
            types = self.numeric.tensor
            key += (self.numeric.node[node.name], tuple(types[self.base(x)] for x in node.inputs if x),
                    tuple(types[o] for o in outs))
        cost = self._costs.get(key)
        if cost is None:
            cost = self._costs[key] = node_cost(self.cost, node, wl, in_pools)
        return cost

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

    def _streamed(self, node: Node, wl: Workload, core: _Core, ins: list[str], outs: list[str], unit: str,
                  cycles: float, actions: dict[str, float], window: Ref | None) -> None:
        """A node too large for its buffers streams from and to DRAM (`streaming`): its operands
        are written back first if they live only on chip, it takes its buffers whole, and its
        results are in DRAM when it is over."""
        scope = str(node.scope)
        sizes = {t: self.nbytes(t) for t in (*ins, *outs)}
        in_pool = self.load_pool(max(ins, key=self.nbytes)) if ins else self.out_pool
        layout = stream_layout(self.g, node, wl, ins, outs, sizes, in_pool, self.out_pool,
                               {n: p.capacity for n, p in core.pools.items()},
                               core.pools[in_pool].double_buffered)
        in_deps = [self._ensure_in_dram(i, scope) for i in ins]
        for i in node.inputs:
            if i:
                self.state[self.base(i)].remaining_uses -= 1
        room: list[Ref] = []
        for pool, b in layout.rooms.items():
            room += self._make_room(core, pool, b, set(), scope)
        index = len(self.steps)
        self.steps.append(Streamed(node.name, node.op_type, core.index, unit, cycles, actions, scope,
                                   layout.in_pool, layout.out_pool, layout.load_bytes, layout.out_bytes,
                                   layout.tiles, layout.stage_in, layout.stage_out, layout.lookback,
                                   [d for d in in_deps if d is not None], window, room))
        computed, done = (index, COMPUTED), (index, END)
        core.computes.append(computed)
        for pool, b in layout.rooms.items():   # returned tile by tile; later users wait for it all
            core.pools[pool].release_later(done, b)
        for o in outs:
            s = self.state[o]
            s.in_dram, s.dram_ready, s.dram_bytes = True, done, self.nbytes(o)
        for i in ins:
            self._release_dram_if_dead(i, computed)

    # ---- a fused group ---------------------------------------------------------------------------
    def group(self, group: "Group", members: list[Placed], core: _Core, halo: str = "cache") -> None:
        """A fused group (`compiler.fusion`): tile by tile when one of its members would stream
        on its own (its intermediates then never leave the chip), else node by node — a group
        whose every node fits is already kept on chip by the residency policy."""
        from ...fusion import tiling

        tiles = None
        if any(not self._fits_alone(p.node, core) for p in members):
            tiles = tiling(group, self.nbytes, fusion_budget(self.hw), halo)
        if tiles is None:
            for p in members:
                self.node(p.node, p.workload, core)
            return
        self._fused(group, members, tiles, core)

    def _fits_alone(self, node: Node, core: _Core) -> bool:
        """Whether `node`'s distinct operands and results fit its buffers at once (as `node`)."""
        needs: dict[str, int] = defaultdict(int)
        for i in dict.fromkeys(self.base(i) for i in node.inputs if i):
            needs[core.where.get(i) or self.load_pool(i)] += self.nbytes(i)
        needs[self.out_pool] += sum(self.nbytes(o) for o in node.outputs if o)
        return all(b <= core.pools[p].capacity for p, b in needs.items())

    def _fused(self, group: "Group", members: list[Placed], tiles, core: _Core) -> None:
        """Plan a group as one `Fused` step: room for one tile's working set in the result
        buffer, its external inputs read where they sit on chip or streamed in from DRAM (with
        the halo re-reads of `tiles.load`), its external results streamed out to DRAM, each
        member's cost scaled by its recompute factor."""
        first = members[0].node
        scope = str(first.scope)
        window = core.computes[-self.lookback] if len(core.computes) >= self.lookback else None
        pool = core.pools[self.out_pool]
        resident = [i for i in group.inputs if i in core.where]
        pinned = set(resident) if (tiles.working_set + sum(self.nbytes(i) for i in resident
                                                            if core.where[i] == self.out_pool)
                                   <= pool.capacity) else set()
        room = self._make_room(core, self.out_pool, tiles.working_set, pinned, scope)
        reads: list[Ref] = []
        in_deps: list[Ref | None] = []
        in_pools: dict[str, str] = {}
        load_bytes = 0
        for i in group.inputs:
            if i in core.where:   # read where it sits
                in_pools[i] = core.where[i]
                reads.append(self.state[i].ready_on[core.index])
                core.pools[in_pools[i]].resident.move_to_end(i)
            else:
                in_pools[i] = self.load_pool(i)
                in_deps.append(self._ensure_in_dram(i, scope))
                load_bytes += math.ceil(self.nbytes(i) * tiles.load.get(i, 1.0))
        in_pool = self.load_pool(max(group.inputs, key=self.nbytes)) if group.inputs else self.out_pool
        for t in group.kept:
            in_pools.setdefault(t, self.out_pool)
        for t in group.outputs:
            in_pools.setdefault(t, self.out_pool)
        cycles = {"array": 0.0, "vector": 0.0}
        actions: dict[str, float] = defaultdict(float)
        for p, m in zip(members, group.members):
            ins = list(dict.fromkeys(self.base(i) for i in p.node.inputs if i))
            outs = [o for o in p.node.outputs if o]
            cost = self._node_cost(p.node, p.workload, ins, outs, {i: in_pools[i] for i in ins})
            f = tiles.recompute.get(m.node, 1.0)
            cycles[cost.unit] += cost.cycles * f
            for a, c in cost.actions.items():
                actions[a] += c * f
        for p in members:
            for i in p.node.inputs:
                if i:
                    self.state[self.base(i)].remaining_uses -= 1
        out_bytes = sum(self.nbytes(o) for o in group.outputs)
        index = len(self.steps)
        for p in members:
            self.demand.node(p.node, core.index, index)
        step = Fused(f"fused {first.name} +{len(members) - 1}", group.nodes, core.index, cycles["array"],
                     cycles["vector"], group.members[-1].unit, dict(actions), scope, in_pool, self.out_pool,
                     load_bytes, out_bytes, tiles.tiles, self.lookback, tiles.working_set,
                     [d for d in in_deps if d is not None], reads, window, room)
        self.steps.append(step)
        computed, done = (index, COMPUTED), (index, END)
        core.computes.append(computed)
        pool.release_later(done, tiles.working_set)
        for i in resident:   # read in place: freed at their last use, like a node's operands
            if i not in core.where:
                continue
            s = self.state[i]
            if s.remaining_uses <= 0 and i not in self.outputs:
                where = core.where.pop(i)
                p = core.pools[where]
                size = p.resident.pop(i)
                p.used -= size
                s.ready_on.pop(core.index, None)
                core.last_reader.pop(i, None)
                step.add_free(COMPUTED, self._mem(core.index, where, size))
                p.release_later(computed, size)
            else:
                core.last_reader[i] = computed
        for o in group.outputs:
            s = self.state[o]
            s.in_dram, s.dram_ready, s.dram_bytes, s.ready_on = True, done, self.nbytes(o), {}
        for i in group.inputs:
            self._release_dram_if_dead(i, computed)

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

    def write_back_outputs(self) -> None:
        for o in sorted(self.outputs):
            s = self.state[o]
            if s.in_dram or not s.ready_on:
                continue
            core, producer = next(iter(s.ready_on.items()))
            size = self.nbytes(o)
            s.dram_ready = self._transfer("store", core, self.cores[core].where[o], o, size, [producer],
                                          self.steps[producer[0]].scope, to_chip=False, free=size,
                                          dram_alloc=size)
            s.in_dram = True

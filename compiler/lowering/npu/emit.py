"""Emission: the memory plan's steps as a `Program` of tasks on the NPU's resources.

Every `Transfer` and `Compute` step is one task. A `Streamed` step is emitted in one of two
ways (`detail`):

* `"node"` (the default): in closed form, three tasks whose overlap inside the op is exact
  arithmetic while contention with other ops still comes from the engine —
  a stream transfer `S` of the op's loads and of every result tile but the last, a compute `C`
  that streams from `S` in `tiles` chunks, and a store `F` of the last result tile. With `D`
  the transfer time of `S` and `X` the compute cycles, the engine starts `C` once the first
  chunk has landed (fill: latency + D / tiles), and ends it at max(start + X, end of S +
  X / tiles) (steady state bound by the slower of DMA and compute, then the last chunk's
  compute); `F` drains the last tile. Action counts, SRAM and DRAM bytes equal the tile form
  exactly.
* `"tiles"`: the reference — every tile a load, a compute and a store, the load of tile k
  waiting for the compute of tile k-2 (double buffering), and a zero-cycle marker once every
  tile is stored. Its event count grows with the tiles; `tests/compiler/test_npu_detail.py`
  and `make bench` check the closed form against it.
"""

from __future__ import annotations

from hwsim.config import NPU
from hwsim.program import Program, ResourceSpec, Task, TaskKind

from .plan import COMPUTED, END, STARTED, Compute, Fused, MemoryPlan, Ref, Streamed, Transfer
from .streaming import share

from ...options import DETAILS


def emit(plan: MemoryPlan, hw: NPU, *, name: str, metadata: dict[str, str], not_modelled: list[str],
         detail: str = "node") -> Program:
    e = _Emitter(hw, detail)
    for step in plan.steps:
        e.step(step)
    demand = {level: [(e.ends[step].get(STARTED, e.ends[step][END]), nbytes) for step, nbytes in points]
              for level, points in plan.demand.items()}
    return Program(name=name, target=hw.name, clock_hz=hw.clock_hz, resources=resources(hw), tasks=e.tasks,
                   metadata=dict(metadata), not_modelled=list(not_modelled),
                   initial_memory={"dram": plan.initial_dram}, memory_demand=demand)


def resources(hw: NPU) -> dict[str, ResourceSpec]:
    buffers = hw.on_chip_buffers
    # A DMA engine writes one buffer at a time; with several buffers it is given the
    # fastest buffer's port bandwidth (the DRAM link is the narrower one in practice).
    dma_bw = max(b.bytes_per_cycle for b in buffers.values())
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


class _Emitter:
    def __init__(self, hw: NPU, detail: str) -> None:
        if detail not in DETAILS:
            raise ValueError(f"unknown detail {detail!r}; known: {', '.join(DETAILS)}")
        self.hw, self.detail = hw, detail
        self.tasks: list[Task] = []
        # per step: the task of each endpoint
        self.ends: list[dict[str, int]] = []

    def _task(self, ref: Ref | None) -> int | None:
        return None if ref is None else self.ends[ref[0]][ref[1]]

    def _add(self, **kw) -> int:
        tid = len(self.tasks)
        kw["deps"] = tuple(sorted({d for d in kw.get("deps", ()) if d is not None}))
        self.tasks.append(Task(id=tid, **kw))
        return tid

    def _mem(self, core: int, pool: str, nbytes: int) -> dict[str, int]:
        if not nbytes:
            return {}
        return {"sram": nbytes, f"core{core}.{pool}": nbytes}

    def _channels(self, nbytes: int) -> int:
        """DRAM channels a transfer of `nbytes` spreads over (address interleaving)."""
        d = self.hw.dram
        if d.interleave_bytes is None or d.channels == 1:
            return 1
        return max(1, min(d.channels, -(-nbytes // d.interleave_bytes)))

    def _dma(self, core: int, name: str, nbytes: int, deps, scope: str, actions: dict[str, float],
             mem_alloc: dict[str, int], mem_free: dict[str, int], extra: float = 0.0) -> int:
        """A DMA between DRAM and a buffer of `core` (through the interconnect on several cores)."""
        path = (f"core{core}.dma", "dram") + (("noc",) if self.hw.cores > 1 else ())
        if self.hw.cores > 1:
            actions = {**actions, "noc.transfer": nbytes}
        return self._add(kind=TaskKind.TRANSFER, name=name, resources=path, deps=tuple(deps), bytes=nbytes,
                         actions=actions, scope=scope, op_type="dma", mem_alloc=mem_alloc, mem_free=mem_free,
                         width=self._channels(nbytes), cycles=extra)

    def step(self, step) -> None:
        if isinstance(step, Transfer):
            tid = self._transfer(step)
            self.ends.append({END: tid})
        elif isinstance(step, Compute):
            streams = tuple(self._task(s) for s in step.streams)
            # A streaming compute waits for whatever its loads wait for (Program.validate): it
            # may take its unit only when every load it streams from is sure to run.
            deps = [self._task(d) for d in step.deps] + [d for s in streams for d in self.tasks[s].deps]
            tid = self._add(kind=TaskKind.COMPUTE, name=step.node, resources=(f"core{step.core}.{step.unit}",),
                            deps=deps, cycles=step.cycles, actions=step.actions,
                            mem_alloc=step.alloc, mem_free=step.free, scope=step.scope, op_type=step.op_type,
                            nodes=(step.node,), streams=streams,
                            stream_chunks=step.stream_chunks)
            self.ends.append({END: tid})
        elif isinstance(step, (Streamed, Fused)):
            first = len(self.tasks)
            if isinstance(step, Fused):
                computed, done = (self._fused_tiles(step) if self.detail == "tiles" else self._fused(step))
            else:
                computed, done = (self._tiles(step) if self.detail == "tiles" else self._closed_form(step))
            started = next(t for t in range(first, len(self.tasks)) if self.tasks[t].kind is TaskKind.COMPUTE)
            self.ends.append({COMPUTED: computed, END: done, STARTED: started})
        else:  # pragma: no cover - the plan has three kinds of step
            raise TypeError(f"unknown plan step {step!r}")

    def _transfer(self, t: Transfer) -> int:
        deps = [self._task(d) for d in t.deps]
        if t.what == "move":   # ofmap -> ifmap on one core: the DMA engine at the buffers' port rate
            return self._add(kind=TaskKind.TRANSFER, name=f"move {t.tensor}", resources=(f"core{t.core}.dma",),
                             deps=deps, bytes=t.nbytes, actions={"ofmap.read": t.nbytes, "ifmap.write": t.nbytes},
                             scope=t.scope, op_type="dma", mem_alloc=t.alloc, mem_free=t.free)
        actions = ({"dram.read": t.nbytes, f"{t.pool}.write": t.nbytes} if t.to_chip
                   else {f"{t.pool}.read": t.nbytes, "dram.write": t.nbytes})
        return self._dma(t.core, f"{t.what} {t.tensor}", t.nbytes, deps, t.scope, actions, t.alloc, t.free)

    # ---- streamed ops ----------------------------------------------------------------------------
    def _tiles(self, s: Streamed) -> tuple[int, int]:
        """The tile-level reference: load, compute and store per tile (see the module doc)."""
        in_deps = [self._task(d) for d in s.in_deps]
        window = self._task(s.window)
        room = [self._task(r) for r in s.room]
        unit = f"core{s.core}.{s.unit}"
        computes: list[int] = []
        stores: list[int] = []
        for k in range(s.tiles):
            part = share(s.load_bytes, s.tiles, k)
            gate = window if k < s.lookback else computes[k - s.lookback]   # tile buffers
            ld = self._dma(s.core, f"stream-in {s.node} [{k + 1}/{s.tiles}]", part,
                           (*in_deps, gate, *(room if k < s.lookback else ())), s.scope,
                           {"dram.read": part, f"{s.in_pool}.write": part},
                           self._mem(s.core, s.in_pool, min(part, s.stage_in)), {})
            out_part = share(s.out_bytes, s.tiles, k)
            free = self._mem(s.core, s.in_pool, min(part, s.stage_in))
            if k == s.tiles - 1:
                free = _merged(free, s.free_computed)
            c = self._add(kind=TaskKind.COMPUTE, name=f"{s.node} [{k + 1}/{s.tiles}]", resources=(unit,),
                          deps=(ld, computes[-1] if computes else None), cycles=s.cycles / s.tiles,
                          actions=s.actions if k == 0 else {},   # counted once, exactly
                          mem_alloc=self._mem(s.core, s.out_pool, min(out_part, s.stage_out)), mem_free=free,
                          scope=s.scope, op_type=s.op_type, nodes=(s.node,))
            computes.append(c)
            if out_part:
                stores.append(self._dma(s.core, f"stream-out {s.node} [{k + 1}/{s.tiles}]", out_part, (c,),
                                        s.scope, {f"{s.out_pool}.read": out_part, "dram.write": out_part},
                                        {"dram": out_part}, self._mem(s.core, s.out_pool, min(out_part, s.stage_out))))
        done = stores[-1] if stores else computes[-1]
        if len(stores) > 1:   # the results are complete when every tile is stored
            done = self._add(kind=TaskKind.COMPUTE, name=f"{s.node} [stored]", resources=(unit,),
                             deps=tuple(stores), cycles=0, scope=s.scope, op_type=s.op_type, nodes=(s.node,))
        return computes[-1], done

    def _closed_form(self, s: Streamed) -> tuple[int, int]:
        """Four tasks: loads L, compute C streaming from L in `tiles` chunks, early stores E
        (every result tile but the last, after the loads), store F of the last tile."""
        deps = [self._task(d) for d in (*s.in_deps, s.window, *s.room)]
        last_out = share(s.out_bytes, s.tiles, s.tiles - 1)
        early_out = s.out_bytes - last_out
        in_stage = min(s.load_bytes, s.lookback * s.stage_in)    # tiles in flight per buffer
        out_stage = min(s.out_bytes, s.stage_out)
        lat = self._latency()
        load = self._dma(s.core, f"stream-in {s.node}", s.load_bytes, deps, s.scope,
                         {"dram.read": s.load_bytes, f"{s.in_pool}.write": s.load_bytes},
                         self._mem(s.core, s.in_pool, in_stage), {}, extra=(s.tiles - 1) * lat)
        c = self._add(kind=TaskKind.COMPUTE, name=s.node, resources=(f"core{s.core}.{s.unit}",), deps=deps,
                      cycles=s.cycles, actions=s.actions,
                      mem_alloc=self._mem(s.core, s.out_pool, out_stage),
                      mem_free=_merged(self._mem(s.core, s.in_pool, in_stage), s.free_computed),
                      scope=s.scope, op_type=s.op_type, nodes=(s.node,), streams=(load,),
                      stream_chunks=s.tiles)
        if not s.out_bytes:
            return c, c
        early = None
        if early_out:
            n = sum(1 for k in range(s.tiles - 1) if share(s.out_bytes, s.tiles, k))
            early = self._dma(s.core, f"stream-out {s.node} [1-{s.tiles - 1}/{s.tiles}]", early_out, (load,),
                              s.scope, {f"{s.out_pool}.read": early_out, "dram.write": early_out},
                              {"dram": early_out}, {}, extra=(n - 1) * lat)
        done = self._dma(s.core, f"stream-out {s.node} [{s.tiles}/{s.tiles}]", last_out, (c, early), s.scope,
                         {f"{s.out_pool}.read": last_out, "dram.write": last_out}, {"dram": last_out},
                         self._mem(s.core, s.out_pool, out_stage))
        return c, done

    # ---- fused groups ----------------------------------------------------------------------------
    def _fused(self, s: Fused) -> tuple[int, int]:
        """A fused group in closed form: the loads `S` of every tile; each unit with work
        streams from `S` in `tiles` chunks, both at once (they work on different tiles); the
        unit of the group's last member finishes its last tile after the other unit's (a
        `tail` of one tile's work); early stores after the loads, the last store after the
        tail. With one tile the two units run one after the other."""
        deps = [self._task(d) for d in (*s.in_deps, *s.reads, s.window, *s.room)]
        lat = self._latency()
        streams: tuple[int, ...] = ()
        if s.load_bytes:
            streams = (self._dma(s.core, f"stream-in {s.name}", s.load_bytes, deps, s.scope,
                                 {"dram.read": s.load_bytes, f"{s.in_pool}.write": s.load_bytes}, {}, {},
                                 extra=(s.tiles - 1) * lat),)
        work = self._mem(s.core, s.out_pool, s.working_set)
        last = s.last_unit
        units = [(u, c) for u, c in (("array", s.array_cycles), ("vector", s.vector_cycles)) if c > 0] \
            or [(last, 0.0)]
        other = [(u, c) for u, c in units if u != last]
        mine = next((c for u, c in units if u == last), 0.0)
        actions = s.actions
        before: list[int] = []
        for u, c in other:   # at most one: the unit that is not the last member's
            before.append(self._compute(s, u, c, deps, streams, s.tiles, actions, work, {}))
            actions, work = {}, {}
        tail = mine / s.tiles if before and s.tiles > 1 else (mine if before else 0.0)
        if mine - tail > 0 or not before:
            before.append(self._compute(s, last, mine - tail, deps, streams, s.tiles, actions, work, {}))
            actions, work = {}, {}
        free = _merged(self._mem(s.core, s.out_pool, s.working_set), s.free_computed)
        if tail > 0:
            computed = self._compute(s, last, tail, [*deps, *before], (), 1, actions, work, free)
        else:   # one unit, one task: it releases what the group held
            computed = before[-1]
            t = self.tasks[computed]
            t.mem_free = _merged(dict(t.mem_free), free)
        return computed, self._fused_stores(s, streams, computed, lat)

    def _compute(self, s: Fused, unit: str, cycles: float, deps, streams: tuple[int, ...], chunks: int,
                 actions: dict[str, float], alloc: dict[str, int], free: dict[str, int]) -> int:
        return self._add(kind=TaskKind.COMPUTE, name=f"{s.name} [{unit}]", resources=(f"core{s.core}.{unit}",),
                         deps=deps, cycles=cycles, actions=actions, mem_alloc=alloc, mem_free=free,
                         scope=s.scope, op_type="Fused", nodes=s.nodes, streams=streams,
                         stream_chunks=chunks if streams else 1)

    def _fused_stores(self, s: Fused, streams: tuple[int, ...], computed: int, lat: float) -> int:
        if not s.out_bytes:
            return computed
        last_out = share(s.out_bytes, s.tiles, s.tiles - 1)
        early_out = s.out_bytes - last_out
        early = None
        if early_out:
            n = sum(1 for k in range(s.tiles - 1) if share(s.out_bytes, s.tiles, k))
            early = self._dma(s.core, f"stream-out {s.name} [1-{s.tiles - 1}/{s.tiles}]", early_out,
                              (*streams, computed if not streams else None), s.scope,
                              {f"{s.out_pool}.read": early_out, "dram.write": early_out}, {"dram": early_out}, {},
                              extra=(n - 1) * lat)
        return self._dma(s.core, f"stream-out {s.name} [{s.tiles}/{s.tiles}]", last_out, (computed, early), s.scope,
                         {f"{s.out_pool}.read": last_out, "dram.write": last_out}, {"dram": last_out}, {})

    def _fused_tiles(self, s: Fused) -> tuple[int, int]:
        """The tile-level reference of a fused group: per tile a load, the other unit's share,
        the last member's unit's share, a store; the load of tile k waits for tile k-lookback
        to be computed (tile buffers)."""
        deps = [self._task(d) for d in (*s.in_deps, *s.reads, s.window, *s.room)]
        last = s.last_unit
        other = "vector" if last == "array" else "array"
        shares = [(u, c) for u, c in ((other, s.array_cycles if other == "array" else s.vector_cycles),
                                      (last, s.array_cycles if last == "array" else s.vector_cycles)) if c > 0] \
            or [(last, 0.0)]
        ends: list[int] = []
        prev: dict[str, int | None] = {u: None for u, _ in shares}
        stores: list[int] = []
        for k in range(s.tiles):
            part = share(s.load_bytes, s.tiles, k)
            gate = None if k < s.lookback else ends[k - s.lookback]
            ld = None
            if part:
                ld = self._dma(s.core, f"stream-in {s.name} [{k + 1}/{s.tiles}]", part, (*deps, gate), s.scope,
                               {"dram.read": part, f"{s.in_pool}.write": part}, {}, {})
            after: int | None = ld
            for j, (u, c) in enumerate(shares):
                first = k == 0 and j == 0
                final = k == s.tiles - 1 and j == len(shares) - 1
                t = self._add(kind=TaskKind.COMPUTE, name=f"{s.name} [{u} {k + 1}/{s.tiles}]",
                              resources=(f"core{s.core}.{u}",), deps=(*deps, after, prev[u]), cycles=c / s.tiles,
                              actions=s.actions if first else {},
                              mem_alloc=self._mem(s.core, s.out_pool, s.working_set) if first else {},
                              mem_free=_merged(self._mem(s.core, s.out_pool, s.working_set), s.free_computed)
                              if final else {},
                              scope=s.scope, op_type="Fused", nodes=s.nodes)
                prev[u] = after = t
            ends.append(after)
            out_part = share(s.out_bytes, s.tiles, k)
            if out_part:
                stores.append(self._dma(s.core, f"stream-out {s.name} [{k + 1}/{s.tiles}]", out_part, (after,),
                                        s.scope, {f"{s.out_pool}.read": out_part, "dram.write": out_part},
                                        {"dram": out_part}, {}))
        done = stores[-1] if stores else ends[-1]
        if len(stores) > 1:
            done = self._add(kind=TaskKind.COMPUTE, name=f"{s.name} [stored]", resources=(f"core{s.core}.{last}",),
                             deps=tuple(stores), cycles=0, scope=s.scope, op_type="Fused", nodes=s.nodes)
        return ends[-1], done

    def _latency(self) -> float:
        """The latency of a DMA path (DRAM, and the interconnect on several cores)."""
        hw = self.hw
        noc = hw.interconnect.latency_cycles if hw.cores > 1 and hw.interconnect is not None else 0.0
        return max(hw.dram_latency_cycles, noc)


def _merged(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out

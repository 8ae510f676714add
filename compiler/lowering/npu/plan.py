"""The memory plan as plain data: what the NPU lowering decided, step by step, before any task.

`memory.plan_memory` walks the placed nodes in order and records one `Step` per decision, in the
order the hardware is asked to do them:

* `Transfer` — a DMA: a load into a buffer, a spill or write-back to DRAM, a store of a result,
  or a move between two buffers of one core;
* `Compute` — a node whose operands and results fit its buffers, computing on its loads' data as
  it lands (`streams`);
* `Streamed` — a node too large for its buffers, streamed from and to DRAM (the emitter turns it
  into a closed-form pipeline of a few tasks, or into tiles for the reference);
* `Fused` — a group of nodes (`compiler.fusion`) run tile by tile with their intermediates on
  chip: external inputs stream in, external results stream out, the array and the vector unit
  work on different tiles at once.

A step waits for other steps through `Ref`s: (step index, endpoint). Every step has the endpoint
`END` (it is over); a `Streamed` step also has `COMPUTED` (its last compute is over, its last
results not yet stored). Memory-level deltas (`alloc` at start, `free` at end, per level such as
`sram`, `core0.ifmap`, `dram`) travel with the steps, so the plan can be checked alone: what is
resident, what spills, what streams, and how many bytes each buffer holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

END = "end"
COMPUTED = "computed"
STARTED = "started"   # a streamed step's first compute (its tile-level form has several)

Ref = tuple[int, str]


def merge_into(target: dict[str, int], delta: dict[str, int]) -> None:
    for level, nbytes in delta.items():
        target[level] = target.get(level, 0) + nbytes


@dataclass
class Transfer:
    """A DMA between DRAM and buffer `pool` of `core` (`to_chip`: a load), or, for a `move`,
    from the core's ofmap buffer to its ifmap buffer."""

    what: str                     # "load", "spill", "writeback", "store", "move"
    tensor: str
    core: int
    pool: str
    nbytes: int
    to_chip: bool
    deps: list[Ref]
    scope: str
    alloc: dict[str, int] = field(default_factory=dict)
    free: dict[str, int] = field(default_factory=dict)

    def add_free(self, endpoint: str, delta: dict[str, int]) -> None:
        merge_into(self.free, delta)


@dataclass
class Compute:
    """A node computing on `unit` of `core` with every operand and result in its buffers; it
    consumes the loads in `streams` chunk by chunk as they land."""

    node: str
    op_type: str
    core: int
    unit: str                     # "array" or "vector"
    cycles: float
    actions: dict[str, float]
    deps: list[Ref]
    streams: list[Ref]
    stream_chunks: int
    scope: str
    alloc: dict[str, int] = field(default_factory=dict)
    free: dict[str, int] = field(default_factory=dict)

    def add_free(self, endpoint: str, delta: dict[str, int]) -> None:
        merge_into(self.free, delta)


@dataclass
class Streamed:
    """A node too large for its buffers: `load_bytes` stream in through `in_pool` and
    `out_bytes` stream out of `out_pool` in `tiles` double-buffered tiles of at most `stage_in`
    and `stage_out` bytes (each buffer's `lookback` tiles in flight), overlapping the compute.
    It starts once `in_deps` (its operands' DRAM copies), `window` (the prefetch window) and
    `room` (the release of the buffer space it takes) are over."""

    node: str
    op_type: str
    core: int
    unit: str
    cycles: float
    actions: dict[str, float]
    scope: str
    in_pool: str
    out_pool: str
    load_bytes: int
    out_bytes: int
    tiles: int
    stage_in: int
    stage_out: int
    lookback: int
    in_deps: list[Ref]
    window: Ref | None
    room: list[Ref]
    free_computed: dict[str, int] = field(default_factory=dict)   # released when the last compute ends

    def add_free(self, endpoint: str, delta: dict[str, int]) -> None:
        if endpoint != COMPUTED:
            raise ValueError("a streamed step releases memory when its last compute ends")
        merge_into(self.free_computed, delta)


@dataclass
class Fused:
    """A fused group run in `tiles` tiles: `load_bytes` (its external inputs not resident, halo
    re-reads included) stream in through `in_pool`, `out_bytes` (its external results) stream
    out; the array works `array_cycles` and the vector unit `vector_cycles` (recomputed halo
    rows included), the unit of the group's last member (`last_unit`) finishing one tile after
    the other. `working_set` bytes of `out_pool` are held while it computes. It starts once
    `in_deps` (inputs' DRAM copies), `reads` (inputs read where they sit on chip), `window` and
    `room` are over."""

    name: str
    nodes: tuple[str, ...]
    core: int
    array_cycles: float
    vector_cycles: float
    last_unit: str
    actions: dict[str, float]
    scope: str
    in_pool: str
    out_pool: str
    load_bytes: int
    out_bytes: int
    tiles: int
    lookback: int
    working_set: int
    in_deps: list[Ref]
    reads: list[Ref]
    window: Ref | None
    room: list[Ref]
    free_computed: dict[str, int] = field(default_factory=dict)   # released when the last compute ends

    def add_free(self, endpoint: str, delta: dict[str, int]) -> None:
        if endpoint != COMPUTED:
            raise ValueError("a fused group releases memory when its last compute ends")
        merge_into(self.free_computed, delta)


Step = Union[Transfer, Compute, Streamed, Fused]


@dataclass
class MemoryPlan:
    """The steps in program order, the bytes in DRAM before the first one (graph inputs,
    parameters and constants), and the on-chip demand: per level, (compute step, bytes) — from
    that step's start on, a schedule with unbounded buffers would keep that many bytes there
    (every tensor from its first use or production on a core to its last use on that core)."""

    steps: list[Step]
    initial_dram: int
    demand: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

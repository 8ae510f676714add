"""`Program`: the contract between the compiler and the engine.

A Program is a DAG of hardware tasks on named resources. The engine runs it and knows nothing
else: not ONNX, not the hardware kind. Everything a task costs is decided by the lowering:

* a COMPUTE task occupies its unit for `cycles` (a closed form per tile, memoised upstream);
* a TRANSFER task moves `bytes` along a path of resources; its duration is the largest
  per-resource latency plus bytes / the narrowest bandwidth on the path, and it holds every
  resource of the path while it runs (that is how DRAM and link contention arise); of a
  `striped` resource it holds `width` slots at once, with width times the bandwidth;
* a COMPUTE task may stream from transfers (`streams`): it computes on their data as it lands;
* a RECONFIG task loads `bytes` of configuration through a configuration port (a transfer
  whose path is the port) and blocks the fabric resources listed after the port.

Time is counted in cycles of `Program.clock_hz`. Tasks carry the action counts they cause
(`mac.float32`, `sram.read`, `dram.write`, ...), in the units the energy table prices, and
the memory they allocate at start and free at end, per memory level, for peak tracking.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Mapping


class TaskKind(str, Enum):
    COMPUTE = "compute"
    TRANSFER = "transfer"
    RECONFIG = "reconfig"


@dataclass(frozen=True)
class ResourceSpec:
    """A unit, a DMA engine, a memory channel or a link. `capacity` tasks may hold it at once.
    `bytes_per_cycle` and `latency_cycles` apply to transfers through it (None: not a link)."""

    name: str
    capacity: int = 1
    bytes_per_cycle: float | None = None
    latency_cycles: float = 0.0
    component: str = ""   # energy/utilization grouping, e.g. "array", "vector", "dram"
    # A transfer may hold several slots at once (`Task.width`; DRAM channels with interleaved
    # addresses); its bandwidth through this resource is then width x bytes_per_cycle.
    striped: bool = False

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"resource {self.name}: capacity must be >= 1")
        if self.bytes_per_cycle is not None and self.bytes_per_cycle <= 0:
            raise ValueError(f"resource {self.name}: bytes_per_cycle must be > 0")


@dataclass(frozen=True)
class Task:
    id: int
    kind: TaskKind
    name: str
    resources: tuple[str, ...]           # first one is the unit the task is reported on
    deps: tuple[int, ...] = ()
    cycles: float = 0.0                  # COMPUTE: busy cycles on the unit
    bytes: int = 0                       # TRANSFER / RECONFIG: bytes moved
    actions: Mapping[str, float] = field(default_factory=dict)
    mem_alloc: Mapping[str, int] = field(default_factory=dict)  # level -> bytes, at start
    mem_free: Mapping[str, int] = field(default_factory=dict)   # level -> bytes, at end
    scope: str = "other"                 # compiler.ir.Scope string of the IR nodes
    op_type: str = ""                    # ONNX op type (or "dma", "reconfig")
    nodes: tuple[str, ...] = ()          # IR node names the task came from
    # COMPUTE only: transfers whose data the task consumes as it lands, in `stream_chunks`
    # chunks interleaved across the streams (double-buffered). The task starts once every dep
    # has finished and the first chunk of all streams has landed (one path latency plus
    # 1/stream_chunks of their combined transfer time after the first stream started); it ends
    # no earlier than its cycles after that, nor than one chunk's compute (cycles /
    # stream_chunks) after the last stream has finished. Waiting for streamed data while
    # holding the unit is reported as stall.
    streams: tuple[int, ...] = ()
    stream_chunks: int = 1
    width: int = 1                       # slots held of each striped resource on the path


@dataclass
class Program:
    name: str
    target: str                          # hardware config name
    clock_hz: float
    resources: dict[str, ResourceSpec]
    tasks: list[Task]
    metadata: dict[str, str] = field(default_factory=dict)
    not_modelled: list[str] = field(default_factory=list)  # honest limits of this lowering
    # Memory occupied before the first task, per level (e.g. graph inputs and parameters
    # already in DRAM): the start of the footprint-over-time trace.
    initial_memory: dict[str, int] = field(default_factory=dict)
    # On-chip bytes the schedule wants resident, unclipped by capacity, per level (the same
    # level names as mem_alloc): [(task id, bytes)], meaning "from the start of that task on,
    # the schedule wants this many bytes on the level". Left empty by a lowering that does not
    # track demand; `SimResult.memory_demand` puts it on the simulated clock.
    memory_demand: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def validate(self) -> None:
        """Dependencies point backwards (the list is topological) and resources exist."""
        seen: set[int] = set()
        known: set[tuple[str, ...]] = set()    # paths whose resources all exist
        linked: set[tuple[str, ...]] = set()   # paths with a bandwidth somewhere
        for i, t in enumerate(self.tasks):
            if t.id != i:
                raise ValueError(f"task ids must be 0..n-1 in order; task {i} has id {t.id}")
            for d in t.deps:
                if d not in seen:
                    raise ValueError(f"task {t.id} ({t.name}) depends on {d}, which is not earlier")
            for d in t.streams:
                if d not in seen or self.tasks[d].kind is not TaskKind.TRANSFER or t.kind is not TaskKind.COMPUTE:
                    raise ValueError(f"task {t.id} ({t.name}) streams from {d}: only a compute task can "
                                     "stream, from an earlier transfer")
            if t.stream_chunks < 1:
                raise ValueError(f"task {t.id} ({t.name}): stream_chunks must be >= 1")
            if t.width != 1 and not (t.width >= 1 and all(
                    self.resources[r].capacity >= t.width for r in t.resources if self.resources[r].striped)):
                raise ValueError(f"task {t.id} ({t.name}): width {t.width} exceeds a striped resource's slots")
            if t.resources not in known:
                for r in t.resources:
                    if r not in self.resources:
                        raise ValueError(f"task {t.id} ({t.name}) uses unknown resource {r!r}")
                known.add(t.resources)
            if t.kind is not TaskKind.COMPUTE and t.resources not in linked:
                if not any(self.resources[r].bytes_per_cycle for r in t.resources):
                    raise ValueError(f"transfer task {t.id} ({t.name}) has no link with a bandwidth")
                linked.add(t.resources)
            seen.add(t.id)

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps(d, default=lambda o: o.value if isinstance(o, Enum) else str(o), indent=1)

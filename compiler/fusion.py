"""Layer fusion and depth-first tiling: which nodes run together, tile by tile, with their
intermediates on chip — a pass with a policy, returning plain data (`FusionPlan`).

    plan = fuse(graph, workloads, "depth_first", nbytes=stored_bytes, budget=on_chip_bytes)
    plan.groups[0].nodes     # members, in execution order
    plan.groups[0].inputs    # read from outside the group (from DRAM, in tiles)
    plan.groups[0].outputs   # needed after the group (written out, in tiles)
    plan.groups[0].kept      # intermediates: produced and consumed inside, never off chip
    plan.order               # every lowered node and group in an order that respects dependencies
    tiling(group, nbytes, budget) -> Tiling(tiles, recompute factors, halo load factors, ...)

Policies (`POLICIES`):

* `none` — no groups (today's lowering: one task per node).
* `layer` — conv-bn-relu-pool groups: an array op (Conv, MatMul) and the vector ops that
  follow it up to the next array op; also chains of vector ops. An array op only ever starts a
  group.
* `depth_first` — groups span layers (pool, then the next conv, its statistics, ...), tiled
  over the feature map as in DeFiNES (Mei et al., HPCA 2023) and Stream (Symons et al., 2022).

**Tiles.** A group is cut along one tile axis shared by all its tiled tensors (the samples of a
batch: axis 0 of NCHW activations; axis 1 after the transpose a weight gradient makes). Tensors
without it (weights, per-channel statistics, scalars) are *whole*: loaded once and held for the
whole group. A group runs in the largest blocks of samples that fit; when one sample does not,
it is cut further: in chunks (every member a pure map) or planes (every member works per
(sample, channel) plane) — no halo — else in bands of feature-map rows (every member maps rows).
A 3x3 conv's band of output rows needs one more input row on each side: a halo. With
`halo="cache"` the rows a band shares with the previous one stay on chip (line buffers) and every
row is computed and read once; with `halo="recompute"` (DeFiNES's "fully recompute" mode) each
band recomputes the overlapping rows of every intermediate it needs and re-reads those of every
external input, counted per member (`Tiling.recompute`) and per input (`Tiling.load`). Both hold
the same rows per band. Tiles spanning the map's width only: DeFiNES's 2-D tiles and mixed modes
are not modelled.

**Barriers.** A member's result that reduces over the tile axis (batch-norm statistics, bias
and weight gradients: a *sink*) is complete only when every tile has passed, so nothing that
reads it, directly or through other nodes, may join its group: in the exported training graphs
every batch-norm layer therefore splits into its statistics passes and its normalise pass.

**Legality.** A node joins a group only if no path leaves the group and comes back into it
(`D`: the groups each tensor depends on, a group's results inheriting what the whole group
depends on) and it reads no sink result of the group (`S`), so the groups contract to a DAG
(`order`); and only nodes of one scope (task, inner step, part) form a group, so per-phase costs
stay exact. Groups stay open for `WINDOW` lowered nodes after their last member and `LIFETIME`
after their first, which bounds the work per node (the pass is linear in the graph).

**Capacity.** With `budget` (bytes of on-chip memory a group's tile may use), a group whose
finest tiling does not fit is cut into consecutive parts that do (`tiling`); a part that needs
bands of rows is also compared with cutting it before an array member, and the cheaper in
off-chip bytes is kept.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .ir import Graph, Node
from .workload import Kind, Workload
# POLICIES: none, layer, depth_first. HALOS: what a band of rows does with the rows it shares
# with its neighbour (DeFiNES's modes for tiles spanning the feature map's width): keep them on
# chip for the next band (`cache`: line buffers, every row computed and read once) or recompute
# them (`recompute`: each band recomputes its halo and re-reads its inputs' halo rows).
from .options import FUSIONS as POLICIES, HALOS

# Lowered nodes a group stays open after its last member, and at most after its first. Long
# enough for the exported backward chains (a batch-norm backward interleaves ~40 nodes of other
# layers), short enough that the taint sets stay small: a group whose first member is more than
# LIFETIME nodes back can take no member, so taints drop it by its index alone.
WINDOW = 512
LIFETIME = 1024

# Data-movement ops that map tiles of their operands to tiles of their result.
_TILED_MOVES = frozenset({"Transpose", "Expand", "ScatterElements", "GatherElements", "Slice", "Concat"})
_ARRAY = (Kind.MATMUL, Kind.CONV)


# ---- plain data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """How a band of rows [lo, hi) of a member's result (or, for a sink, of its driving operand)
    maps to the rows of one tiled operand of `height` rows.

    kind: `same` (elementwise), `broadcast` (the operand has one row), `window` (conv or pool:
    rows lo*stride-pad ... (hi-1)*stride-pad+extent), `transposed` (ConvTranspose), `kernel`
    (the activation of a weight-gradient conv, driven by the band of the output gradient),
    `fixed` (a slice of rows pad ... extent, whatever the band)."""

    kind: str
    stride: int = 1
    pad: int = 0
    extent: int = 1
    dilation: int = 1
    out_rows: int = 1

    def need(self, lo: int, hi: int, height: int) -> tuple[int, int]:
        if hi <= lo:
            return 0, 0
        if self.kind == "same":
            a, b = lo, hi
        elif self.kind == "broadcast":
            a, b = 0, height
        elif self.kind == "fixed":
            a, b = self.pad, self.extent
        elif self.kind == "window":
            a, b = lo * self.stride - self.pad, (hi - 1) * self.stride - self.pad + self.extent
        elif self.kind == "transposed":   # output row o = i*stride - pad + k, k < extent
            a = -(-(lo + self.pad - self.extent + 1) // self.stride)
            b = (hi - 1 + self.pad) // self.stride + 1
        else:   # kernel: x row = o*stride - pad + r*dilation for output gradient rows r, o < out_rows
            a = lo * self.dilation - self.pad
            b = (hi - 1) * self.dilation - self.pad + (self.out_rows - 1) * self.stride + 1
        a, b = max(0, a), min(height, b)
        return (a, b) if b > a else (0, 0)


@dataclass(frozen=True)
class Member:
    node: str
    unit: str                                   # "array" or "vector"
    sink: bool                                  # reduces over the tile axis
    tiled_in: tuple[tuple[str, Rows | None], ...]   # tiled operands (storage names), row maps
    tiled_out: tuple[str, ...]                  # tiled results
    whole_in: tuple[str, ...]                   # operands read whole
    whole_out: tuple[str, ...]                  # results produced whole (a sink's accumulators)
    driver: str = ""                            # a sink's operand whose band drives the others
    rows: bool = False                          # maps bands of rows (every tiled tensor NCHW-like)
    flat: bool = False                          # a pure map (or a sink of one): any chunk of a sample's
                                                # elements needs the same chunk of its operands
    plane: bool = False                         # works plane by plane (a plane: one sample, one channel;
                                                # the axes after the first two)


@dataclass(frozen=True)
class Group:
    index: int
    members: tuple[Member, ...]
    inputs: tuple[str, ...]          # external inputs, in order of first use
    outputs: tuple[str, ...]         # results needed after the group (or graph outputs)
    kept: tuple[str, ...]            # intermediates that never leave the chip
    heights: Mapping[str, int]       # tiled tensor -> rows (axis 2) when `rows`, else 1
    numel: Mapping[str, int]         # tiled tensor -> elements
    samples: int                     # extent of the tile axis
    rows: bool                       # bands of rows are possible (every member maps rows)
    flat: bool                       # chunks of samples are possible (every member is a pure map)
    planes: int                      # planes per sample when every member works plane by plane, else 0
    scope: str

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(m.node for m in self.members)

    @property
    def tiled(self) -> frozenset[str]:
        return frozenset(self.heights)


@dataclass(frozen=True)
class FusionPlan:
    policy: str
    groups: tuple[Group, ...]
    group_of: Mapping[str, int]       # member node -> group index
    order: tuple[str | int, ...]      # lowered nodes (names) and groups (indices) in execution order


@dataclass(frozen=True)
class Tiling:
    """How a group runs: `tiles` = sample blocks x `pieces` (row bands or chunks of one sample,
    when one sample does not fit); `working_set` bytes on chip per
    tile (tile buffers of live tensors, double-buffered external tiles, whole operands);
    `recompute[member]` work done / work needed (halo rows recomputed), `load[input]` bytes read
    / its bytes (halo rows re-read); both 1 without row bands."""

    tiles: int
    sample_block: int
    pieces: int
    split: str                        # how one sample is cut: "none", "chunks", "planes" or "rows"
    working_set: int
    recompute: Mapping[str, float]
    load: Mapping[str, float]


# ---- the pass -----------------------------------------------------------------------------------


def fuse(graph: Graph, workloads: Mapping[str, Workload], policy: str, *,
         nbytes: Callable[[str], int] | None = None, budget: int | None = None, halo: str = "cache") -> FusionPlan:
    """Group the lowered nodes of `graph` under `policy` (module doc). With `nbytes` (a
    tensor's stored bytes) and `budget` (bytes one tile may hold), groups whose finest tiling
    does not fit are cut into consecutive parts that fit. Raises ValueError for an unknown
    policy (the lowering validates its options before)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown fusion policy {policy!r}; allowed: {', '.join(POLICIES)}")
    nodes = [n for n in graph.nodes if _lowered(workloads[n.name])]
    if policy == "none":
        return FusionPlan(policy, (), {}, tuple(n.name for n in nodes))
    views = _Views(graph, workloads)
    groups = _Former(graph, workloads, views, policy).run(nodes)
    consumers: dict[str, list[str]] = defaultdict(list)
    for n in nodes:
        for i in dict.fromkeys(views.base(i) for i in n.inputs if i):
            consumers[i].append(n.name)
    built = [_finish(graph, views, g, consumers) for g in groups if len(g.members) > 1]
    if nbytes is not None and budget is not None:
        built = [part for g in built for part in _fit(graph, views, g, consumers, nbytes, budget, halo)]
    built = [g for g in built if len(g.members) > 1]
    groups_t = tuple(Group(i, g.members, g.inputs, g.outputs, g.kept, g.heights, g.numel, g.samples, g.rows,
                           g.flat, g.planes, g.scope) for i, g in enumerate(built))
    group_of = {m.node: g.index for g in groups_t for m in g.members}
    return FusionPlan(policy, groups_t, group_of, _order(nodes, groups_t, group_of, views))


def _lowered(wl: Workload) -> bool:
    return wl.kind is not Kind.NONE and not wl.dims.get("view")


class _Views:
    """Views (Reshape, Squeeze, ...) alias their input: a tensor's storage and how an axis of
    the storage appears in a view of it."""

    def __init__(self, graph: Graph, workloads: Mapping[str, Workload]) -> None:
        self.g = graph
        self.alias: dict[str, str] = {}
        for n in graph.nodes:
            if workloads[n.name].dims.get("view"):
                for o in n.outputs:
                    if o:
                        self.alias[o] = n.inputs[0]

    def base(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def chain(self, name: str) -> list[str]:
        out = [name]
        while out[-1] in self.alias:
            out.append(self.alias[out[-1]])
        return out

    def to_view(self, name: str, axis: int) -> int | None:
        """The storage's `axis` as seen in `name` (None: the view splits or merges it)."""
        chain = self.chain(name)
        for src, dst in zip(reversed(chain), list(reversed(chain))[1:]):
            axis = _axis_through(self.g.tensor(src).shape, self.g.tensor(dst).shape, axis)
            if axis is None:
                return None
        return axis

    def to_base(self, name: str, axis: int) -> int | None:
        chain = self.chain(name)
        for src, dst in zip(chain, chain[1:]):
            axis = _axis_through(self.g.tensor(src).shape, self.g.tensor(dst).shape, axis)
            if axis is None:
                return None
        return axis


def _axis_through(src: tuple[int, ...], dst: tuple[int, ...], axis: int) -> int | None:
    """Where axis `axis` of a row-major `src` lands in the reshaped `dst`: the axis of `dst`
    with the same extent and the same number of elements before it, if any."""
    before = math.prod(src[:axis])
    for j, d in enumerate(dst):
        if math.prod(dst[:j]) == before and d == src[axis]:
            return j
    return None


@dataclass
class _Open:
    index: int
    scope: object
    members: list[Member] = field(default_factory=list)
    axes: dict[str, int | None] = field(default_factory=dict)   # storage -> tile axis (None: whole)
    produced: set[str] = field(default_factory=set)
    samples: int = 0
    last: int = 0


@dataclass
class _Built:
    members: tuple[Member, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kept: tuple[str, ...]
    heights: dict[str, int]
    numel: dict[str, int]
    samples: int
    rows: bool
    flat: bool
    planes: int
    scope: str


class _Former:
    """Greedy grouping in program order (see the module doc for the rules)."""

    def __init__(self, graph: Graph, workloads: Mapping[str, Workload], views: _Views, policy: str) -> None:
        self.g, self.w, self.v, self.policy = graph, workloads, views, policy
        self.groups: list[_Open] = []
        self.group_of: dict[str, int] = {}          # node -> group index
        self.producer: dict[str, str] = {}          # storage -> producing node
        self.D: dict[str, frozenset[int]] = {}      # storage -> live groups upstream of it
        self.S: dict[str, frozenset[int]] = {}      # storage -> groups whose sink is upstream
        self.readers: dict[str, list[int]] = defaultdict(list)   # storage -> groups reading it from outside
        # A group runs as one unit, so every result of it depends on every input of it: `up`
        # holds the groups upstream of any member (added to its results' taint when they are
        # read), and a group whose results were already read outside (`exported`) may take no
        # member that brings new upstream groups (the readers' taints would miss them).
        self.up: dict[int, set[int]] = defaultdict(set)
        self.exported: set[int] = set()
        self.firsts: list[int] = []                 # position of each group's first member
        self.oldest = 0                             # the oldest group that may still take a member

    def run(self, nodes: list[Node]) -> list[_Open]:
        for pos, n in enumerate(nodes):
            self.oldest = bisect.bisect_left(self.firsts, pos - LIFETIME)
            self._node(pos, n)
        return self.groups

    def _open(self, index: int, pos: int, scope) -> bool:
        """Whether group `index` may still take a node of `scope` at position `pos`."""
        g = self.groups[index]
        return g.scope == scope and pos - g.last <= WINDOW and index >= self.oldest

    def _taint(self, name: str, pos: int) -> set[int]:
        """The groups that may still take members and that `name` depends on, through its
        producer's group as a whole (a path through a node of another scope counts too)."""
        d = self.D.get(name, frozenset())
        p = self.producer.get(name)
        if p is not None and p in self.group_of:
            d = d | self.up[self.group_of[p]]
        oldest = self.oldest
        return {k for k in d if k >= oldest}

    def _node(self, pos: int, n: Node) -> None:
        ins = [self.v.base(i) for i in n.inputs if i]
        taints = {i: self._taint(i, pos) for i in dict.fromkeys(ins)}
        chosen = None
        if _fusable(self.g, n, self.w[n.name]):
            shared: dict[int, int] = defaultdict(int)
            for i in dict.fromkeys(ins):
                size = self.g.tensor(i).numel
                p = self.producer.get(i)
                if p is not None and p in self.group_of:
                    shared[self.group_of[p]] += size
                for r in self.readers.get(i, ()):
                    shared[r] += size
            for index in sorted(shared, key=lambda k: (-shared[k], k)):
                if self._open(index, pos, n.scope) and self._join(index, pos, n, ins, taints):
                    chosen = index
                    break
            if chosen is None:
                chosen = self._start(pos, n)
        # taints of the results
        d: set[int] = set()
        s: set[int] = set()
        for i in ins:
            d |= taints[i]
            s |= self.S.get(i, frozenset())
        s = {k for k in s if k >= self.oldest}
        if chosen is not None:
            g = self.groups[chosen]
            self.up[chosen] |= {k for i in ins if i not in g.produced for k in taints[i]} - {chosen}
            d.add(chosen)
            if g.members[-1].sink:
                s.add(chosen)
        for i in ins:   # results read outside their group
            p = self.producer.get(i)
            if p is not None and p in self.group_of and self.group_of[p] != chosen:
                self.exported.add(self.group_of[p])
        df, sf = frozenset(d), frozenset(s)
        for o in n.outputs:
            if o:
                self.producer[o] = n.name
                self.D[o], self.S[o] = df, sf
        if chosen is not None:
            g = self.groups[chosen]
            for i in dict.fromkeys(ins):
                if i not in g.produced and chosen not in self.readers[i]:
                    self.readers[i].append(chosen)

    def _join(self, index: int, pos: int, n: Node, ins: list[str], taints: dict[str, set[int]]) -> bool:
        g = self.groups[index]
        wl = self.w[n.name]
        if self.policy == "layer" and wl.kind in _ARRAY:
            return False   # conv-bn-relu-pool: an array op starts its own group
        new: set[int] = set()
        for i in ins:
            if index in self.S.get(i, ()):
                return False   # reads a result that reduces over the group's tiles
            if i not in g.produced:
                if index in taints[i]:
                    return False   # would close a cycle through a unit outside the group
                new |= taints[i]
        if index in self.exported and not new <= self.up[index]:
            return False   # its results are already read: it may not depend on more
        known: dict[int, int | None] = {}
        for p, name in enumerate(n.inputs):
            if not name:
                continue
            b = self.v.base(name)
            if b in g.axes:
                a = g.axes[b]
                if a is None:
                    known[p] = None
                else:
                    seen = self.v.to_view(name, a)
                    if seen is None:
                        return False
                    known[p] = seen
        return self._add(g, pos, n, known, start=False)

    def _start(self, pos: int, n: Node) -> int | None:
        g = _Open(len(self.groups), n.scope)
        if not self._add(g, pos, n, {}, start=True):
            return None
        self.groups.append(g)
        self.firsts.append(pos)
        return g.index

    def _add(self, g: _Open, pos: int, n: Node, known: dict[int, int | None], *, start: bool) -> bool:
        a = _assign(self.g, n, self.w[n.name], known)
        if a is None:
            return False
        tiled_in = [(p, ax) for p, ax in a.ins.items() if ax is not None]
        tiled_out = [(o, ax) for o, ax in a.outs.items() if ax is not None]
        if not tiled_in and not tiled_out:
            return False
        extents = {self.g.tensor(n.inputs[p]).shape[ax] for p, ax in tiled_in}
        extents |= {self.g.tensor(o).shape[ax] for o, ax in tiled_out}
        samples = g.samples if not start else next(iter(extents))
        if extents != {samples}:
            return False
        # axes as seen by this node, back to storage
        updates: dict[str, int | None] = {}
        for p, ax in a.ins.items():
            name = n.inputs[p]
            b = self.v.base(name)
            axis = None if ax is None else self.v.to_base(name, ax)
            if ax is not None and axis is None:
                return False
            if b in g.axes and g.axes[b] != axis:
                return False
            if updates.get(b, axis) != axis:
                return False
            updates[b] = axis
        for o, ax in a.outs.items():
            updates[o] = ax
        rows = a.rows is not None and all(
            len(self.g.tensor(n.inputs[p]).shape) == 4 and ax in (0, 1) for p, ax in tiled_in) and all(
            len(self.g.tensor(o).shape) == 4 and ax in (0, 1) for o, ax in tiled_out) and all(
            self.g.tensor(n.inputs[p]).shape == self.g.tensor(self.v.base(n.inputs[p])).shape for p, _ in tiled_in)
        row_maps = a.rows or {}
        rows = rows and all(p in row_maps for p, _ in tiled_in)
        flat = a.flat
        plane = a.plane or a.flat
        member = Member(
            node=n.name, unit="array" if self.w[n.name].kind in _ARRAY else "vector", sink=a.sink,
            tiled_in=tuple((self.v.base(n.inputs[p]), row_maps.get(p) if rows else None) for p, _ in tiled_in),
            tiled_out=tuple(o for o, _ in tiled_out),
            whole_in=tuple(dict.fromkeys(self.v.base(n.inputs[p]) for p, ax in a.ins.items() if ax is None)),
            whole_out=tuple(o for o, ax in a.outs.items() if ax is None),
            driver=self.v.base(n.inputs[a.driver]) if a.driver is not None else "", rows=rows, flat=flat, plane=plane)
        g.axes.update(updates)
        g.samples = samples
        g.members.append(member)
        g.produced.update(o for o in n.outputs if o)
        g.last = pos
        self.group_of[n.name] = g.index
        return True


def _fusable(graph: Graph, n: Node, wl: Workload) -> bool:
    if wl.kind in (Kind.ELEMENTWISE, Kind.POOL, Kind.CONV, Kind.MATMUL, Kind.REDUCTION):
        return True
    if wl.kind is Kind.NORMALIZATION:
        return n.op_type == "BatchNormalization" and not n.attr("training_mode", 0)
    return wl.kind is Kind.DATA_MOVEMENT and n.op_type in _TILED_MOVES


# ---- tile axes of one node ----------------------------------------------------------------------


@dataclass
class _Assign:
    ins: dict[int, int | None]        # input position -> tile axis (None: read whole)
    outs: dict[str, int | None]       # result -> tile axis (None: whole)
    sink: bool = False
    rows: dict[int, Rows] | None = None   # row maps of tiled inputs (None: rows cannot be cut)
    driver: int | None = None         # a sink's input whose band drives the others
    flat: bool = False                # a pure map, or a reduction of one (see Member.flat)
    plane: bool = False               # works plane by plane (see Member.plane)


def _assign(g: Graph, n: Node, wl: Workload, known: dict[int, int | None]) -> _Assign | None:
    """The tile axis of every operand and result of `n`, consistent with `known` (input
    position -> axis as this node sees it), or None if `n` cannot be cut along one."""
    if n.op_type == "Transpose":
        return _transpose(g, n, known)
    if n.op_type in ("ScatterElements", "GatherElements"):
        return _indexed(g, n, known)
    if n.op_type == "Slice":
        return _slice(g, n, known)
    if n.op_type == "Concat":
        return _concat(g, n, known)
    if wl.kind is Kind.POOL:
        return _pool(g, n, known)
    if wl.kind is Kind.CONV:
        return _conv(g, n, known)
    if wl.kind is Kind.MATMUL:
        return _matmul(g, n, known)
    if wl.kind is Kind.REDUCTION:
        return _reduction(g, n, known)
    return _elementwise(g, n, known)   # elementwise, Expand, inference BatchNormalization


def _shape(g: Graph, name: str) -> tuple[int, ...]:
    return g.tensor(name).shape


def _elementwise(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    """Broadcasting ops (right-aligned shapes): an operand with the result's extent on the tile
    axis is tiled, one with extent 1 (or without the axis) is whole."""
    outs = [o for o in n.outputs if o]
    out_shape = _shape(g, outs[0])
    r = len(out_shape)
    if n.op_type == "BatchNormalization":   # scale, bias, mean, var are per channel: whole
        ins = {0: known.get(0, 0)}
        for p in range(1, len(n.inputs)):
            if n.inputs[p]:
                ins[p] = None
        if ins[0] is None or ins[0] == 1:
            return None
        return _Assign(ins, {o: ins[0] for o in outs}, rows={0: Rows("same")})
    out_axis = None
    for p, ax in known.items():
        if ax is not None:
            out_axis = ax + (r - len(_shape(g, n.inputs[p])))
            break
    if out_axis is None:
        if any(ax is None for ax in known.values()) and len(known) == sum(1 for i in n.inputs if i):
            return None
        out_axis = 0
    if not 0 <= out_axis < r:
        return None
    data = [p for p, name in enumerate(n.inputs) if name and not (n.op_type == "Expand" and p == 1)]
    ins: dict[int, int | None] = {}
    rows: dict[int, Rows] = {}
    for p in data:
        s = _shape(g, n.inputs[p])
        a = out_axis - (r - len(s))
        if a < 0 or (s[a] == 1 and out_shape[out_axis] != 1):
            ax = None
        elif s[a] == out_shape[out_axis]:
            ax = a
        else:
            return None
        if p in known and known[p] != ax:
            return None
        ins[p] = ax
        if ax is not None:
            if len(s) == 4 and len(out_shape) == 4 and s[2] == out_shape[2]:
                rows[p] = Rows("same")
            elif len(s) == 4 and s[2] == 1:
                rows[p] = Rows("broadcast")
    if n.op_type == "Expand" and len(n.inputs) > 1:
        ins[1] = None
    if not any(ax is not None for ax in ins.values()) and n.op_type != "Expand":
        return None
    tiled_ins = [p for p, ax in ins.items() if ax is not None]
    ok_rows = all(p in rows for p in tiled_ins) and len(out_shape) == 4
    return _Assign(ins, {o: out_axis for o in outs}, rows=rows if ok_rows else None, flat=True)


def _window_rows(n: Node, kernel: int, transposed: bool = False) -> Rows | None:
    if n.attr("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return None
    strides = list(n.attr("strides", [1, 1]))
    pads = list(n.attr("pads", [0, 0, 0, 0]))
    dil = list(n.attr("dilations", [1, 1]))
    if transposed:
        if dil[0] != 1:
            return None
        return Rows("transposed", stride=strides[0], pad=pads[0], extent=kernel)
    return Rows("window", stride=strides[0], pad=pads[0], extent=(kernel - 1) * dil[0] + 1)


def _pool(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    """Pools run per sample: the tile axis is the batch axis 0."""
    if known.get(0, 0) != 0 or len(_shape(g, n.inputs[0])) != 4 or n.op_type.startswith("Global"):
        return None
    k = list(n.attr("kernel_shape", [1, 1]))
    rows = _window_rows(n, k[0])
    return _Assign({0: 0}, {o: 0 for o in n.outputs if o}, rows={0: rows} if rows else None, plane=True)


def _conv(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    """A conv is batch-parallel along axis 0 of its input (weights whole); a conv whose input
    and kernel both carry the tile axis in their channel axis 1 sums over it (the weight
    gradient of an exported backward): a sink."""
    x = _shape(g, n.inputs[0])
    w = _shape(g, n.inputs[1])
    if len(x) != 4 or len(w) != 4 or (n.attr("group", 1) or 1) != 1:
        return None
    ax_x, ax_w = known.get(0, 0), known.get(1)
    outs = [o for o in n.outputs if o]
    bias = {2: None} if len(n.inputs) > 2 and n.inputs[2] else {}
    if len(n.inputs) > 2 and known.get(2) is not None:
        return None
    transposed = n.op_type == "ConvTranspose"
    if ax_x == 0 and ax_w is None:
        rows = _window_rows(n, w[2], transposed)
        return _Assign({0: 0, 1: None, **bias}, {o: 0 for o in outs}, rows={0: rows} if rows else None)
    if not transposed and ax_x == 1 and ax_w in (1, None) and x[1] == w[1]:
        y = _shape(g, outs[0])
        strides = list(n.attr("strides", [1, 1]))
        pads = list(n.attr("pads", [0, 0, 0, 0]))
        dil = list(n.attr("dilations", [1, 1]))
        kernel = Rows("kernel", stride=strides[0], pad=pads[0], dilation=dil[0], out_rows=y[2])
        return _Assign({0: 1, 1: 1, **bias}, {o: None for o in outs}, sink=True,
                       rows={0: kernel, 1: Rows("same")}, driver=1)
    return None


def _matmul(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    """A (.., M, K) @ B (.., K, N): tiles of A's rows give tiles of the result's rows; tiles of
    the reduction K in both operands sum into a whole result (a sink); Gemm's transposes are
    read from its attributes."""
    a, b = _shape(g, n.inputs[0]), _shape(g, n.inputs[1])
    out = [o for o in n.outputs if o][0]
    if n.op_type == "Gemm":
        ta, tb = int(n.attr("transA", 0)), int(n.attr("transB", 0))
        m_axis, ka, kb = (1 if ta else 0), (0 if ta else 1), (1 if tb else 0)
        c = {2: None} if len(n.inputs) > 2 and n.inputs[2] else {}
        if known.get(2) is not None:
            return None
        ax_a, ax_b = known.get(0, m_axis), known.get(1)
        if ax_a == m_axis and ax_b is None:
            return _Assign({0: m_axis, 1: None, **c}, {out: 0})
        if ax_a == ka and ax_b == kb:
            return _Assign({0: ka, 1: kb, **c}, {out: None}, sink=True, driver=0)
        return None
    if len(a) < 2 or len(b) < 2:
        return None
    ra, rb = len(a), len(b)
    ax_a, ax_b = known.get(0, ra - 2), known.get(1)
    if ax_a == ra - 2 and ax_b is None:
        return _Assign({0: ra - 2, 1: None}, {out: len(_shape(g, out)) - 2})
    if ax_a == ra - 1 and ax_b == rb - 2 and ra == rb == 2:
        return _Assign({0: ra - 1, 1: rb - 2}, {out: None}, sink=True, driver=0)
    return None


def _axes_of(g: Graph, n: Node) -> list[int] | None:
    """The reduced axes of a Reduce* node (attribute or constant input; all when absent)."""
    r = len(_shape(g, n.inputs[0]))
    axes = n.attr("axes")
    if axes is None and len(n.inputs) > 1 and n.inputs[1]:
        if n.inputs[1] not in g.constants:
            return None
        axes = np.asarray(g.constants[n.inputs[1]]).reshape(-1).tolist()
    if axes is None or len(axes) == 0:
        if n.attr("noop_with_empty_axes", 0):
            return []
        return list(range(r))
    return sorted(int(a) % r for a in axes)


def _reduction(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    """Softmax along another axis keeps the tile axis; a Reduce* over other axes keeps it
    (shifted when the reduced axes are dropped); over the tile axis it is a sink."""
    x = _shape(g, n.inputs[0])
    outs = [o for o in n.outputs if o]
    ax = known.get(0, 0)
    if ax is None:
        return None
    extra = {p: None for p in range(1, len(n.inputs)) if n.inputs[p]}
    if n.op_type in ("Softmax", "LogSoftmax", "Hardmax"):
        if int(n.attr("axis", -1)) % len(x) == ax:
            return None
        along = int(n.attr("axis", -1)) % len(x)
        return _Assign({0: ax}, {o: ax for o in outs}, rows={0: Rows("same")} if len(x) == 4 and ax in (0, 1)
                       and along != 2 else None, plane=along >= 2)
    if n.op_type in ("ArgMax", "ArgMin"):
        axes = [int(n.attr("axis", 0)) % len(x)]
        keep = int(n.attr("keepdims", 1))
    else:
        axes = _axes_of(g, n)
        if axes is None:
            return None
        keep = int(n.attr("keepdims", 1))
    if ax in axes:   # a sink: each band of rows adds into the whole result
        rows = {0: Rows("same")} if len(x) == 4 and ax in (0, 1) else None
        return _Assign({0: ax, **extra}, {o: None for o in outs}, sink=True, rows=rows, driver=0, flat=True)
    out_ax = ax if keep else ax - sum(1 for a in axes if a < ax)
    return _Assign({0: ax, **extra}, {o: out_ax for o in outs}, rows=None, plane=keep and min(axes) >= 2)


def _transpose(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    x = _shape(g, n.inputs[0])
    perm = list(n.attr("perm", list(reversed(range(len(x))))))
    ax = known.get(0, 0)
    if ax is None:
        return None
    out_ax = perm.index(ax)
    rows = {0: Rows("same")} if len(x) == 4 and perm[2:] == [2, 3] else None
    return _Assign({0: ax}, {o: out_ax for o in n.outputs if o}, rows=rows, plane=sorted(perm[:2]) == [0, 1])


def _indexed(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    """ScatterElements (data, indices, updates) and GatherElements (data, indices) move
    elements along `axis` only: any other axis tiles all operands alike."""
    axis = int(n.attr("axis", 0)) % len(_shape(g, n.inputs[0]))
    axes = [ax for ax in known.values() if ax is not None]
    ax = axes[0] if axes else 0
    if ax == axis or any(a is None for a in known.values()):
        return None
    ins = {p: ax for p, name in enumerate(n.inputs) if name}
    if any(known.get(p, ax) != ax for p in ins):
        return None
    return _Assign(ins, {o: ax for o in n.outputs if o}, plane=axis >= 2 and ax < 2)


def _slice(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    """A slice that keeps the whole tile axis (and, for row bands, the whole row axis)."""
    x = _shape(g, n.inputs[0])
    ax = known.get(0, 0)
    if ax is None:
        return None
    consts = []
    for p in (1, 2, 3):
        name = n.inputs[p] if p < len(n.inputs) else ""
        if name and name not in g.constants:
            return None
        consts.append(np.asarray(g.constants[name]).reshape(-1).tolist() if name else None)
    starts, ends, axes = consts
    if starts is None:
        return None
    axes = [int(a) % len(x) for a in (axes if axes is not None else range(len(starts)))]
    steps = consts_steps = None
    if len(n.inputs) > 4 and n.inputs[4]:
        if n.inputs[4] not in g.constants:
            return None
        consts_steps = np.asarray(g.constants[n.inputs[4]]).reshape(-1).tolist()
    steps = consts_steps or [1] * len(starts)
    touched = {a for a, s, e in zip(axes, starts, ends) if not (int(s) == 0 and int(e) >= x[a])}
    if ax in touched:
        return None
    extra = {p: None for p in range(1, len(n.inputs)) if n.inputs[p]}
    rows = None
    if len(x) == 4 and 2 not in touched:
        rows = {0: Rows("same")}
    elif len(x) == 4 and all(int(st) == 1 for a, st in zip(axes, steps) if a == 2):
        a2 = axes.index(2)   # a fixed slice of rows, whatever the band (e.g. a plane's first index)
        lo = int(starts[a2]) + (x[2] if int(starts[a2]) < 0 else 0)
        hi = min(x[2], int(ends[a2]) + (x[2] if int(ends[a2]) < 0 else 0))
        rows = {0: Rows("fixed", pad=max(0, lo), extent=hi)}
    if ax < 2 and all(a >= 2 for a in touched):
        return _Assign({0: ax, **extra}, {o: ax for o in n.outputs if o}, rows=rows, plane=True)
    return _Assign({0: ax, **extra}, {o: ax for o in n.outputs if o}, rows=rows)


def _concat(g: Graph, n: Node, known: dict[int, int | None]) -> _Assign | None:
    x = _shape(g, n.inputs[0])
    axis = int(n.attr("axis", 0)) % len(x)
    axes = [ax for ax in known.values() if ax is not None]
    ax = axes[0] if axes else 0
    if ax == axis or any(a is None for a in known.values()):
        return None
    ins = {p: ax for p, name in enumerate(n.inputs) if name}
    rows = {p: Rows("same") for p in ins} if len(x) == 4 and axis != 2 else None
    return _Assign(ins, {o: ax for o in n.outputs if o}, rows=rows)


# ---- groups: boundaries, fitting, order ---------------------------------------------------------


def _finish(graph: Graph, views: _Views, g: _Open | _Built, consumers: Mapping[str, list[str]],
            members: tuple[Member, ...] | None = None) -> _Built:
    """Inputs, outputs and kept intermediates of a group of `members` (all of `g`'s by default);
    `consumers`: storage -> lowered nodes reading it."""
    members = tuple(g.members) if members is None else members
    names = {m.node for m in members}
    produced: dict[str, int] = {}
    for k, m in enumerate(members):
        for o in (*m.tiled_out, *m.whole_out):
            produced[o] = k
    outs = {views.base(o) for o in graph.outputs}
    inputs: dict[str, None] = {}
    for m in members:
        for t in (*(t for t, _ in m.tiled_in), *m.whole_in):
            if t not in produced:
                inputs[t] = None
    outputs = tuple(t for t in produced if t in outs or any(c not in names for c in consumers.get(t, ())))
    kept = tuple(t for t in produced if t not in outputs)
    tiled = {t for m in members for t in (*(t for t, _ in m.tiled_in), *m.tiled_out)}
    rows = all(m.rows for m in members)
    flat = all(m.flat for m in members)
    heights = {t: (graph.tensor(t).shape[2] if rows else 1) for t in sorted(tiled)}
    numel = {t: graph.tensor(t).numel for t in sorted(tiled)}
    planes = 0
    if all(m.plane for m in members) and numel:
        largest = max(numel.values())
        planes = min(largest // (g.samples * max(1, math.prod(graph.tensor(t).shape[2:])))
                     for t in numel if numel[t] == largest)
    return _Built(members, tuple(inputs), outputs, kept, heights, numel, g.samples, rows, flat, planes,
                  str(g.scope))


def _fit(graph: Graph, views: _Views, g: _Built, consumers: Mapping[str, list[str]],
         nbytes: Callable[[str], int], budget: int, halo: str) -> list[_Built]:
    """Consecutive parts of `g` that fit `budget`: `g` itself when its finest tiling fits, else
    the longest fitting prefix of what is left, again and again (a member that fits nowhere
    stays alone). A part that fits only in bands of rows is also compared with cutting it before
    one of its array members (one conv's halo can cost more off-chip bytes than handing its
    input over through DRAM); the cheaper is kept."""
    def part(members: tuple[Member, ...]) -> _Built:
        return _finish(graph, views, g, consumers, members)

    parts: list[_Built] = []
    rest = g.members
    while rest:
        if tiling(part(rest), nbytes, budget, halo) is not None:
            lo = len(rest)
        else:
            lo, hi = 1, len(rest)   # the longest fitting prefix, by bisection (fitting shrinks with length)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if tiling(part(rest[:mid]), nbytes, budget, halo) is not None:
                    lo = mid
                else:
                    hi = mid - 1
        parts += _halo_or_cut(part, rest[:lo], nbytes, budget, halo)
        rest = rest[lo:]
    return parts


def _halo_or_cut(part: Callable[[tuple[Member, ...]], _Built], members: tuple[Member, ...],
                 nbytes: Callable[[str], int], budget: int, halo: str) -> list[_Built]:
    """`members` as one part, or cut before an array member if that moves fewer bytes."""
    whole = part(members)
    t = tiling(whole, nbytes, budget, halo)
    if t is None or t.pieces == 1 or not whole.rows or len(members) < 2:
        return [whole]
    best, cost = [whole], _traffic(whole, t, nbytes)
    for k in range(1, len(members)):
        if members[k].unit != "array":
            continue
        a, b = part(members[:k]), part(members[k:])
        ta, tb = tiling(a, nbytes, budget, halo), tiling(b, nbytes, budget, halo)
        if ta is None or tb is None:
            continue
        c = _traffic(a, ta, nbytes) + _traffic(b, tb, nbytes)
        if c < cost:
            best, cost = [a, b], c
    return best


def _traffic(group: _Built, t: Tiling, nbytes: Callable[[str], int]) -> float:
    """Off-chip bytes of a part: its inputs (with halo re-reads) and its results."""
    return sum(nbytes(i) * t.load.get(i, 1.0) for i in group.inputs) + sum(nbytes(o) for o in group.outputs)


def _order(nodes: list[Node], groups: tuple[Group, ...], group_of: Mapping[str, int],
           views: _Views) -> tuple[str | int, ...]:
    """Every plain node and group once, each after everything it reads: a topological order of
    the graph with each group contracted to one unit, preferring the original program order
    (a unit's priority is the position of its first node)."""
    pos = {n.name: k for k, n in enumerate(nodes)}
    unit_of = {n.name: group_of.get(n.name, n.name) for n in nodes}
    producer = {o: n.name for n in nodes for o in n.outputs if o}
    priority: dict[str | int, int] = {}
    for n in nodes:
        u = unit_of[n.name]
        priority[u] = min(priority.get(u, pos[n.name]), pos[n.name])
    succ: dict[str | int, set] = defaultdict(set)
    indeg: dict[str | int, int] = {u: 0 for u in priority}
    for n in nodes:
        u = unit_of[n.name]
        for i in n.inputs:
            p = producer.get(views.base(i)) if i else None
            if p is None:
                continue
            pu = unit_of[p]
            if pu != u and u not in succ[pu]:
                succ[pu].add(u)
                indeg[u] += 1
    heap = [(priority[u], str(u), u) for u, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    out: list[str | int] = []
    while heap:
        _, _, u = heapq.heappop(heap)
        out.append(u)
        for s in succ.get(u, ()):
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(heap, (priority[s], str(s), s))
    if len(out) != len(indeg):   # pragma: no cover - the taint rules keep the contraction acyclic
        raise AssertionError("fusion produced a cycle between groups")
    return tuple(out)


# ---- tiling -------------------------------------------------------------------------------------


# The most chunks a sample of a pure-map group is cut into (a chunk of a 64x28x28 float32 map is
# then 196 bytes, three DRAM bursts: finer chunks only add descriptor latency).
MAX_CHUNKS = 1024


def tiling(group: Group | _Built, nbytes: Callable[[str], int], budget: int, halo: str = "cache") -> Tiling | None:
    """`_tiling`, memoised by the group's structure (the tasks of a meta-batch and the steps of
    an inner loop repeat the same groups on other tensors)."""
    names, key = _signature(group, nbytes)
    key = (key, budget, halo)
    hit = _TILINGS.get(key)
    if hit is None:
        t = _tiling(group, nbytes, budget, halo)
        hit = _TILINGS[key] = None if t is None else (
            t, tuple(t.recompute[m.node] for m in group.members), tuple(t.load.get(n, None) for n in names))
        if len(_TILINGS) > 100_000:
            _TILINGS.clear()
    if hit is None:
        return None
    t, recompute, load = hit
    return Tiling(t.tiles, t.sample_block, t.pieces, t.split, t.working_set,
                  {m.node: f for m, f in zip(group.members, recompute)},
                  {n: f for n, f in zip(names, load) if f is not None})


_TILINGS: dict = {}


def _signature(group: Group | _Built, nbytes: Callable[[str], int]) -> tuple[list[str], tuple]:
    """The group with its tensors numbered in order of appearance: equal for groups that differ
    only in names. Returns (tensor names by number, signature)."""
    ids: dict[str, int] = {}

    def i(t: str) -> int:
        return ids.setdefault(t, len(ids))
    members = tuple((m.unit, m.sink, m.flat, m.plane, m.rows, tuple((i(t), r) for t, r in m.tiled_in),
                     tuple(i(t) for t in m.tiled_out), tuple(i(t) for t in m.whole_in),
                     tuple(i(t) for t in m.whole_out), i(m.driver) if m.driver else -1)
                    for m in group.members)
    ends = (tuple(i(t) for t in group.inputs), tuple(i(t) for t in group.outputs))
    names = list(ids)
    sizes = tuple((group.heights.get(t), group.numel.get(t), nbytes(t)) for t in names)
    return names, (group.samples, group.rows, group.flat, group.planes, members, ends, sizes)


def _tiling(group: Group | _Built, nbytes: Callable[[str], int], budget: int, halo: str) -> Tiling | None:
    """The coarsest tiling of `group` whose working set fits `budget` bytes: the largest block
    of samples, else (one sample at a time) the fewest chunks of a sample for a pure-map group
    (no halo), else the fewest bands of rows (halos recomputed); None if even the finest does
    not fit. `halo`: what bands do with the rows they share (`HALOS`)."""
    whole = _whole_bytes(group, nbytes)
    if whole >= budget:
        return None
    n = group.samples
    per_sample, recompute, load = _profile(group, nbytes, 1)
    block = min(n, int((budget - whole) // max(per_sample, 1e-9)))
    if block >= 1:
        tiles = math.ceil(n / block)
        block = math.ceil(n / tiles)   # even blocks
        return Tiling(tiles, block, 1, "none", int(whole + block * per_sample), recompute, load)
    if group.flat or group.planes > 1:   # chunks of a sample: no halo
        for chunks in range(2, (MAX_CHUNKS if group.flat else group.planes) + 1):
            per_sample, recompute, load = _profile(group, nbytes, 1, chunks)
            if whole + per_sample <= budget:
                return Tiling(n * chunks, 1, chunks, "chunks" if group.flat else "planes", int(whole + per_sample),
                              recompute, load)
        if group.flat:
            return None
    if not group.rows:
        return None
    top = max(group.heights.values())
    for bands in range(2, top + 1):
        per_sample, recompute, load = _profile(group, nbytes, bands, halo=halo)
        if whole + per_sample <= budget:
            return Tiling(n * bands, 1, bands, "rows", int(whole + per_sample), recompute, load)
    return None


def _whole_bytes(group: Group | _Built, nbytes: Callable[[str], int]) -> int:
    """Operands read whole and sink accumulators: held for the whole group."""
    whole: set[str] = set()
    for m in group.members:
        whole.update(m.whole_in)
        whole.update(m.whole_out)
    return sum(nbytes(t) for t in whole)


def _band(r: int, bands: int, height: int) -> tuple[int, int]:
    return r * height // bands, (r + 1) * height // bands


def _profile(group: Group | _Built, nbytes: Callable[[str], int], bands: int, chunks: int = 1,
             halo: str = "cache") -> tuple[float, dict[str, float], dict[str, float]]:
    """Peak bytes per sample of the tiled tensors live while one tile runs (external tiles
    double-buffered), and the recompute and load factors, with `bands` row bands, or with
    `chunks` chunks of a pure-map group's largest tensors (smaller ones, e.g. per-channel
    values of each sample, are held whole per sample). Cached (`halo="cache"`), a band computes
    and loads only the rows no earlier band did and holds the overlap it still needs (line
    buffers); recomputed, it computes and loads every row its band needs."""
    heights = group.heights
    members = group.members
    fraction = {t: 1.0 for t in heights}
    recompute = {m.node: 1.0 for m in members}
    load = {t: 1.0 for t in group.inputs if t in heights}
    if bands > 1:
        computed = defaultdict(int)
        loaded = defaultdict(int)
        most = defaultdict(int)
        # every band produces its own rows of what leaves the group, and of results nothing in
        # the group reads (computed once, never skipped)
        read = {t for m in members for t, _ in m.tiled_in}
        outputs = [t for m in members for t in m.tiled_out if t in group.outputs or t not in read]
        # rows of each tensor already there: produced or loaded by an earlier band (`cache`
        # keeps them; `recompute` does not, so nothing is ever there)
        there: dict[str, list[tuple[int, int]]] = defaultdict(list)
        cache = halo == "cache"
        for r in range(bands):
            # rows each tensor is needed at in band r: a union of intervals (a band needs row 0
            # of a plane for a fixed slice and its own rows for the rest)
            need: dict[str, list[tuple[int, int]]] = {}
            for t in outputs:
                need[t] = _union(need.get(t, []), [_band(r, bands, heights[t])])
            for m in reversed(members):
                if m.sink:
                    band = _band(r, bands, heights[m.driver])
                    for t, rows in m.tiled_in:
                        rng = band if t == m.driver else rows.need(band[0], band[1], heights[t])
                        need[t] = _union(need.get(t, []), [rng])
                    continue
                wanted: list[tuple[int, int]] = []
                for o in m.tiled_out:
                    wanted = _union(wanted, need.get(o, []))
                if cache:   # only the rows no earlier band produced
                    wanted = _minus(wanted, there[m.tiled_out[0]])
                    for o in m.tiled_out:
                        there[o] = _union(there[o], wanted)
                if not wanted:
                    continue
                computed[m.node] += sum(b - a for a, b in wanted)
                for t, rows in m.tiled_in:
                    need[t] = _union(need.get(t, []), [rows.need(a, b, heights[t]) for a, b in wanted])
            for t, rng in need.items():
                most[t] = max(most[t], sum(b - a for a, b in rng))
                if t in load:
                    new = _minus(rng, there[t]) if cache else rng
                    loaded[t] += sum(b - a for a, b in new)
                    if cache:
                        there[t] = _union(there[t], new)
        for t in heights:
            fraction[t] = most[t] / heights[t]
        for m in members:
            if not m.sink and m.tiled_out:
                recompute[m.node] = computed[m.node] / heights[m.tiled_out[0]]
        for t in load:
            load[t] = loaded[t] / heights[t]
    if chunks > 1:
        largest = max(group.numel.values())
        for t in heights:
            if group.numel[t] == largest:
                fraction[t] = 1.0 / chunks
    # liveness over the members of one tile
    n = group.samples
    index = {}
    for k, m in enumerate(members):
        for t in m.tiled_out:
            index.setdefault(t, k)
    last: dict[str, int] = {}
    first: dict[str, int] = {}
    for k, m in enumerate(members):
        for t, _ in m.tiled_in:
            last[t] = k
            first.setdefault(t, k)
    ext = set(group.inputs) | set(group.outputs)
    # an elementwise member writes over an intermediate of its size that it reads last (as the
    # planner does for ReLU, Add, ...): that tile's space passes to its result
    handed: dict[str, int] = {}
    for k, m in enumerate(members):
        if m.flat and not m.sink and len(m.tiled_out) == 1:
            o = m.tiled_out[0]
            for t, _ in m.tiled_in:
                if last.get(t) == k and t not in ext and t not in handed and group.numel[t] == group.numel[o]:
                    handed[t] = k - 1
                    break
    delta = [0.0] * (len(members) + 1)
    for t in heights:
        size = nbytes(t) / n * fraction[t] * (2 if t in ext else 1)
        start = index.get(t, first.get(t, 0))
        end = len(members) - 1 if t in group.outputs else handed.get(t, last.get(t, start))
        delta[start] += size
        delta[end + 1] -= size
    peak = live = 0.0
    for d in delta[:-1]:
        live += d
        peak = max(peak, live)
    return peak, recompute, load


def _minus(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The rows of `a` not in `b` (both sorted disjoint intervals)."""
    out: list[tuple[int, int]] = []
    for lo, hi in a:
        for blo, bhi in b:
            if bhi <= lo or blo >= hi:
                continue
            if blo > lo:
                out.append((lo, blo))
            lo = max(lo, bhi)
            if lo >= hi:
                break
        if lo < hi:
            out.append((lo, hi))
    return out


def _union(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of two sets of row intervals, as sorted disjoint intervals."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(x for x in (*a, *b) if x[1] > x[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


__all__ = ["POLICIES", "HALOS", "WINDOW", "Rows", "Member", "Group", "FusionPlan", "Tiling", "fuse", "tiling"]

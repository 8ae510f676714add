"""Streaming decisions for a node too large for its buffers: how many bytes it loads, in how
many tiles, and how much buffer it stages them in.

The op takes its buffers whole (evicting what they hold): input tiles are staged in the buffer
its largest operand loads into, result tiles in the result buffer, each in two tile buffers of
an eighth of it (a unified buffer: two input and two result tiles of a sixteenth). What it keeps
on chip (a whole operand, a block of one, or a block of results) uses up to KEEP_SHARE of a
buffer (`stream_traffic`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...ir import Graph, Node
from ...workload import Kind, Workload
from ..gemm import as_gemm

# Streamed ops are cut into at most this many tiles: enough to overlap transfers with compute,
# few enough that the tile-level reference's event count stays small.
MAX_STREAM_TILES = 16

# The smallest chunk a consumer computes on as a load lands: one DDR burst, 8 beats of a 64-bit
# channel (JEDEC JESD79-4 DDR4 burst length BL8).
DRAM_BURST_BYTES = 64

# The share of a buffer a streamed op may fill with what it keeps on chip (a whole operand, a
# block of one, or a block of results); the remaining quarter holds its double-buffered staging
# tiles. A design choice: ZigZag, which stages without double buffering, keeps operands of up to
# 86 % of its buffer on the Conv4 cases of docs/validation.md.
KEEP_SHARE = 0.75


@dataclass(frozen=True)
class StreamLayout:
    in_pool: str
    out_pool: str
    rooms: dict[str, int]         # buffer -> bytes the op takes (whole buffers)
    stage_in: int                 # bytes of one input staging tile
    stage_out: int                # bytes of one result staging tile
    load_bytes: int               # bytes loaded in all (with re-reads of a blocked GEMM)
    out_bytes: int
    tiles: int
    lookback: int                 # tiles in flight per staging buffer (2: double-buffered)


def stream_layout(graph: Graph, node: Node, wl: Workload, ins: list[str], outs: list[str],
                  sizes: dict[str, int], in_pool: str, out_pool: str, capacity: dict[str, int],
                  double_buffered: bool) -> StreamLayout:
    """`sizes`: stored bytes of every operand and result; `capacity`: bytes per buffer."""
    cap_in = capacity[in_pool]
    out_bytes = sum(sizes[o] for o in outs)
    if in_pool == out_pool:
        rooms = {in_pool: cap_in}
        stage_in = stage_out = max(1, cap_in // 16)        # two input and two result tiles
        keep_in = keep_out = math.floor(cap_in * KEEP_SHARE)
    else:
        cap_out = capacity[out_pool]
        rooms = {in_pool: cap_in, out_pool: cap_out}
        stage_in, stage_out = max(1, cap_in // 8), max(1, cap_out // 8)
        keep_in, keep_out = math.floor(cap_in * KEEP_SHARE), math.floor(cap_out * KEEP_SHARE)
    load = stream_traffic(graph, node, wl, ins, outs, sizes, keep_in, keep_out)
    tiles = max(math.ceil(load / max(1, 2 * stage_in)), math.ceil(out_bytes / max(1, 2 * stage_out)))
    tiles = max(1, min(MAX_STREAM_TILES, tiles))
    return StreamLayout(in_pool, out_pool, rooms, stage_in, stage_out, load, out_bytes, tiles,
                        2 if double_buffered else 1)


def stream_traffic(graph: Graph, node: Node, wl: Workload, ins: list[str], outs: list[str],
                   sizes: dict[str, int], keep_in: int, keep_out: int) -> int:
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
    per row block (`output_blocks`). For a conv, A is the ifmap itself (a block of output
    rows reads its band of input rows; the halo between bands is not counted)."""
    total = sum(sizes[i] for i in ins)
    if wl.kind not in (Kind.MATMUL, Kind.CONV) or len(ins) < 2:
        return total
    a, b = sizes[ins[0]], sizes[ins[1]]
    rest = total - a - b
    c = sum(sizes[o] for o in outs)
    if min(a, b) <= keep_in or c <= keep_out:
        return total
    sr, sc, _, _ = as_gemm(graph, node, wl)
    keep_a = a + b * min(sr, math.ceil(a / max(1, keep_in)))
    keep_b = b + a * min(sc, math.ceil(b / max(1, keep_in)))
    bm, bn = output_blocks(a, b, c, max(1, keep_out), sr, sc)
    keep_c = a * bn + b * bm
    return min(keep_a, keep_b, keep_c) + rest


def output_blocks(a: int, b: int, c: int, room: int, sr: int, sc: int) -> tuple[int, int]:
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


def share(total: int, parts: int, k: int) -> int:
    """The k-th of `parts` integer shares of `total` (they add up to `total` exactly)."""
    return total * (k + 1) // parts - total * k // parts

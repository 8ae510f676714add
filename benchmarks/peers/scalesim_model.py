"""SCALE-Sim 3.0.0's USER-bandwidth timing of one GEMM/conv layer, per fold (a compatibility model).

`compiler.lowering.systolic.gemm_cost` gives SCALE-Sim's stall-free cycles exactly. With a fixed
DRAM bandwidth ("USER" mode) SCALE-Sim adds stalls from its memory system
(`scalesim/memory/read_buffer.py`, `write_buffer.py`, `double_buffered_scratchpad_mem.py`); this
module restates that behaviour per fold, from those sources, so hwsim can reproduce SCALE-Sim's
totals without walking its demand matrices cycle by cycle. It is not hwsim's default timing (the
event-driven DMA model of `npu.py` is): see docs/npu_model.md, "SCALE-Sim compatibility mode".

What SCALE-Sim does, read from its sources (words = 1-byte elements, `bw` words/cycle/operand):

* **Fetch order.** Each read operand (ifmap, filter) has a *fetch sequence*: its operand matrix
  cut into the fold blocks of its dataflow, stacked, and for the skewed operands read in
  anti-diagonal order (`create_*_prefetch_mat`). Padding entries (-1) are kept in DRAM lines.
* **Sets and windows.** The valid entries are cut into sets of eps = ⌈S/100⌉ words (S = SRAM
  words). Half the SRAM is the *active window* (A = ⌈⌈S/2⌉/eps⌉ sets), half the *prefetch* part
  (P sets) (`single_layer_sim` passes `active_buf_frac = 0.5`). Before cycle 0 the first
  ⌈S/2⌉ words are fetched, ⌈⌈S/2⌉/bw⌉ cycles ("incl. prefetch" starts there).
* **Refill.** A demanded address held by no set of the window (SCALE-Sim looks addresses up, so
  any copy of a repeated address hits) slides the window forward by P sets (circularly over the
  n sets) and issues a refill of ⌈(S − ⌈S/2⌉)/bw⌉ DRAM lines, until a set holds it; refill k
  lands at L_k = −1 + k·d with d = ⌈(S − ⌈S/2⌉)/bw⌉ + 1, whatever the cycle it was asked at. A
  demand that steps *back* behind the window (the next fold starting before the window: diagonal
  overlap of fold blocks, a new pass over the operand) slides it all the way round: that is
  SCALE-Sim's refetch. Flipped stationary blocks are loaded one row per cycle from the last row
  up, each row left to right: a row straddling the window's lower edge sends the window round
  (its first words) and one step on (its last words), and the next row sends it round again.
* **Stall.** For a demand row at cycle T the operand's service time starts at t = T + 1 and
  each refill issued in that row sets t ← 2L − t if L > t, else t ← L (`offset += stall` twice);
  the row stalls by the largest t − T − 1 over ifmap and filter (and the ofmap write buffer).
* **Ofmap.** Every ofmap write (WS/IS: every partial sum, Sr·Sc·row_folds; OS: Sr·Sc) goes to
  DRAM. Half of the ofmap SRAM is drained at `bw` words/cycle whenever more than half is full;
  what is left is drained after the last row, chunk after chunk.

Reported: total = rows + stall ("Total Cycles" + 1), "incl. prefetch" = initial fetch + last
ofmap drain cycle + 1, and DRAM words per operand, which SCALE-Sim counts in whole lines.

How it is evaluated: the sets of the fetch sequence are numbered once (numpy); a streamed
(skewed) fold demands the sets from its first to its last in order, its slides placed in time by
linear interpolation over the fold (SCALE-Sim's per-row skew is not walked); a stationary fold is
walked entry by entry in SCALE-Sim's order, vectorised over the entries that hit. With `conv`
(`ScaleSimConv`) the ifmap entries carry their im2col addresses and an entry hits on any set
holding a copy (IS loads overlapping conv windows as stationary blocks); without it every entry
is a distinct word (exact for a GEMM). The ofmap write buffer never stalls the array here.
Agreement: tests/compiler/test_validation_peers.py and docs/validation.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from compiler.lowering.systolic import gemm_cost, normalise_dataflow

ACTIVE_FRACTION = 0.5   # single_layer_sim.run: active_buf_frac = 0.5 for the read and write buffers
SETS_PER_SRAM = 100     # read_buffer.prepare_hashed_buffer: elems_per_set = ceil(size / 100)


@dataclass(frozen=True)
class ScaleSimUserCost:
    """One GEMM (or conv) layer under SCALE-Sim's USER bandwidth, in SCALE-Sim's words (elements)."""

    compute_cycles: int          # stall-free cycles (gemm_cost.cycles)
    stall_cycles: int            # SCALE-Sim's "Stall Cycles"
    prefetch_cycles: int         # initial fill before cycle 0
    drain_cycles: int            # ofmap drain after the last row
    dram_ifmap_reads: int        # words, whole DRAM lines as SCALE-Sim counts them
    dram_filter_reads: int
    dram_ofmap_writes: int
    ifmap_refills: int           # window slides (refill requests) of each read operand
    filter_refills: int

    @property
    def total_cycles(self) -> int:
        """SCALE-Sim's "Total Cycles" + 1: compute plus stalls (a count, like `gemm_cost`)."""
        return self.compute_cycles + self.stall_cycles

    @property
    def total_cycles_incl_prefetch(self) -> int:
        """SCALE-Sim's "Total Cycles (incl. prefetch)" + 1: fill, compute, stalls, last drain."""
        return self.prefetch_cycles + self.total_cycles + self.drain_cycles


@dataclass(frozen=True)
class ScaleSimConv:
    """A conv layer as SCALE-Sim addresses it: input h × w × c (SCALE-Sim has no padding: give the
    padded size), r × s filters, strides. Its im2col rows are the sr output pixels, its columns
    the t = r·s·c window entries (`operand_matrix.calc_ifmap_elem_addr`)."""

    h: int
    w: int
    r: int
    s: int
    c: int
    stride_h: int = 1
    stride_w: int = 1

    @property
    def out(self) -> tuple[int, int]:
        """SCALE-Sim's output size, windows rounded up (`topo_calc_hyperparams`)."""
        return (-(-(self.h - self.r) // self.stride_h) + 1, -(-(self.w - self.s) // self.stride_w) + 1)

    def im2col(self) -> np.ndarray:
        """sr × t ifmap addresses, −1 where a window runs off the input."""
        oh, ow = self.out
        orow, ocol = np.divmod(np.arange(oh * ow), ow)
        kr, rest = np.divmod(np.arange(self.r * self.s * self.c), self.s * self.c)
        kc, ch = np.divmod(rest, self.c)
        y = orow[:, None] * self.stride_h + kr[None, :]
        x = ocol[:, None] * self.stride_w + kc[None, :]
        return np.where((y < self.h) & (x < self.w), (y * self.w + x) * self.c + ch[None, :], -1)


def scalesim_user_cost(sr: int, sc: int, t: int, rows: int, cols: int, dataflow: str, *,
                       ifmap_words: int, filter_words: int, ofmap_words: int,
                       ifmap_bw: int, filter_bw: int | None = None,
                       ofmap_bw: int | None = None, conv: ScaleSimConv | None = None) -> ScaleSimUserCost:
    """SCALE-Sim's USER-bandwidth cost of C[sr×sc] = A[sr×t]·B[t×sc] (see the module docstring).

    SRAM sizes in words (SCALE-Sim: kB × 1024 at 1-byte words), bandwidths in words/cycle per
    operand (filter and ofmap default to the ifmap's). `conv`: the layer is that convolution
    (sr = output pixels, sc = filters, t = r·s·c); its ifmap is then addressed as SCALE-Sim's
    im2col matrix, whose repeated words SCALE-Sim may hit on any copy. Memoised."""
    fb = ifmap_bw if filter_bw is None else filter_bw
    ob = ifmap_bw if ofmap_bw is None else ofmap_bw
    for name, v in dict(ifmap_words=ifmap_words, filter_words=filter_words, ofmap_words=ofmap_words,
                        ifmap_bw=ifmap_bw, filter_bw=fb, ofmap_bw=ob).items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if conv is not None and (conv.out[0] * conv.out[1], conv.r * conv.s * conv.c) != (sr, t):
        raise ValueError(f"conv {conv} has {conv.out[0] * conv.out[1]} output pixels and a window "
                         f"of {conv.r * conv.s * conv.c}, not sr={sr}, t={t}")
    return _cost(sr, sc, t, rows, cols, normalise_dataflow(dataflow), ifmap_words, filter_words, ofmap_words,
                 ifmap_bw, fb, ob, conv)


@lru_cache(maxsize=4096)
def _cost(sr, sc, t, rows, cols, df, if_words, fl_words, of_words, if_bw, fl_bw, of_bw, conv):
    base = gemm_cost(sr, sc, t, rows, cols, df)
    per_fold = base.cycles_per_fold
    ops = _operands(sr, sc, t, rows, cols, df, None if conv is None else conv.im2col())
    streams = []
    for (fetch, folds), words, bw in zip(ops, (if_words, fl_words), (if_bw, fl_bw)):
        streams.append(_ReadStream(fetch, folds, words, bw, per_fold))
    stall = _stall(streams, base.cycles)
    total = base.cycles + stall
    of_total = sr * sc * (base.row_folds if df in ("WS", "IS") else 1)
    drain = _ofmap_drain_cycles(of_total, of_words, of_bw, total)
    return ScaleSimUserCost(
        compute_cycles=base.cycles, stall_cycles=stall,
        prefetch_cycles=max(s.init_lines for s in streams), drain_cycles=drain,
        dram_ifmap_reads=streams[0].dram_words, dram_filter_reads=streams[1].dram_words,
        dram_ofmap_writes=of_total, ifmap_refills=len(streams[0].events),
        filter_refills=len(streams[1].events))


# ---- fetch sequences and fold blocks ------------------------------------------------------------


@dataclass(frozen=True)
class _Fetch:
    """A stacked operand matrix (height × width), read row-major or by anti-diagonals; `valid`
    marks real entries (False for SCALE-Sim's -1 padding)."""

    valid: np.ndarray
    diagonal: bool
    addr: np.ndarray | None = None     # entry addresses where several entries share one (im2col)


@dataclass(frozen=True)
class _FoldDemand:
    """What one fold demands of an operand: rows [r0, r1) of the stacked matrix; the local cycle of
    its first and last demand; whether it is walked upwards (a flipped stationary block)."""

    r0: int
    r1: int
    first_row: int
    last_row: int
    descending: bool


def _stack(blocks: int, height: int, width: int, used_last: int) -> np.ndarray:
    """`blocks` blocks of height × width, the last with only `used_last` valid columns."""
    v = np.ones((blocks, height, width), dtype=bool)
    v[-1, :, used_last:] = False
    return v.reshape(blocks * height, width)


def _blocks(mat: np.ndarray, width: int) -> np.ndarray:
    """The column blocks of `mat`, `width` wide (the last padded with −1), stacked vertically."""
    nb = -(-mat.shape[1] // width)
    padded = np.full((mat.shape[0], nb * width), -1, dtype=np.int64)
    padded[:, :mat.shape[1]] = mat
    return padded.reshape(mat.shape[0], nb, width).transpose(1, 0, 2).reshape(-1, width)


def _with_addresses(fetch: _Fetch, addr: np.ndarray | None) -> _Fetch:
    """The fetch sequence with the entries' addresses (−1: a window off the input, not fetched)."""
    if addr is None:
        return fetch
    assert addr.shape == fetch.valid.shape
    return _Fetch(fetch.valid & (addr >= 0), fetch.diagonal, addr)


def _operands(sr, sc, t, rows, cols, df, im2col=None):
    """(fetch, per-fold demands) of ifmap and filter, folds in SCALE-Sim's order (fc outer, fr
    inner), following `compute/systolic_compute_{ws,os,is}.py`. `im2col`: the ifmap's sr × t
    addresses, when they repeat (a conv)."""
    if df == "WS":    # rows ← t, cols ← sc, streamed sr
        rf, cf = -(-t // rows), -(-sc // cols)
        ifm = _Fetch(_stack(rf, sr, rows, t - (rf - 1) * rows), True)
        ifm = _with_addresses(ifm, None if im2col is None else _blocks(im2col, rows))
        flt = _Fetch(_stack(cf, t, cols, sc - (cf - 1) * cols), False)
        i_d, f_d = [], []
        for fc in range(cf):
            for fr in range(rf):
                i_d.append(_FoldDemand(fr * sr, (fr + 1) * sr, rows, rows + sr + rows - 2, False))
                h = min(rows, t - fr * rows)
                f_d.append(_FoldDemand(fc * t + fr * rows, fc * t + fr * rows + h, 0, rows - 1, True))
    elif df == "OS":  # rows ← sr, cols ← sc, streamed t
        rf, cf = -(-sr // rows), -(-sc // cols)
        ifm = _Fetch(_stack(rf, t, rows, sr - (rf - 1) * rows), True)
        ifm = _with_addresses(ifm, None if im2col is None else _blocks(im2col.T, rows))
        flt = _Fetch(_stack(cf, t, cols, sc - (cf - 1) * cols), True)
        i_d, f_d = [], []
        for fc in range(cf):
            for fr in range(rf):
                i_d.append(_FoldDemand(fr * t, (fr + 1) * t, 0, t + rows - 2, False))
                f_d.append(_FoldDemand(fc * t, (fc + 1) * t, 0, t + cols - 2, False))
    else:             # IS: rows ← t, cols ← sr, streamed sc
        rf, cf = -(-t // rows), -(-sr // cols)
        ifm = _Fetch(_stack(cf, t, cols, sr - (cf - 1) * cols), False)
        ifm = _with_addresses(ifm, None if im2col is None else _blocks(im2col.T, cols))
        flt = _Fetch(_stack(rf, sc, rows, t - (rf - 1) * rows), True)
        i_d, f_d = [], []
        for fc in range(cf):
            for fr in range(rf):
                h = min(rows, t - fr * rows)
                i_d.append(_FoldDemand(fc * t + fr * rows, fc * t + fr * rows + h, 0, rows - 1, True))
                f_d.append(_FoldDemand(fr * sc, (fr + 1) * sc, rows, rows + sc + rows - 2, False))
    return (ifm, i_d), (flt, f_d)


def _set_ids(fetch: _Fetch, eps: int) -> np.ndarray:
    """Set index of every entry of the stacked matrix (SCALE-Sim's hashed-buffer line), −1 for
    padding: valid entries numbered in fetch order, eps to a set."""
    h, w = fetch.valid.shape
    if fetch.diagonal:
        r, c = np.indices((h, w))
        d = r + c
        lengths = np.minimum(np.arange(h + w - 1), h - 1) - np.maximum(0, np.arange(h + w - 1) - w + 1) + 1
        before = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        order = before[d] + (np.minimum(d, h - 1) - r)   # within a diagonal: from the lowest row up
    else:
        order = np.arange(h * w).reshape(h, w)
    flat_valid = np.zeros(h * w, dtype=bool)
    flat_valid[order.ravel()] = fetch.valid.ravel()
    rank = np.cumsum(flat_valid) - 1                 # valid entries before, in fetch order
    ids = np.where(fetch.valid, rank[order] // eps, -1)
    return ids


class _Copies:
    """Where each entry's address is held: the sets of all its copies (SCALE-Sim hits on any copy
    of a repeated address). Distinct addresses: the entry's own set."""

    def __init__(self, fetch: _Fetch, ids: np.ndarray) -> None:
        self.ids = ids
        self.table = None
        if fetch.addr is None:
            return
        ok = ids >= 0
        uniq, inv = np.unique(fetch.addr[ok], return_inverse=True)
        base = int(ids.max()) + 1
        owner, sets = np.divmod(np.unique(inv.astype(np.int64) * base + ids[ok]), base)
        rank = np.arange(len(owner)) - np.searchsorted(owner, owner)    # copy number of a set
        self.table = np.full((len(uniq), int(rank.max()) + 1), -1, dtype=np.int64)
        self.table[owner, rank] = sets                   # address → its sets, −1 padded
        self.inv = np.full(ids.shape, -1, dtype=np.int64)
        self.inv[ok] = inv

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows r0..r1 of the stacked matrix: (rows × width × copies) sets, −1 padded."""
        if self.table is None:
            return self.ids[r0:r1, :, None]
        inv = self.inv[r0:r1]
        return np.where(inv[..., None] >= 0, self.table[inv], -1)


# ---- one read operand: window slides (refills) per fold -----------------------------------------


class _ReadStream:
    def __init__(self, fetch: _Fetch, folds: list[_FoldDemand], sram_words: int, bw: int,
                 per_fold: int) -> None:
        active = math.ceil(sram_words * ACTIVE_FRACTION)
        prefetch = sram_words - active
        eps = math.ceil(sram_words / SETS_PER_SRAM)
        n_valid = int(fetch.valid.sum())
        n_sets = n_valid // eps + 1                  # prepare_hashed_buffer keeps a last (partial) set
        a_sets = min(n_sets, math.ceil(active / eps))
        p_sets = min(n_sets - a_sets, math.ceil(prefetch / eps))
        fetch_lines = math.ceil(fetch.valid.size / bw)
        self.init_lines = min(math.ceil(active / bw), fetch_lines)
        self.refill_lines = math.ceil(prefetch / bw)
        self.period = self.refill_lines + 1          # cycles between refills landing
        self.events: list[int] = []                  # demand row (no-stall cycle) of each refill
        if p_sets > 0:
            ids = _set_ids(fetch, eps)
            cand = _Copies(fetch, ids) if any(fd.descending for fd in folds) else None
            self._walk(ids, cand, folds, n_sets, a_sets, p_sets, per_fold)
        self.dram_words = (self.init_lines + len(self.events) * self.refill_lines) * bw

    def _walk(self, ids, cand, folds, n, a, p, per_fold):
        start = 0
        for f, fd in enumerate(folds):
            block = ids[fd.r0:fd.r1]
            block = block[block >= 0]
            if block.size == 0:
                continue
            row0 = f * per_fold
            if fd.descending:                       # the stationary block is loaded upwards
                start = self._walk_stationary(cand, fd, row0, start, n, a, p)
                continue
            first, last = int(block.min()), int(block.max())   # first: the block's entry (0, 0)
            # ascending: the demand runs through the sets first..last in order (interpolated in
            # time); each set found outside the window slides it until it is inside
            span = max(1, last - first)
            s = first
            while True:
                start, k = _reach(start, s, n, a, p)
                when = row0 + fd.first_row + round((s - first) / span * (fd.last_row - fd.first_row))
                self.events += [when] * k
                s += a - (s - start) % n                # the first set past the window's end
                if s > last:
                    break

    def _walk_stationary(self, cand, fd, row0, start, n, a, p):
        """A flipped stationary block as SCALE-Sim loads it: one block row per cycle from the last
        row up, each row's entries left to right. An entry hits if any set of the window holds its
        address (`cand`: `_Copies`); a miss slides the window by p sets until one does. Runs of
        entries with the same candidate sets are one step. Returns the window's new start."""
        blk = cand.rows(fd.r0, fd.r1)
        h, w, c = blk.shape
        seq = blk[::-1].reshape(h * w, c)
        cyc = np.repeat(row0 + fd.last_row - np.arange(h - 1, -1, -1), w)
        keep = seq[:, 0] >= 0
        seq, cyc = seq[keep], cyc[keep]
        if len(seq) > 1:
            new = np.ones(len(seq), dtype=bool)
            new[1:] = (seq[1:] != seq[:-1]).any(axis=1)
            seq, cyc = seq[new], cyc[new]
        i, m = 0, len(seq)
        while i < m:
            chunk = seq[i:i + 256]
            hit = (((chunk - start) % n < a) & (chunk >= 0)).any(axis=1)
            if hit.all():
                i += len(chunk)
                continue
            i += int(np.argmin(hit))
            sets = seq[i][seq[i] >= 0]
            k = 0
            while not (((sets - start) % n) < a).any():
                start = (start + p) % n
                k += 1
                if k > n:      # cannot happen for p >= 1; guards the loop
                    raise AssertionError("window never reaches the set")
            self.events += [int(cyc[i])] * k
            i += 1
        return start


def _inside(s: int, start: int, n: int, a: int) -> bool:
    return (s - start) % n < a


def _reach(start: int, s: int, n: int, a: int, p: int) -> tuple[int, int]:
    """Slide the window (start, a sets, by p of n) until set s is in it: (new start, slides)."""
    k = 0
    while not _inside(s, start, n, a):
        start = (start + p) % n
        k += 1
        if k > n:      # cannot happen for p >= 1; guards the loop
            raise AssertionError("window never reaches the set")
    return start, k


# ---- stalls and the ofmap drain -----------------------------------------------------------------


def _stall(streams: list[_ReadStream], rows: int) -> int:
    """SCALE-Sim's stall recurrence (double_buffered_scratchpad.service_memory_requests with
    read_buffer.service_reads), evaluated only at the rows that issue refills."""
    per_row: dict[int, list[int]] = {}
    for i, s in enumerate(streams):
        for r in s.events:
            per_row.setdefault(r, [0] * len(streams))[i] += 1
    landed = [-1] * len(streams)              # L of the last refill of each operand
    stall = 0
    for r in sorted(per_row):
        now = r + stall
        worst = 0
        for i, k in enumerate(per_row[r]):
            if not k:
                continue
            tt = now + 1
            for _ in range(k):
                landed[i] += streams[i].period
                tt = 2 * landed[i] - tt if landed[i] > tt else landed[i]
            worst = max(worst, tt - now - 1)
        stall += worst
    return stall


def _ofmap_drain_cycles(writes: int, sram_words: int, bw: int, busy: int) -> int:
    """Cycles from the last row to the end of the last ofmap drain (write_buffer): half the SRAM
    (`chunk` words) is drained, ⌈chunk/bw⌉ cycles, whenever more than `chunk` words wait and no
    drain is running; writes are spread evenly over the `busy` cycles of the layer. After the last
    row the rest goes out chunk after chunk without waiting for a running drain; the layer ends
    with whichever drain ends last."""
    chunk = sram_words - math.ceil(sram_words * ACTIVE_FRACTION)
    lines = math.ceil(chunk / bw)
    rate = writes / busy
    drained, end = 0, -1
    while writes - drained > chunk:
        trigger = math.ceil((drained + chunk + 1) / rate) - 1   # cycle the occupancy passes chunk
        begin = max(trigger, end)
        if begin >= busy - 1:
            break
        end = begin + lines - 1
        drained += chunk
    tail = busy - 1 + math.ceil((writes - drained) / bw) - 1
    return max(end, tail) - (busy - 1)

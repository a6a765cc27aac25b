"""Bitonic sorter and block merger: the ranking datapath of PointAcc's mapping unit.

Entries are (key, index, live) triples. They are ranked by the packed word ``{~live, key, index}``
compared as an unsigned number: live entries ascending by key, **ties by index** (the lower index
first); dead entries (``live = 0``, padding) rank after every live one. A dead entry's key and index
should be 0 (they only order dead entries among themselves).

Lane vectors: lane ``i`` of a W-entry block is ``key[i*KB:(i+1)*KB]``, ``idx[i*IB:(i+1)*IB]``,
``live[i]``; lane 0 is the smallest after sorting.

``BitonicSorter`` (``sorter_width`` W, a power of two >= 2) -- fully pipelined
--------------------------------------------------------------------------------
Batcher's bitonic network: ``S = log2(W) * (log2(W) + 1) / 2`` compare-exchange stages of W/2
comparators. A register follows every ``stages_per_cycle`` stages (default 1), so

    latency    = ceil(S / stages_per_cycle) cycles (in_valid in cycle t -> out_valid in t + latency)
    throughput = one W-entry block per cycle (no stalls: no ready signals)

Ports: ``in_valid``, ``in_key`` (W*KB), ``in_idx`` (W*IB), ``in_live`` (W) in; ``out_valid``,
``out_key``, ``out_idx``, ``out_live`` out (registered).

``RunMerger`` -- the merge network for sequences longer than W
--------------------------------------------------------------
Merges two sorted runs A and B, each a sequence of W-entry sorted blocks (the first block holds
the run's W smallest entries, and so on), into one sorted run, one block per cycle. A W-entry
register H holds the W largest entries seen so far. The job's first step loads the first block
into H; every further step takes the next block X of the run whose next block has the smaller
head (lane 0), or of the only run with blocks left, and puts [H, X] through the bitonic merge
network (a half-cleaner over [H, reverse(X)], then a bitonic merger of W on each half: log2(W) + 1
compare-exchange levels, combinational): the lower W entries are output, H keeps the upper W
(``keep_low = 0``, merge mode). Every output entry is then <= every entry not yet output. After the
last step H is output (flush): the job outputs exactly as many blocks as it consumed.

With ``keep_low = 1`` (top-k mode) only run A is read and H keeps the *lower* W entries: after
``len_a`` blocks H is the W smallest entries of the stream (its blocks need only be sorted
individually), output once as one block. kNN uses it on the blocks coming out of the sorter.

Ports: ``start`` with ``len_a``, ``len_b`` (block counts, ``len_bits`` wide) and ``keep_low``,
taken when ``start & can_start``. ``can_start`` is high while idle and in the cycle of the last
step of the running job, so jobs follow back to back and their output blocks form one gapless
stream (an empty top-k job only starts from idle). ``a_valid``, ``a_key``, ``a_idx``, ``a_live``
in and ``a_ready`` out: a step consumes the offered block when ``a_valid & a_ready`` (``a_ready``
is combinational on this cycle's inputs, so a memory read port addressed with the next block
address feeds the merger without bubbles); the same for B. ``out_valid``, ``out_key``, ``out_idx``,
``out_live``: registered output blocks; ``h_key``, ``h_idx``, ``h_live``: the register H; ``busy``.

Schedule with both sources always valid and n = len_a + len_b >= 1 blocks (n = len_a in top-k
mode): ``start`` taken in cycle 0, steps in cycles 1 .. n; merge mode: output blocks in cycles
3 .. n + 2 (the block of step s >= 2 in cycle s + 1, the flushed H in cycle n + 2); top-k mode: the
one output block in cycle n + 2. ``merge_cycles(len_a, len_b) = n + 2`` cycles from ``start`` to
the last ``out_valid``; a following job started in the last step adds exactly n' cycles. A merge
job without blocks outputs nothing; an empty top-k job outputs an all-dead block in cycle 2.

With ``reject = True`` the merger also offers, combinationally, the upper W entries of each top-k step
after the job's first (``rej_valid``, ``rej_key``, ``rej_idx``, ``rej_live``): the entries stage 0 drops.

``TopKCascade`` (``stages`` = S) -- a running top-(S + 1)W behind a top-k ``RunMerger``
-------------------------------------------------------------------------------------
Stage s (1 .. S) registers the block rejected by stage s - 1 (the merger's ``rej_*`` for s = 1) and
merges it in the next cycle with its own sorted W-entry run H_s (the same merge network): the lower W
stay in H_s, the upper W go on to stage s + 1 (the last stage drops them). One block per cycle per
stage, no stalls. Every entry leaves a stage at most once, so stage s sees exactly the entries not kept
by stages 0 .. s-1 and ends holding ranks sW .. sW + W - 1 of the stream (ties by index, dead entries
last). A block taken by the merger's step in cycle T settles in H_s at the edge ending cycle T + s.
``clear`` (with the merger's job start) empties every H_s and drops the registered blocks. Ports:
``clear``, ``in_valid``, ``in_key``, ``in_idx``, ``in_live`` (wire them to the merger's ``rej_*``);
``h_key``, ``h_idx``, ``h_live``: S*W entries, stage 1 in the lowest W lanes.

Choice rule: A is taken when it has blocks left and (B has none, or head(A) <= head(B)); heads
are compared as packed words, so equal heads (only dead ones can be equal) go to A. A step waits
while the run it must take from is not valid; both heads must be valid to compare them.
"""
from __future__ import annotations

import functools

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BitonicSorter", "RunMerger", "TopKCascade", "quiet_refusal", "sorter_stages", "sorter_latency",
           "merge_cycles",
           "check_width", "pack", "unpack", "sort_reference", "merge_reference"]


def quiet_refusal(init):
    """Decorator for a component's __init__: a refused parameter (ValueError) does not leave an
    'elaboratable created but never used' warning behind."""
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except ValueError:
            self._MustUse__silence = True
            raise
    return wrapper


def check_width(w: object, name: str = "sorter_width") -> int:
    """W as an int: a power of two >= 2; anything else raises ValueError naming ``name``."""
    if isinstance(w, bool) or not isinstance(w, int) or w < 2 or w & (w - 1):
        raise ValueError(f"{name}: must be a power of two >= 2, got {w!r}")
    return w


def sorter_stages(w: int) -> int:
    """Compare-exchange stages of the bitonic sorting network of width w: log2(w)(log2(w)+1)/2."""
    lg = check_width(w).bit_length() - 1
    return lg * (lg + 1) // 2


def sorter_latency(w: int, stages_per_cycle: int = 1) -> int:
    """Cycles from in_valid to out_valid of ``BitonicSorter(w, ..., stages_per_cycle)``."""
    if not isinstance(stages_per_cycle, int) or stages_per_cycle < 1:
        raise ValueError(f"stages_per_cycle: must be a positive int, got {stages_per_cycle!r}")
    return -(-sorter_stages(w) // stages_per_cycle)


def merge_cycles(len_a: int, len_b: int) -> int:
    """Cycles of one ``RunMerger`` job with n = len_a + len_b >= 1 blocks (len_b = 0 in top-k mode)
    from ``start`` to its last out_valid, sources always valid: n + 2."""
    if len_a + len_b < 1:
        raise ValueError("merge_cycles: a job without blocks has no last output")
    return len_a + len_b + 2


# ------------------------------------------------------------------------------------ references
def sort_reference(keys, idxs, lives):
    """The sorter's result in Python: entries sorted by (not live, key, index)."""
    ent = sorted(zip(keys, idxs, lives), key=lambda e: (not e[2], e[0], e[1]))
    return [e[0] for e in ent], [e[1] for e in ent], [e[2] for e in ent]


def merge_reference(a_blocks, b_blocks):
    """RunMerger in merge mode, in Python: the sorted concatenation, cut into blocks of W."""
    ent = [e for blk in list(a_blocks) + list(b_blocks) for e in blk]
    w = len(a_blocks[0]) if a_blocks else len(b_blocks[0])
    ent.sort(key=lambda e: (not e[2], e[0], e[1]))
    return [ent[i:i + w] for i in range(0, len(ent), w)]


# --------------------------------------------------------------------------------------- helpers
def pack(key, idx, live):
    """The ranking word {~live, key, idx} (Cat is LSB first)."""
    return Cat(idx, key, ~live)


def unpack(word, kb: int, ib: int):
    """(key, idx, live) slices of a packed word."""
    return word[ib:ib + kb], word[:ib], ~word[ib + kb]


class _Net:
    """Builds compare-exchange networks on packed words inside one module."""

    def __init__(self, m: Module, width: int, prefix: str):
        self.m, self.width, self.prefix, self.n = m, width, prefix, 0

    def ce(self, a, b):
        """(min, max) of two packed words, as named signals."""
        self.n += 1
        lo = Signal(unsigned(self.width), name=f"{self.prefix}_lo{self.n}")
        hi = Signal(unsigned(self.width), name=f"{self.prefix}_hi{self.n}")
        le = Signal(name=f"{self.prefix}_le{self.n}")
        self.m.d.comb += [le.eq(a <= b), lo.eq(Mux(le, a, b)), hi.eq(Mux(le, b, a))]
        return lo, hi

    def half_clean(self, v: list, lo_first: bool = True) -> list:
        """One bitonic half-cleaner over all of v (len a power of two): CE(i, i + n/2)."""
        n = len(v)
        out = list(v)
        for i in range(n // 2):
            lo, hi = self.ce(v[i], v[i + n // 2])
            out[i], out[i + n // 2] = (lo, hi) if lo_first else (hi, lo)
        return out

    def bitonic_merge(self, v: list) -> list:
        """Sort a bitonic sequence ascending: log2(n) half-cleaner levels."""
        if len(v) <= 1:
            return list(v)
        h = self.half_clean(v)
        n = len(v) // 2
        return self.bitonic_merge(h[:n]) + self.bitonic_merge(h[n:])

    def merge2(self, a: list, b: list) -> tuple[list, list]:
        """(lower W sorted, upper W sorted) of two ascending W-lists: [a, reverse(b)] is bitonic."""
        w = len(a)
        h = self.half_clean(list(a) + list(reversed(b)))
        return self.bitonic_merge(h[:w]), self.bitonic_merge(h[w:])


def sorter_schedule(w: int) -> list[list[tuple[int, int, bool]]]:
    """Stages of the bitonic sorting network: per stage, (i, l, ascending) compare-exchanges."""
    stages = []
    k = 2
    while k <= w:
        j = k // 2
        while j >= 1:
            st = []
            for i in range(w):
                lane = i ^ j
                if lane > i:
                    st.append((i, lane, (i & k) == 0))
            stages.append(st)
            j //= 2
        k *= 2
    return stages


def _lanes(sig, n: int, width: int) -> list:
    return [sig[i * width:(i + 1) * width] for i in range(n)]


# ------------------------------------------------------------------------------------ components
class BitonicSorter(wiring.Component):
    """Pipelined bitonic sorter of W (key, index, live) entries; see the module docstring."""

    @quiet_refusal
    def __init__(self, width: int, key_bits: int, idx_bits: int, stages_per_cycle: int = 1):
        self.w = check_width(width)
        for v, name in ((key_bits, "key_bits"), (idx_bits, "idx_bits")):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be a positive int, got {v!r}")
        self.kb, self.ib = key_bits, idx_bits
        self.latency = sorter_latency(width, stages_per_cycle)
        self.stages_per_cycle = stages_per_cycle
        super().__init__({
            "in_valid": In(1), "in_key": In(width * key_bits), "in_idx": In(width * idx_bits),
            "in_live": In(width),
            "out_valid": Out(1), "out_key": Out(width * key_bits), "out_idx": Out(width * idx_bits),
            "out_live": Out(width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        w, kb, ib = self.w, self.kb, self.ib
        ew = kb + ib + 1
        net = _Net(m, ew, "srt")
        keys, idxs = _lanes(self.in_key, w, kb), _lanes(self.in_idx, w, ib)
        v = []
        for i in range(w):
            p = Signal(unsigned(ew), name=f"srt_in{i}")
            m.d.comb += p.eq(pack(keys[i], idxs[i], self.in_live[i]))
            v.append(p)
        valid = self.in_valid
        stages = sorter_schedule(w)
        for s, st in enumerate(stages):
            nv = list(v)
            for i, lane, asc in st:
                lo, hi = net.ce(v[i], v[lane])
                nv[i], nv[lane] = (lo, hi) if asc else (hi, lo)
            v = nv
            if (s + 1) % self.stages_per_cycle == 0 or s == len(stages) - 1:
                r = []
                for i in range(w):
                    q = Signal(unsigned(ew), name=f"srt_s{s}_{i}")
                    m.d.sync += q.eq(v[i])
                    r.append(q)
                vq = Signal(name=f"srt_v{s}")
                m.d.sync += vq.eq(valid)
                v, valid = r, vq
        m.d.comb += self.out_valid.eq(valid)
        for i in range(w):
            k, x, lv = unpack(v[i], kb, ib)
            m.d.comb += [self.out_key[i * kb:(i + 1) * kb].eq(k), self.out_idx[i * ib:(i + 1) * ib].eq(x),
                         self.out_live[i].eq(lv)]
        return m


class RunMerger(wiring.Component):
    """Merges two sorted runs of W-entry blocks (merge mode) or keeps the W smallest entries of a
    stream of sorted blocks (top-k mode); see the module docstring."""

    @quiet_refusal
    def __init__(self, width: int, key_bits: int, idx_bits: int, len_bits: int = 16, reject: bool = False):
        self.w = check_width(width)
        self.kb, self.ib, self.lb, self.reject = key_bits, idx_bits, len_bits, reject
        blk = {"key": width * key_bits, "idx": width * idx_bits, "live": width}
        ports = {"start": In(1), "keep_low": In(1), "len_a": In(len_bits), "len_b": In(len_bits),
                 "can_start": Out(1), "busy": Out(1)}
        for s in ("a", "b"):
            ports[f"{s}_valid"] = In(1)
            ports[f"{s}_ready"] = Out(1)
            for f, n in blk.items():
                ports[f"{s}_{f}"] = In(n)
        ports["out_valid"] = Out(1)
        for f, n in blk.items():
            ports[f"out_{f}"] = Out(n)
            ports[f"h_{f}"] = Out(n)
        if reject:
            ports["rej_valid"] = Out(1)
            for f, n in blk.items():
                ports[f"rej_{f}"] = Out(n)
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        w, kb, ib, lb = self.w, self.kb, self.ib, self.lb
        ew = kb + ib + 1
        dead = 1 << (kb + ib)                                # ~live = 1, key = idx = 0
        net = _Net(m, ew, "mrg")

        ra, rb = Signal(unsigned(lb)), Signal(unsigned(lb))  # blocks left in A, B
        topk = Signal()
        busy = Signal()
        first = Signal()                                     # the next step is the job's first
        flush = Signal()                                     # output H in this cycle
        flush_dead = Signal()                                # output an all-dead block (empty top-k job)
        h = [Signal(unsigned(ew), name=f"mrg_h{i}", init=dead) for i in range(w)]

        def words(s):
            ks, xs = _lanes(getattr(self, f"{s}_key"), w, kb), _lanes(getattr(self, f"{s}_idx"), w, ib)
            out = []
            for i in range(w):
                p = Signal(unsigned(ew), name=f"mrg_{s}{i}")
                m.d.comb += p.eq(pack(ks[i], xs[i], getattr(self, f"{s}_live")[i]))
                out.append(p)
            return out

        a, b = words("a"), words("b")
        has_a, has_b = Signal(), Signal()
        m.d.comb += [has_a.eq(busy & ra.any()), has_b.eq(busy & ~topk & rb.any())]
        a_first = Signal()
        m.d.comb += a_first.eq(a[0] <= b[0])
        take_a, take_b = Signal(), Signal()
        m.d.comb += [
            take_a.eq(has_a & self.a_valid & (~has_b | (self.b_valid & a_first))),
            take_b.eq(has_b & self.b_valid & (~has_a | (self.a_valid & ~a_first))),
        ]
        x = [Signal(unsigned(ew), name=f"mrg_x{i}") for i in range(w)]
        m.d.comb += [x[i].eq(Mux(take_a, a[i], b[i])) for i in range(w)]
        lo, hi = net.merge2(h, x)
        step = Signal()
        m.d.comb += step.eq(take_a | take_b)
        last = Signal()                                      # the job's last step is in this cycle
        ra_dec, rb_dec = Signal(unsigned(lb)), Signal(unsigned(lb))
        m.d.comb += [ra_dec.eq(ra - take_a), rb_dec.eq(rb - take_b),
                     last.eq(step & ~ra_dec.any() & (topk | ~rb_dec.any()))]
        new_empty = Signal()                                 # the job offered on start has no block
        m.d.comb += new_empty.eq(~self.len_a.any() & (self.keep_low | ~self.len_b.any()))
        can = Signal()
        m.d.comb += can.eq(~busy | (last & ~(self.keep_low & new_empty)))
        m.d.comb += [self.a_ready.eq(take_a), self.b_ready.eq(take_b), self.busy.eq(busy),
                     self.can_start.eq(can)]

        def out_block(words_):
            stmts = [self.out_valid.eq(1)]
            for i in range(w):
                k, xx, lv = unpack(words_[i], kb, ib)
                stmts += [self.out_key[i * kb:(i + 1) * kb].eq(k), self.out_idx[i * ib:(i + 1) * ib].eq(xx),
                          self.out_live[i].eq(lv)]
            return stmts

        m.d.sync += [self.out_valid.eq(0), flush.eq(0), flush_dead.eq(0)]
        with m.If(step):
            m.d.sync += [ra.eq(ra_dec), rb.eq(rb_dec), first.eq(0)]
            with m.If(first):                                # the first block is loaded into H
                m.d.sync += [h[i].eq(x[i]) for i in range(w)]
            with m.Elif(topk):
                m.d.sync += [h[i].eq(lo[i]) for i in range(w)]
            with m.Else():
                m.d.sync += [h[i].eq(hi[i]) for i in range(w)]
                m.d.sync += out_block(lo)
            with m.If(last):
                m.d.sync += [busy.eq(0), flush.eq(1)]
        with m.If(flush):                                    # H: the last block of a merge, or the top-k
            m.d.sync += out_block(h)
        with m.If(flush_dead):
            m.d.sync += out_block([Const(dead, unsigned(ew))] * w)
        with m.If(self.start & can):
            m.d.sync += [ra.eq(self.len_a), rb.eq(self.len_b), topk.eq(self.keep_low), busy.eq(~new_empty),
                         first.eq(1), flush_dead.eq(self.keep_low & new_empty)]
        for i in range(w):
            k, xx, lv = unpack(h[i], kb, ib)
            m.d.comb += [self.h_key[i * kb:(i + 1) * kb].eq(k), self.h_idx[i * ib:(i + 1) * ib].eq(xx),
                         self.h_live[i].eq(lv)]
        if self.reject:                                      # top-k: the upper W of a step (not the first)
            m.d.comb += self.rej_valid.eq(step & ~first & topk)
            for i in range(w):
                k, xx, lv = unpack(hi[i], kb, ib)
                m.d.comb += [self.rej_key[i * kb:(i + 1) * kb].eq(k), self.rej_idx[i * ib:(i + 1) * ib].eq(xx),
                             self.rej_live[i].eq(lv)]
        return m


class TopKCascade(wiring.Component):
    """Stages 1 .. ``stages`` of a running top-(stages + 1)W cascade behind a ``RunMerger`` in top-k mode
    (its stage 0, built with ``reject=True``); see the module docstring."""

    @quiet_refusal
    def __init__(self, width: int, key_bits: int, idx_bits: int, stages: int):
        self.w = check_width(width)
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages: must be a positive int, got {stages!r}")
        self.kb, self.ib, self.stages = key_bits, idx_bits, stages
        n = stages * width
        super().__init__({
            "clear": In(1), "in_valid": In(1), "in_key": In(width * key_bits), "in_idx": In(width * idx_bits),
            "in_live": In(width),
            "h_key": Out(n * key_bits), "h_idx": Out(n * idx_bits), "h_live": Out(n),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        w, kb, ib = self.w, self.kb, self.ib
        ew = kb + ib + 1
        dead = 1 << (kb + ib)
        net = _Net(m, ew, "tkc")
        keys, idxs = _lanes(self.in_key, w, kb), _lanes(self.in_idx, w, ib)
        inp = [pack(keys[i], idxs[i], self.in_live[i]) for i in range(w)]
        valid = self.in_valid
        for s in range(self.stages):
            r = [Signal(unsigned(ew), name=f"tkc_r{s}_{i}", init=dead) for i in range(w)]
            rv = Signal(name=f"tkc_rv{s}")
            h = [Signal(unsigned(ew), name=f"tkc_h{s}_{i}", init=dead) for i in range(w)]
            m.d.sync += [rv.eq(valid & ~self.clear)] + [r[i].eq(inp[i]) for i in range(w)]
            lo, hi = net.merge2(h, r)
            with m.If(self.clear):
                m.d.sync += [h[i].eq(dead) for i in range(w)]
            with m.Elif(rv):
                m.d.sync += [h[i].eq(lo[i]) for i in range(w)]
            for i in range(w):
                k, xx, lv = unpack(h[i], kb, ib)
                j = s * w + i
                m.d.comb += [self.h_key[j * kb:(j + 1) * kb].eq(k), self.h_idx[j * ib:(j + 1) * ib].eq(xx),
                             self.h_live[j].eq(lv)]
            inp, valid = hi, rv
        return m

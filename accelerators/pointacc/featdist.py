"""PointAcc feature-distance stage: squared L2 distances in feature space for the mapping unit's
feature kNN (``OP_KNNF``, DGCNN's EdgeConv after the first layer).

The stage owns the feature buffer FB: ``feature_points`` (NF) points of ``feature_dims`` (C) signed
``feature_bits``-bit (FBITS) integer features, stored as CH = ceil(C / FL) rows of ``feature_lanes``
(FL) features per point (point p, chunk j at row p*CH + j; feature c of a row in bits
[c*FBITS, (c+1)*FBITS)). The host writes rows through ``ld_*`` while the unit is idle. The query is a
point of the buffer (DGCNN queries every point against all points), given by index.

Schedule, per query: ``q_load`` (the mapping unit's query accept) latches ``q_idx`` and restarts the
row counters; then one row pair (point row, query row) is read per ``issue`` cycle, points in index
order, chunks 0..CH-1 of a point in consecutive cycles: n*CH issue cycles; ``issue_last`` marks the
last. Pipeline after the issue cycle t: rows read (t+1), lane squares registered (t+2), lane sum
registered (t+3), accumulated into the point's distance with the beat registered (t+4):
``out_valid`` with ``out_dist`` = sum_c (f[p][c] - f[q][c])**2 (exact) and ``out_idx`` = p. Lanes
past C in the last chunk are masked, so unwritten padding never counts.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lego.units.bits import C
from lego.units.sorter import quiet_refusal

__all__ = ["FeatureDistance", "feature_dist_bits"]


def feature_dist_bits(dims: int, bits: int) -> int:
    """Bits of the largest squared feature distance: C * (2**FBITS - 1)**2."""
    return (dims * ((1 << bits) - 1) ** 2).bit_length()


class FeatureDistance(wiring.Component):
    """Feature buffer and distance pipeline; see the module docstring."""

    @quiet_refusal
    def __init__(self, dims: int, bits: int, lanes: int, points: int, capacity: int, key_bits: int):
        def bad(v):
            return isinstance(v, bool) or not isinstance(v, int)
        if bad(dims) or not 1 <= dims <= 1024:
            raise ValueError(f"feature_dims: must be in 1..1024, got {dims!r}")
        if bad(bits) or not 2 <= bits <= 16:
            raise ValueError(f"feature_bits: must be in 2..16, got {bits!r}")
        if bad(lanes) or not 1 <= lanes <= dims:
            raise ValueError(f"feature_lanes: must be in 1..feature_dims ({dims}), got {lanes!r}")
        if bad(points) or not 1 <= points <= capacity:
            raise ValueError(f"feature_points: must be in 1..point_buffer ({capacity}), got {points!r}")
        if feature_dist_bits(dims, bits) > key_bits:
            raise ValueError(f"feature_bits: distances of {feature_dist_bits(dims, bits)} bits exceed the "
                             f"sort key of {key_bits} bits")
        self.c, self.fb, self.fl, self.nf = dims, bits, lanes, points
        self.ch = -(-dims // lanes)
        self.rows = points * self.ch
        self.ab = max(1, (self.rows - 1).bit_length())
        self.row_bits = lanes * bits
        self.ib = max(1, (capacity - 1).bit_length())
        self.cw = capacity.bit_length()
        self.db = feature_dist_bits(dims, bits)
        super().__init__({
            "ld_en": In(1), "ld_addr": In(self.ab), "ld_data": In(self.row_bits),
            "n": In(self.cw), "q_load": In(1), "q_idx": In(self.ib),
            "issue": In(1), "issue_last": Out(1),
            "out_valid": Out(1), "out_dist": Out(self.db), "out_idx": Out(self.ib),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        FL, FBI, CH, AB, IB, CW, DB = self.fl, self.fb, self.ch, self.ab, self.ib, self.cw, self.db
        CHB = max(1, (CH - 1).bit_length())
        m.submodules.fbuf = mem = Memory(shape=unsigned(self.row_bits), depth=max(2, self.rows), init=[])
        w = mem.write_port()
        pr = mem.read_port()
        qr = mem.read_port()
        m.d.comb += [w.en.eq(self.ld_en), w.addr.eq(self.ld_addr), w.data.eq(self.ld_data)]

        # ---- issue counters
        paddr, qaddr = Signal(AB), Signal(AB)     # next point row, next query row
        pt = Signal(CW)                           # point of the next issue
        ch = Signal(CHB)                          # chunk of the next issue
        ch_last = Signal()
        m.d.comb += ch_last.eq(ch == CH - 1)
        nlast = Signal(CW)
        m.d.comb += nlast.eq((self.n - 1)[:CW])
        m.d.comb += [self.issue_last.eq(ch_last & (pt == nlast)), pr.addr.eq(paddr), qr.addr.eq(qaddr)]
        qbase = Signal(AB)
        with m.If(self.q_load):
            prod = Signal(AB)
            m.d.comb += prod.eq((self.q_idx * C(CH, CHB + 1))[:AB])
            m.d.sync += [paddr.eq(0), qaddr.eq(prod[:AB]), qbase.eq(prod[:AB]), pt.eq(0), ch.eq(0)]
        with m.Elif(self.issue):
            m.d.sync += paddr.eq((paddr + 1)[:AB])
            with m.If(ch_last):
                m.d.sync += [ch.eq(0), pt.eq((pt + 1)[:CW]), qaddr.eq(qbase)]
            with m.Else():
                m.d.sync += [ch.eq((ch + 1)[:CHB]), qaddr.eq((qaddr + 1)[:AB])]

        # ---- stage 1: rows read
        v1, first1, last1 = Signal(), Signal(), Signal()
        p1 = Signal(IB)
        m.d.sync += [v1.eq(self.issue & ~self.q_load), first1.eq(ch == 0), last1.eq(ch_last), p1.eq(pt[:IB])]
        # ---- stage 2: lane squares (lanes past C in the last chunk masked)
        tail = self.c - (CH - 1) * FL             # live lanes of the last chunk
        SQ = 2 * FBI
        sq2 = [Signal(unsigned(SQ), name=f"fsq{lane}") for lane in range(FL)]
        v2, first2, last2 = Signal(), Signal(), Signal()
        p2 = Signal(IB)
        m.d.sync += [v2.eq(v1), first2.eq(first1), last2.eq(last1), p2.eq(p1)]
        for lane in range(FL):
            a = pr.data[lane * FBI:(lane + 1) * FBI].as_signed()
            b = qr.data[lane * FBI:(lane + 1) * FBI].as_signed()
            diff = Signal(signed(FBI + 1), name=f"fdiff{lane}")
            m.d.comb += diff.eq(a - b)
            sq = Signal(unsigned(SQ), name=f"fsqf{lane}")
            m.d.comb += sq.eq((diff * diff)[:SQ])       # |diff| <= 2**FBITS - 1
            if lane >= tail:
                m.d.sync += sq2[lane].eq(Mux(last1, 0, sq[:SQ]))
            else:
                m.d.sync += sq2[lane].eq(sq[:SQ])
        # ---- stage 3: lane sum
        SB = SQ + max(0, (FL - 1).bit_length())
        psum = Signal(unsigned(SB))
        v3, first3, last3 = Signal(), Signal(), Signal()
        p3 = Signal(IB)
        m.d.sync += [v3.eq(v2), first3.eq(first2), last3.eq(last2), p3.eq(p2)]
        terms = []
        for lane in range(FL):
            t = Signal(unsigned(SB), name=f"fterm{lane}")
            if SB > SQ:
                m.d.comb += [t[:SQ].eq(sq2[lane]), t[SQ:].eq(0)]
            else:
                m.d.comb += t.eq(sq2[lane])
            terms.append(t)
        while len(terms) > 1:
            nxt = []
            for i in range(0, len(terms) - 1, 2):
                s = Signal(unsigned(SB), name="fadd")
                m.d.comb += s.eq((terms[i] + terms[i + 1])[:SB])
                nxt.append(s)
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
        m.d.sync += psum.eq(terms[0])
        # ---- stage 4: accumulate over chunks, beat
        acc = Signal(unsigned(DB))
        psz = Signal(unsigned(DB))
        if DB > SB:
            m.d.comb += [psz[:SB].eq(psum), psz[SB:].eq(0)]
        else:
            m.d.comb += psz.eq(psum[:DB])
        acc_new = Signal(unsigned(DB))
        m.d.comb += acc_new.eq((Mux(first3, 0, acc) + psz)[:DB])
        m.d.sync += self.out_valid.eq(v3 & last3)
        with m.If(v3):
            m.d.sync += acc.eq(acc_new)
        m.d.sync += [self.out_dist.eq(acc_new), self.out_idx.eq(p3)]
        return m


# ------------------------------------------------------------------------------------------ host side
def feature_rows(feats, bits: int, lanes: int) -> list[int]:
    """The buffer rows of integer features (N, C): CH = ceil(C / lanes) rows per point, row p*CH + j
    holding features j*lanes .. j*lanes + lanes - 1 as bits-bit two's-complement fields (feature
    j*lanes lowest); lanes past C are zero."""
    import numpy as np
    f = np.asarray(feats, dtype=np.int64)
    n, c = f.shape
    ch = -(-c // lanes)
    pad = np.zeros((n, ch * lanes), dtype=np.int64)
    pad[:, :c] = f
    mask = (1 << bits) - 1
    rows = []
    for p in range(n):
        for j in range(ch):
            w = 0
            for lane in range(lanes):
                w |= (int(pad[p, j * lanes + lane]) & mask) << (lane * bits)
            rows.append(w)
    return rows


def check_feature_job(geo, feats, queries, k: int):
    """The host's checks of a feature kNN job (OP_KNNF) on a unit of Geometry ``geo``: features (N, C)
    int, queries point indices; returns (feats as int64, queries as a list). A LegoError names the
    field: feature_points, feature_dims, feature_bits, max_neighbors, k, queries."""
    import numpy as np

    from lego.errors import LegoError
    if geo.feature_points == 0:
        raise LegoError("feature_points: the unit has no feature kNN path (feature_points = 0)")
    f = np.asarray(feats)
    if f.ndim != 2 or f.shape[0] == 0 or not np.issubdtype(f.dtype, np.integer):
        raise LegoError(f"features: expected a non-empty integer (N, C) array, got {f.dtype} {f.shape}")
    n, c = f.shape
    if n > geo.feature_points:
        raise LegoError(f"feature_points: {n} points exceed the feature buffer of {geo.feature_points}")
    if c != geo.feature_dims:
        raise LegoError(f"feature_dims: features have C = {c}, the unit is built for {geo.feature_dims} "
                        "(pad with zero columns)")
    lo, hi = -(1 << (geo.feature_bits - 1)), (1 << (geo.feature_bits - 1)) - 1
    if f.min() < lo or f.max() > hi:
        bad = int(f.min()) if f.min() < lo else int(f.max())
        raise LegoError(f"feature_bits: feature {bad} outside [{lo}, {hi}] of the unit's {geo.feature_bits}-bit features")
    kmax = max(geo.sorter_width, geo.max_neighbors)      # k > KS*W: ceil(k / (KS*W)) passes per query
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n, kmax):
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k > kmax:
            raise LegoError(f"max_neighbors: kNN k = {k} exceeds the unit's kNN limit "
                            f"max(sorter_width, max_neighbors) = {kmax}")
        raise LegoError(f"k: must be in 1..{min(n, kmax)}, got {k!r}")
    q = [int(x) for x in np.asarray(queries).reshape(-1)]
    if not q or min(q) < 0 or max(q) >= n:
        raise LegoError(f"queries: need at least one point index in 0..{n - 1}")
    if len(q) >= 1 << 16:
        raise LegoError(f"queries: {len(q)} queries exceed the 16-bit m port")
    return f.astype(np.int64), q

"""PointAcc mapping unit: one ranking datapath, selected by an opcode, for every mapping operation.

Bit-exact with ``sw_reference.pointacc`` (fps, knn, ball_query, downsample, submanifold and
strided kernel maps) and cycle-exact with ``accelerators.pointacc.cycles``. Parameters
(``PointAccConfig.mapping_params()``): ``capacity`` (NC, points of the point buffer, a multiple of
W), ``lanes`` (L, distances/keys per cycle, a power of two <= W), ``sorter_width`` (W),
``max_neighbors`` (KM, ball-query K capacity, a multiple of L), ``coord_bits`` (CB <= 21),
``sorter_stages_per_cycle`` (the sorter's pipelining, latency SL = ceil(S / that)); the feature kNN
path (``OP_KNNF``, built when ``feature_points`` > 0): ``feature_dims`` (C), ``feature_bits``,
``feature_lanes`` (FL), ``feature_points`` (NF <= NC), see ``accelerators.pointacc.featdist``;
``knn_merge_stages`` (KS, 1 .. ceil(max(W, KM) / W), default 1): the kNN top-k keeps the running best
KS*W entries (the merger and KS - 1 ``TopKCascade`` stages), so a kNN pass ranks KS*W neighbours.

Datapath
--------
* **Point buffer** PB: NC points, L per row (x, y, z as CB-bit two's-complement fields, x in the
  low bits of ``ld_data``). One row is read per cycle.
* **Distance / key array**, L lanes, 3 pipeline stages after the row read: squared Euclidean
  distances ``d2 = sum (p - q)^2`` (exact, 2*CB + 2 bits) to the current query q, or coordinate
  sort keys ``key = (x' << 2CB) | (y' << CB) | z'`` with ``c' = (c with its low `shift` bits
  cleared) + 2**(CB-1)`` (``floor(c / 2**shift) * 2**shift`` biased, the order of
  ``sw_reference.pointacc.coord_keys``).
* **Ranking**: the ``BitonicSorter`` (W entries of (key, index), ties by index) fed by a gather
  register of W/L rows, and one ``RunMerger`` (merge network): top-k mode for kNN, merge mode for
  the passes of the merge sort. Two W-wide sort buffers S0/S1 of NC/W blocks hold the runs. With
  KS > 1 the merger's rejected upper W entries of each top-k step feed a ``TopKCascade`` of KS - 1
  stages (each a registered block, a W-entry run and the same merge network: the lower W stay, the
  upper W go to the next stage a cycle later); stage s ends holding ranks sW .. sW + W - 1.
* **Selection stage** for ball query: per cycle the hits among the L lanes get ranks by a prefix
  count and the first KM are written to L result banks (the ranking key of ball query is the
  index, which the stream already delivers in order).
* **Arg-max stage** for FPS: the running minimum distance array MD (NC entries) is updated in
  place and reduced to (max, lowest index) per row and over rows.
* **Feature-distance stage** (``featdist.FeatureDistance``, only with ``feature_points`` > 0) for
  kNN in feature space: the feature buffer (NF points x C signed features, CH = ceil(C / FL) rows of FL
  features per point) and an FL-lane squared-difference / adder-tree / accumulator pipeline; one point's
  exact distance every CH cycles goes into the gather register (slot by slot, the last block padded with
  dead slots), then the same sorter and top-k merger as kNN.
* **Merge-intersect** for kernel maps: two element streams (sorted input keys, sorted output keys
  shifted by an offset) advanced by a comparator; KOUT (the unique downsampled keys) and the
  scatter table T (per output, the matching input of the current offset) complete it.

Ports (clk/rst: the sync domain; rst is synchronous and clears the controller, not the memories)
-------------------------------------------------------------------------------------------------
    start      In  1      start an op while busy is low; op and parameters are sampled then
    op         In  3      opcode (OP_* below)
    n          In  CW     points in the point buffer, 1..NC (CW = bits of NC)
    m          In  16     FPS: samples (1..n); kNN / ball query: number of queries (>= 1)
    k          In  KW     kNN: k (1..max(W, KM)); ball query: K (1..KM)
    r2         In  DB     ball query: squared radius (DB = 2*CB + 2; saturate r**2 to 2**DB - 1)
    shift      In  5      downsample / strided map: log2 of the stride (0..CB-1)
    ksize      In  3      kernel maps: kernel size K (1..7)
    tstride    In  CB     kernel maps: input tensor stride (>= 1)
    ld_en      In  1      write point ld_addr of the point buffer (only while busy is low)
    ld_addr    In  IB     IB = bits of NC - 1
    ld_data    In  3*CB   {z, y, x}
    q_valid    In  1      kNN / ball query: query point offered
    q_data     In  3*CB   {z, y, x}
    q_ready    Out 1      the unit takes q_data in this cycle if q_valid
    busy       Out 1      from the start edge until the op's last output beat
    done       Out 1      rises with the last beat (busy falls), stays high until the next start
    cycles     Out 32     cycles of the last op: rising edges from the start edge (exclusive) to the
                          edge at which done rose (inclusive) = ``cycles.<op>_cycles(...)``
    out_valid  Out 1      one result beat (registered), no back-pressure
    out_idx    Out IB     FPS: sample index; kNN / ball query: neighbour index;
                          kernel map: input index; downsample: input row
    out_val    Out 3*CB    kNN: squared distance; kernel map: output index; downsample: rank of the
                          row's unique site (the inverse map)
    out_off    Out 9      kernel map: offset number (dx slowest, dz fastest)
    out_coord  Out 3*CB   downsample: the coarse coordinate {z, y, x} (valid with out_flag)
    out_flag   Out 1      ball query: no hit (the golden model's -1 row); downsample: first row of
                          a new unique site (out_coord is the next unique coordinate)
    fld_en     In  1      (feature path only) write feature row fld_addr (only while busy is low)
    fld_addr   In  FA     row p*CH + j holds features j*FL .. j*FL+FL-1 of point p (FA = bits of NF*CH - 1)
    fld_data   In  FL*FB  FB-bit two's-complement features, the lowest-numbered feature in the low bits

Opcodes and output streams
--------------------------
    OP_FPS  (1)  m beats: sel[0..m-1]
    OP_KNN  (2)  per query, k beats (idx, d2) sorted by (d2, idx); k > KS*W in ceil(k/(KS*W)) passes (below)
    OP_BALL (3)  per query, K beats: the first K hits in index order, padded with the first hit;
                 a query without hit gives K beats with out_flag = 1
    OP_DOWN (4)  n beats, in sorted order of the coarse keys: (input row, rank, first, coord);
                 the unique coordinates (first = 1) in order are downsample()'s output, rank is
                 its inverse map
    OP_KSUB (5)  submanifold kernel map (outputs = inputs, K, tensor stride): per offset, the pairs
                 (in, out) in increasing out index
    OP_KSTR (6)  strided kernel map: outputs = downsample(inputs, 2**shift) (the caller's stride
                 times tensor stride), pairs as above
    OP_KNNF (7)  kNN in feature space (only with the feature path; otherwise like "other"): queries are
                 point indices (q_data[IB-1:0] < n) of the feature buffer, n points; per query, k beats
                 (idx, d2) sorted by (d2, idx), d2 = sum_c (f[p][c] - f[q][c])**2 exact
    other        no beat; done after one cycle

Limits: points have 3 coordinates (kNN in feature space: OP_KNNF on the feature buffer); coordinates in
[-2**(CB-1), 2**(CB-1) - 1]; strides are powers of two; kernel-map inputs must be unique
coordinates (as the golden model requires). A cloud larger than NC is refused by the
host side (``accelerators.pointacc.driver``) with an error naming ``point_buffer``.

Schedules (cycle formulas: ``accelerators.pointacc.cycles``, derived from these)
-----------------------------------------------------------------------------------
A row issued in cycle t is read in t+1, its distances/keys are registered in t+2 and t+3 (stage
P3 in t+3). NR = ceil(n/L) rows, NB = ceil(n/W) blocks, NRI = NB*W/L rows.

* kNN, per query: accept (1) + issue NRI rows + 3 (to stage P3) + SL (the registered gather block
  through the sorter) + 1 (last merge step) + 2 (H flushed, seen) + k beats = NRI + SL + k + 7.
  k > W (xyz and feature kNN): the merger's H (stage 0) and the KS - 1 cascade stages hold PS = KS*W
  entries. The last merge step is in cycle T; cascade stage s takes its last block in T + s and is
  settled after it, while beat j is read in T + 3 + j (beat sW, the first of stage s, in T + 3 + sW >
  T + s): the cascade adds no cycle. k <= PS: one pass. k > PS: KP = ceil(k/PS) passes per query; pass
  p outputs ranks pPS .. pPS+PS-1 (PS beats, the last pass the rest), and the last stage's last entry
  (d2, idx) becomes the threshold: in pass p+1 the gather register marks an entry live only if (d2, idx)
  > threshold lexicographically (indices are unique, so the ranks are strict and ties stay with the
  lower index). A pass restarts in one cycle (Q_PASS: merger started and the cascade cleared, row /
  feature counters reset, the stored query kept): per query KP (NRI + SL + 7) + k (feature kNN: KP
  (n*CH + SL + 8) + k). With PS >= max(W, KM) (one pass for every k) the threshold logic is not built.
* Feature kNN (OP_KNNF), per query: accept (1) + issue n*CH row pairs + 4 (distance pipeline) + 1
  (gather register) + SL + 1 (last merge step) + 1 + k beats = n*CH + SL + k + 8.
* Ball query, per query: accept (1) + issue R rows + 4 + K + 1, R = min(NR, r* + 4) where r* is
  the row of the K-th hit (issue stops when the registered hit count reaches K; rows in flight
  drain): R + K + 6 cycles.
* FPS: 1 (sel[0]) + (m - 1) * (NR + 4).
* Sort (DOWN and kernel maps): run formation NRI + SL + 4, then P = ceil(log2 NB) merge passes of
  NB + 3 cycles each; the sorted run ends in S0. Downsample adds a de-duplication pass of n + 1.
* Kernel map: the input sort (after, for OP_KSTR, a masked sort and a silent de-duplication into
  KOUT); per offset 1 + (merge steps) [+ n_out + 1 for the scan of T when the outputs are not in
  index order]. A merge step advances the output pointer (miss or hit) or only the input pointer;
  the offset ends with the step that passes the last output. Outputs are in index order for
  OP_KSTR always and for OP_KSUB when the input keys were strictly increasing in index order
  (checked while sorting); then pairs are emitted at the merge step, otherwise the merge scatters
  (hit, in) to T[out] and a scan of T emits them in out order.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lego.units.bits import C
from accelerators.pointacc.featdist import FeatureDistance
from lego.units.sorter import BitonicSorter, RunMerger, TopKCascade, check_width, pack, quiet_refusal, sorter_latency

__all__ = ["MappingUnit", "OP_FPS", "OP_KNN", "OP_BALL", "OP_DOWN", "OP_KSUB", "OP_KSTR", "OP_KNNF", "OPCODES",
           "OFF_BITS", "M_BITS", "CYCLE_BITS"]

OP_FPS, OP_KNN, OP_BALL, OP_DOWN, OP_KSUB, OP_KSTR, OP_KNNF = 1, 2, 3, 4, 5, 6, 7
OPCODES = {"fps": OP_FPS, "knn": OP_KNN, "ball_query": OP_BALL, "downsample": OP_DOWN,
           "kernel_map_submanifold": OP_KSUB, "kernel_map_strided": OP_KSTR, "knn_feature": OP_KNNF}
OFF_BITS = 9          # offset numbers 0..342 (K <= 7)
M_BITS = 16
CYCLE_BITS = 32
MAX_KERNEL = 7


def _log2(v: int) -> int:
    return v.bit_length() - 1


class _Sig:
    """Named-signal factory with unique names."""

    def __init__(self, m: Module):
        self.m, self.n = m, 0

    def __call__(self, width, expr=None, name="t", signed_=False):
        self.n += 1
        s = Signal(signed(width) if signed_ else unsigned(width), name=f"{name}_{self.n}")
        if expr is not None:
            self.m.d.comb += s.eq(expr)
        return s

    def zx(self, x, width: int, name="zx"):
        """x zero-extended to width as a signal that keeps its width in the Verilog."""
        if len(x) == width:
            return x
        assert len(x) < width, (len(x), width)
        s = self(width, name=name)
        self.m.d.comb += [s[:len(x)].eq(x), s[len(x):].eq(0)]
        return s


class MappingUnit(wiring.Component):
    """The mapping unit; see the module docstring for ports, opcodes and schedules."""

    @quiet_refusal
    def __init__(self, capacity: int = 256, lanes: int = 4, sorter_width: int = 8, max_neighbors: int = 32,
                 coord_bits: int = 21, sorter_stages_per_cycle: int = 1, feature_dims: int = 0,
                 feature_bits: int = 8, feature_lanes: int = 1, feature_points: int = 0, knn_merge_stages: int = 1):
        w = check_width(sorter_width)
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 or lanes & (lanes - 1) or lanes > w:
            raise ValueError(f"distance_lanes: must be a power of two <= sorter_width ({w}), got {lanes!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < w or capacity % w:
            raise ValueError(f"point_buffer: must be a positive multiple of sorter_width ({w}), got {capacity!r}")
        if capacity > 1 << 20:
            raise ValueError(f"point_buffer: must be <= 2**20 points, got {capacity}")
        if not isinstance(max_neighbors, int) or max_neighbors < lanes or max_neighbors % lanes:
            raise ValueError(f"max_neighbors: must be a positive multiple of distance_lanes ({lanes}), "
                             f"got {max_neighbors!r}")
        if not isinstance(coord_bits, int) or not 2 <= coord_bits <= 21:
            raise ValueError(f"coord_bits: must be in 2..21, got {coord_bits!r}")
        self.nc, self.l, self.w, self.km, self.cb = capacity, lanes, w, max_neighbors, coord_bits
        self.spc = sorter_stages_per_cycle
        self.sl = sorter_latency(w, sorter_stages_per_cycle)
        self.ib = max(1, (capacity - 1).bit_length())
        self.cw = capacity.bit_length()
        self.db = 2 * coord_bits + 2
        self.kb = 3 * coord_bits
        self.kw = max(w, max_neighbors).bit_length()
        ks_max = -(-max(w, max_neighbors) // w)
        if isinstance(knn_merge_stages, bool) or not isinstance(knn_merge_stages, int) \
                or not 1 <= knn_merge_stages <= ks_max:
            raise ValueError(f"knn_merge_stages: must be in 1..{ks_max} (ceil(max(sorter_width, max_neighbors) / "
                             f"sorter_width)), got {knn_merge_stages!r}")
        self.ks = knn_merge_stages
        self.feat = None
        if feature_points:
            self.feat = FeatureDistance(feature_dims, feature_bits, feature_lanes, feature_points,
                                        capacity=capacity, key_bits=self.kb)
        ports = {
            "start": In(1), "op": In(3), "n": In(self.cw), "m": In(M_BITS), "k": In(self.kw),
            "r2": In(self.db), "shift": In(5), "ksize": In(3), "tstride": In(coord_bits),
            "ld_en": In(1), "ld_addr": In(self.ib), "ld_data": In(3 * coord_bits),
            "q_valid": In(1), "q_data": In(3 * coord_bits), "q_ready": Out(1),
            "busy": Out(1), "done": Out(1), "cycles": Out(CYCLE_BITS),
            "out_valid": Out(1), "out_idx": Out(self.ib), "out_val": Out(self.kb), "out_off": Out(OFF_BITS),
            "out_coord": Out(3 * coord_bits), "out_flag": Out(1),
        }
        if self.feat is not None:
            ports.update({"fld_en": In(1), "fld_addr": In(self.feat.ab), "fld_data": In(self.feat.row_bits)})
        super().__init__(ports)

    # ------------------------------------------------------------------------------------------
    def elaborate(self, platform) -> Module:  # noqa: C901 (one controller, phases in order)
        m = Module()
        S = _Sig(m)
        NC, L, W, KM, CB = self.nc, self.l, self.w, self.km, self.cb
        IB, CW, DB, KB, KW = self.ib, self.cw, self.db, self.kb, self.kw
        LL, LW = _log2(L), _log2(W)
        LPB = W // L                      # rows per block
        NRC, NBC = NC // L, NC // W       # rows, blocks of the buffers
        RA = max(1, (NRC - 1).bit_length())   # row address bits
        BA = max(1, (NBC - 1).bit_length())   # block address bits
        RWB = NRC.bit_length()            # row counts 0..NRC
        BWB = NBC.bit_length()            # block counts 0..NBC
        E = 1 + KB + IB                   # sort entry
        PW = 3 * CB                       # packed point
        BIAS = 1 << (CB - 1)

        # ---------------------------------------------------------------- sub-units, memories
        m.submodules.sorter = srt = BitonicSorter(W, KB, IB, self.spc)
        KS = self.ks                      # kNN merge stages: the merger + KS - 1 cascade stages
        PS = KS * W                       # kNN neighbours per pass
        thr_on = KS == 1 or PS < max(W, KM)   # some k needs more than one pass: the threshold logic
        if KS == 1:
            m.submodules.merger = mrg = RunMerger(W, KB, IB, len_bits=BWB)
        else:
            m.submodules.merger = mrg = RunMerger(W, KB, IB, len_bits=BWB, reject=True)
            m.submodules.cascade = casc = TopKCascade(W, KB, IB, KS - 1)
            m.d.comb += [casc.in_valid.eq(mrg.rej_valid), casc.in_key.eq(mrg.rej_key),
                         casc.in_idx.eq(mrg.rej_idx), casc.in_live.eq(mrg.rej_live)]
            m.d.comb += casc.clear.eq(mrg.start & mrg.keep_low)     # a kNN pass starts: empty stages 1..
        m.submodules.pb = pb_mem = Memory(shape=unsigned(L * PW), depth=max(2, NRC), init=[])
        pb_w = pb_mem.write_port(granularity=PW)
        pb_r = pb_mem.read_port()
        m.submodules.md = md_mem = Memory(shape=unsigned(L * DB), depth=max(2, NRC), init=[])
        md_w, md_r = md_mem.write_port(), md_mem.read_port()
        s_mem, s_w, s_ra, s_rb = [], [], [], []
        for i in range(2):
            mem = Memory(shape=unsigned(W * E), depth=max(2, NBC), init=[])
            m.submodules[f"sbuf{i}"] = mem
            s_mem.append(mem)
            s_w.append(mem.write_port())
            s_ra.append(mem.read_port())
            s_rb.append(mem.read_port())
        m.submodules.kout = kout_mem = Memory(shape=unsigned(KB), depth=max(2, NC), init=[])
        kout_w, kout_r = kout_mem.write_port(), kout_mem.read_port()
        m.submodules.tmap = t_mem = Memory(shape=unsigned(1 + IB), depth=max(2, NC), init=[])
        t_w, t_r = t_mem.write_port(), t_mem.read_port()
        KMR = KM // L
        KMA = max(1, (KMR - 1).bit_length())
        rb_w, rb_r = [], []
        for b in range(L):
            mem = Memory(shape=unsigned(IB), depth=max(2, KMR), init=[])
            m.submodules[f"rbank{b}"] = mem
            rb_w.append(mem.write_port())
            rb_r.append(mem.read_port())

        # ---------------------------------------------------------------- op registers
        op = Signal(3)
        n = Signal(CW)
        mm = Signal(M_BITS)
        k = Signal(KW)
        r2 = Signal(DB)
        shift = Signal(5)
        ksize = Signal(3)
        tstride = Signal(CB)
        busy = Signal()
        done = Signal()
        cyc = Signal(CYCLE_BITS)
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.cycles.eq(cyc)]
        with m.If(busy):
            m.d.sync += cyc.eq(cyc + 1)

        # derived counts
        nb = S(BWB, name="nb")                           # ceil(n / W)
        m.d.comb += nb.eq(((S.zx(n, CW + 1) + C(W - 1, CW + 1)) >> LW)[:BWB])
        nr = S(RWB, name="nr")                           # ceil(n / L)
        m.d.comb += nr.eq(((S.zx(n, CW + 1) + C(L - 1, CW + 1)) >> LL)[:RWB])
        nri = S(RWB, name="nri")                         # nb * W / L
        m.d.comb += nri.eq(S.zx(Cat(C(0, LW - LL), nb), RWB)[:RWB] if LW > LL else nb[:RWB])

        # host loads
        with m.If(self.ld_en & ~busy):
            m.d.comb += [pb_w.addr.eq(self.ld_addr[LL:LL + RA] if NRC > 1 else 0),
                         pb_w.data.eq(Cat(*[self.ld_data] * L))]
            for lane in range(L):
                m.d.comb += pb_w.en[lane].eq(self.ld_addr[:LL] == lane if LL else 1)

        # ---------------------------------------------------------------- issue + distance pipeline
        iss = Signal()                       # issue row `row` in this cycle
        row = Signal(RWB)
        keymode = Signal()                   # P stages compute sort keys (else distances)
        kshift = Signal(5)                   # key mask shift for this sort
        q = [Signal(signed(CB), name=f"q{d}") for d in range(3)]
        m.d.comb += pb_r.addr.eq(row[:RA] if NRC > 1 else 0)
        v1, row1 = Signal(), Signal(RWB)
        m.d.sync += [v1.eq(iss), row1.eq(row)]
        pts = [[pb_r.data[lane * PW + d * CB: lane * PW + (d + 1) * CB].as_signed() for d in range(3)]
               for lane in range(L)]
        # stage P2: squares and keys
        v2, row2 = Signal(), Signal(RWB)
        live2 = Signal(L)
        sq2 = [[Signal(unsigned(2 * CB), name=f"sq2_{lane}_{d}") for d in range(3)] for lane in range(L)]
        key2 = [Signal(unsigned(KB), name=f"key2_{lane}") for lane in range(L)]
        m.d.sync += [v2.eq(v1), row2.eq(row1)]
        base1 = S(CW + 1, name="base1")                 # index of lane 0 of row1
        m.d.comb += base1.eq(S.zx(Cat(C(0, LL), row1) if LL else row1, CW + 1))
        nz = S.zx(n, CW + 1)
        mask = S(CB, name="kmask")                      # ~(2**shift - 1)
        m.d.comb += mask.eq((C((1 << CB) - 1, CB) << kshift)[:CB])
        for lane in range(L):
            m.d.sync += live2[lane].eq((base1 + C(lane, CW + 1))[:CW + 1] < nz)
            for d in range(3):
                diff = S(CB + 1, pts[lane][d] - q[d], name="diff", signed_=True)
                m.d.sync += sq2[lane][d].eq((diff * diff)[:2 * CB])
            fields = []
            for d in range(3):
                raw = pb_r.data[lane * PW + d * CB: lane * PW + (d + 1) * CB]
                mk = S(CB, raw & mask, name="mk")
                fields.append(Cat(mk[:CB - 1], ~mk[CB - 1]))    # + 2**(CB-1): flip the sign bit
            m.d.sync += key2[lane].eq(Cat(fields[2], fields[1], fields[0]))
        # stage P3: sum / key, lane liveness, indices
        v3, row3 = Signal(), Signal(RWB)
        live3 = Signal(L)
        val3 = [Signal(unsigned(KB), name=f"val3_{lane}") for lane in range(L)]
        m.d.sync += [v3.eq(v2), row3.eq(row2), live3.eq(live2)]
        for lane in range(L):
            s01 = S(2 * CB + 1, S.zx(sq2[lane][0], 2 * CB + 1) + S.zx(sq2[lane][1], 2 * CB + 1), name="s01")
            ssum = S(DB, S.zx(s01, DB) + S.zx(sq2[lane][2], DB), name="ssum")
            m.d.sync += val3[lane].eq(Mux(live2[lane], Mux(keymode, key2[lane], S.zx(ssum, KB)), 0))
        idx3 = []
        for lane in range(L):
            ix = S(IB, name="idx3")
            full = Cat(C(lane, LL), row3) if LL else row3
            m.d.comb += ix.eq(Mux(live3[lane], full[:IB], 0))
            idx3.append(ix)
        d3 = [S(DB, val3[lane][:DB], name="d3") for lane in range(L)]

        # presorted check (keys strictly increasing in index order), on stage P2
        presorted = Signal()
        prev_key = Signal(KB)
        have_prev = Signal()
        chk = Signal()                        # check the keys of this sort
        with m.If(v2 & keymode & chk):
            bad = Const(0, 1)
            for lane in range(L):
                prv = prev_key if lane == 0 else key2[lane - 1]
                ok_prev = have_prev if lane == 0 else Const(1, 1)
                bad = bad | (live2[lane] & ok_prev & (key2[lane] <= prv))
            with m.If(bad):
                m.d.sync += presorted.eq(0)
            m.d.sync += [prev_key.eq(key2[L - 1]), have_prev.eq(1)]

        # gather W/L rows into one sorter block
        g_key = [Signal(unsigned(KB), name=f"gk{i}") for i in range(W)]
        g_idx = [Signal(unsigned(IB), name=f"gi{i}") for i in range(W)]
        g_live = Signal(W)
        g_full = Signal()
        gsel = row3[:LW - LL] if LW > LL else None
        # kNN with k > W: pass p > 0 of a query keeps only the entries ranked after the last entry of
        # pass p - 1, the threshold (thr_key, thr_idx), compared as (distance, index) (thr_v: pass > 0)
        # (with KS merge stages, passes of KS*W; none when one pass serves every k)
        if thr_on:
            thr_v = Signal()
            thr_key = Signal(KB)
            thr_idx = Signal(IB)
        thr_clr = [thr_v.eq(0)] if thr_on else []

        def above(key, idx):
            if not thr_on:
                return Const(1, 1)
            return S(1, ~thr_v | (key > thr_key) | ((key == thr_key) & (idx > thr_idx)), name="abv")

        m.d.sync += g_full.eq(0)
        with m.If(v3 & (op != OP_BALL) & (op != OP_FPS)):
            for j in range(LPB):
                with m.If((gsel == j) if gsel is not None else 1):
                    for lane in range(L):
                        m.d.sync += [g_key[j * L + lane].eq(val3[lane]), g_idx[j * L + lane].eq(idx3[lane]),
                                     g_live[j * L + lane].eq(live3[lane] & above(val3[lane], idx3[lane]))]
            m.d.sync += g_full.eq((gsel == LPB - 1) if gsel is not None else 1)
        F = self.feat
        if F is not None:
            m.submodules.featdist = fd = F
            m.d.comb += [fd.ld_en.eq(self.fld_en & ~busy), fd.ld_addr.eq(self.fld_addr),
                         fd.ld_data.eq(self.fld_data), fd.n.eq(n)]
            fslot = Signal(max(1, LW))        # gather slot of the next feature distance
            fq = Signal(IB)                   # the query's point index (reloaded for each kNN pass)
            fnlast = S(CW, (n - 1)[:CW], name="fnlast")
            f_above = above(S.zx(fd.out_dist, KB), fd.out_idx[:IB])
            with m.If(fd.out_valid):
                for i in range(W):
                    with m.If((fslot == i) if W > 1 else 1):
                        m.d.sync += [g_key[i].eq(S.zx(fd.out_dist, KB)), g_idx[i].eq(fd.out_idx[:IB])]
                        if i == 0:
                            m.d.sync += g_live.eq(S.zx(f_above, W))
                        else:
                            m.d.sync += g_live[i].eq(f_above)
                m.d.sync += fslot.eq((fslot + 1)[:len(fslot)])
                m.d.sync += g_full.eq((fslot == W - 1) | (S.zx(fd.out_idx, CW) == fnlast))
        m.d.comb += [srt.in_valid.eq(g_full), srt.in_key.eq(Cat(*g_key)), srt.in_idx.eq(Cat(*g_idx)),
                     srt.in_live.eq(g_live)]

        # ---------------------------------------------------------------- output beat registers
        m.d.sync += self.out_valid.eq(0)

        def beat(idx=None, val=None, off=None, coord=None, flag=None):
            st = [self.out_valid.eq(1)]
            st.append(self.out_idx.eq(idx if idx is not None else 0))
            st.append(self.out_val.eq(val if val is not None else 0))
            st.append(self.out_off.eq(off if off is not None else 0))
            st.append(self.out_coord.eq(coord if coord is not None else 0))
            st.append(self.out_flag.eq(flag if flag is not None else 0))
            return st

        # ---------------------------------------------------------------- kNN: merger in top-k mode
        qcnt = Signal(M_BITS)                 # queries / FPS samples done
        jout = Signal(max(KW, 1))             # output beat counter (of the pass)
        kleft = Signal(KW)                    # kNN: beats of the query not yet output (this pass's first)
        if thr_on:
            kpass_last = S(1, kleft <= C(PS, KW), name="kplast")   # kNN: this pass is the query's last
        else:
            kpass_last = Const(1, 1)
        h_key = [mrg.h_key[i * KB:(i + 1) * KB] for i in range(W)]
        h_idx = [mrg.h_idx[i * IB:(i + 1) * IB] for i in range(W)]
        if KS > 1:                            # the cascade's stages 1 .. KS-1 after the merger's H
            h_key += [casc.h_key[i * KB:(i + 1) * KB] for i in range((KS - 1) * W)]
            h_idx += [casc.h_idx[i * IB:(i + 1) * IB] for i in range((KS - 1) * W)]

        # ---------------------------------------------------------------- ball query selection stage
        hcnt = Signal(CW)                     # hits so far (saturates at n)
        first_hit = Signal(IB)
        kz = S.zx(k, max(KW, CW + 1))
        hits = [S(1, live3[lane] & (d3[lane] <= r2), name="hit") for lane in range(L)]
        bq_p3 = Signal()
        m.d.comb += bq_p3.eq(v3 & (op == OP_BALL))
        RKW = max(KW, CW + 1)
        prefix = []
        acc = S.zx(hcnt, RKW)
        for lane in range(L):
            prefix.append(acc)
            acc = S(RKW, (acc + S.zx(hits[lane], RKW))[:RKW], name="rank")
        with m.If(bq_p3):
            m.d.sync += hcnt.eq(acc[:CW])
            with m.If(~hcnt.any()):
                fh = Const(0, IB)
                for lane in reversed(range(L)):
                    fh = Mux(hits[lane], idx3[lane], fh)
                m.d.sync += first_hit.eq(fh)
        for b in range(L):
            en = Const(0, 1)
            data = Const(0, IB)
            addr = Const(0, KMA)
            for lane in range(L):
                rk = prefix[lane]
                c = S(1, hits[lane] & (rk < kz) & ((rk[:LL] == b) if LL else 1), name="bqw")
                en = en | c
                data = data | Mux(c, idx3[lane], 0)
                addr = addr | Mux(c, rk[LL:LL + KMA], 0)
            m.d.comb += [rb_w[b].en.eq(bq_p3 & en), rb_w[b].data.eq(data), rb_w[b].addr.eq(addr)]
        hcnt_ge_k = S(1, S.zx(hcnt, RKW) >= kz, name="hge")
        # output side: read bank jout % L at jout / L; beat one cycle later
        bq_rd_v, bq_rd_j = Signal(), Signal(KW)
        for b in range(L):
            m.d.comb += rb_r[b].addr.eq(jout[LL:LL + KMA] if KMA else 0)
        rb_data = Array([rb_r[b].data for b in range(L)])[bq_rd_j[:LL] if LL else 0] if L > 1 else rb_r[0].data
        nhit_out = S(1, S.zx(bq_rd_j, RKW) < S.zx(hcnt, RKW), name="inhit")

        # ---------------------------------------------------------------- FPS arg-max stage
        fps_first = Signal()
        best_d = Signal(DB)
        best_i = Signal(IB)
        best_v = Signal()
        sel = Signal(IB)
        m.d.comb += md_r.addr.eq(row2[:RA] if NRC > 1 else 0)
        md_old = [md_r.data[lane * DB:(lane + 1) * DB] for lane in range(L)]
        dnew = [S(DB, Mux(fps_first | (d3[lane] < md_old[lane]), d3[lane], md_old[lane]), name="dnew")
                for lane in range(L)]
        fps_p3 = Signal()
        m.d.comb += fps_p3.eq(v3 & (op == OP_FPS))
        m.d.comb += [md_w.en.eq(fps_p3), md_w.addr.eq(row3[:RA] if NRC > 1 else 0), md_w.data.eq(Cat(*dnew))]
        cand = [(live3[lane], dnew[lane], idx3[lane]) for lane in range(L)]
        while len(cand) > 1:                 # prefer live, larger d, then the lower index (left)
            nxt = []
            for i in range(0, len(cand), 2):
                (va, da, ia), (vb, dbb, ibb) = cand[i], cand[i + 1]
                take_b = S(1, vb & (~va | (dbb > da)), name="amx")
                nxt.append((S(1, va | vb, name="amv"), S(DB, Mux(take_b, dbb, da), name="amd"),
                            S(IB, Mux(take_b, ibb, ia), name="ami")))
            cand = nxt
        rv, rd, ri = cand[0]
        with m.If(fps_p3 & rv & (~best_v | (rd > best_d))):
            m.d.sync += [best_v.eq(1), best_d.eq(rd), best_i.eq(ri)]

        # ---------------------------------------------------------------- sort buffers
        P = Signal(5)                         # passes of this sort: ceil(log2 nb)
        pcalc = Const(0, 5)
        for p in range(1, BWB + 1):           # smallest p with 2**p >= nb
            pcalc = Mux(S.zx(nb, BWB + 1) > C(1 << (p - 1), BWB + 1), C(p, 5), pcalc)
        pcalc_s = S(5, pcalc, name="pcalc")
        pass_no = Signal(5)
        wblk = Signal(BWB)                    # next block to write
        run_tgt = Signal()                    # S buffer of the run formation: P % 2
        src = Signal()                        # S buffer the pass reads (dst = ~src)
        phase_run, phase_pass = Signal(), Signal()
        # merger A/B sources: sorter (kNN) or S[src] ports
        s_blocks_a = [s_ra[i].data for i in range(2)]
        s_blocks_b = [s_rb[i].data for i in range(2)]
        sa = S(W * E, Mux(src, s_blocks_a[1], s_blocks_a[0]), name="sa")
        sb = S(W * E, Mux(src, s_blocks_b[1], s_blocks_b[0]), name="sb")

        def split_block(blk):
            ks, xs, lv = [], [], []
            for i in range(W):
                word = blk[i * E:(i + 1) * E]
                ks.append(word[IB:IB + KB])
                xs.append(word[:IB])
                lv.append(~word[IB + KB])
            return Cat(*ks), Cat(*xs), Cat(*lv)

        def join_block(keys, idxs, lives):
            return Cat(*[pack(keys[i * KB:(i + 1) * KB], idxs[i * IB:(i + 1) * IB], lives[i]) for i in range(W)])

        ka, xa, la = split_block(sa)
        kbb, xb, lb_ = split_block(sb)
        knn_mode = Signal()
        if F is not None:
            m.d.comb += knn_mode.eq((op == OP_KNN) | (op == OP_KNNF))
        else:
            m.d.comb += knn_mode.eq(op == OP_KNN)
        m.d.comb += [
            mrg.a_valid.eq(Mux(knn_mode, srt.out_valid, phase_pass)),
            mrg.a_key.eq(Mux(knn_mode, srt.out_key, ka)), mrg.a_idx.eq(Mux(knn_mode, srt.out_idx, xa)),
            mrg.a_live.eq(Mux(knn_mode, srt.out_live, la)),
            mrg.b_valid.eq(phase_pass), mrg.b_key.eq(kbb), mrg.b_idx.eq(xb), mrg.b_live.eq(lb_),
        ]
        sorted_blk = S(W * E, join_block(srt.out_key, srt.out_idx, srt.out_live), name="sblk")
        merged_blk = S(W * E, join_block(mrg.out_key, mrg.out_idx, mrg.out_live), name="mblk")
        run_wr = S(1, phase_run & srt.out_valid, name="runwr")
        pass_wr = S(1, phase_pass & mrg.out_valid, name="passwr")
        for i in range(2):
            m.d.comb += [
                s_w[i].en.eq(Mux(run_wr, run_tgt == i, pass_wr & (src != i))),
                s_w[i].addr.eq(wblk[:BA] if NBC > 1 else 0),
                s_w[i].data.eq(Mux(run_wr, sorted_blk, merged_blk)),
            ]
        with m.If(run_wr | pass_wr):
            m.d.sync += wblk.eq((wblk + 1)[:BWB])

        # pass pointers (block numbers): A run [pa, ea), B run [pb, eb); next pair starts at eb
        pa, ea, pbp, eb = Signal(BWB), Signal(BWB), Signal(BWB), Signal(BWB)
        runlen = Signal(BWB + 1)              # 2**pass
        pair_last = Signal()
        more_pairs = Signal()
        pa_n = S(BWB, (pa + mrg.a_ready)[:BWB], name="pan")
        pb_n = S(BWB, (pbp + mrg.b_ready)[:BWB], name="pbn")
        m.d.comb += [pair_last.eq((mrg.a_ready | mrg.b_ready) & (pa_n == ea) & (pb_n == eb)),
                     more_pairs.eq(eb < nb)]

        def clip(x):                          # min(x, nb) for an (BWB+2)-bit x
            xz = S.zx(x, BWB + 2) if len(x) < BWB + 2 else x
            nbz = S.zx(nb, BWB + 2)
            return S(BWB, Mux(xz < nbz, xz, nbz)[:BWB], name="clip")

        def pair_from(start_blk, rl):
            """(pa, ea, pb, eb) of the run pair starting at block start_blk with run length rl."""
            st = S.zx(start_blk, BWB + 2)
            rlz = S.zx(rl, BWB + 2)
            s1 = S(BWB + 2, (st + rlz)[:BWB + 2], name="e1")
            e1 = clip(s1)
            e2 = clip(S(BWB + 2, (s1 + rlz)[:BWB + 2], name="e2"))
            return start_blk[:BWB], e1, e1, e2

        # addresses of the pass reads (next pointer, so data follows without bubbles)
        nxt_pa, nxt_ea, nxt_pb, nxt_eb = pair_from(eb, runlen)
        addr_a = Signal(BA)
        addr_b = Signal(BA)
        # S0 port A/B are also the element streams of dedup and kernel maps (below)
        sa_addr_elem = Signal(BA)
        sb_addr_elem = Signal(BA)
        elem_mode = Signal()                  # S0 ports stream elements (dedup / kernel map)

        # ---------------------------------------------------------------- element streams
        # stream A: S0 entries e = ia (dedup, kernel-map inputs); stream B: S0 entries jb (KSUB outputs)
        ia = Signal(CW + 1)
        jb = Signal(CW + 1)
        lane_a = Signal(max(1, LW))
        lane_b = Signal(max(1, LW))
        ea_words = [s_ra[0].data[i * E:i * E + E - 1] for i in range(W)]   # (key, idx); live is implied
        eb_words = [s_rb[0].data[i * E:i * E + E - 1] for i in range(W)]
        elem_a = S(E - 1, Array(ea_words)[lane_a[:LW]], name="elema")
        elem_b = S(E - 1, Array(eb_words)[lane_b[:LW]], name="elemb")
        ent_a_key, ent_a_idx = elem_a[IB:IB + KB], elem_a[:IB]
        ent_b_key, ent_b_idx = elem_b[IB:IB + KB], elem_b[:IB]
        adv_a, adv_b = Signal(), Signal()
        ia_n = S(CW + 1, Mux(adv_a, (ia + 1)[:CW + 1], ia), name="ian")
        jb_n = S(CW + 1, Mux(adv_b, (jb + 1)[:CW + 1], jb), name="jbn")
        reset_elem = Signal()                 # restart both element streams at 0
        ia_nn = S(CW + 1, Mux(reset_elem, 0, ia_n), name="iann")
        jb_nn = S(CW + 1, Mux(reset_elem, 0, jb_n), name="jbnn")
        m.d.sync += [ia.eq(ia_nn), jb.eq(jb_nn), lane_a.eq(ia_nn[:LW]), lane_b.eq(jb_nn[:LW])]
        m.d.comb += [sa_addr_elem.eq(ia_nn[LW:LW + BA] if NBC > 1 else 0),
                     sb_addr_elem.eq(jb_nn[LW:LW + BA] if NBC > 1 else 0)]
        for i in range(2):
            if i == 0:
                m.d.comb += [s_ra[0].addr.eq(Mux(elem_mode, sa_addr_elem, addr_a) if NBC > 1 else 0),
                             s_rb[0].addr.eq(Mux(elem_mode, sb_addr_elem, addr_b) if NBC > 1 else 0)]
            else:
                m.d.comb += [s_ra[1].addr.eq(addr_a if NBC > 1 else 0),
                             s_rb[1].addr.eq(addr_b if NBC > 1 else 0)]
        # KOUT (strided outputs) streams with jb too
        m.d.comb += kout_r.addr.eq(jb_nn[:max(1, (NC - 1).bit_length())] if NC > 1 else 0)

        # ---------------------------------------------------------------- dedup
        ucnt = Signal(CW)                     # unique sites so far
        prev_u = Signal(KB)
        n_out = Signal(CW)
        dd_first = S(1, ~ia.any() | (ent_a_key != prev_u), name="ddf")
        dd_rank = S(CW, Mux(dd_first, ucnt, (ucnt - 1)[:CW]), name="ddr")
        coord_out = []                        # key fields x (high) .. z (low) -> {z, y, x}
        fx = ent_a_key[2 * CB:3 * CB]
        fy = ent_a_key[CB:2 * CB]
        fz = ent_a_key[:CB]
        for f in (fx, fy, fz):
            coord_out.append(Cat(f[:CB - 1], ~f[CB - 1]))
        dd_coord = S(PW, Cat(coord_out[0], coord_out[1], coord_out[2]), name="ddc")
        dd_emit = Signal()                    # this de-dup emits beats (OP_DOWN)
        kout_aw = max(1, (NC - 1).bit_length())

        # ---------------------------------------------------------------- kernel-map merge
        ix_, iy_, iz_ = Signal(3), Signal(3), Signal(3)
        off_no = Signal(OFF_BITS)
        DW = CB + 4                           # shifted fields, signed
        dxs, dys, dzs, dbase = (Signal(signed(DW), name=n_) for n_ in ("dxs", "dys", "dzs", "dbase"))
        direct = Signal()
        second = Signal()                     # OP_KSTR: the second (input) sort
        n_in = Signal(CW)
        sub = Signal()                        # KSUB: outputs stream from S0 port B
        out_key = S(KB, Mux(sub, ent_b_key, kout_r.data), name="okey")
        out_ix = S(IB, Mux(sub, ent_b_idx, jb[:IB]), name="oidx")
        shifted = []
        sh_ok = Const(1, 1)
        for f, dd in ((out_key[2 * CB:3 * CB], dxs), (out_key[CB:2 * CB], dys), (out_key[:CB], dzs)):
            s_ = S(DW, S.zx(f, DW).as_signed() + dd, name="shf", signed_=True)
            ok = S(1, (s_ >= 0) & (s_ < (1 << CB)), name="shok")
            sh_ok = sh_ok & ok
            shifted.append(s_[:CB])
        b_key = S(KB, Cat(shifted[2], shifted[1], shifted[0]), name="bkey")
        b_ok = S(1, sh_ok, name="bok")
        a_live = S(1, ia < S.zx(n_in, CW + 1), name="alive")
        b_lt = S(1, b_key < ent_a_key, name="blt")
        b_eq = S(1, b_key == ent_a_key, name="beq")
        km_miss = S(1, ~b_ok | ~a_live | b_lt, name="kmiss")
        km_hit = S(1, ~km_miss & b_eq, name="khit")
        jlast = S(1, jb == S.zx((n_out - 1)[:CW], CW + 1), name="jlast")
        # T scatter / scan
        t_aw = max(1, (NC - 1).bit_length())
        scan_u = Signal(CW + 1)
        scan_v, scan_ud = Signal(), Signal(IB)

        # ---------------------------------------------------------------- controller
        q_lastrow = S(RWB, (Mux(op == OP_BALL, nr, nri) - 1)[:RWB], name="qlast")
        qf = [self.q_data[d * CB:(d + 1) * CB].as_signed() for d in range(3)]

        def finish():
            return [busy.eq(0), done.eq(1)]

        tsz_s = S(DW, S.zx(tstride, DW), name="tss").as_signed()
        lastk = S(3, (ksize - 1)[:3], name="lastk")

        def next_offset():
            """Advance (dx, dy, dz) with dz fastest; after the last offset the op is done."""
            with m.If((ix_ == lastk) & (iy_ == lastk) & (iz_ == lastk)):
                m.d.sync += finish()
                m.next = "IDLE"
            with m.Else():
                m.d.sync += off_no.eq((off_no + 1)[:OFF_BITS])
                m.next = "KM_INIT"
                with m.If(iz_ != lastk):
                    m.d.sync += [iz_.eq((iz_ + 1)[:3]), dzs.eq((dzs + tsz_s)[:DW])]
                with m.Else():
                    m.d.sync += [iz_.eq(0), dzs.eq(dbase)]
                    with m.If(iy_ != lastk):
                        m.d.sync += [iy_.eq((iy_ + 1)[:3]), dys.eq((dys + tsz_s)[:DW])]
                    with m.Else():
                        m.d.sync += [iy_.eq(0), dys.eq(dbase), ix_.eq((ix_ + 1)[:3]), dxs.eq((dxs + tsz_s)[:DW])]

        def sort_begin(masked):
            """Statements entering a sort: run formation from row 0."""
            return [row.eq(0), wblk.eq(0), kshift.eq(Mux(masked, shift, 0)), chk.eq(~masked),
                    presorted.eq(~masked), have_prev.eq(0), P.eq(pcalc_s), run_tgt.eq(pcalc_s[0])]

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [op.eq(self.op), n.eq(self.n), mm.eq(self.m), k.eq(self.k), r2.eq(self.r2),
                                 shift.eq(self.shift), ksize.eq(self.ksize), tstride.eq(self.tstride),
                                 busy.eq(1), done.eq(0), cyc.eq(0), qcnt.eq(0), *thr_clr]
                    with m.Switch(self.op):
                        with m.Case(OP_FPS):
                            m.next = "F_START"
                        with m.Case(OP_KNN, OP_BALL, *([OP_KNNF] if F is not None else [])):
                            m.next = "Q_WAIT"
                        with m.Case(OP_DOWN):
                            m.d.sync += [keymode.eq(1)]
                            m.next = "SR_START"
                        with m.Case(OP_KSUB, OP_KSTR):
                            m.d.sync += [keymode.eq(1)]
                            m.next = "SR_START"
                        with m.Default():
                            m.next = "NOP"
            with m.State("NOP"):
                m.d.sync += finish()
                m.next = "IDLE"

            # ---------------- kNN / ball query
            with m.State("Q_WAIT"):
                m.d.comb += self.q_ready.eq(1)
                m.d.sync += [keymode.eq(0), row.eq(0), hcnt.eq(0), *thr_clr, kleft.eq(k)]
                if F is not None:
                    m.d.sync += fslot.eq(0)
                    m.d.comb += [fd.q_idx.eq(self.q_data[:IB]), fd.q_load.eq(self.q_valid)]
                with m.If(self.q_valid):
                    m.d.sync += [q[d].eq(qf[d]) for d in range(3)]
                    if F is not None:
                        m.d.sync += fq.eq(self.q_data[:IB])
                    m.d.comb += [mrg.start.eq(knn_mode), mrg.keep_low.eq(1), mrg.len_a.eq(nb), mrg.len_b.eq(0)]
                    m.next = "Q_ISSUE"
            if thr_on:
                with m.State("Q_PASS"):
                    # kNN, k > KS*W: the next pass over the same query (KS*W more after the threshold)
                    m.d.sync += row.eq(0)
                    if F is not None:
                        m.d.sync += fslot.eq(0)
                        m.d.comb += [fd.q_idx.eq(fq), fd.q_load.eq(1)]
                    m.d.comb += [mrg.start.eq(1), mrg.keep_low.eq(1), mrg.len_a.eq(nb), mrg.len_b.eq(0)]
                    m.next = "Q_ISSUE"
            with m.State("Q_ISSUE"):
                with m.If((op == OP_BALL) & hcnt_ge_k):
                    m.next = "Q_DRAIN"
                if F is not None:
                    with m.Elif(op == OP_KNNF):
                        m.d.comb += fd.issue.eq(1)
                        with m.If(fd.issue_last):
                            m.next = "Q_DRAIN"
                with m.Else():
                    m.d.comb += iss.eq(1)
                    m.d.sync += row.eq((row + 1)[:RWB])
                    with m.If(row == q_lastrow):
                        m.next = "Q_DRAIN"
            with m.State("Q_DRAIN"):
                m.d.sync += jout.eq(0)
                with m.If(knn_mode if F is not None else (op == OP_KNN)):
                    with m.If(mrg.out_valid):
                        m.next = "KNN_OUT"
                with m.Elif(~v1 & ~v2 & ~v3):
                    m.next = "BQ_OUT"
            with m.State("KNN_OUT"):
                if KS == 1:
                    hk = Array(h_key)[jout[:LW]] if W > 1 else h_key[0]
                    hi_ = Array(h_idx)[jout[:LW]] if W > 1 else h_idx[0]
                else:
                    jsel = jout[:min(len(jout), (PS - 1).bit_length())]
                    hk, hi_ = Array(h_key)[jsel], Array(h_idx)[jsel]
                m.d.sync += beat(idx=hi_, val=hk)
                m.d.sync += jout.eq((jout + 1)[:len(jout)])
                with m.If(kpass_last):
                    with m.If(jout == (kleft - 1)[:KW]):
                        m.d.sync += qcnt.eq((qcnt + 1)[:M_BITS])
                        with m.If(qcnt == (mm - 1)[:M_BITS]):
                            m.d.sync += finish()
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "Q_WAIT"
                if thr_on:
                    with m.Elif(jout == C(PS - 1, len(jout))):
                        # KS*W beats out, more to come: the pass's last entry is the next pass's threshold
                        m.d.sync += [thr_v.eq(1), thr_key.eq(h_key[PS - 1]), thr_idx.eq(h_idx[PS - 1]),
                                     kleft.eq((kleft - PS)[:KW])]
                        m.next = "Q_PASS"
            with m.State("BQ_OUT"):
                # cycle j (< K): read RB[j]; cycle j+1: beat j
                m.d.sync += [bq_rd_v.eq(jout < k), bq_rd_j.eq(jout[:KW])]
                m.d.sync += jout.eq((jout + 1)[:len(jout)])
                with m.If(bq_rd_v):
                    m.d.sync += beat(idx=Mux(hcnt.any(), Mux(nhit_out, rb_data, first_hit), 0), flag=~hcnt.any())
                    with m.If(bq_rd_j == (k - 1)[:KW]):
                        m.d.sync += [qcnt.eq((qcnt + 1)[:M_BITS]), bq_rd_v.eq(0)]
                        with m.If(qcnt == (mm - 1)[:M_BITS]):
                            m.d.sync += finish()
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "Q_WAIT"

            # ---------------- FPS
            with m.State("F_START"):
                m.d.sync += beat(idx=C(0, IB))
                m.d.sync += [sel.eq(0), qcnt.eq(1), keymode.eq(0), fps_first.eq(1), best_v.eq(0), row.eq(0)]
                with m.If(mm <= 1):
                    m.d.sync += finish()
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += [pb_r.addr.eq(0)]
                    m.next = "F_LOADQ"
            with m.State("F_LOADQ"):
                lanesel = sel[:LL] if LL else None
                for d in range(3):
                    if lanesel is None:
                        m.d.sync += q[d].eq(pts[0][d])
                    else:
                        m.d.sync += q[d].eq(Array([pts[lane][d] for lane in range(L)])[lanesel])
                m.d.comb += iss.eq(1)
                m.d.sync += row.eq(1)
                with m.If(nr == 1):
                    m.next = "F_DRAIN"
                with m.Else():
                    m.next = "F_ISSUE"
            with m.State("F_ISSUE"):
                m.d.comb += iss.eq(1)
                m.d.sync += row.eq((row + 1)[:RWB])
                with m.If(row == (nr - 1)[:RWB]):
                    m.next = "F_DRAIN"
            with m.State("F_DRAIN"):
                with m.If(v3 & (row3 == (nr - 1)[:RWB])):
                    m.next = "F_SEL"
            with m.State("F_SEL"):
                m.d.sync += beat(idx=best_i)
                m.d.sync += [sel.eq(best_i), qcnt.eq((qcnt + 1)[:M_BITS]), fps_first.eq(0), best_v.eq(0), row.eq(0)]
                m.d.comb += pb_r.addr.eq(best_i[LL:LL + RA] if NRC > 1 else 0)
                with m.If(qcnt == (mm - 1)[:M_BITS]):
                    m.d.sync += finish()
                    m.next = "IDLE"
                with m.Else():
                    m.next = "F_LOADQ"

            # ---------------- sort: run formation, merge passes
            with m.State("SR_START"):
                # first sort of the op: the masked one for OP_DOWN and OP_KSTR, else unmasked
                masked = (op == OP_DOWN) | (op == OP_KSTR)
                m.d.sync += sort_begin(masked)
                m.d.sync += [n_in.eq(n), n_out.eq(n), sub.eq(op == OP_KSUB)]
                m.d.sync += [second.eq(0)]
                m.next = "SR_ISSUE"
            with m.State("SR_ISSUE"):
                m.d.comb += [iss.eq(1), phase_run.eq(1)]
                m.d.sync += row.eq((row + 1)[:RWB])
                with m.If(row == (nri - 1)[:RWB]):
                    m.next = "SR_WAIT"
            with m.State("SR_WAIT"):
                m.d.comb += phase_run.eq(1)
                with m.If(srt.out_valid & (wblk == (nb - 1)[:BWB])):
                    m.d.sync += [pass_no.eq(0), runlen.eq(1), src.eq(run_tgt)]
                    with m.If(P == 0):
                        m.next = "SORTED"
                    with m.Else():
                        m.next = "PASS_START"
            with m.State("PASS_START"):
                p0a, p0ea, p0b, p0eb = pair_from(C(0, BWB), runlen)
                m.d.comb += [addr_a.eq(p0a[:BA]), addr_b.eq(p0b[:BA])]
                m.d.comb += [mrg.start.eq(1), mrg.keep_low.eq(0),
                             mrg.len_a.eq((p0ea - p0a)[:BWB]), mrg.len_b.eq((p0eb - p0b)[:BWB])]
                m.d.sync += [pa.eq(p0a), ea.eq(p0ea), pbp.eq(p0b), eb.eq(p0eb), wblk.eq(0)]
                m.next = "PASS_RUN"
            with m.State("PASS_RUN"):
                m.d.comb += phase_pass.eq(1)
                with m.If(pair_last & more_pairs):
                    m.d.comb += [addr_a.eq(nxt_pa[:BA]), addr_b.eq(nxt_pb[:BA]),
                                 mrg.start.eq(1), mrg.keep_low.eq(0),
                                 mrg.len_a.eq((nxt_ea - nxt_pa)[:BWB]), mrg.len_b.eq((nxt_eb - nxt_pb)[:BWB])]
                    m.d.sync += [pa.eq(nxt_pa), ea.eq(nxt_ea), pbp.eq(nxt_pb), eb.eq(nxt_eb)]
                with m.Else():
                    m.d.comb += [addr_a.eq(pa_n[:BA]), addr_b.eq(pb_n[:BA])]
                    m.d.sync += [pa.eq(pa_n), pbp.eq(pb_n)]
                with m.If(mrg.out_valid & (wblk == (nb - 1)[:BWB])):
                    m.d.sync += [pass_no.eq((pass_no + 1)[:5]), runlen.eq(Cat(C(0, 1), runlen[:BWB])),
                                 src.eq(~src)]
                    with m.If(pass_no == (P - 1)[:5]):
                        m.next = "SORTED"
                    with m.Else():
                        m.next = "PASS_START"
            with m.State("SORTED"):
                # the sorted run is in S0; what follows depends on the op and on which sort this was
                m.d.comb += [elem_mode.eq(1), reset_elem.eq(1)]
                m.d.sync += [ucnt.eq(0), dd_emit.eq(op == OP_DOWN)]
                with m.If((op == OP_DOWN) | ((op == OP_KSTR) & ~second)):
                    m.next = "DEDUP"
                with m.Else():
                    m.next = "KM_START"
            with m.State("DEDUP"):
                m.d.comb += [elem_mode.eq(1), adv_a.eq(1)]
                with m.If(dd_emit):
                    m.d.sync += beat(idx=ent_a_idx, val=S.zx(dd_rank, KB),
                                     coord=dd_coord, flag=dd_first)
                with m.If(dd_first):
                    m.d.sync += [ucnt.eq((ucnt + 1)[:CW]), prev_u.eq(ent_a_key)]
                    m.d.comb += [kout_w.en.eq(1), kout_w.addr.eq(ucnt[:kout_aw] if NC > 1 else 0),
                                 kout_w.data.eq(ent_a_key)]
                with m.If(ia == S.zx((n - 1)[:CW], CW + 1)):
                    with m.If(op == OP_DOWN):
                        m.d.sync += finish()
                        m.next = "IDLE"
                    with m.Else():               # OP_KSTR: outputs known; now sort the inputs
                        m.d.sync += [n_out.eq((ucnt + dd_first)[:CW]), second.eq(1)]
                        m.d.sync += sort_begin(Const(0, 1))
                        m.d.sync += [chk.eq(0)]
                        m.next = "SR_ISSUE"

            # ---------------- kernel map
            with m.State("KM_START"):
                # direct emission when the outputs stream in index order
                cc = Mux(ksize[0], ksize[1:3], 0)                    # K // 2 for odd K, else 0
                tsz = S(DW, S.zx(tstride, DW), name="tsz")
                ctz = S(DW, (Mux(cc[0], tsz, 0) + Mux(cc[1], Cat(C(0, 1), tsz[:DW - 1]), 0))[:DW], name="ctz")
                nb_ = S(DW, (-ctz.as_signed())[:DW], name="negc")
                m.d.sync += [dbase.eq(nb_.as_signed()), dxs.eq(nb_.as_signed()), dys.eq(nb_.as_signed()),
                             dzs.eq(nb_.as_signed()), ix_.eq(0), iy_.eq(0), iz_.eq(0), off_no.eq(0),
                             direct.eq((op == OP_KSTR) | presorted)]
                m.d.comb += [elem_mode.eq(1), reset_elem.eq(1)]
                m.next = "KM_RUN"
            with m.State("KM_INIT"):
                m.d.comb += [elem_mode.eq(1), reset_elem.eq(1)]
                m.next = "KM_RUN"
            with m.State("KM_RUN"):
                m.d.comb += elem_mode.eq(1)
                m.d.comb += [adv_b.eq(km_miss | km_hit), adv_a.eq(~km_miss)]
                with m.If(direct):
                    with m.If(km_hit):
                        m.d.sync += beat(idx=ent_a_idx, val=S.zx(out_ix, KB), off=off_no)
                with m.Else():
                    m.d.comb += [t_w.en.eq(km_miss | km_hit), t_w.addr.eq(out_ix[:t_aw] if NC > 1 else 0),
                                 t_w.data.eq(Cat(ent_a_idx, km_hit))]
                with m.If((km_miss | km_hit) & jlast):
                    with m.If(direct):
                        next_offset()
                    with m.Else():
                        m.d.sync += [scan_u.eq(0), scan_v.eq(0)]
                        m.next = "KM_SCAN"
            with m.State("KM_SCAN"):
                m.d.comb += [t_r.addr.eq(scan_u[:t_aw] if NC > 1 else 0)]
                m.d.sync += [scan_v.eq(scan_u < S.zx(n_out, CW + 1)), scan_ud.eq(scan_u[:IB]),
                             scan_u.eq((scan_u + 1)[:CW + 1])]
                with m.If(scan_v & t_r.data[IB]):
                    m.d.sync += beat(idx=t_r.data[:IB], val=S.zx(scan_ud, KB), off=off_no)
                with m.If(scan_v & (S.zx(scan_ud, CW + 1) == S.zx((n_out - 1)[:CW], CW + 1))):
                    m.d.sync += [scan_v.eq(0)]
                    next_offset()
        return m

"""Quick-select top-k engine (hand-built Amaranth unit), first written for SpAtten (token, head and local
V pruning) and usable by any accelerator that needs the k largest of n unsigned values.

Bit- and cycle-exact with ``sw_reference.spatten.topk.topk_engine``: P parallel comparators split each
row of P elements into >, == and < the pivot; two zero eliminators (prefix-sum compaction + rotation into
P single-element-wide memory banks) append the '>' side and the '<' side to two buffers. Four work
buffers form two pairs used alternately (read one pair's chosen side, write the other pair). An input
buffer keeps the original data for the output pass, which emits exactly k elements in original order,
compacted per row (``out_count`` valid lanes of ``out_data``/``out_index`` each ``out_valid`` cycle).
Ties go to the lower index. Round 0 takes element 0 as its pivot; later rounds take element 0 of row
``(lfsr * nrows) >> 16`` of the surviving side (a 16-bit Galois LFSR, ``LFSR_SEED``/``LFSR_TAPS``).

Protocol: pulse ``start`` with ``n`` (1..max_n) and ``k`` (1..n) while ``busy`` is low; then present
ceil(n/P) rows on ``in_data`` (lane i = element row*P+i) with ``in_valid`` while ``in_ready``. ``done``
is high for one cycle at the end; ``kth`` holds the k-th largest value. With rows presented as soon as
``in_ready``, ``done`` comes 2*ceil(n/P) + 3 + sum over rounds r >= 1 of (ceil(len_r/P) + 3) cycles after
the ``start`` cycle (len_r: the elements round r scans).
"""
from __future__ import annotations

from amaranth import Array, Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib.memory import Memory

from sw_reference.spatten.topk import LFSR_SEED, LFSR_TAPS

from .bits import one, widen


class _Names:
    """Names of the signals a helper materializes, numbered per engine (so that the same engine gives the
    same Verilog, whatever was elaborated before it in the process)."""

    def __init__(self):
        self.n = 0

    def sig(self, m, expr, width, name):
        """Materialize an expression once (Amaranth does not share repeated sub-expressions)."""
        self.n += 1
        s = Signal(width, name=f"{name}_{self.n}")
        m.d.comb += s.eq(expr)
        return s

    def popcount(self, m, bits, width):
        total = Const(0, width)
        for b in bits:
            total = (total + one(b, width))[:width]
        return self.sig(m, total, width, "popc")

    def prefix(self, m, bits, width):
        """Exclusive prefix sums of a list of 1-bit signals, as width-bit signals."""
        out, acc = [], Const(0, width)
        for b in bits:
            out.append(acc)
            acc = self.sig(m, (acc + one(b, width))[:width], width, "pre")
        return out


class TopKEngine(Elaboratable):
    def __init__(self, parallelism: int = 16, width: int = 16, max_n: int = 64):
        bad = ""
        if parallelism < 1 or parallelism & (parallelism - 1):
            bad = f"parallelism must be a power of two, got {parallelism}"
        elif max_n < parallelism or max_n % parallelism:
            bad = f"max_n must be a positive multiple of parallelism={parallelism}, got {max_n}"
        elif width < 1:
            bad = f"width must be >= 1, got {width}"
        if bad:
            self._MustUse__silence = True      # never elaborated: no UnusedElaboratable warning
            raise ValueError(bad)
        self.p, self.w, self.max_n = parallelism, width, max_n
        self.lp = (parallelism - 1).bit_length()
        self.depth = max(2, max_n // parallelism)
        self.aw = (self.depth - 1).bit_length()
        self.lw = max_n.bit_length()
        self.iw = max(1, (max_n - 1).bit_length())
        p, w = parallelism, width
        self.start = Signal()
        self.n = Signal(self.lw)
        self.k = Signal(self.lw)
        self.in_valid = Signal()
        self.in_ready = Signal()
        self.in_data = Signal(p * w)
        self.out_valid = Signal()
        self.out_count = Signal(self.lp + 1)
        self.out_data = Signal(p * w)
        self.out_index = Signal(p * self.iw)
        self.done = Signal()
        self.busy = Signal()
        self.kth = Signal(w)

    def ports(self):
        return [self.start, self.n, self.k, self.in_valid, self.in_ready, self.in_data, self.out_valid,
                self.out_count, self.out_data, self.out_index, self.done, self.busy, self.kth]

    def io(self):
        outs = [self.in_ready, self.out_valid, self.out_count, self.out_data, self.out_index, self.done,
                self.busy, self.kth]
        return [(s, "o" if any(s is o for o in outs) else "i") for s in self.ports()]

    def _banks(self, m, name):
        banks = []
        for b in range(self.p):
            mem = Memory(shape=self.w, depth=self.depth, init=[])
            m.submodules[f"{name}_{b}"] = mem
            banks.append((mem.write_port(), mem.read_port(transparent_for=())))
        return banks

    def _compact_write(self, m, nm, banks, x, mask, cnt, enable, side):
        """Zero eliminator: append the masked lanes of x at position cnt of a banked buffer."""
        p, lp = self.p, self.lp
        pre = nm.prefix(m, mask, lp + 1)
        c = nm.popcount(m, mask, self.lw)
        comp = []
        for j in range(p):
            v = Const(0, self.w)
            for i in range(p):
                v = v | Mux(mask[i] & (pre[i] == j), x[i], 0)
            comp.append(nm.sig(m, v, self.w, "comp"))
        comp_a = Array(comp)
        for b, (wp, _) in enumerate(banks):
            tag = f"{side}_{b}"
            j = Signal(lp, name=f"j_{tag}")
            m.d.comb += j.eq((b - cnt[:lp]) if lp else 0)
            jw = widen(m, j, self.lw, f"jw_{tag}")     # cnt, c and the lane offset j at one width
            addr = Signal(self.aw, name=f"addr_{tag}")  # the bank row of position cnt + j
            m.d.comb += addr.eq((cnt + jw)[lp:lp + self.aw])
            m.d.comb += [
                wp.en.eq(enable & (jw < c)),
                wp.addr.eq(addr),
                wp.data.eq(comp_a[j]),
            ]
        return c

    def elaborate(self, platform):
        m = Module()
        nm = _Names()
        p, w, lp, lw = self.p, self.w, self.lp, self.lw
        inbuf = self._banks(m, "inbuf")
        work = [self._banks(m, f"work{i}") for i in range(4)]

        n = Signal(lw)
        length = Signal(lw)
        t = Signal(lw)
        need_eq = Signal(lw + 1)    # compared with ties + prefix (lw + 1 bits); holds 1..max_n
        ties = Signal(lw)
        cnt_g, cnt_e, cnt_l = Signal(lw), Signal(lw), Signal(lw)
        pivot = Signal(w)
        row = Signal(self.aw + 1)
        dst = Signal()
        src = Signal(2)
        lfsr = Signal(16, init=LFSR_SEED)
        kth = Signal(w)
        m.d.comb += self.kth.eq(kth)

        nrows = Signal(self.aw + 2)
        m.d.comb += nrows.eq((length + (p - 1)) >> lp)
        last_row = Signal()
        m.d.comb += last_row.eq(row + 1 == nrows)
        raddr = Signal(self.aw)
        for banks in [inbuf] + work:
            for _, rp in banks:
                m.d.comb += rp.addr.eq(raddr)

        # the row being scanned: the input stream in round 0, else the source work buffer
        in_lanes = [self.in_data[i * w:(i + 1) * w] for i in range(p)]
        src_lanes = [Array([work[s][i][1].data for s in range(4)])[src] for i in range(p)]
        in_round0 = Signal()
        scan_en = Signal()
        x = [Signal(w, name=f"x{i}") for i in range(p)]
        for i in range(p):
            m.d.comb += x[i].eq(Mux(in_round0, in_lanes[i], src_lanes[i]))
        valid = [Signal(name=f"v{i}") for i in range(p)]
        vw = max(lp + len(row), lw)                 # element index row*P+i and length at one width
        length_w = widen(m, length, vw, "length_w")
        for i in range(p):
            m.d.comb += valid[i].eq(widen(m, Cat(Const(i, lp), row), vw, f"elem{i}") < length_w)
        piv = Signal(w)
        m.d.comb += piv.eq(Mux(in_round0 & (row == 0), in_lanes[0], pivot))
        gt = [Signal(name=f"gt{i}") for i in range(p)]
        eq = [Signal(name=f"eq{i}") for i in range(p)]
        lt = [Signal(name=f"lt{i}") for i in range(p)]
        for i in range(p):
            m.d.comb += [gt[i].eq(valid[i] & (x[i] > piv)), eq[i].eq(valid[i] & (x[i] == piv)),
                         lt[i].eq(valid[i] & (x[i] < piv))]
        # zero eliminators for the '>' and '<' sides, routed to the destination pair
        g_en = [Signal(name=f"g_en{b}") for b in range(p)]
        l_en = [Signal(name=f"l_en{b}") for b in range(p)]
        shadow_g = [(_Port(), None) for _ in range(p)]
        shadow_l = [(_Port(), None) for _ in range(p)]
        for b in range(p):
            shadow_g[b][0].make(self.aw, w, f"sg{b}")
            shadow_l[b][0].make(self.aw, w, f"sl{b}")
        cg = self._compact_write(m, nm, shadow_g, x, gt, cnt_g, scan_en, "g")
        cl = self._compact_write(m, nm, shadow_l, x, lt, cnt_l, scan_en, "l")
        ce = nm.popcount(m, eq, lw)
        for b in range(p):
            for pair in range(2):
                for side, sh in ((0, shadow_g), (1, shadow_l)):
                    wp = work[2 * pair + side][b][0]
                    m.d.comb += [wp.en.eq(sh[b][0].en & (dst == pair)), wp.addr.eq(sh[b][0].addr),
                                 wp.data.eq(sh[b][0].data)]
        # input buffer writes (round 0)
        for b in range(p):
            wp = inbuf[b][0]
            m.d.comb += [wp.addr.eq(row[:self.aw]), wp.data.eq(in_lanes[b])]

        # output pass: keep > kth, and the first need_eq elements equal to kth
        o_x = [inbuf[i][1].data for i in range(p)]
        o_gt = [nm.sig(m, valid[i] & (o_x[i] > kth), 1, 'ogt') for i in range(p)]
        o_eq = [Signal(name=f"oeq{i}") for i in range(p)]
        for i in range(p):
            m.d.comb += o_eq[i].eq(valid[i] & (o_x[i] == kth))
        o_pre = nm.prefix(m, o_eq, lw)
        o_keq = [Signal(name=f"okeq{i}") for i in range(p)]
        keep = [Signal(name=f"keep{i}") for i in range(p)]
        for i in range(p):
            m.d.comb += [o_keq[i].eq(o_eq[i] & ((ties + o_pre[i]) < need_eq)),
                         keep[i].eq(o_gt[i] | o_keq[i])]
        k_pre = nm.prefix(m, keep, lp + 1)
        for j in range(p):
            dv, iv = Const(0, w), Const(0, self.iw)
            for i in range(p):
                sel = keep[i] & (k_pre[i] == j)
                dv = dv | Mux(sel, o_x[i], 0)
                iv = iv | Mux(sel, Cat(Const(i, lp), row)[:self.iw] if lp else row[:self.iw], 0)
            m.d.comb += [self.out_data[j * w:(j + 1) * w].eq(dv),
                         self.out_index[j * self.iw:(j + 1) * self.iw].eq(iv)]
        m.d.comb += self.out_count.eq(nm.popcount(m, keep, lp + 1))

        t_w = widen(m, t, lw + 1, "t_w")           # t against cnt_g + cnt_e (lw + 1 bits)
        with m.FSM(name="topk_fsm"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [n.eq(self.n), length.eq(self.n), t.eq(self.k - 1), row.eq(0), dst.eq(0),
                                 cnt_g.eq(0), cnt_e.eq(0), cnt_l.eq(0), lfsr.eq(LFSR_SEED)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.in_ready.eq(1), in_round0.eq(1),
                             scan_en.eq(self.in_valid)]
                for b in range(p):
                    m.d.comb += inbuf[b][0].en.eq(self.in_valid)
                with m.If(self.in_valid):
                    m.d.sync += [cnt_g.eq(cnt_g + cg), cnt_e.eq(cnt_e + ce), cnt_l.eq(cnt_l + cl)]
                    with m.If(row == 0):
                        m.d.sync += pivot.eq(in_lanes[0])
                    with m.If(last_row):
                        m.next = "DECIDE"
                    with m.Else():
                        m.d.sync += row.eq(row + 1)
            with m.State("DECIDE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [cnt_g.eq(0), cnt_e.eq(0), cnt_l.eq(0), dst.eq(~dst), row.eq(0),
                             lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ LFSR_TAPS, lfsr >> 1))]
                with m.If(t < cnt_g):
                    m.d.sync += [length.eq(cnt_g), src.eq(Cat(Const(0, 1), dst))]
                    m.next = "PIV0"
                with m.Elif(t_w < cnt_g + cnt_e):
                    m.d.sync += [kth.eq(pivot), need_eq.eq(t - cnt_g + 1), length.eq(n), ties.eq(0)]
                    m.next = "OUT0"
                with m.Else():
                    m.d.sync += [length.eq(cnt_l), src.eq(Cat(Const(1, 1), dst)), t.eq(t - cnt_g - cnt_e)]
                    m.next = "PIV0"
            with m.State("PIV0"):
                m.d.comb += [self.busy.eq(1), raddr.eq((lfsr * nrows) >> 16)]
                m.next = "PIV1"
            with m.State("PIV1"):
                m.d.comb += [self.busy.eq(1), raddr.eq(0)]
                m.d.sync += pivot.eq(src_lanes[0])
                m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += [self.busy.eq(1), scan_en.eq(1), raddr.eq(row + 1)]
                m.d.sync += [cnt_g.eq(cnt_g + cg), cnt_e.eq(cnt_e + ce), cnt_l.eq(cnt_l + cl), row.eq(row + 1)]
                with m.If(last_row):
                    m.next = "DECIDE"
            with m.State("OUT0"):
                m.d.comb += [self.busy.eq(1), raddr.eq(0)]
                m.next = "OUTS"
            with m.State("OUTS"):
                m.d.comb += [self.busy.eq(1), self.out_valid.eq(1), raddr.eq(row + 1)]
                m.d.sync += [ties.eq(ties + nm.popcount(m, o_keq, lw)), row.eq(row + 1)]
                with m.If(last_row):
                    m.next = "FIN"
            with m.State("FIN"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m


class _Port:
    """Stand-in write port (en/addr/data signals) that the zero eliminator drives before routing."""

    def make(self, aw, w, name):
        self.en = Signal(name=f"{name}_en")
        self.addr = Signal(aw, name=f"{name}_addr")
        self.data = Signal(w, name=f"{name}_data")

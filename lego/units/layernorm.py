"""LayerNormUnit: a streaming, bit-exact integer row LayerNorm (numerics of sw_reference.layernorm_fx).

Numerics (per row of N signed x[i] with per-element gamma[i], beta[i]; F = frac_bits, OS = out_shift
and eps fixed at generation time; rshr(v, k) = floor(v / 2**k + 1/2)):
    S1 = sum x;  S2 = sum x^2;  Q' = N*S2 - S1^2 + eps;  D[i] = N*x[i] - S1
    L = bit_length(Q');  s = (L - 15) >> 1;  Qn = floor(Q' / 4**s)  (in [2**14, 2**16))
    r = floor(2**23 / sqrt(Qn))  (17 bits);  z[i] = rshr(D[i] * r, 23 - F + s)
    y[i] = clamp(rshr(z[i] * gamma[i] + beta[i], OS), -2**(out_bits-1), 2**(out_bits-1) - 1)

Ports (amaranth.lib.wiring signature; clock/reset are the ``sync`` domain's ``clk``/``rst``):
    in_valid  In  1                 x[i], gamma[i], beta[i] are offered (i = 0..N-1 in order)
    in_data   In  signed(in_bits)   x[i]
    in_gamma  In  signed(gamma_bits) gamma[i] (e.g. int8 with GF implied fraction bits)
    in_beta   In  signed(beta_bits) beta[i], at the scale of z * gamma (F + GF fraction bits)
    in_ready  Out 1                 high exactly while the unit is in its input phase
    out_valid Out 1                 y[out_index] is on out_data (one cycle each, i = 0..N-1 in order)
    out_data  Out signed(out_bits)
    out_index Out unsigned(max(1, ceil(log2 N)))
    busy      Out 1                 a row is in flight: high from the cycle after the first element of a
                                    row is accepted through the cycle of its last out_valid

gamma and beta travel with x (the controller streams them from its parameter buffer in step with the
row), so every row may use its own; they are stored with x in the row buffer.

Schedule (cycle 0 = the cycle the first element is accepted, in_valid held high):
    IN     N cycles    accept x[i] (in_valid & in_ready), write {beta, gamma, x} to the row buffer,
                       S1 += x, S2 += x*x
    STAT   2 cycles    (1) Q' = N*S2 - S1^2 + eps registered; (2) L by a priority encoder,
                       Qn = (Q' << 14) >> ((L - 1) & ~1), shift = (L + 31 - 2F) >> 1 = 23 - F + s
    ISQRT  17 cycles   restoring shift-add inverse square root, one bit of r per cycle (bits 16..0):
                       trial = P + Ab + T2; if trial <= 2**46: P = trial, Ab += 2*T2, bit = 1;
                       then Ab >>= 1, T2 >>= 2 (P = r^2 Qn, Ab = r Qn 2**(b+1), T2 = Qn 4**b)
    OUT    N + 4       read {beta, gamma, x}[i] (1) -> D*r registered (2) -> z = rshr(D*r, shift)
                       registered (3) -> y = clamp(rshr(z*gamma + beta, OS)) registered (4): out_valid
                       for i = 0..N-1 on cycles N+23+i (last on 2N+22)
The unit is back in IN (in_ready high) on the cycle after the last out_valid, so rows run back to back
with a period of ``layernorm_cycles(N) = 2*N + 23`` cycles, independent of the data. While in IN,
elements may arrive with gaps (in_valid low): each gap cycle between the first and the last accepted
element of a row adds one cycle to that row's latency. Elements offered outside IN are not accepted.

Storage: one N-deep row buffer (``amaranth.lib.memory.Memory``, width in_bits + gamma_bits +
beta_bits, one synchronous read port and one write port).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from sw_reference.layernorm_fx import K_ISQRT, MAX_FRAC, R_BITS

from .bits import C
from .rowunit import RowUnit, advance

STAT_CYCLES = 2
ISQRT_CYCLES = R_BITS           # 17: bits 16..0 of r
OUT_PIPE = 4                    # read -> D*r -> z -> y
W_ISQRT = 16 + 2 * (R_BITS - 1) + 2    # 50: trial = P + Ab + T2 < 2**46 + 2**47 + 2**48; P, Ab, T2 and
                                       # trial all at this width (P <= 2**46, Ab <= 2**47, T2 < 2**48)


def layernorm_cycles(N: int) -> int:
    """Cycles from the first accepted element (in_valid held high) to the cycle after the last
    out_valid; also the row period when rows are offered back to back. = 2*N + 23."""
    if not 1 <= N <= 4096:
        raise ValueError(f"layernorm_cycles: N must be in 1..4096, got {N}")
    return N + STAT_CYCLES + ISQRT_CYCLES + N + OUT_PIPE


class LayerNormUnit(RowUnit):
    """Row LayerNorm of N signed inputs; see the module docstring for numerics, ports and schedule."""

    row_cycles = staticmethod(layernorm_cycles)

    def __init__(self, N: int, out_shift: int, *, frac_bits: int = 10, eps: int = 1, in_bits: int = 16,
                 gamma_bits: int = 8, beta_bits: int = 24, out_bits: int = 8):
        if not 1 <= N <= 4096:
            raise ValueError(f"LayerNormUnit: N must be in 1..4096, got {N}")
        if not 0 <= out_shift <= 63:
            raise ValueError(f"LayerNormUnit: out_shift must be in 0..63, got {out_shift}")
        if not 0 <= frac_bits <= MAX_FRAC:
            raise ValueError(f"LayerNormUnit: frac_bits must be in 0..{MAX_FRAC}, got {frac_bits}")
        if not 1 <= eps < (1 << 64):
            raise ValueError(f"LayerNormUnit: eps must be in [1, 2**64), got {eps}")
        if not 2 <= in_bits <= 32:
            raise ValueError(f"LayerNormUnit: in_bits must be in 2..32, got {in_bits}")
        if not 2 <= gamma_bits <= 16:
            raise ValueError(f"LayerNormUnit: gamma_bits must be in 2..16, got {gamma_bits}")
        if not 2 <= beta_bits <= 40:
            raise ValueError(f"LayerNormUnit: beta_bits must be in 2..40, got {beta_bits}")
        if not 2 <= out_bits <= 32:
            raise ValueError(f"LayerNormUnit: out_bits must be in 2..32, got {out_bits}")
        self.N, self.out_shift, self.frac_bits, self.eps = N, out_shift, frac_bits, eps
        self.in_bits, self.gamma_bits, self.beta_bits, self.out_bits = in_bits, gamma_bits, beta_bits, out_bits
        super().__init__(N, {"in_data": signed(in_bits), "in_gamma": signed(gamma_bits),
                             "in_beta": signed(beta_bits)}, signed(out_bits))

    def elaborate(self, platform) -> Module:
        m = Module()
        N, ib, gb, bb, ob = self.N, self.in_bits, self.gamma_bits, self.beta_bits, self.out_bits
        F, OS, ab = self.frac_bits, self.out_shift, self.idx_bits
        nb = N.bit_length()
        s1b = ib + nb                                   # |S1| <= N 2**(ib-1)
        s2b = 2 * ib + nb                               # S2 <= N 2**(2 ib - 2)
        qb = max(2 * ib + 2 * nb, self.eps.bit_length()) + 1      # Q' = N^2 var + eps
        lb = max(qb.bit_length(), 6)                    # L in 1..qb (at least as wide as 32 - 2F)
        db = ib + nb + 1                                # |D| <= N 2**ib
        pb = db + R_BITS + 1                            # D * r, signed
        sh_min = K_ISQRT - F - 7                        # shift >= 16 - F >= 0
        zb = pb + 1 - sh_min + 1                        # z = rshr(D r, shift)
        vb = max(zb + gb, bb) + 1                       # v = z * gamma + beta
        hw = max(vb - OS, 1) + 1                        # rshr(v, OS), signed
        wb = ib + gb + bb                               # row buffer word
        cbits = max(N + OUT_PIPE, ISQRT_CYCLES).bit_length()
        lo, hi = -(1 << (ob - 1)), (1 << (ob - 1)) - 1

        m.submodules.row = row = Memory(shape=unsigned(wb), depth=max(N, 2), init=[])
        rd = row.read_port()                            # synchronous, 1-cycle latency
        wr = row.write_port()

        cnt = Signal(unsigned(cbits))
        s1 = Signal(signed(s1b))
        s2 = Signal(unsigned(s2b))
        qp = Signal(unsigned(qb))
        shift = Signal(unsigned(6))                     # 23 - F + s <= 23 + (qb - 15) / 2 < 64
        # ISQRT state
        qn = Signal(unsigned(16))
        pacc = Signal(unsigned(W_ISQRT))
        abr = Signal(unsigned(W_ISQRT))
        t2 = Signal(unsigned(W_ISQRT))
        r = Signal(unsigned(R_BITS))

        accept = Signal()
        issue = Signal()
        last_in = Signal()
        m.d.comb += last_in.eq(cnt == C(N - 1, cbits))

        # ---- IN: x^2 of the offered element ----
        xsq = Signal(unsigned(s2b))                     # x^2 <= 2**(2 ib - 2): exact, at the width of S2
        m.d.comb += xsq.eq((self.in_data * self.in_data)[:2 * ib])

        # ---- STAT 1: Q' = N*S2 - S1^2 + eps (>= 1, exact at qb bits) ----
        nsq = Signal(unsigned(qb))
        m.d.comb += nsq.eq(s2 * C(N, nb))
        s1sq = Signal(unsigned(qb))
        m.d.comb += s1sq.eq((s1 * s1)[:2 * s1b])
        qnext = Signal(unsigned(qb))
        m.d.comb += qnext.eq((nsq - s1sq + C(self.eps, max(1, self.eps.bit_length())))[:qb])

        # ---- STAT 2: L, Qn, shift ----
        bl = Signal(unsigned(lb))
        for i in range(qb):                             # the last (highest) set bit wins
            with m.If(qp[i]):
                m.d.comb += bl.eq(C(i + 1, lb))
        amt = Signal(unsigned(lb))                      # (L - 1) & ~1 = 2 s + 14
        m.d.comb += amt.eq(Cat(C(0, 1), (bl - C(1, 1))[1:lb]))
        qn_next = Signal(unsigned(16))                  # the shifted value has 15 or 16 bits
        m.d.comb += qn_next.eq((Cat(C(0, 14), qp) >> amt)[:16])
        sh_next = Signal(unsigned(lb + 1))              # (L + 31 - 2F) >> 1, 31 - 2F >= -1
        m.d.comb += sh_next.eq(((bl + C(32 - 2 * F, 6)) - C(1, 1))[1:lb + 2])

        # ---- ISQRT step ----
        pab = Signal(unsigned(W_ISQRT))                 # P + Ab < 2**48: exact
        m.d.comb += pab.eq((pacc + abr)[:W_ISQRT])
        trial = Signal(unsigned(W_ISQRT))
        m.d.comb += trial.eq((pab + t2)[:W_ISQRT])
        keep = Signal()
        m.d.comb += keep.eq(trial <= C(1 << (2 * K_ISQRT), 2 * K_ISQRT + 1))
        # Ab' = (Ab + 2 T2 if kept else Ab) >> 1; its bit 0 is always 0 (Ab = r Qn 2**(b+1))
        abn = Mux(keep, (abr + Cat(C(0, 1), t2[:W_ISQRT - 1]))[:W_ISQRT], abr)

        # ---- OUT pipeline ----
        v1 = Signal()
        a1 = Signal(unsigned(ab))
        m.d.comb += [rd.en.eq(1), rd.addr.eq(Mux(issue, cnt[:ab], C(0, ab)))]
        m.d.sync += [v1.eq(issue), a1.eq(cnt[:ab])]
        x1 = Signal(signed(ib))
        g1 = Signal(signed(gb))
        b1 = Signal(signed(bb))
        m.d.comb += [x1.eq(rd.data[:ib].as_signed()), g1.eq(rd.data[ib:ib + gb].as_signed()),
                     b1.eq(rd.data[ib + gb:].as_signed())]
        d1 = Signal(signed(db))
        m.d.comb += d1.eq(x1 * C(N, nb) - s1)
        v2, a2 = Signal(), Signal(unsigned(ab))
        p2 = Signal(signed(pb))
        g2, b2 = Signal(signed(gb)), Signal(signed(bb))
        # stage 3: z = rshr(p2, shift) = (w >> 1) + w[0] with w = (p2 << 1) >> shift
        w2 = Signal(signed(pb + 1 - sh_min))
        m.d.comb += w2.eq((Cat(C(0, 1), p2).as_signed() >> shift)[:pb + 1 - sh_min].as_signed())
        zn = Signal(signed(zb))
        m.d.comb += zn.eq(w2[1:].as_signed() + w2[0])
        v3, a3 = Signal(), Signal(unsigned(ab))
        z3 = Signal(signed(zb))
        g3, b3 = Signal(signed(gb)), Signal(signed(bb))
        # stage 4: y = clamp(rshr(z * gamma + beta, OS))
        vsum = z3 * g3 + b3                             # exact; unnamed: its low OS - 1 bits are unused
        yh = Signal(signed(hw))
        m.d.comb += yh.eq(vsum.shift_right(OS))
        yr = Signal(signed(hw + 1))
        m.d.comb += yr.eq(yh + (vsum.shift_right(OS - 1)[0] if OS >= 1 else C(0, 1)))
        sat = Mux(yr > Const(hi, signed(ob)), Const(hi, signed(ob)),
                  Mux(yr < Const(lo, signed(ob)), Const(lo, signed(ob)), yr[:ob].as_signed()))

        m.d.sync += self.out_valid.eq(0)
        with m.FSM(init="IN"):
            with m.State("IN"):
                m.d.comb += [self.in_ready.eq(1), accept.eq(self.in_valid), self.busy.eq(cnt.any()),
                             wr.en.eq(accept), wr.addr.eq(cnt[:ab]),
                             wr.data.eq(Cat(self.in_data, self.in_gamma, self.in_beta))]
                with m.If(accept):
                    with m.If(cnt.any()):
                        m.d.sync += [s1.eq((s1 + self.in_data)[:s1b]), s2.eq((s2 + xsq)[:s2b])]
                    with m.Else():
                        m.d.sync += [s1.eq(self.in_data), s2.eq(xsq)]
                    advance(m, cnt, last_in, "STAT")
            with m.State("STAT"):
                m.d.comb += self.busy.eq(1)
                with m.If(cnt == C(0, cbits)):
                    m.d.sync += [qp.eq(qnext), cnt.eq(C(1, cbits))]
                with m.Else():
                    m.d.sync += [qn.eq(qn_next), shift.eq(sh_next[:6]), cnt.eq(C(0, cbits)),
                                 pacc.eq(C(0, W_ISQRT)), abr.eq(C(0, W_ISQRT)), r.eq(C(0, R_BITS)),
                                 t2.eq(Cat(C(0, 2 * (R_BITS - 1)), qn_next, C(0, 2)))]
                    m.next = "ISQRT"
            with m.State("ISQRT"):
                m.d.comb += self.busy.eq(1)
                with m.If(keep):
                    m.d.sync += pacc.eq(trial)
                m.d.sync += [abr.eq(Cat(abn[1:], C(0, 1))), t2.eq(Cat(t2[2:], C(0, 2))),
                             r.eq(Cat(keep, r[:R_BITS - 1]))]
                advance(m, cnt, ISQRT_CYCLES - 1, "OUT")
            with m.State("OUT"):
                m.d.comb += [self.busy.eq(1), issue.eq(cnt < C(N, cbits))]
                m.d.sync += [v2.eq(v1), a2.eq(a1), p2.eq(d1 * r), g2.eq(g1), b2.eq(b1),
                             v3.eq(v2), a3.eq(a2), z3.eq(zn), g3.eq(g2), b3.eq(b2),
                             self.out_valid.eq(v3), self.out_index.eq(a3), self.out_data.eq(sat)]
                advance(m, cnt, N + OUT_PIPE - 1, "IN")
        return m


__all__ = ["LayerNormUnit", "layernorm_cycles"]

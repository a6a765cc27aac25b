"""SoftmaxUnit: a streaming, bit-exact fixed-point row softmax (numerics of sw_reference.softmax_fx).

Numerics (per row of L signed scores s[j]; MULT, SHIFT, PB fixed at generation time, F = 8):
    m = max s;  d = m - s;  y = (d * MULT) >> SHIFT;  q = y >> 8;  f = y & 255
    e = LUT[f] >> q if q < 17 else 0,  LUT[f] = round(2**16 * 2**(-f/256))
    S = sum e;  R = floor(2**32 / S);  p = min((e * R) >> (32 - PB), 2**PB - 1)

Ports (amaranth.lib.wiring signature; clock/reset are the ``sync`` domain's ``clk``/``rst``):
    in_valid  In  1            a score is offered
    in_data   In  signed(in_bits)
    in_ready  Out 1            high exactly while the unit is in its input phase
    out_valid Out 1            p[out_index] is on out_data (one cycle each, j = 0..L-1 in order)
    out_data  Out unsigned(pb)
    out_index Out unsigned(max(1, ceil(log2 L)))
    busy      Out 1            a row is in flight: high from the cycle after the first score of a row
                               is accepted through the cycle of its last out_valid

Schedule (cycle 0 = the cycle the first score is accepted, in_valid held high):
    IN    L cycles      accept s[j] (in_valid & in_ready), write the row buffer, track the max
    EXP   L + 3 cycles  read s[j] (1) -> d*MULT, q, f (2) -> exp2 LUT ROM read (3) -> e = LUT >> q:
                        S += e, e written back over s[j]; the counter runs 0..L+2
    DIV   17 cycles     restoring divider 2**32 / S, one quotient bit per cycle. As S >= 2**16 the
                        16 quotient bits above bit 16 are 0, so the remainder starts at 2**32 >> 17
                        = 2**15 and only quotient bits 16..0 are computed
    OUT   L + 2 cycles  read e[j] (1) -> p = min((e*R) >> (32-PB), max) registered (2): out_valid
                        for j = 0..L-1 on cycles 2L+22+j (last on 3L+21)
The unit is back in IN (in_ready high) on the cycle after the last out_valid, so rows run back to
back with a period of ``softmax_cycles(L) = 3*L + 22`` cycles, independent of the data. While in
IN, scores may arrive with gaps (in_valid low): each gap cycle between the first and the last accepted
score of a row adds one cycle to that row's latency. Scores offered outside IN are not accepted.

Storage: one L-deep row buffer (``amaranth.lib.memory.Memory``, width max(in_bits, 17), one
synchronous read port and one write port) holds s[j] and then e[j]; the LUT is a 256 x 17 ROM.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from sw_reference.softmax_fx import E_ONE, F_BITS, Q_ZERO, R_BITS, exp2_lut

from .bits import C
from .rowunit import RowUnit, advance

EXP_PIPE = 3          # EXP: read -> (d*MULT, q, f) -> LUT -> accumulate
OUT_PIPE = 2          # OUT: read -> registered p
DIV_CYCLES = 17       # quotient bits 16..0 of floor(2**32 / S), S >= 2**16


def softmax_cycles(L: int) -> int:
    """Cycles from the first accepted score (in_valid held high) to the cycle after the last
    out_valid; also the row period when rows are offered back to back. = 3*L + 22."""
    if not 1 <= L <= 4096:
        raise ValueError(f"softmax_cycles: L must be in 1..4096, got {L}")
    return L + (L + EXP_PIPE) + DIV_CYCLES + (L + OUT_PIPE)


class SoftmaxUnit(RowUnit):
    """Row softmax of L signed scores; see the module docstring for numerics, ports and schedule."""

    row_cycles = staticmethod(softmax_cycles)

    def __init__(self, L: int, mult: int, shift: int = 16, pb: int = 15, in_bits: int = 32):
        if not 1 <= L <= 4096:
            raise ValueError(f"SoftmaxUnit: L must be in 1..4096, got {L}")
        if not 0 <= mult < (1 << 32):
            raise ValueError(f"SoftmaxUnit: mult must be in [0, 2**32), got {mult}")
        if not 0 <= shift <= 64:
            raise ValueError(f"SoftmaxUnit: shift must be in 0..64, got {shift}")
        if not 1 <= pb <= R_BITS:
            raise ValueError(f"SoftmaxUnit: pb must be in 1..32, got {pb}")
        if not 2 <= in_bits <= 32:
            raise ValueError(f"SoftmaxUnit: in_bits must be in 2..32, got {in_bits}")
        self.L, self.mult, self.shift, self.pb, self.in_bits = L, mult, shift, pb, in_bits
        super().__init__(L, {"in_data": signed(in_bits)}, unsigned(pb))

    def elaborate(self, platform) -> Module:
        m = Module()
        L, ib, ab, pb = self.L, self.in_bits, self.idx_bits, self.pb
        ebits = E_ONE.bit_length()                      # 17: e in 0..65536
        sbits = (L * E_ONE).bit_length()                # S <= L * 65536
        wbits = max(ib, ebits)                          # row buffer holds s, then e
        mbits = max(1, self.mult.bit_length())
        cbits = max(L + EXP_PIPE, DIV_CYCLES).bit_length()  # counts to L+2 (EXP), 16 (DIV), L+1 (OUT)
        qbits = Q_ZERO.bit_length()                     # q saturated to 0..17

        # depth >= 2 keeps the address port at least 1 bit wide (L = 1)
        m.submodules.row = row = Memory(shape=unsigned(wbits), depth=max(L, 2), init=[])
        m.submodules.lut = lut = Memory(shape=unsigned(ebits), depth=1 << F_BITS,
                                        init=[int(v) for v in exp2_lut()])
        rd = row.read_port()                            # synchronous, 1-cycle latency
        wr = row.write_port()
        lrd = lut.read_port()

        cnt = Signal(unsigned(cbits))
        vmax = Signal(signed(ib))
        ssum = Signal(unsigned(sbits))
        rem = Signal(unsigned(sbits))                   # rem < S: restoring-division remainder
        rem2 = Signal(unsigned(sbits + 1))              # rem << 1 (< 2 S)
        ssumx = Signal(unsigned(sbits + 1))             # S zero-extended to the width of rem2
        ge = Signal()                                   # rem2 >= S: quotient bit
        recip = Signal(unsigned(ebits))                 # R <= 65536
        v1 = Signal()                                   # rd.data valid (EXP or OUT)
        a1 = Signal(unsigned(ab))
        v2, a2 = Signal(), Signal(unsigned(ab))
        f2, q2 = Signal(unsigned(F_BITS)), Signal(unsigned(qbits))
        v3, a3, q3 = Signal(), Signal(unsigned(ab)), Signal(unsigned(qbits))

        accept = Signal()
        issue = Signal()                                # a read of the row buffer is issued
        last_in = Signal()
        m.d.comb += last_in.eq(cnt == C(L - 1, cbits))

        # ---- row buffer read port: address = counter while issuing (EXP and OUT) ----
        m.d.comb += [rd.en.eq(1), rd.addr.eq(Mux(issue, cnt[:ab], C(0, ab)))]
        m.d.sync += [v1.eq(issue), a1.eq(cnt[:ab])]

        # ---- EXP stage 1: d, y = d*MULT >> SHIFT, q (saturated), f ----
        s1 = Signal(signed(ib))
        d1 = Signal(unsigned(ib))                       # 0 .. 2**ib - 1
        m.d.comb += [s1.eq(rd.data[:ib].as_signed()),
                     d1.eq((vmax - s1)[:ib])]
        # y = prod >> SHIFT is named, the exact product (ib + mbits bits, its low SHIFT bits unused) is not
        prod = d1 * Const(self.mult, unsigned(mbits))
        if self.shift < ib + mbits:
            y1 = Signal(unsigned(ib + mbits - self.shift))
            m.d.comb += y1.eq(prod[self.shift:])
        else:
            y1 = Const(0, unsigned(1))
        qfull = y1[F_BITS:] if F_BITS < len(y1) else Const(0, unsigned(1))    # q = y >> 8
        if len(qfull) >= qbits:
            qsat = Mux(qfull >= C(Q_ZERO, len(qfull)), C(Q_ZERO, qbits), qfull[:qbits])
        else:
            qsat = qfull
        f1 = y1[:F_BITS]

        # ---- EXP stage 2: LUT ROM read; stage 3: e = LUT >> q, accumulate, write back ----
        m.d.comb += [lrd.en.eq(1), lrd.addr.eq(f2)]
        e3 = Signal(unsigned(ebits))
        e3x = Signal(unsigned(sbits))                   # e3 at the width of S, driven in EXP only (below)
        m.d.comb += e3.eq(lrd.data >> q3)

        # ---- OUT stage 1: p = min((e * R) >> (32 - PB), 2**PB - 1) ----
        eo = Signal(unsigned(ebits))
        pmax = (1 << pb) - 1
        m.d.comb += eo.eq(rd.data[:ebits])
        pprod = eo * recip                              # exact product: only its bits from 32 - PB up are used
        pshift = Signal(unsigned(2 * ebits - (R_BITS - pb)))
        m.d.comb += pshift.eq(pprod[R_BITS - pb:])
        pval = Signal(unsigned(pb))
        m.d.comb += pval.eq(Mux(pshift > C(pmax, len(pshift)), C(pmax, pb), pshift[:pb]))

        m.d.sync += self.out_valid.eq(0)
        with m.FSM(init="IN"):
            with m.State("IN"):
                m.d.comb += [self.in_ready.eq(1), accept.eq(self.in_valid),
                             self.busy.eq(cnt.any()),
                             wr.en.eq(accept), wr.addr.eq(cnt[:ab]), wr.data.eq(self.in_data)]
                with m.If(accept):
                    with m.If(~cnt.any() | (self.in_data > vmax)):
                        m.d.sync += vmax.eq(self.in_data)
                    advance(m, cnt, last_in, "EXP", ssum.eq(C(0, sbits)))
            with m.State("EXP"):
                m.d.comb += [self.busy.eq(1), issue.eq(cnt < C(L, cbits)),
                             wr.en.eq(v3), wr.addr.eq(a3), wr.data.eq(e3)]
                m.d.sync += [v2.eq(v1), a2.eq(a1), f2.eq(f1), q2.eq(qsat),
                             v3.eq(v2), a3.eq(a2), q3.eq(q2)]
                with m.If(v3):
                    # e3x is assigned here rather than as an alias of e3: an alias is only a zero-extension,
                    # which the backend folds back into the adder (printing e3 at its own 17 bits)
                    m.d.comb += e3x.eq(e3)
                    m.d.sync += ssum.eq((ssum + e3x)[:sbits])
                advance(m, cnt, L + EXP_PIPE - 1, "DIV", rem.eq(C(1 << (R_BITS - DIV_CYCLES), sbits)),
                        recip.eq(C(0, ebits)))
            with m.State("DIV"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += [rem2.eq(Cat(C(0, 1), rem)), ssumx.eq(ssum), ge.eq(rem2 >= ssumx)]
                m.d.sync += rem.eq(Mux(ge, (rem2 - ssumx)[:sbits + 1], rem2)[:sbits])
                m.d.sync += recip.eq(Cat(ge, recip[:ebits - 1]))
                advance(m, cnt, DIV_CYCLES - 1, "OUT")
            with m.State("OUT"):
                m.d.comb += [self.busy.eq(1), issue.eq(cnt < C(L, cbits))]
                m.d.sync += [self.out_valid.eq(v1), self.out_data.eq(pval), self.out_index.eq(a1)]
                advance(m, cnt, L + OUT_PIPE - 1, "IN")
        return m

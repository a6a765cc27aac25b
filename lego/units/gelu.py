"""GeluUnit: a streaming, bit-exact integer GELU (numerics of sw_reference.gelu_fx), ``lanes`` elements
per beat.

Numerics (per element, q a signed ``in_bits`` code; C, G, M, SH fixed at generation time, see
:func:`sw_reference.gelu_fx.gelu_params`):
    t = C - min(|q|, C);  e = t*t if q < 0 else 2*G - t*t;  P = q * e
    y = clamp(rshr(P * M, SH), -2**(out_bits-1), 2**(out_bits-1) - 1),  rshr(v, k) = floor(v / 2**k + 1/2)

Ports (amaranth.lib.wiring signature; clock/reset are the ``sync`` domain's ``clk``/``rst``):
    in_valid  In  1                       a beat of ``lanes`` codes is offered
    in_data   In  lanes x signed(in_bits) lane k in bits [k*in_bits, (k+1)*in_bits) of the flat port
    in_ready  Out 1                       = ~out_valid | out_ready: the pipeline advances this cycle
    out_valid Out 1                       a beat of results is on out_data
    out_data  Out lanes x signed(out_bits) lane k in bits [k*out_bits, (k+1)*out_bits)
    out_ready In  1                       the consumer takes out_data this cycle (when out_valid)

A beat is transferred on a port when valid & ready are both high in a cycle. The pipeline has
``GELU_LATENCY = 3`` register stages and one global enable (in_ready): (1) t and the sign, (2) P,
(3) the requantized, saturated result, registered onto out_data. With out_ready held high (in_ready is
then always high) a beat accepted in cycle k is on out_data with out_valid in cycle k + 3, so a vector
of n elements offered back to back takes ``gelu_cycles(n, lanes) = ceil(n / lanes) + 3`` cycles from
its first accepted beat to the cycle after its last result; one beat per cycle is sustained. While
out_valid is high and out_ready low the whole pipeline holds (in_ready low) and out_data stays stable.
Beats leave in the order they arrived.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from sw_reference.gelu_fx import check_params

GELU_LATENCY = 3


def gelu_cycles(n: int, lanes: int = 1) -> int:
    """Cycles from the first accepted beat of n elements (beats back to back, out_ready high) to the
    cycle after the last result: ceil(n / lanes) + GELU_LATENCY."""
    if n < 1 or lanes < 1:
        raise ValueError(f"gelu_cycles: n and lanes must be >= 1, got {n}, {lanes}")
    return -(-n // lanes) + GELU_LATENCY


class GeluUnit(wiring.Component):
    """Pipelined integer GELU of ``lanes`` codes per beat; see the module docstring."""

    def __init__(self, c: int, g: int, mult: int, shift: int, *, lanes: int = 1, in_bits: int = 8,
                 out_bits: int = 8):
        check_params(c, g, mult, shift, in_bits, out_bits)
        if not 1 <= lanes <= 64:
            raise ValueError(f"GeluUnit: lanes must be in 1..64, got {lanes}")
        self.c, self.g, self.mult, self.shift = c, g, mult, shift
        self.lanes, self.in_bits, self.out_bits = lanes, in_bits, out_bits
        super().__init__({
            "in_valid": In(1),
            "in_data": In(data.ArrayLayout(signed(in_bits), lanes)),
            "in_ready": Out(1),
            "out_valid": Out(1),
            "out_data": Out(data.ArrayLayout(signed(out_bits), lanes)),
            "out_ready": In(1),
        })

    @property
    def latency(self) -> int:
        return GELU_LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        ib, ob = self.in_bits, self.out_bits
        cb = max(1, self.c.bit_length())
        eb = max(2 * cb, (2 * self.g).bit_length())            # e = t^2 or 2G - t^2, both >= 0
        pb = ib + eb + 1                                        # P = q * e, signed
        mb = max(1, self.mult.bit_length())
        sh = self.shift
        hw = max(pb + mb + 1 - sh, 2)                           # P * M >> SH, signed
        lo, hi = -(1 << (ob - 1)), (1 << (ob - 1)) - 1

        adv = Signal()
        v1, v2 = Signal(), Signal()
        m.d.comb += [adv.eq(~self.out_valid | self.out_ready), self.in_ready.eq(adv)]
        with m.If(adv):
            m.d.sync += [v1.eq(self.in_valid), v2.eq(v1), self.out_valid.eq(v2)]

        two_g = Const(2 * self.g, unsigned(eb))
        cc = Const(self.c, unsigned(cb))
        for k in range(self.lanes):
            q = self.in_data[k]
            # ---- stage 1: t = C - min(|q|, C), sign ----
            aq = Signal(unsigned(ib), name=f"abs{k}")
            m.d.comb += aq.eq(Mux(q < 0, (-q)[:ib], q[:ib]))
            t1 = Signal(unsigned(cb), name=f"t1_{k}")
            q1 = Signal(signed(ib), name=f"q1_{k}")
            with m.If(adv):
                m.d.sync += q1.eq(q)
                if self.c:                                      # C = 0: t is always 0 (t1 stays at reset)
                    m.d.sync += t1.eq(Mux(aq >= cc, Const(0, unsigned(cb)), (cc - aq)[:cb]))
            # ---- stage 2: e and P = q * e ----
            tt = Signal(unsigned(eb), name=f"tt{k}")            # t^2 (2 cb bits) at the width of 2G
            m.d.comb += tt.eq(t1 * t1)
            e = Signal(unsigned(eb), name=f"e{k}")
            m.d.comb += e.eq(Mux(q1 < 0, tt, (two_g - tt)[:eb]))
            es = Signal(signed(eb + 1), name=f"es{k}")
            m.d.comb += es.eq(e)
            p2 = Signal(signed(pb), name=f"p2_{k}")
            with m.If(adv):
                m.d.sync += p2.eq(q1 * es)
            # ---- stage 3: y = clamp(rshr(P * M, SH)); the exact product is left unnamed (its low SH - 1
            # bits are unused), shift_right sign-extends where SH reaches past it ----
            prod = p2 * Const(self.mult, unsigned(mb))
            hsig = Signal(signed(hw), name=f"hi{k}")
            m.d.comb += hsig.eq(prod.shift_right(sh))
            yr = Signal(signed(hw + 1), name=f"yr{k}")
            m.d.comb += yr.eq(hsig + (prod.shift_right(sh - 1)[0] if sh >= 1 else Const(0, 1)))
            sat = Mux(yr > Const(hi, signed(ob)), Const(hi, signed(ob)),
                      Mux(yr < Const(lo, signed(ob)), Const(lo, signed(ob)), yr[:ob].as_signed()))
            with m.If(adv):
                m.d.sync += self.out_data[k].eq(sat)
        return m


__all__ = ["GeluUnit", "gelu_cycles", "GELU_LATENCY"]

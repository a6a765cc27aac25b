"""Fixed-point softmax unit: exp LUT + reciprocal (restoring divider), bit-exact with
``sw_reference.spatten.fixed.softmax_fixed``.

One row at a time, one element per cycle:
  IN   take scores (``in_valid``, ``in_last``) into a buffer, track the max;
  EXP  e_j = LUT[min((max - s_j) * dq + round >> dequant_shift, N - 1)], sum += e_j;
  DIV  r = floor(2**recip_bits / sum), recip_bits + 1 restoring steps;
  OUT  p_j = min((e_j * r) >> (recip_bits - prob_bits), 2**prob_bits - 1), ``out_last`` on the last.
"""
from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal, signed
from amaranth.lib.memory import Memory

from sw_reference.spatten.fixed import exp_lut


class Softmax(Elaboratable):
    def __init__(self, cfg, max_n: int):
        self.cfg, self.max_n = cfg, max_n
        self.sb = cfg.score_bits
        self.iw = max(1, (max_n - 1).bit_length())
        self.sumw = 16 + max_n.bit_length()
        self.rw = cfg.recip_bits + 1
        self.in_valid = Signal()
        self.in_ready = Signal()
        self.in_last = Signal()
        self.in_score = Signal(signed(self.sb))
        self.dq = Signal(24)
        self.out_valid = Signal()
        self.out_last = Signal()
        self.out_prob = Signal(cfg.prob_bits)

    def io(self):
        return [(self.in_valid, "i"), (self.in_ready, "o"), (self.in_last, "i"), (self.in_score, "i"),
                (self.dq, "i"), (self.out_valid, "o"), (self.out_last, "o"), (self.out_prob, "o")]

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        sbuf = Memory(shape=signed(self.sb), depth=self.max_n, init=[])
        ebuf = Memory(shape=16, depth=self.max_n, init=[])
        lut = Memory(shape=16, depth=1 << cfg.exp_lut_bits, init=[int(v) for v in exp_lut(cfg.exp_lut_bits, cfg.exp_lut_frac_bits)])
        m.submodules.sbuf, m.submodules.ebuf, m.submodules.lut = sbuf, ebuf, lut
        s_w, s_r = sbuf.write_port(), sbuf.read_port(domain="comb")
        e_w, e_r = ebuf.write_port(), ebuf.read_port(domain="comb")
        l_r = lut.read_port(domain="comb")

        cnt = Signal(self.iw + 1)
        i = Signal(self.iw + 1)
        mx = Signal(signed(self.sb))
        total = Signal(self.sumw)
        rem = Signal(self.sumw + 1)
        quo = Signal(self.rw)
        step = Signal(range(self.rw + 1))
        m.d.comb += [s_r.addr.eq(i), e_r.addr.eq(i)]

        # EXP datapath
        d = Signal(self.sb + 1)
        m.d.comb += d.eq(mx - s_r.data)
        prod = Signal(self.sb + 1 + 24)
        m.d.comb += prod.eq(d * self.dq + (1 << (cfg.dequant_shift - 1)))
        idx = Signal(len(prod) - cfg.dequant_shift)
        m.d.comb += idx.eq(prod >> cfg.dequant_shift)
        top = (1 << cfg.exp_lut_bits) - 1
        m.d.comb += l_r.addr.eq(Mux(idx > top, top, idx))
        # OUT datapath
        pe = Signal(16 + self.rw)
        m.d.comb += pe.eq(e_r.data * quo)
        pq = Signal(len(pe) - (cfg.recip_bits - cfg.prob_bits))
        m.d.comb += pq.eq(pe >> (cfg.recip_bits - cfg.prob_bits))
        pmax = (1 << cfg.prob_bits) - 1
        # restoring division step
        rem_sh = Signal(self.sumw + 2)
        m.d.comb += rem_sh.eq((rem << 1) | (step == 0))

        with m.FSM(name="softmax_fsm"):
            with m.State("IN"):
                m.d.comb += self.in_ready.eq(1)
                with m.If(self.in_valid):
                    m.d.comb += [s_w.en.eq(1), s_w.addr.eq(cnt), s_w.data.eq(self.in_score)]
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If((cnt == 0) | (self.in_score > mx)):
                        m.d.sync += mx.eq(self.in_score)
                    with m.If(self.in_last):
                        m.d.sync += [i.eq(0), total.eq(0)]
                        m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += [e_w.en.eq(1), e_w.addr.eq(i), e_w.data.eq(l_r.data)]
                m.d.sync += [total.eq(total + l_r.data), i.eq(i + 1)]
                with m.If(i == cnt - 1):
                    m.d.sync += [rem.eq(0), quo.eq(0), step.eq(0)]
                    m.next = "DIV"
            with m.State("DIV"):
                # numerator 2**recip_bits: its only 1 bit enters at step 0
                with m.If(rem_sh >= total):
                    m.d.sync += [rem.eq(rem_sh - total), quo.eq((quo << 1) | 1)]
                with m.Else():
                    m.d.sync += [rem.eq(rem_sh), quo.eq(quo << 1)]
                m.d.sync += step.eq(step + 1)
                with m.If(step == self.rw - 1):
                    m.d.sync += i.eq(0)
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.out_valid.eq(1), self.out_prob.eq(Mux(pq > pmax, pmax, pq)),
                             self.out_last.eq(i == cnt - 1)]
                m.d.sync += i.eq(i + 1)
                with m.If(i == cnt - 1):
                    m.d.sync += cnt.eq(0)
                    m.next = "IN"
        return m

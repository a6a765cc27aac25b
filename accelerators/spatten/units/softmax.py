"""Fixed-point softmax unit: exp LUT + reciprocal (restoring divider), bit-exact with
``sw_reference.spatten.fixed.softmax_fixed``.

One row at a time, ``lanes`` elements per cycle (a *beat*; lane x of a packed port at bits [x*w, (x+1)*w)):
  IN   take beats of scores (``in_valid``, ``in_count`` valid lanes 0..count-1, ``in_last`` on the row's
       last beat; only the last beat may be partial) into a buffer, track the max;
  EXP  per beat: e_x = LUT[min((max - s_x) * dq + round >> dequant_shift, N - 1)], sum += Σ e_x;
  DIV  r = floor(2**recip_bits / sum), recip_bits + 1 restoring steps;
  OUT  per beat: p_x = min((e_x * r) >> (recip_bits - prob_bits), 2**prob_bits - 1), ``out_count`` valid
       lanes, ``out_last`` on the last beat.
With B beats: EXP B cycles, DIV recip_bits + 1, OUT B (``out_last`` 2B + recip_bits + 1 cycles after the
cycle of the last beat). The integer sum does not depend on the lane order, so every ``lanes`` gives the
reference's probabilities.
"""
from __future__ import annotations

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal, signed
from amaranth.lib.memory import Memory

from lego.units.bits import widen
from sw_reference.spatten.fixed import exp_lut


class Softmax(Elaboratable):
    def __init__(self, cfg, max_n: int, lanes: int = 1):
        self.cfg, self.max_n, self.lanes = cfg, max_n, lanes
        self.sb = cfg.score_bits
        self.beats = -(-max_n // lanes)
        self.bw = max(1, (self.beats - 1).bit_length())
        self.cw = lanes.bit_length()
        self.sumw = 16 + max_n.bit_length()
        self.rw = cfg.recip_bits + 1
        self.in_valid = Signal()
        self.in_ready = Signal()
        self.in_last = Signal()
        self.in_count = Signal(self.cw)
        self.in_score = Signal(lanes * self.sb)
        self.dq = Signal(24)
        self.out_valid = Signal()
        self.out_last = Signal()
        self.out_count = Signal(self.cw)
        self.out_prob = Signal(lanes * cfg.prob_bits)

    def io(self):
        return [(self.in_valid, "i"), (self.in_ready, "o"), (self.in_last, "i"), (self.in_count, "i"),
                (self.in_score, "i"), (self.dq, "i"), (self.out_valid, "o"), (self.out_last, "o"),
                (self.out_count, "o"), (self.out_prob, "o")]

    def elaborate(self, platform):
        m = Module()
        cfg, L, sb, pb = self.cfg, self.lanes, self.sb, self.cfg.prob_bits
        sbuf = Memory(shape=L * sb, depth=max(2, self.beats), init=[])
        ebuf = Memory(shape=L * 16, depth=max(2, self.beats), init=[])
        m.submodules.sbuf, m.submodules.ebuf = sbuf, ebuf
        s_w, s_r = sbuf.write_port(), sbuf.read_port(domain="comb")
        e_w, e_r = ebuf.write_port(), ebuf.read_port(domain="comb")
        table = [int(v) for v in exp_lut(cfg.exp_lut_bits, cfg.exp_lut_frac_bits)]
        luts = []
        for x in range(L):   # one LUT copy per lane
            lut = Memory(shape=16, depth=1 << cfg.exp_lut_bits, init=table)
            m.submodules[f"lut{x}"] = lut
            luts.append(lut.read_port(domain="comb"))

        cnt = Signal(self.bw + 1)                  # beats received
        last_count = Signal(self.cw)               # valid lanes of the last beat
        i = Signal(self.bw + 1)
        mx = Signal(signed(sb))
        total = Signal(self.sumw)
        rem = Signal(self.sumw + 1)
        quo = Signal(self.rw)
        step = Signal(range(self.rw + 1))
        m.d.comb += [s_r.addr.eq(i), e_r.addr.eq(i)]
        is_last = Signal()
        m.d.comb += is_last.eq(widen(m, i, self.bw + 2, "i_w") == cnt - 1)
        valid = [Signal(name=f"lane_valid{x}") for x in range(L)]   # lane x of beat i holds an element
        m.d.comb += [v.eq(~is_last | (x < last_count)) for x, v in enumerate(valid)]

        # IN: max over the beat's valid lanes, then the running max
        scores = [self.in_score[x * sb:(x + 1) * sb].as_signed() for x in range(L)]
        bmax = scores[0]
        for x in range(1, L):
            s = Signal(signed(sb), name=f"bmax{x}")
            m.d.comb += s.eq(Mux((x < self.in_count) & (scores[x] > bmax), scores[x], bmax))
            bmax = s
        # EXP datapath, per lane
        top = (1 << cfg.exp_lut_bits) - 1
        es = []
        for x in range(L):
            d = Signal(sb + 1, name=f"diff{x}")
            m.d.comb += d.eq(mx - s_r.data[x * sb:(x + 1) * sb].as_signed())
            prod = Signal(sb + 1 + 24, name=f"prod{x}")
            m.d.comb += prod.eq(d * self.dq + (1 << (cfg.dequant_shift - 1)))
            idx = Signal(len(prod) - cfg.dequant_shift, name=f"idx{x}")
            m.d.comb += idx.eq(prod >> cfg.dequant_shift)
            m.d.comb += luts[x].addr.eq(Mux(idx > top, top, idx))
            e = Signal(16, name=f"e{x}")
            m.d.comb += e.eq(Mux(valid[x], luts[x].data, 0))
            es.append(e)
        # the beat's sum, at total's width
        ews = [widen(m, e, self.sumw, f"e{x}_w") for x, e in enumerate(es)]
        esum = Signal(self.sumw)
        acc = ews[0]
        for e in ews[1:]:
            acc = (acc + e)[:self.sumw]
        m.d.comb += esum.eq(acc)
        # OUT datapath, per lane
        pmax = (1 << pb) - 1
        probs = []
        for x in range(L):
            pe = e_r.data[x * 16:(x + 1) * 16] * quo     # 16 + rw bits; its low recip_bits - pb are dropped
            pq = Signal(len(pe) - (cfg.recip_bits - pb), name=f"pq{x}")
            m.d.comb += pq.eq(pe[cfg.recip_bits - pb:])
            probs.append(Mux(pq > pmax, pmax, pq)[:pb])
        # restoring division step
        rem_sh = Signal(self.sumw + 2)
        m.d.comb += rem_sh.eq((rem << 1) | (step == 0))
        total_w = widen(m, total, self.sumw + 2, "total_w")   # against rem_sh

        with m.FSM(name="softmax_fsm"):
            with m.State("IN"):
                m.d.comb += self.in_ready.eq(1)
                with m.If(self.in_valid):
                    m.d.comb += [s_w.en.eq(1), s_w.addr.eq(cnt), s_w.data.eq(self.in_score)]
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If((cnt == 0) | (bmax > mx)):
                        m.d.sync += mx.eq(bmax)
                    with m.If(self.in_last):
                        m.d.sync += [i.eq(0), total.eq(0), last_count.eq(self.in_count)]
                        m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += [e_w.en.eq(1), e_w.addr.eq(i), e_w.data.eq(Cat(*es))]
                m.d.sync += [total.eq(total + esum), i.eq(i + 1)]
                with m.If(is_last):
                    m.d.sync += [rem.eq(0), quo.eq(0), step.eq(0)]
                    m.next = "DIV"
            with m.State("DIV"):
                # numerator 2**recip_bits: its only 1 bit enters at step 0
                with m.If(rem_sh >= total_w):
                    m.d.sync += [rem.eq(rem_sh - total_w), quo.eq((quo << 1) | 1)]
                with m.Else():
                    m.d.sync += [rem.eq(rem_sh), quo.eq(quo << 1)]
                m.d.sync += step.eq(step + 1)
                with m.If(step == self.rw - 1):
                    m.d.sync += i.eq(0)
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.out_valid.eq(1), self.out_prob.eq(Cat(*probs)), self.out_last.eq(is_last),
                             self.out_count.eq(Mux(is_last, last_count, Const(L, self.cw)))]
                m.d.sync += i.eq(i + 1)
                with m.If(is_last):
                    m.d.sync += cnt.eq(0)
                    m.next = "IN"
        return m

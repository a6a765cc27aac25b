"""Small SpAtten units: K/V fetcher (MSB/LSB merge), dot product (pluggable Q.K datapath), P.V
accumulator, requantization decision and the importance accumulator. Each is bit-exact with
``sw_reference.spatten.fixed`` / ``cascade``. ``io()`` lists (signal, direction) for the top wrapper.

Datapath plug-in contract (what a lego-generated Q.K array must offer to replace ``DotProduct``):
ports ``in_valid``, ``q`` (D x q_bits, lane i at bits [i*q_bits, (i+1)*q_bits)), ``k`` (D x kv_bits),
``out_valid``, ``score`` (signed score_bits = q_bits + kv_bits + log2 D), fixed latency ``LATENCY``.
"""
from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal, signed
from amaranth.lib.memory import Memory


def _lanes(sig, n, w, sgn=False):
    return [(sig[i * w:(i + 1) * w].as_signed() if sgn else sig[i * w:(i + 1) * w]) for i in range(n)]


class KVFetcher(Elaboratable):
    """value_i = (msb_i << lsb_bits) | (lsb_i if use_lsb else 0); one register stage."""
    LATENCY = 1

    def __init__(self, d: int, kv_bits: int, msb_bits: int):
        self.d, self.kv, self.mb, self.lb = d, kv_bits, msb_bits, kv_bits - msb_bits
        self.in_valid = Signal()
        self.msb = Signal(d * msb_bits)
        self.lsb = Signal(max(1, d * self.lb))
        self.use_lsb = Signal()
        self.out_valid = Signal()
        self.value = Signal(d * kv_bits)

    def io(self):
        return [(self.in_valid, "i"), (self.msb, "i"), (self.lsb, "i"), (self.use_lsb, "i"),
                (self.out_valid, "o"), (self.value, "o")]

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.out_valid.eq(self.in_valid)
        with m.If(self.in_valid):
            for i in range(self.d):
                msb = self.msb[i * self.mb:(i + 1) * self.mb]
                if self.lb:
                    lsb = Mux(self.use_lsb, self.lsb[i * self.lb:(i + 1) * self.lb], 0)
                    v = msb.as_unsigned() << self.lb | lsb
                else:
                    v = msb
                m.d.sync += self.value[i * self.kv:(i + 1) * self.kv].eq(v[:self.kv])
        return m


class DotProduct(Elaboratable):
    """score = sum_i q_i * k_i (signed, exact); the stand-in for the lego-generated Q.K array."""
    LATENCY = 1

    def __init__(self, d: int, q_bits: int, kv_bits: int):
        self.d, self.qb, self.kb = d, q_bits, kv_bits
        self.score_bits = q_bits + kv_bits + max(1, (d - 1).bit_length())
        self.in_valid = Signal()
        self.q = Signal(d * q_bits)
        self.k = Signal(d * kv_bits)
        self.out_valid = Signal()
        self.score = Signal(signed(self.score_bits))

    def io(self):
        return [(self.in_valid, "i"), (self.q, "i"), (self.k, "i"), (self.out_valid, "o"), (self.score, "o")]

    def elaborate(self, platform):
        m = Module()
        qs = _lanes(self.q, self.d, self.qb, True)
        ks = _lanes(self.k, self.d, self.kb, True)
        prods = []
        for i in range(self.d):
            p = Signal(signed(self.qb + self.kb), name=f"prod{i}")
            m.d.comb += p.eq(qs[i] * ks[i])
            prods.append(p)
        while len(prods) > 1:  # balanced adder tree
            nxt = []
            for j in range(0, len(prods) - 1, 2):
                s = Signal(signed(len(prods[j]) + 1), name="sum")
                m.d.comb += s.eq(prods[j] + prods[j + 1])
                nxt.append(s)
            if len(prods) % 2:
                nxt.append(prods[-1])
            prods = nxt
        m.d.sync += self.out_valid.eq(self.in_valid)
        with m.If(self.in_valid):
            m.d.sync += self.score.eq(prods[0])
        return m


class PVAccumulator(Elaboratable):
    """out = sum over the streamed (p_j, v_j) of p_j * v_j, D lanes; ``first`` restarts, ``last`` ends."""

    def __init__(self, d: int, prob_bits: int, kv_bits: int, acc_bits: int):
        self.d, self.pb, self.kb, self.ab = d, prob_bits, kv_bits, acc_bits
        self.in_valid = Signal()
        self.first = Signal()
        self.last = Signal()
        self.p = Signal(prob_bits)
        self.v = Signal(d * kv_bits)
        self.out_valid = Signal()
        self.out = Signal(d * acc_bits)

    def io(self):
        return [(self.in_valid, "i"), (self.first, "i"), (self.last, "i"), (self.p, "i"), (self.v, "i"),
                (self.out_valid, "o"), (self.out, "o")]

    def elaborate(self, platform):
        m = Module()
        vs = _lanes(self.v, self.d, self.kb, True)
        m.d.sync += self.out_valid.eq(self.in_valid & self.last)
        for i in range(self.d):
            acc = Signal(signed(self.ab), name=f"acc{i}")
            prod = Signal(signed(self.pb + self.kb + 1), name=f"pv{i}")
            m.d.comb += prod.eq(self.p * vs[i])
            nxt = Signal(signed(self.ab), name=f"nxt{i}")
            m.d.comb += nxt.eq(Mux(self.first, 0, acc) + prod)
            with m.If(self.in_valid):
                m.d.sync += acc.eq(nxt)
                with m.If(self.last):
                    m.d.sync += self.out[i * self.ab:(i + 1) * self.ab].eq(nxt)
        return m


class RequantDecision(Elaboratable):
    """need_requant = max over the row of p < threshold (running max; decision the cycle after last)."""

    def __init__(self, prob_bits: int):
        self.pb = prob_bits
        self.in_valid = Signal()
        self.first = Signal()
        self.last = Signal()
        self.p = Signal(prob_bits)
        self.threshold = Signal(prob_bits)
        self.out_valid = Signal()
        self.need_requant = Signal()
        self.max_prob = Signal(prob_bits)

    def io(self):
        return [(self.in_valid, "i"), (self.first, "i"), (self.last, "i"), (self.p, "i"), (self.threshold, "i"),
                (self.out_valid, "o"), (self.need_requant, "o"), (self.max_prob, "o")]

    def elaborate(self, platform):
        m = Module()
        run = Signal(self.pb)
        cur = Signal(self.pb)
        m.d.comb += cur.eq(Mux(self.first | (self.p > run), self.p, run))
        m.d.sync += self.out_valid.eq(self.in_valid & self.last)
        with m.If(self.in_valid):
            m.d.sync += run.eq(cur)
            with m.If(self.last):
                m.d.sync += [self.max_prob.eq(cur), self.need_requant.eq(cur < self.threshold)]
        return m


class ImportanceAccumulator(Elaboratable):
    """Saturating per-token (or per-head) importance: acc[index] += value; ``clear`` zeroes all entries
    (one entry per cycle, ``busy`` meanwhile); ``rd_index`` -> ``rd_value`` combinationally."""

    def __init__(self, depth: int, value_bits: int, acc_bits: int):
        self.depth, self.vb, self.ab = depth, value_bits, acc_bits
        self.iw = max(1, (depth - 1).bit_length())
        self.clear = Signal()
        self.busy = Signal()
        self.add_valid = Signal()
        self.add_index = Signal(self.iw)
        self.add_value = Signal(value_bits)
        self.rd_index = Signal(self.iw)
        self.rd_value = Signal(acc_bits)

    def io(self):
        return [(self.clear, "i"), (self.busy, "o"), (self.add_valid, "i"), (self.add_index, "i"),
                (self.add_value, "i"), (self.rd_index, "i"), (self.rd_value, "o")]

    def elaborate(self, platform):
        m = Module()
        mem = Memory(shape=self.ab, depth=self.depth, init=[])
        m.submodules.acc = mem
        wp = mem.write_port()
        rmw = mem.read_port(domain="comb")
        rd = mem.read_port(domain="comb")
        m.d.comb += [rd.addr.eq(self.rd_index), self.rd_value.eq(rd.data), rmw.addr.eq(self.add_index)]
        ptr = Signal(self.iw)
        clearing = Signal()
        m.d.comb += self.busy.eq(clearing)
        total = Signal(self.ab + 1)
        top = (1 << self.ab) - 1
        m.d.comb += total.eq(rmw.data + self.add_value)
        with m.If(clearing):
            m.d.comb += [wp.en.eq(1), wp.addr.eq(ptr), wp.data.eq(0)]
            m.d.sync += ptr.eq(ptr + 1)
            with m.If(ptr == self.depth - 1):
                m.d.sync += clearing.eq(0)
        with m.Elif(self.clear):
            m.d.sync += [clearing.eq(1), ptr.eq(0)]
        with m.Elif(self.add_valid):
            m.d.comb += [wp.en.eq(1), wp.addr.eq(self.add_index), wp.data.eq(Mux(total > top, top, total))]
        return m

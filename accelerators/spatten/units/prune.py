"""Cascade pruning unit (tokens or heads): the cumulative importance accumulator plus the selection that
keeps the top-k alive entries by importance, with the quick-select top-k engine. Bit-exact with
``sw_reference.spatten.cascade._select`` (``prune_tokens`` / ``prune_heads``): pruned entries stay pruned.

Accumulator ports (as ``ImportanceAccumulator``): ``clear``/``busy``, ``add_valid``/``add_index``/
``add_value`` (saturating; ``lanes`` adds per cycle to distinct entries), ``rd_index`` -> ``rd_value``.
Selection: pulse ``sel_start`` with ``sel_n`` (entries 0..n-1 take part; entries >= n are left as they
are) and ``sel_keep`` (k >= 1) while ``sel_busy`` is low.
  SCAN    one entry per cycle: alive entries are compacted in index order (value into P banks, index
          into a map);
  DECIDE  m alive entries: k >= m leaves them all alive; otherwise the top-k engine starts on them;
  TKRUN   rows of P values feed the engine; its k outputs, mapped back through the index map, are the
          survivors; every other entry < n is pruned for good;
  DONE    ``sel_done`` for one cycle; ``sel_count`` = alive entries < n.
``sel_reset`` makes every entry alive (a new sequence). ``alive_index`` -> ``alive`` (combinational).
Cycles from the clock edge that samples ``sel_start`` to the first cycle with ``sel_done`` high: n + 3, plus
the top-k engine's cycles (``topk_engine(...).cycles``) when k < m.
"""
from __future__ import annotations

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib.memory import Memory

from lego.units.bits import onehot, word
from lego.units.topk import TopKEngine

from .datapath import ImportanceAccumulator


class CascadePruner(Elaboratable):
    def __init__(self, depth: int, value_bits: int, acc_bits: int, parallelism: int, lanes: int = 1):
        self.depth, self.vb, self.ab, self.p = depth, value_bits, acc_bits, parallelism
        self.cap = -(-depth // parallelism) * parallelism          # top-k capacity, a multiple of P
        self.iw = max(1, (depth - 1).bit_length())
        self.lw = depth.bit_length()
        self.acc = ImportanceAccumulator(depth, value_bits, acc_bits, lanes)
        self.tk = TopKEngine(parallelism, acc_bits, self.cap)
        S = Signal
        self.clear, self.busy = S(name="clear"), S(name="busy")
        self.add_valid, self.add_index = S(lanes, name="add_valid"), S(lanes * self.iw, name="add_index")
        self.add_value = S(lanes * value_bits, name="add_value")
        self.rd_index, self.rd_value = S(self.iw, name="rd_index"), S(acc_bits, name="rd_value")
        self.sel_start, self.sel_reset = S(name="sel_start"), S(name="sel_reset")
        self.sel_n, self.sel_keep = S(self.lw, name="sel_n"), S(self.lw, name="sel_keep")
        self.sel_busy, self.sel_done = S(name="sel_busy"), S(name="sel_done")
        self.sel_count = S(self.lw, name="sel_count")
        self.alive_index, self.alive = S(self.iw, name="alive_index"), S(name="alive")
        self.alive_vec = S(depth, name="alive_vec")    # the whole mask, for the pipeline's key walk

    def io(self):
        i = [self.clear, self.add_valid, self.add_index, self.add_value, self.rd_index, self.sel_start,
             self.sel_reset, self.sel_n, self.sel_keep, self.alive_index]
        o = [self.busy, self.rd_value, self.sel_busy, self.sel_done, self.sel_count, self.alive]
        return [(s, "i") for s in i] + [(s, "o") for s in o]

    def elaborate(self, platform):
        m = Module()
        m.submodules.impacc, m.submodules.tk = acc, tk = self.acc, self.tk
        p, lp, iw, depth = self.p, (self.p - 1).bit_length(), self.iw, self.depth
        bdepth = max(2, self.cap // p)
        aw = (bdepth - 1).bit_length()
        banks = []
        for b in range(p):
            mem = Memory(shape=self.ab, depth=bdepth, init=[])
            m.submodules[f"vbank{b}"] = mem
            banks.append((mem.write_port(), mem.read_port(domain="comb")))
        imap = Memory(shape=iw, depth=max(2, self.cap), init=[])
        m.submodules.imap = imap
        imap_w = imap.write_port()
        imap_r = [imap.read_port(domain="comb") for _ in range(p)]

        alive = Signal(depth, init=(1 << depth) - 1)
        n, k = Signal(self.lw), Signal(self.lw)
        ptr, cnt, row = Signal(self.lw), Signal(self.lw), Signal(aw + 2)
        keep = Signal(depth)
        scanning = Signal()
        m.d.comb += [acc.clear.eq(self.clear), self.busy.eq(acc.busy), acc.add_valid.eq(self.add_valid),
                     acc.add_index.eq(self.add_index), acc.add_value.eq(self.add_value),
                     acc.rd_index.eq(Mux(scanning, ptr[:iw], self.rd_index)), self.rd_value.eq(acc.rd_value),
                     self.alive.eq(word(alive, self.alive_index, 1)), self.sel_count.eq(cnt),
                     self.alive_vec.eq(alive),
                     tk.n.eq(cnt), tk.k.eq(k)]
        # top-k rows from the banks; survivors mapped back to entry indices
        for b, (_, rp) in enumerate(banks):
            m.d.comb += [rp.addr.eq(row[:aw]), tk.in_data[b * self.ab:(b + 1) * self.ab].eq(rp.data)]
        picked = Const(0, depth)
        for lane in range(p):
            m.d.comb += imap_r[lane].addr.eq(tk.out_index[lane * tk.iw:(lane + 1) * tk.iw])
            hit = tk.out_valid & (lane < tk.out_count)
            picked = picked | Mux(hit, onehot(m, imap_r[lane].data, depth, f"pick{lane}"), 0)
        survivors = Signal(depth)
        m.d.comb += survivors.eq(keep | picked)
        below_n = Signal(depth)
        m.d.comb += below_n.eq(Cat(*[Const(i, self.lw) < n for i in range(depth)]))
        with m.FSM(name="prune_fsm"):
            with m.State("IDLE"):
                with m.If(self.sel_reset):
                    m.d.sync += alive.eq((1 << depth) - 1)
                with m.Elif(self.sel_start):
                    m.d.sync += [n.eq(self.sel_n), k.eq(self.sel_keep), ptr.eq(0), cnt.eq(0)]
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += [self.sel_busy.eq(1), scanning.eq(1)]
                with m.If(ptr < n):
                    with m.If(word(alive, ptr[:iw], 1)):
                        for b, (wp, _) in enumerate(banks):
                            m.d.comb += [wp.en.eq(cnt[:lp] == b if lp else 1), wp.addr.eq(cnt[lp:lp + aw]),
                                         wp.data.eq(acc.rd_value)]
                        m.d.comb += [imap_w.en.eq(1), imap_w.addr.eq(cnt), imap_w.data.eq(ptr[:iw])]
                        m.d.sync += cnt.eq(cnt + 1)
                    m.d.sync += ptr.eq(ptr + 1)
                with m.Else():
                    m.next = "DECIDE"
            with m.State("DECIDE"):
                m.d.comb += self.sel_busy.eq(1)
                with m.If((k >= cnt) | (cnt == 0)):
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += tk.start.eq(1)
                    m.d.sync += [row.eq(0), keep.eq(0)]
                    m.next = "TKRUN"
            with m.State("TKRUN"):
                m.d.comb += self.sel_busy.eq(1)
                with m.If(tk.in_ready & (row < ((cnt + p - 1) >> lp))):
                    m.d.comb += tk.in_valid.eq(1)
                    m.d.sync += row.eq(row + 1)
                m.d.sync += keep.eq(survivors)
                with m.If(tk.done):
                    m.d.sync += [alive.eq((alive & ~below_n) | survivors), cnt.eq(k)]
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.sel_done.eq(1)
                m.next = "IDLE"
        return m

"""The SpAtten per-query pipeline: the units wired together under one controller.

For one request (query q of head ``req_head`` against n keys, V keep count kv, dequant scale dq). The keys
are the first n alive tokens in index order (cascade token pruning: ``tok_*``, units/prune.py); K/V
requests, token importance and the selected V rows all use token indices.
  K MSB stream (kreq/kresp) -> KVFetcher -> QKArray (lego-generated Q.K) -> Softmax
  -> probabilities into a P-banked buffer, RequantDecision, token importance += p
  [need_requant: K LSB stream -> fetch again -> Q.K -> Softmax -> ... (importance from the final pass)]
  -> TopKEngine over the probabilities (skipped when kv >= n) -> selected-row bit mask
  -> V stream of the selected rows in index order (vreq/vresp; with their LSBs on requantized rows when
     cfg.requant_values) -> KVFetcher -> PVArray (lego-generated P.V) -> out, and head importance
     += sum_d |out_d| (cascade head pruning: ``head_*``).
Between layers the host runs the token and head selections (``tok_sel_*``, ``head_sel_*``): each keeps the
top-k alive entries by cumulative importance with its own quick-select engine.
Memories answer requests in order, with any latency (kresp_valid / vresp_valid); up to 4 V requests are
in flight. Bit-exact with ``sw_reference.spatten.cascade.attention_query_int``.
"""
from __future__ import annotations

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory

from .bits import onehot
from .datapath import KVFetcher, RequantDecision
from .lego_datapath import PVArray, QKArray
from .prune import CascadePruner
from .softmax import Softmax
from .topk import TopKEngine


class QueryPipeline(Elaboratable):
    def __init__(self, cfg, max_n: int):
        self.cfg, self.max_n = cfg, max_n
        d, p = cfg.head_dim, cfg.topk_parallelism
        self.p, self.lp = p, (p - 1).bit_length()
        self.lw = max_n.bit_length()
        self.iw = max(1, (max_n - 1).bit_length())
        self.acc_bits = cfg.prob_bits + cfg.kv_bits + max_n.bit_length() + 1
        self.qk = QKArray(d, cfg.q_bits, cfg.kv_bits, max_n)
        self.kfetch = KVFetcher(d, cfg.kv_bits, cfg.kv_msb_bits)
        self.vfetch = KVFetcher(d, cfg.kv_bits, cfg.kv_msb_bits)
        self.softmax = Softmax(cfg, max_n)
        self.requant = RequantDecision(cfg.prob_bits)
        self.topk = TopKEngine(p, cfg.prob_bits, max_n)
        self.pv = PVArray(d, cfg.prob_bits, cfg.kv_bits, self.acc_bits, max_n)
        self.tokimp = CascadePruner(max_n, cfg.prob_bits, cfg.importance_bits, p)
        self.hw = max(1, (cfg.max_heads - 1).bit_length())
        self.head_value_bits = self.acc_bits + max(1, (d - 1).bit_length())
        self.headimp = CascadePruner(cfg.max_heads, self.head_value_bits, cfg.importance_bits, p)
        lb = max(1, d * cfg.kv_lsb_bits)
        S = Signal
        self.req_valid, self.req_ready = S(name="req_valid"), S(name="req_ready")
        self.req_n, self.req_kv = S(self.lw, name="req_n"), S(self.lw, name="req_kv")
        self.req_dq = S(24, name="req_dq")
        self.req_q = S(d * cfg.q_bits, name="req_q")
        self.kreq_valid, self.kreq_index = S(name="kreq_valid"), S(self.iw, name="kreq_index")
        self.kreq_lsb = S(name="kreq_lsb")
        self.kresp_valid = S(name="kresp_valid")
        self.kresp_msb, self.kresp_lsb = S(d * cfg.kv_msb_bits, name="kresp_msb"), S(lb, name="kresp_lsb")
        self.vreq_valid, self.vreq_index = S(name="vreq_valid"), S(self.iw, name="vreq_index")
        self.vresp_valid, self.vresp_msb = S(name="vresp_valid"), S(d * cfg.kv_msb_bits, name="vresp_msb")
        self.vreq_lsb, self.vresp_lsb = S(name="vreq_lsb"), S(lb, name="vresp_lsb")
        self.out_valid, self.out_requant = S(name="out_valid"), S(name="out_requant")
        self.out_data = S(d * self.acc_bits, name="out_data")
        self.imp_clear, self.imp_busy = S(name="imp_clear"), S(name="imp_busy")
        self.imp_rd_index = S(self.iw, name="imp_rd_index")
        self.imp_rd_value = S(cfg.importance_bits, name="imp_rd_value")
        self.req_head = S(self.hw, name="req_head")
        # cascade pruning: token selection over tokimp, head selection over headimp (host-sequenced
        # between layers); the pruner's own ports come out as tok_* / head_*
        self.pruner_ports = []
        for pre, u, names in (("tok_", self.tokimp, ("sel_start", "sel_reset", "sel_n", "sel_keep", "sel_busy",
                                                     "sel_done", "sel_count", "alive_index", "alive")),
                              ("head_", self.headimp, ("clear", "busy", "rd_index", "rd_value", "sel_start",
                                                       "sel_reset", "sel_n", "sel_keep", "sel_busy", "sel_done",
                                                       "sel_count", "alive_index", "alive"))):
            dirs = {s.name: d for s, d in u.io()}
            for nm in names:
                inner = getattr(u, nm)
                self.pruner_ports.append((S(inner.shape(), name=pre + nm), inner, dirs[nm]))

    def io(self):
        i = [self.req_valid, self.req_n, self.req_kv, self.req_dq, self.req_q, self.req_head, self.kresp_valid,
             self.kresp_msb, self.kresp_lsb, self.vresp_valid, self.vresp_msb, self.vresp_lsb, self.imp_clear,
             self.imp_rd_index]
        o = [self.req_ready, self.kreq_valid, self.kreq_index, self.kreq_lsb, self.vreq_valid, self.vreq_index,
             self.vreq_lsb, self.out_valid, self.out_data, self.out_requant, self.imp_busy, self.imp_rd_value]
        return [(s, "i") for s in i] + [(s, "o") for s in o] + [(s, d) for s, _, d in self.pruner_ports]

    def _first_set(self, m, vec, lo, name):
        """(index, found) of the lowest set bit of ``vec`` at or above ``lo``: a log-depth tree priority
        encoder (a ``x & -x`` isolation would be one max_n-bit carry chain)."""
        avail = Signal(self.max_n, name=f"{name}_avail")
        for bit in range(self.max_n):
            m.d.comb += avail[bit].eq(vec[bit] & (lo <= bit))
        level = [(avail[b], Const(0, 0)) for b in range(self.max_n)]
        depth = 0
        while len(level) > 1:
            if len(level) % 2:
                level.append((Const(0, 1), Const(0, depth)))
            nxt = []
            for i in range(0, len(level), 2):
                (fl, il), (fr, ir) = level[i], level[i + 1]
                f, ix = Signal(name=f"{name}_f{depth}"), Signal(depth + 1, name=f"{name}_i{depth}")
                m.d.comb += [f.eq(fl | fr), ix.eq(Mux(fl, Cat(il, Const(0, 1)), Cat(ir, Const(1, 1))))]
                nxt.append((f, ix))
            level, depth = nxt, depth + 1
        idx, found = Signal(self.iw, name=f"{name}_first"), Signal(name=f"{name}_found")
        m.d.comb += [found.eq(level[0][0]), idx.eq(level[0][1])]
        return idx, found

    def elaborate(self, platform):
        m = Module()
        cfg, p, lp, lw = self.cfg, self.p, self.lp, self.lw
        for name in ("qk", "kfetch", "vfetch", "softmax", "requant", "topk", "pv", "tokimp", "headimp"):
            m.submodules[name] = getattr(self, name)
        qk, kf, vf, sm, rq, tk, pv, imp = (self.qk, self.kfetch, self.vfetch, self.softmax, self.requant,
                                            self.topk, self.pv, self.tokimp)
        depth = max(2, self.max_n // p)
        aw = (depth - 1).bit_length()
        pbuf = []
        for b in range(p):
            mem = Memory(shape=cfg.prob_bits, depth=depth, init=[])
            m.submodules[f"pbuf{b}"] = mem
            pbuf.append((mem.write_port(), mem.read_port(domain="comb"), mem.read_port(domain="comb")))
        vfifo = SyncFIFO(width=self.iw, depth=4)
        m.submodules.vfifo = vfifo

        n, kv = Signal(lw), Signal(lw)
        q, dq = Signal.like(self.req_q), Signal(24)
        lsb_pass = Signal()
        issue, recv, oj = Signal(lw), Signal(lw), Signal(lw)
        # keys are the first n alive tokens (cascade token pruning) in index order: tptr walks the alive
        # mask, tokmap remembers each key position's token (importance and V requests use tokens)
        tptr = Signal(lw + 1)
        ktok, kfound = self._first_set(m, imp.alive_vec, tptr, "k")
        tokmap = Memory(shape=self.iw, depth=max(2, self.max_n), init=[])
        m.submodules.tokmap = tokmap
        tokmap_w = tokmap.write_port()
        tokmap_i, tokmap_v = tokmap.read_port(domain="comb"), tokmap.read_port(domain="comb")
        row = Signal(aw + 1)
        sel = Signal(self.max_n)
        vptr = Signal(lw + 1)
        consumed = Signal(lw)
        m_sel = Signal(lw)
        requant_hit = Signal()

        for top, inner, d in self.pruner_ports:
            m.d.comb += (inner.eq(top) if d == "i" else top.eq(inner))
        # head importance += sum_d |out_d| of every finished request (the reference's |P.V| measure)
        head = Signal(self.hw)
        hi = self.headimp
        lanes = [pv.out[j * self.acc_bits:(j + 1) * self.acc_bits].as_signed() for j in range(cfg.head_dim)]
        abssum = Signal(self.head_value_bits)
        m.d.comb += abssum.eq(sum(Mux(x < 0, -x, x) for x in lanes))
        m.d.comb += [hi.add_index.eq(head), hi.add_value.eq(abssum)]
        # token importance accumulator: ports through, adds come from the final softmax pass
        m.d.comb += [imp.clear.eq(self.imp_clear), self.imp_busy.eq(imp.busy), imp.rd_index.eq(self.imp_rd_index),
                     self.imp_rd_value.eq(imp.rd_value)]
        # K path: response -> fetcher -> Q.K -> softmax
        m.d.comb += [kf.in_valid.eq(self.kresp_valid), kf.msb.eq(self.kresp_msb), kf.lsb.eq(self.kresp_lsb),
                     kf.use_lsb.eq(lsb_pass),
                     qk.in_valid.eq(kf.out_valid), qk.q.eq(q), qk.k.eq(kf.value),
                     sm.in_valid.eq(qk.out_valid), sm.in_score.eq(qk.score), sm.in_last.eq(recv == n - 1),
                     sm.dq.eq(dq)]
        with m.If(qk.out_valid):
            m.d.sync += recv.eq(recv + 1)
        # softmax output -> P buffer, requant decision
        m.d.comb += [rq.in_valid.eq(sm.out_valid), rq.first.eq(oj == 0), rq.last.eq(sm.out_last),
                     rq.p.eq(sm.out_prob), rq.threshold.eq(cfg.threshold_q)]
        for b, (wp, _, _) in enumerate(pbuf):
            m.d.comb += [wp.en.eq(sm.out_valid & (oj[:lp] == b if lp else 1)), wp.addr.eq(oj[lp:lp + aw]),
                         wp.data.eq(sm.out_prob)]
        with m.If(sm.out_valid):
            m.d.sync += oj.eq(oj + 1)
        # top-k feed from the P buffer, rows of P
        nrows = Signal(aw + 2)
        m.d.comb += nrows.eq((n + p - 1) >> lp)
        for b, (_, rp, _) in enumerate(pbuf):
            m.d.comb += [rp.addr.eq(row[:aw]), tk.in_data[b * cfg.prob_bits:(b + 1) * cfg.prob_bits].eq(rp.data)]
        m.d.comb += [tk.n.eq(n), tk.k.eq(kv)]
        # top-k outputs -> selection mask
        sel_set = Signal(self.max_n)
        onehots = []
        for lane in range(p):
            oh = Signal(self.max_n, name=f"sel_oh{lane}")
            idx = tk.out_index[lane * self.iw:(lane + 1) * self.iw]
            m.d.comb += oh.eq(Mux(tk.out_valid & (lane < tk.out_count), onehot(m, idx, self.max_n, f"sel{lane}"), 0))
            onehots.append(oh)
        acc_oh = Const(0, self.max_n)
        for oh in onehots:
            acc_oh = acc_oh | oh
        m.d.comb += sel_set.eq(acc_oh)
        # V path: next selected key position at or after vptr; its token through the key map
        nxt, found = self._first_set(m, sel, vptr, "v")
        m.d.comb += tokmap_v.addr.eq(nxt)
        for b, (_, _, rp) in enumerate(pbuf):
            m.d.comb += rp.addr.eq(vfifo.r_data[lp:lp + aw])
        p_at = Signal(cfg.prob_bits)
        m.d.comb += p_at.eq(Cat(*[rp.data for _, _, rp in pbuf]).word_select(vfifo.r_data[:lp], cfg.prob_bits)
                            if lp else pbuf[0][2].data)
        p_dly, first_dly, last_dly = Signal(cfg.prob_bits), Signal(), Signal()
        v_lsb = Signal()  # V LSBs too: only for requantized rows, and only with cfg.requant_values
        m.d.comb += v_lsb.eq(requant_hit & int(bool(cfg.requant_values)))
        m.d.comb += [vf.in_valid.eq(self.vresp_valid), vf.msb.eq(self.vresp_msb), vf.lsb.eq(self.vresp_lsb),
                     vf.use_lsb.eq(v_lsb), self.vreq_lsb.eq(self.vreq_valid & v_lsb),
                     vfifo.r_en.eq(self.vresp_valid),
                     pv.in_valid.eq(vf.out_valid), pv.p.eq(p_dly), pv.v.eq(vf.value), pv.first.eq(first_dly),
                     pv.last.eq(last_dly)]
        with m.If(self.vresp_valid):
            m.d.sync += [p_dly.eq(p_at), first_dly.eq(consumed == 0), last_dly.eq(consumed == m_sel - 1),
                         consumed.eq(consumed + 1)]

        with m.FSM(name="pipe_fsm"):
            with m.State("IDLE"):
                idle = ~imp.busy & ~imp.sel_busy & ~hi.busy & ~hi.sel_busy
                m.d.comb += self.req_ready.eq(idle)
                with m.If(self.req_valid & idle):
                    m.d.sync += [head.eq(self.req_head), n.eq(self.req_n), kv.eq(Mux(self.req_kv > self.req_n, self.req_n, self.req_kv)),
                                 q.eq(self.req_q), dq.eq(self.req_dq), lsb_pass.eq(0), issue.eq(0), tptr.eq(0), recv.eq(0),
                                 oj.eq(0), sel.eq(0), vptr.eq(0), consumed.eq(0), requant_hit.eq(0)]
                    m.next = "KSTREAM"
            with m.State("KSTREAM"):
                with m.If((issue < n) & kfound):
                    m.d.comb += [self.kreq_valid.eq(1), self.kreq_index.eq(ktok), self.kreq_lsb.eq(lsb_pass),
                                 tokmap_w.en.eq(1), tokmap_w.addr.eq(issue), tokmap_w.data.eq(ktok)]
                    m.d.sync += [issue.eq(issue + 1), tptr.eq(ktok + 1)]
                with m.If(sm.out_last):
                    m.next = "DECIDE"
            with m.State("DECIDE"):  # requant.out_valid is high in this cycle
                with m.If(rq.need_requant & ~lsb_pass & (cfg.kv_lsb_bits > 0)):
                    m.d.sync += [lsb_pass.eq(1), requant_hit.eq(1), issue.eq(0), recv.eq(0), oj.eq(0), tptr.eq(0)]
                    m.next = "KSTREAM"
                with m.Else():
                    m.d.sync += [row.eq(0), oj.eq(0), m_sel.eq(kv)]
                    m.next = "IMP"
            with m.State("IMP"):  # token importance += final probabilities (read back from the P buffer)
                rd = Signal(cfg.prob_bits)
                m.d.comb += rd.eq(Cat(*[r.data for _, r, _ in pbuf]).word_select(oj[:lp], cfg.prob_bits)
                                  if lp else pbuf[0][1].data)
                m.d.comb += [tokmap_i.addr.eq(oj), imp.add_valid.eq(1), imp.add_index.eq(tokmap_i.data),
                             imp.add_value.eq(rd)]
                m.d.comb += [pb[1].addr.eq(oj[lp:lp + aw]) for pb in pbuf]
                m.d.sync += oj.eq(oj + 1)
                with m.If(oj == n - 1):
                    with m.If(kv >= n):
                        m.d.sync += sel.eq(Cat(*[Const(bit, lw) < n for bit in range(self.max_n)]))
                        m.next = "VSTREAM"
                    with m.Else():
                        m.next = "TKSTART"
            with m.State("TKSTART"):
                m.d.comb += tk.start.eq(1)
                m.next = "TKRUN"
            with m.State("TKRUN"):
                with m.If(tk.in_ready & (row < nrows)):
                    m.d.comb += tk.in_valid.eq(1)
                    m.d.sync += row.eq(row + 1)
                m.d.sync += sel.eq(sel | sel_set)
                with m.If(tk.done):
                    m.next = "VSTREAM"
            with m.State("VSTREAM"):
                with m.If(found & vfifo.w_rdy):
                    m.d.comb += [self.vreq_valid.eq(1), self.vreq_index.eq(tokmap_v.data), vfifo.w_en.eq(1),
                                 vfifo.w_data.eq(nxt)]
                    m.d.sync += vptr.eq(nxt + 1)
                with m.If(pv.out_valid):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.out_valid.eq(1), self.out_data.eq(pv.out), self.out_requant.eq(requant_hit),
                             hi.add_valid.eq(1)]
                m.next = "IDLE"
        return m

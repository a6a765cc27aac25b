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
Lanes: the K side moves ``K = qk_multipliers / D`` keys per cycle (a *beat*: ``kreq_count`` tokens on
``kreq_index`` lanes 0..count-1, answered by one ``kresp`` beat with their rows on the same lanes); the
softmax, the P buffer writes, the requant max and the importance adds take K lanes per cycle too. The V
side moves ``R = pv_multipliers / D`` selected rows per beat (``vreq_count``/``vreq_index``/``vresp``).
Only a stream's last beat may be partial. K must divide topk_parallelism (the P buffer's banks).
Between layers the host runs the token and head selections (``tok_sel_*``, ``head_sel_*``): each keeps the
top-k alive entries by cumulative importance with its own quick-select engine.
Memories answer beats in order, with any latency (kresp_valid / vresp_valid); up to 4 V beats are
in flight. Bit-exact with ``sw_reference.spatten.cascade.attention_query_int``.
"""
from __future__ import annotations

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory

from lego.units.bits import onehot, widen, word
from lego.units.topk import TopKEngine

from .datapath import KVFetcher, RequantDecision
from .lego_datapath import PVArray, QKArray
from .prune import CascadePruner
from .softmax import Softmax


class QueryPipeline(Elaboratable):
    def __init__(self, cfg):
        self.cfg = cfg
        self.max_n = max_n = cfg.topk_max_n     # keys of one request, tokens the pruner holds
        d, p = cfg.head_dim, cfg.topk_parallelism
        self.K, self.R = cfg.keys_per_cycle, cfg.values_per_cycle
        if p % self.K:
            raise ValueError(f"keys per cycle {self.K} must divide topk_parallelism {p}")
        self.lk = (self.K - 1).bit_length()
        self.p, self.lp = p, (p - 1).bit_length()
        self.lw = max_n.bit_length()
        self.iw = max(1, (max_n - 1).bit_length())
        self.acc_bits = cfg.pv_acc_bits
        self.qk = QKArray(d, cfg.q_bits, cfg.kv_bits, max_n, self.K)
        self.kfetch = KVFetcher(self.K * d, cfg.kv_bits, cfg.kv_msb_bits)
        self.vfetch = KVFetcher(self.R * d, cfg.kv_bits, cfg.kv_msb_bits)
        self.softmax = Softmax(cfg, max_n, self.K)
        self.requant = RequantDecision(cfg.prob_bits)
        self.topk = TopKEngine(p, cfg.prob_bits, max_n)
        self.pv = PVArray(d, cfg.prob_bits, cfg.kv_bits, self.acc_bits, max_n, self.R)
        self.tokimp = CascadePruner(max_n, cfg.prob_bits, cfg.importance_bits, p, self.K)
        self.hw = max(1, (cfg.max_heads - 1).bit_length())
        self.head_value_bits = self.acc_bits + max(1, (d - 1).bit_length())
        self.headimp = CascadePruner(cfg.max_heads, self.head_value_bits, cfg.importance_bits, p)
        lb = max(1, d * cfg.kv_lsb_bits)
        K, R = self.K, self.R
        S = Signal
        self.req_valid, self.req_ready = S(name="req_valid"), S(name="req_ready")
        self.req_n, self.req_kv = S(self.lw, name="req_n"), S(self.lw, name="req_kv")
        self.req_dq = S(24, name="req_dq")
        self.req_q = S(d * cfg.q_bits, name="req_q")
        self.kreq_valid, self.kreq_index = S(name="kreq_valid"), S(K * self.iw, name="kreq_index")
        self.kreq_count, self.kreq_lsb = S(K.bit_length(), name="kreq_count"), S(name="kreq_lsb")
        self.kresp_valid = S(name="kresp_valid")
        self.kresp_msb = S(K * d * cfg.kv_msb_bits, name="kresp_msb")
        self.kresp_lsb = S(K * lb, name="kresp_lsb")
        self.vreq_valid, self.vreq_index = S(name="vreq_valid"), S(R * self.iw, name="vreq_index")
        self.vreq_count = S(R.bit_length(), name="vreq_count")
        self.vresp_valid, self.vresp_msb = S(name="vresp_valid"), S(R * d * cfg.kv_msb_bits, name="vresp_msb")
        self.vreq_lsb, self.vresp_lsb = S(name="vreq_lsb"), S(R * lb, name="vresp_lsb")
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
        o = [self.req_ready, self.kreq_valid, self.kreq_count, self.kreq_index, self.kreq_lsb, self.vreq_valid,
             self.vreq_count, self.vreq_index, self.vreq_lsb, self.out_valid, self.out_data, self.out_requant,
             self.imp_busy, self.imp_rd_value]
        return [(s, "i") for s in i] + [(s, "o") for s in o] + [(s, d) for s, _, d in self.pruner_ports]

    def _lowest_set(self, m, vec, name):
        """(index, found) of the lowest set bit of ``vec``: a log-depth tree priority encoder (a ``x & -x``
        isolation would be one max_n-bit carry chain)."""
        level = [(vec[b], Const(0, 0)) for b in range(self.max_n)]
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

    def _lowest_bits(self, m, vec, lanes, name):
        """The ``lanes`` lowest set bits of ``vec`` in index order: [(index, found)], and ``vec`` without
        them (each lane's bit cleared through a one-hot decode)."""
        out, avail = [], vec
        for x in range(lanes):
            idx, found = self._lowest_set(m, avail, f"{name}{x}")
            out.append((idx, found))
            rest = Signal(self.max_n, name=f"{name}{x}_rest")
            m.d.comb += rest.eq(avail & ~Mux(found, onehot(m, idx, self.max_n, f"{name}{x}"), 0))
            avail = rest
        return out, avail

    @staticmethod
    def _lane(vec, x, w):
        return vec[x * w:(x + 1) * w]

    def elaborate(self, platform):
        m = Module()
        cfg, p, lp, lw, iw = self.cfg, self.p, self.lp, self.lw, self.iw
        K, R, lk, pb = self.K, self.R, self.lk, cfg.prob_bits
        for name in ("qk", "kfetch", "vfetch", "softmax", "requant", "topk", "pv", "tokimp", "headimp"):
            m.submodules[name] = getattr(self, name)
        qk, kf, vf, sm, rq, tk, pv, imp = (self.qk, self.kfetch, self.vfetch, self.softmax, self.requant,
                                            self.topk, self.pv, self.tokimp)
        depth = max(2, self.max_n // p)
        aw = (depth - 1).bit_length()
        # the P buffer: p banks, position j in bank j mod p at address j / p; a beat of K positions
        # (j a multiple of K) hits K consecutive banks. Port 0 reads rows (top-k, IMP), ports 1..R the V lanes
        pbuf = []
        for b in range(p):
            mem = Memory(shape=pb, depth=depth, init=[])
            m.submodules[f"pbuf{b}"] = mem
            pbuf.append((mem.write_port(), [mem.read_port(domain="comb") for _ in range(1 + R)]))
        cw = R.bit_length()
        vfifo = SyncFIFO(width=R * iw + cw, depth=4)
        m.submodules.vfifo = vfifo

        n, kv = Signal(lw), Signal(lw)
        nb, last_cnt = Signal(lw), Signal(K.bit_length())   # K beats of the request; keys in the last one
        q, dq = Signal.like(self.req_q), Signal(24)
        lsb_pass = Signal()
        issue, oj = Signal(lw + 1), Signal(lw + 1)           # key positions (multiples of K at beat starts)
        recv = Signal(lw)                                   # K beats scored
        # keys are the first n alive tokens (cascade token pruning) in index order: ``kleft`` is the alive
        # mask less the tokens already requested; tokmap remembers each key position's token (rows of K)
        kleft = Signal(self.max_n)
        keys, kleft_next = self._lowest_bits(m, kleft, K, "k")
        kbeats = max(2, -(-self.max_n // K))
        tokmap = Memory(shape=K * iw, depth=kbeats, init=[])
        m.submodules.tokmap = tokmap
        tokmap_w = tokmap.write_port()
        tokmap_i = tokmap.read_port(domain="comb")
        tokmap_v = [tokmap.read_port(domain="comb") for _ in range(R)]
        row = Signal(aw + 1)
        sel = Signal(self.max_n)                            # selected key positions not yet requested
        consumed = Signal(lw)
        m_sel = Signal(lw + 1)                              # against consumed + fcnt (lw + 1 bits)
        requant_hit = Signal()

        for top, inner, d in self.pruner_ports:
            m.d.comb += (inner.eq(top) if d == "i" else top.eq(inner))
        # head importance += sum_d |out_d| of every finished request (the reference's |P.V| measure)
        head = Signal(self.hw)
        hi = self.headimp
        lanes = [self._lane(pv.out, j, self.acc_bits).as_signed() for j in range(cfg.head_dim)]
        abssum = Signal(self.head_value_bits)
        m.d.comb += abssum.eq(sum(Mux(x < 0, -x, x) for x in lanes))
        m.d.comb += [hi.add_index.eq(head), hi.add_value.eq(abssum)]
        # token importance accumulator: ports through, adds (K per cycle) come from the final softmax pass
        m.d.comb += [imp.clear.eq(self.imp_clear), self.imp_busy.eq(imp.busy), imp.rd_index.eq(self.imp_rd_index),
                     self.imp_rd_value.eq(imp.rd_value)]
        # K path: response beat -> fetcher -> Q.K -> softmax
        last_beat = Signal()
        m.d.comb += last_beat.eq(widen(m, recv, lw + 1, "recv_w") == nb - 1)
        m.d.comb += [kf.in_valid.eq(self.kresp_valid), kf.msb.eq(self.kresp_msb), kf.lsb.eq(self.kresp_lsb),
                     kf.use_lsb.eq(lsb_pass),
                     qk.in_valid.eq(kf.out_valid), qk.q.eq(q), qk.k.eq(kf.value),
                     sm.in_valid.eq(qk.out_valid), sm.in_score.eq(qk.score), sm.in_last.eq(last_beat),
                     sm.in_count.eq(Mux(last_beat, last_cnt, K)), sm.dq.eq(dq)]
        with m.If(qk.out_valid):
            m.d.sync += recv.eq(recv + 1)
        # softmax output beat -> P buffer (lane x of position oj + x), requant decision on the beat's max
        grp = (lambda pos: pos[lk:lp] if lp > lk else Const(0, 1))   # the beat's bank group
        for b, (wp, _) in enumerate(pbuf):
            x = b % K
            m.d.comb += [wp.en.eq(sm.out_valid & (grp(oj) == b >> lk) & (x < sm.out_count)),
                         wp.addr.eq(oj[lp:lp + aw]), wp.data.eq(self._lane(sm.out_prob, x, pb))]
        bmax = Const(0, pb)
        for x in range(K):
            v = Signal(pb, name=f"pmax{x}")
            lane = self._lane(sm.out_prob, x, pb)
            m.d.comb += v.eq(Mux((x < sm.out_count) & (lane > bmax), lane, bmax))
            bmax = v
        m.d.comb += [rq.in_valid.eq(sm.out_valid), rq.first.eq(oj == 0), rq.last.eq(sm.out_last),
                     rq.p.eq(bmax), rq.threshold.eq(cfg.threshold_q)]
        with m.If(sm.out_valid):
            m.d.sync += oj.eq(oj + K)
        # top-k feed from the P buffer, rows of P
        nrows = Signal(aw + 2)
        m.d.comb += nrows.eq((n + p - 1) >> lp)
        row_w = widen(m, row, len(nrows), "row_w")
        for b, (_, rps) in enumerate(pbuf):
            m.d.comb += [rps[0].addr.eq(row[:aw]), self._lane(tk.in_data, b, pb).eq(rps[0].data)]
        m.d.comb += [tk.n.eq(n), tk.k.eq(kv)]
        # top-k outputs -> selection mask
        acc_oh = Const(0, self.max_n)
        for lane in range(p):
            oh = Signal(self.max_n, name=f"sel_oh{lane}")
            idx = self._lane(tk.out_index, lane, iw)
            m.d.comb += oh.eq(Mux(tk.out_valid & (lane < tk.out_count), onehot(m, idx, self.max_n, f"sel{lane}"), 0))
            acc_oh = acc_oh | oh
        sel_set = Signal(self.max_n)
        m.d.comb += sel_set.eq(acc_oh)
        # V path: the next R selected key positions; their tokens through the key map
        vpos, sel_next = self._lowest_bits(m, sel, R, "v")
        vcount = Signal(cw)
        m.d.comb += vcount.eq(sum(f for _, f in vpos))
        for x, (pos, _) in enumerate(vpos):
            m.d.comb += tokmap_v[x].addr.eq(pos >> lk)
        vtok = [self._lane(tokmap_v[x].data, 0, iw) if K == 1 else
                word(tokmap_v[x].data, pos[:lk], iw) for x, (pos, _) in enumerate(vpos)]
        # the oldest V beat in flight: its positions' probabilities (lanes >= its count give p = 0)
        fpos = [self._lane(vfifo.r_data, x, iw) for x in range(R)]
        fcnt = vfifo.r_data[R * iw:]
        fcnt_w = widen(m, fcnt, lw, "fcnt_w")              # added to consumed (lw bits)
        p_at = []
        for x in range(R):
            for _, rps in pbuf:
                m.d.comb += rps[1 + x].addr.eq(fpos[x][lp:lp + aw])
            wrd = Cat(*[rps[1 + x].data for _, rps in pbuf])
            pick = Signal(pb, name=f"p_at{x}")
            m.d.comb += pick.eq(Mux(x < fcnt, word(wrd, fpos[x][:lp], pb), 0))   # lp >= 1: p >= 2 banks
            p_at.append(pick)
        p_dly, first_dly, last_dly = Signal(R * pb), Signal(), Signal()
        v_lsb = Signal()  # V LSBs too: only for requantized rows, and only with cfg.requant_values
        m.d.comb += v_lsb.eq(requant_hit & int(bool(cfg.requant_values)))
        m.d.comb += [vf.in_valid.eq(self.vresp_valid), vf.msb.eq(self.vresp_msb), vf.lsb.eq(self.vresp_lsb),
                     vf.use_lsb.eq(v_lsb), self.vreq_lsb.eq(self.vreq_valid & v_lsb),
                     vfifo.r_en.eq(self.vresp_valid),
                     pv.in_valid.eq(vf.out_valid), pv.p.eq(p_dly), pv.v.eq(vf.value), pv.first.eq(first_dly),
                     pv.last.eq(last_dly)]
        with m.If(self.vresp_valid):
            m.d.sync += [p_dly.eq(Cat(*p_at)), first_dly.eq(consumed == 0),
                         last_dly.eq(consumed + fcnt_w >= m_sel), consumed.eq(consumed + fcnt_w)]

        # IMP: one beat of K final probabilities per cycle, read back from the P buffer
        imp_p = []
        for x in range(K):
            wrd = Cat(*[pbuf[g * K + x][1][0].data for g in range(p // K)])
            imp_p.append(word(wrd, grp(oj), pb) if p > K else pbuf[x][1][0].data)
        imp_tok = [self._lane(tokmap_i.data, x, iw) for x in range(K)]

        with m.FSM(name="pipe_fsm"):
            with m.State("IDLE"):
                idle = ~imp.busy & ~imp.sel_busy & ~hi.busy & ~hi.sel_busy
                m.d.comb += self.req_ready.eq(idle)
                with m.If(self.req_valid & idle):
                    rn = self.req_n
                    beats = (rn + K - 1) >> lk
                    m.d.sync += [head.eq(self.req_head), n.eq(rn), kv.eq(Mux(self.req_kv > rn, rn, self.req_kv)),
                                 nb.eq(beats), last_cnt.eq(rn - ((beats - 1) << lk)),
                                 q.eq(self.req_q), dq.eq(self.req_dq), lsb_pass.eq(0), issue.eq(0),
                                 kleft.eq(imp.alive_vec), recv.eq(0), oj.eq(0), sel.eq(0), consumed.eq(0),
                                 requant_hit.eq(0)]
                    m.next = "KSTREAM"
            with m.State("KSTREAM"):
                # a beat goes out when every key it needs (min(K, n - issue)) is an alive token
                need = [keys[x][1] | (issue + x >= n) for x in range(K)]
                with m.If((issue < n) & Cat(*need).all()):
                    left = Signal(lw + 1)
                    m.d.comb += left.eq(n - issue)
                    m.d.comb += [self.kreq_valid.eq(1), self.kreq_count.eq(Mux(left > K, K, left)),
                                 self.kreq_index.eq(Cat(*[t for t, _ in keys])), self.kreq_lsb.eq(lsb_pass),
                                 tokmap_w.en.eq(1), tokmap_w.addr.eq(issue >> lk),
                                 tokmap_w.data.eq(Cat(*[t for t, _ in keys]))]
                    m.d.sync += [issue.eq(issue + K), kleft.eq(kleft_next)]
                with m.If(sm.out_last):
                    m.next = "DECIDE"
            with m.State("DECIDE"):  # requant.out_valid is high in this cycle
                with m.If(rq.need_requant & ~lsb_pass & (cfg.kv_lsb_bits > 0)):
                    m.d.sync += [lsb_pass.eq(1), requant_hit.eq(1), issue.eq(0), recv.eq(0), oj.eq(0),
                                 kleft.eq(imp.alive_vec)]
                    m.next = "KSTREAM"
                with m.Else():
                    m.d.sync += [row.eq(0), oj.eq(0), m_sel.eq(kv)]
                    m.next = "IMP"
            with m.State("IMP"):  # token importance += final probabilities, K per cycle
                m.d.comb += [tokmap_i.addr.eq(oj >> lk),
                             imp.add_valid.eq(Cat(*[oj + x < n for x in range(K)])),
                             imp.add_index.eq(Cat(*imp_tok)), imp.add_value.eq(Cat(*imp_p))]
                m.d.comb += [rps[0].addr.eq(oj[lp:lp + aw]) for _, rps in pbuf]
                m.d.sync += oj.eq(oj + K)
                with m.If(oj + K >= n):
                    with m.If(kv >= n):
                        m.d.sync += sel.eq(Cat(*[Const(bit, lw) < n for bit in range(self.max_n)]))
                        m.next = "VSTREAM"
                    with m.Else():
                        m.next = "TKSTART"
            with m.State("TKSTART"):
                m.d.comb += tk.start.eq(1)
                m.next = "TKRUN"
            with m.State("TKRUN"):
                with m.If(tk.in_ready & (row_w < nrows)):
                    m.d.comb += tk.in_valid.eq(1)
                    m.d.sync += row.eq(row + 1)
                m.d.sync += sel.eq(sel | sel_set)
                with m.If(tk.done):
                    m.next = "VSTREAM"
            with m.State("VSTREAM"):
                with m.If(vpos[0][1] & vfifo.w_rdy):
                    m.d.comb += [self.vreq_valid.eq(1), self.vreq_count.eq(vcount),
                                 self.vreq_index.eq(Cat(*vtok)), vfifo.w_en.eq(1),
                                 vfifo.w_data.eq(Cat(*[pos for pos, _ in vpos], vcount))]
                    m.d.sync += sel.eq(sel_next)
                with m.If(pv.out_valid):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.out_valid.eq(1), self.out_data.eq(pv.out), self.out_requant.eq(requant_hit),
                             hi.add_valid.eq(1)]
                m.next = "IDLE"
        return m

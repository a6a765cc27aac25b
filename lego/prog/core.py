"""The programmable array core: the fixed-shape generator's ArrayCore (``lego.emit.array``) built for the tile box,
with its step-counter extents, bounds and buffer bases read from registers latched at ``go`` (a COMPUTE). ``ProgTop``
(``lego.prog.rtl``) wraps it with the dispatcher, CSRs and DMAs; ``lego.prog.hier.ProgHierCore`` emits it one module
per FU type. docs/programmable.md.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib.memory import Memory

from ..emit.array import ArrayCore, add_bases, pack_fields, step_counters
from ..prim.lower import bits_for
from .banks import BankMapMixin, _buf_addr
from .spec import DIM_BITS


class ProgCore(BankMapMixin, ArrayCore):
    """ArrayCore of the tile box, programmable: ``go`` starts one COMPUTE with the latched mode, buffers,
    accumulate flag, counter extents (``ext``) and iterator bounds (``lim``)."""

    def __init__(self, arch, pg):
        super().__init__(arch, pg)
        self._init_banks()           # physical banks and depths: ArchGraph.fused (lego.prog.banks)
        self.busy = Signal(name="cp_busy")
        w = arch.workload
        assert pg.rmw, "the programmable core accumulates across commands (lower(force_rmw=True))"
        self.nT = max(len(m.df.T) for m in arch.modes)
        self.drains = [pg.drain(m.index, self.fd) for m in arch.modes]
        assert min(self.drains) >= 1
        self.go = Signal(name="cp_go")
        self.c_xbuf, self.c_wbuf, self.c_ybuf, self.c_acc = (Signal(name=f"cp_{n}") for n in ("xbuf", "wbuf", "ybuf", "acc"))
        self.c_ext = [Signal(DIM_BITS, name=f"cp_ext{k}") for k in range(self.nT)]
        self.c_lim = {it: Signal(DIM_BITS, name=f"cp_lim_{it}") for it in w.iterators}
        self.ext_r = [Signal(DIM_BITS, name=f"cp_ext{k}_r") for k in range(self.nT)]
        self.lim_r = {it: Signal(DIM_BITS, name=f"cp_lim_{it}_r") for it in w.iterators}
        self.xbuf_r, self.wbuf_r, self.ybuf_r, self.acc_r = (Signal(name=f"cp_{n}_r") for n in ("xbuf", "wbuf", "ybuf", "acc"))
        X, W = w.inputs
        self.buf_of = {X.name: self.xbuf_r, W.name: self.wbuf_r}
        # tensor dimension -> iterator (each index entry is one iterator: checked by lego.prog.generate)
        self.dim_it = {t.name: [w.iterators[list(a.coeffs).index(1)] for a in t.index] for t in w.tensors}
        # store-DMA side of the accumulator: the read address of each bank (driven by ProgTop's gather)
        self.st_addr = [Signal(range(max(2, self.out_banks[1])), name=f"st_raddr_{b}") for b in range(self.out_banks[0])]

    # ------------------------------------------------------------------ controller
    def _controller(self, m):
        arch = self.arch
        self.mode_r = Signal.like(self.mode, name="cp_mode_r")
        cw = Signal(sum(b for _, b in self.fields), name="cw")
        issuing = Signal(name="cp_issuing")
        dcnt = Signal(range(max(self.drains) + 1), name="cp_dcnt")
        last_now = Signal(name="cp_last_step")
        with m.If(self.go):
            m.d.sync += [self.busy.eq(1), issuing.eq(1), self.mode_r.eq(self.mode), self.xbuf_r.eq(self.c_xbuf),
                         self.wbuf_r.eq(self.c_wbuf), self.ybuf_r.eq(self.c_ybuf), self.acc_r.eq(self.c_acc)]
            m.d.sync += [r.eq(s) for r, s in zip(self.ext_r, self.c_ext)]
            m.d.sync += [self.lim_r[it].eq(self.c_lim[it]) for it in self.lim_r]
        with m.Elif(self.busy):
            with m.If(issuing):
                with m.If(last_now):
                    m.d.sync += [issuing.eq(0), dcnt.eq(0)]
            with m.Else():
                m.d.sync += dcnt.eq(dcnt + 1)
                with m.If(dcnt == self._mode_mux({i: Const(d - 1) for i, d in enumerate(self.drains)}, Const(0))):
                    m.d.sync += self.busy.eq(0)
        parts = {"v": issuing}
        Y = arch.workload.output.name
        lasts = {}
        for md in arch.modes:
            df, i = md.df, md.index
            nT = len(df.T)
            ext = self.ext_r[:nT]
            # t == ext - 1, at the counter's width: its bits equal the low bits, and the upper bits are zero
            # (an extent beyond the counter's range, or 0, is never reached, as with the full compare)
            maxima = [lambda tk, e=ext[k]: (tk == (e - 1)[:len(tk)]) & ((e - 1)[len(tk):] == 0)
                      for k in range(nT)]
            t, kp, kn = step_counters(m, f"m{i}", df.T, maxima, self.go, issuing & (self.mode_r == i))
            first_step = kp == nT
            last_step = kn == nT
            lasts[i] = last_step

            def same_rt(M):
                """same[k] at run time: incrementing position k keeps the index (independent columns)."""
                out = []
                for k in range(nT):
                    if M[:, k].any():
                        out.append(Const(0, 1))
                        continue
                    s = Const(1, 1)
                    for j in range(k + 1, nT):
                        if M[:, j].any():
                            s = s & (ext[j] == 1)
                    out.append(s)
                return out

            def flag(same, pos, base):
                f = base
                for k, sm in enumerate(same):
                    f = f | (~sm & (pos == k))
                return f
            for k in range(nT):
                parts[f"m{i}_t{k}"] = t[k]
            for tn in arch.workload.inputs:
                parts[f"m{i}_chg_{tn.name}"] = flag(same_rt(md.nets[tn.name].M), kp, first_step)
            sy = same_rt(md.nets[Y].M)
            parts[f"m{i}_first"] = flag(sy, kp, first_step)
            parts[f"m{i}_last"] = flag(sy, kn, last_step)
            fresh = ~self.acc_r
            for k in self.pg.fresh[i]:
                fresh = fresh & (t[k] == 0)
            parts[f"m{i}_fresh"] = fresh
            add_bases(parts, arch, md, t)
        m.d.comb += last_now.eq(issuing & self._mode_mux(lasts, Const(0, 1)))
        pack_fields(m, cw, self.fields, parts)
        return cw

    def _fu_bounds(self, word, mi, coef_rows, consts):
        return self._bounds_rt(word, mi, coef_rows, consts, [self.lim_r[it] for it in self.arch.workload.iterators])

    def _bounds_rt(self, word, mi, rows, consts, lims):
        """AND of 0 <= row·t + const < lim (lim a run-time register), one check per row (``_row_ok``)."""
        ok = Const(1, 1)
        for row, k, lim in zip(rows, consts, lims):
            ok = ok & self._row_ok(word, mi, np.asarray(row), int(k), lim)
        return ok

    def _row_ok(self, word, mi, row, k, lim):
        """0 <= row·t + k < lim on the control word delayed by ``word.depth``. The control fields are one
        shift register (shared taps), so the check at depth d equals the check at depth d0 < d delayed by
        d - d0 registers (``lim`` and the mode are latched at ``go`` and held while a word is in flight):
        each (mode, row, k, lim) is compared once, at the smallest depth asked for first, and pipelined to
        the deeper FUs with the control word (the array's skew), one register per further depth."""
        if not self.pg.shared:
            return self._row_expr(word, mi, row, k, lim)
        key = (mi, tuple(int(a) for a in row), k, id(lim))
        taps = self._okc.setdefault(key, {"stem": f"ok{len(self._okc)}"})
        d = word.depth
        have = [x for x in taps if x != "stem" and x <= d]
        if not have:
            s = Signal(name=f"{taps['stem']}_{d}")
            word.m.d.comb += s.eq(self._row_expr(word, mi, row, k, lim))
            taps[d] = s
            return s
        d0 = max(have)
        s = taps[d0]
        while d0 < d:
            d0 += 1
            r = Signal(name=f"{taps['stem']}_{d0}")
            word.m.d.sync += r.eq(s)
            taps[d0] = s = r
        return s

    def _row_expr(self, word, mi, row, k, lim):
        """0 <= row·t + k < lim. The compare is as wide as the expression's largest value ``hi`` (over the
        step counters' ranges), not as wide as ``lim``: with ``w = bits_for(hi)``, ``expr < lim`` is
        ``lim >> w != 0`` or ``expr < lim mod 2**w``; where ``expr`` can be negative, ``expr >= 0`` is in
        the AND and a non-negative ``expr`` equals its low ``w`` bits."""
        tmax = np.array(self.arch.modes[mi].df.T) - 1
        lo = k + np.minimum(row, 0) @ tmax
        hi = k + np.maximum(row, 0) @ tmax
        if hi < 0:
            return Const(0, 1)         # never inside
        expr = self._linear(Const(k), [self._field(word, f"m{mi}_t{j}").as_unsigned() * int(a)
                                       for j, a in enumerate(row) if a])
        ok = (expr >= 0) if lo < 0 else Const(1, 1)
        wb = bits_for(int(hi))
        if wb >= len(lim):
            return ok & (expr < lim)
        return ok & ((lim[wb:] != 0) | (expr.as_unsigned()[:wb] < lim[:wb]))

    # ------------------------------------------------------------------ memories
    def elaborate_into(self, m: Module):
        pg = self.pg
        self._okc = {}                 # shared row checks: (mode, row, const, lim) -> {depth: 1-bit signal}
        cw, ins = self._begin(m)
        for nid, n in pg.nodes.items():
            self.val[nid] = cw if n.kind == "ctl" else self._value(nid, "n_" + "".join(
                ch if ch.isalnum() else "_" for ch in nid).strip("_"))
        mems = self._input_banks(m)
        self._y_banks(m)
        for nid in sorted(pg.nodes, key=lambda x: pg.sigma[x]):
            self._node(m, nid, pg.nodes[nid], ins[nid], mems)
        self._connect_grouped(m, mems)
        return m

    def _memory_depth(self, depth: int) -> int:
        """Input banks hold two buffers (buffer b at addresses b*depth ..); the DMA load unit writes them."""
        return 2 * max(1, depth)

    def _y_banks(self, m):
        """Accumulator banks: two memories (buffers) per bank, each one write and one synchronous read port.
        The read port serves the array's read-modify-write while a COMPUTE targets that buffer, else the
        store DMA (the dispatcher never lets both use one buffer)."""
        nb, depth = self.out_banks
        self.ybank = []
        for b in range(nb):
            dp = Signal(range(max(2, depth)), name=f"rmw_addr_{b}")
            mems = [Memory(shape=signed(self.acc_bits), depth=max(2, depth), init=[]) for _ in range(2)]
            rps, wps = [], []
            for u, mem in enumerate(mems):
                m.submodules[f"mem_Y_{b}_buf{u}"] = mem
                rp = mem.read_port(domain="sync")
                m.d.comb += rp.addr.eq(Mux(self.busy & (self.ybuf_r == u), dp, self.st_addr[b]))
                rps.append(rp)
                wps.append(mem.write_port())
            self.ybank.append((wps, rps, dp))

    # ------------------------------------------------------------------ nodes
    def _node(self, m, nid, n, in_edges, mems):
        pg, arch, v = self.pg, self.arch, self.val[nid]
        w = arch.workload
        by_slot = {e.slot: e for e in in_edges}
        if n.kind == "rd":
            t = n.attrs["tensor"]
            a = self._input(m, by_slot["a"])
            aw = pg.nodes[by_slot["a"].src].width - 2
            valid, en = a[aw], a[aw + 1]
            if self.fb[t].grouped:
                vreg = Signal(name=f"rd_{t}_{n.attrs['bank']}_v")
                data = self._rd_grouped(m, t, n.attrs["bank"], a[:aw], en, vreg, valid, mems,
                                        mems[(t, 0)].shape)
                m.d.comb += v.eq(Mux(vreg, data, 0))
                return
            rp = mems[(t, n.attrs["bank"])].read_port(domain="sync")
            vreg = Signal(name=f"rd_{t}_{n.attrs['bank']}_v")
            depth = self.in_banks[t][1]
            m.d.comb += [rp.addr.eq(_buf_addr(a[:aw], self.buf_of[t], depth)), rp.en.eq(en)]
            with m.If(en):
                m.d.sync += vreg.eq(valid)
            m.d.comb += v.eq(Mux(vreg, rp.data, 0))
        elif n.kind == "wag":
            t = w.tensor(n.attrs["tensor"])
            e = by_slot["ctl"]
            abits = n.width - 2
            outs = {}
            for mi, port in n.attrs["ports"].items():
                word = self._tap(m, "ctl", pg.rho(e, mi), key=(e.src, e.dst, e.slot, mi))
                net = arch.modes[mi].nets[t.name]
                addr, expr = self._affine(word, mi, port.alpha, port.beta, abits, t.name)
                m.d.comb += addr.eq(expr)
                ok = self._bounds_rt(word, mi, net.M, port.k, [self.lim_r[it] for it in self.dim_it[t.name]])
                en = self._field(word, "v") & self._field(word, f"m{mi}_last") & ok
                outs[mi] = Cat(addr, en, self._field(word, f"m{mi}_fresh"))
            m.d.comb += v.eq(self._mode_mux(outs, Const(0, n.width)))
        elif n.kind == "wr":
            yb = self.acc_bits
            a = self._input(m, by_slot["a"])
            vals = {mi: self._input(m, e) for e in in_edges if e.slot != "a" for mi in e.delta}
            val = self._mode_mux(vals, Const(0, yb))
            aw = pg.nodes[by_slot["a"].src].width - 2
            ahead = self._input(m, by_slot["a"], early=1)
            if self.fb[w.output.name].grouped:
                self._wr_grouped(m, n.attrs["bank"], a[:aw], ahead[:aw], a[aw], a[aw + 1], val, yb)
                m.d.comb += v.eq(val)
                return
            wps, rps, dp = self.ybank[n.attrs["bank"]]
            old = Signal(signed(yb), name=f"wr_{n.attrs['bank']}_old")
            new = Signal(signed(yb), name=f"wr_{n.attrs['bank']}_new")
            m.d.comb += [dp.eq(ahead[:aw]),
                         old.eq(Mux(a[aw + 1], 0, Mux(self.ybuf_r, rps[1].data, rps[0].data))),
                         new.eq(old + val), v.eq(val)]
            for u, wp in enumerate(wps):
                m.d.comb += [wp.addr.eq(a[:aw]), wp.data.eq(new), wp.en.eq(a[aw] & (self.ybuf_r == u))]
        else:
            super()._node(m, nid, n, in_edges, mems)

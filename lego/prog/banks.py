"""Capacity-preserving fused banks of the programmable array (``ArchGraph.fused``, docs/programmable.md).

The physical banks of a tensor are shared by all fused modes. A mode with fewer ports than physical banks
sees each logical bank ``b`` as the group of ``g`` (a power of two) physical banks ``b·g .. b·g + g - 1``:
word ``a`` of the logical bank lies in physical bank ``b·g + a mod g`` at address ``a div g``. So the array's
address generators, the DMA scatter and gather and the lowering keep their per-mode logical (bank, address);
only the memories' ports translate, by bit slices (no arithmetic). ``BankMapMixin`` is that translation for
``ProgCore``; a tensor whose groups are all 1 (every single-mode design) takes none of it.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, signed

from .spec import log2i


def lo_bits(a, lg: int):
    """``a mod 2**lg`` of an address value ``a`` (zero-extended when ``a`` is narrower)."""
    if not lg:
        return Const(0, 1)
    n = min(lg, len(a))
    return a[:n] if n == lg else Cat(a[:n], Const(0, lg - n))


def hi_bits(a, lg: int):
    """``a div 2**lg``."""
    return a[lg:] if lg < len(a) else Const(0, 1)


def _buf_addr(a, buf, depth: int):
    """``a + (depth if buf else 0)``: the address of word ``a`` in buffer ``buf`` of a bank holding two
    buffers of ``depth`` words (a Cat when depth is a power of two, else no operand narrower than the sum)."""
    if depth == 1 << len(a):
        return Cat(a, buf)
    assert depth < 1 << len(a), (depth, len(a))
    return Mux(buf, a + depth, a)


class BankMapMixin:
    """Grouped read and write ports of ``ProgCore``'s memories. ``_rd_grouped`` and ``_wr_grouped`` are
    called per ``rd`` / ``wr`` node (one per logical bank index); ``_connect_grouped`` drives the physical
    ports once every node is built."""

    def _init_banks(self):
        arch = self.arch
        self.fb = arch.fused
        w = arch.workload
        self.in_banks = {t.name: (self.fb[t.name].nbanks, self.fb[t.name].depth) for t in w.inputs}
        self.out_banks = (self.fb[w.output.name].nbanks, self.fb[w.output.name].depth)
        self._rd_log = {}        # (tensor, logical bank) -> (address, enable)
        self._wr_log = {}        # logical Y bank -> (address, address one cycle ahead, enable, new value)
        self._rd_ports = {}      # (tensor, physical bank) -> read port

    def _pick(self, m, sigs: list, sel, shape, name: str):
        """``sigs[sel]`` (``len(sigs)`` a power of two, ``sel`` as wide as its log2)."""
        if len(sigs) == 1:
            return sigs[0]
        out = Signal(shape, name=name)
        with m.Switch(sel):
            for k, s in enumerate(sigs):
                with m.Case(k):
                    m.d.comb += out.eq(s)
        return out

    def _rd_grouped(self, m, t: str, k: int, addr, en, vreg_d, valid, mems, shape):
        """Logical bank ``k`` of input ``t``: returns its read data (the physical bank of its group chosen by
        the word's low address bits, registered with the read)."""
        fb = self.fb[t]
        lgmax = log2i(max(fb.groups))
        sel = Signal(max(1, lgmax), name=f"rd_{t}_{k}_sel")
        with m.If(en):
            m.d.sync += [vreg_d.eq(valid), sel.eq(lo_bits(addr, lgmax))]
        self._rd_log[(t, k)] = (addr, en)
        per_mode = {}
        for md in self.arch.modes:
            g = fb.groups[md.index]
            if k >= fb.nbanks // g:
                continue                         # no port of this mode reads logical bank k
            ports = [self._rd_port(mems, t, k * g + r) for r in range(g)]
            per_mode[md.index] = self._pick(m, [p.data for p in ports], sel[:max(1, log2i(g))], shape,
                                            f"rd_{t}_{k}_m{md.index}_data")
        return self._mode_mux(per_mode, Const(0, shape))

    def _rd_port(self, mems, t: str, j: int):
        if (t, j) not in self._rd_ports:
            self._rd_ports[(t, j)] = mems[(t, j)].read_port(domain="sync")
        return self._rd_ports[(t, j)]

    def _wr_grouped(self, m, k: int, addr, ahead, en, fresh, val, yb: int):
        """Logical accumulator bank ``k``: the read-modify-write's old value (read ahead, chosen by the
        current address's low bits) and the sum; the physical write ports are driven by ``_connect_grouped``."""
        fb = self.fb[self.arch.workload.output.name]
        per_mode = {}
        for md in self.arch.modes:
            g = fb.groups[md.index]
            if k >= fb.nbanks // g:
                continue
            lg = log2i(g)
            datas = []
            for r in range(g):
                _, rps, _ = self.ybank[k * g + r]
                datas.append(Mux(self.ybuf_r, rps[1].data, rps[0].data))
            per_mode[md.index] = self._pick(m, datas, lo_bits(addr, lg) if lg else Const(0, 1), signed(yb),
                                            f"wr_{k}_m{md.index}_rdata")
        old = Signal(signed(yb), name=f"wr_{k}_old")
        new = Signal(signed(yb), name=f"wr_{k}_new")
        m.d.comb += [old.eq(Mux(fresh, 0, self._mode_mux(per_mode, Const(0, signed(yb))))), new.eq(old + val)]
        self._wr_log[k] = (addr, ahead, en, new)

    def _connect_grouped(self, m, mems):
        """The physical ports of the grouped tensors: physical bank ``j`` serves, in a mode of groups of ``g``,
        logical bank ``j div g`` for the words ``a`` with ``a mod g == j mod g``."""
        w = self.arch.workload
        for t in w.inputs:
            fb = self.fb[t.name]
            if not fb.grouped:
                continue
            depth = fb.depth
            for j in range(fb.nbanks):
                rp = self._rd_port(mems, t.name, j)
                pa = Signal(range(max(2, depth)), name=f"rd_{t.name}_p{j}_addr")
                addrs, ens = {}, {}
                for md in self.arch.modes:
                    g = fb.groups[md.index]
                    a, en = self._rd_log[(t.name, j // g)]
                    addrs[md.index] = hi_bits(a, log2i(g))
                    ens[md.index] = en
                m.d.comb += [pa.eq(self._mode_mux(addrs, Const(0, 1))),
                             rp.addr.eq(_buf_addr(pa, self.buf_of[t.name], depth)),
                             rp.en.eq(self._mode_mux(ens, Const(0, 1)))]
        Y = w.output.name
        fb = self.fb[Y]
        if not fb.grouped:
            return
        for j in range(fb.nbanks):
            wps, rps, dp = self.ybank[j]
            wa = Signal.like(dp, name=f"wr_p{j}_addr")
            wd = Signal(signed(self.acc_bits), name=f"wr_p{j}_data")
            we = Signal(name=f"wr_p{j}_en")
            dps, was, wds, wes = {}, {}, {}, {}
            for md in self.arch.modes:
                g = fb.groups[md.index]
                lg = log2i(g)
                a, ahead, en, new = self._wr_log[j // g]
                dps[md.index], was[md.index], wds[md.index] = hi_bits(ahead, lg), hi_bits(a, lg), new
                wes[md.index] = en & (lo_bits(a, lg) == j % g) if lg else en
            m.d.comb += [dp.eq(self._mode_mux(dps, Const(0, 1))), wa.eq(self._mode_mux(was, Const(0, 1))),
                         wd.eq(self._mode_mux(wds, Const(0, 1))), we.eq(self._mode_mux(wes, Const(0, 1)))]
            for u, wp in enumerate(wps):
                m.d.comb += [wp.addr.eq(wa), wp.data.eq(wd), wp.en.eq(we & (self.ybuf_r == u))]


"""Row-major walk over a banked tensor layout with counters only (no div/mod in hardware).

Per dimension m, the index d_m is kept as digits (q, b, r): d_m = (q·B_m + b)·g_m + r, so the bank is
the mixed-radix number of the b digits and the local address Σ stride_m·(q·g_m + r) — exactly
``Layout.place``.  ``advance`` increments d in row-major order.
"""
from __future__ import annotations

from amaranth.hdl import Const, Signal

from ..arch.banking import Layout
from ..prim.lower import bits_for


class LayoutWalker:
    def __init__(self, lay: Layout, name: str):
        self.lay = lay
        rank = len(lay.shape)
        self.rank = rank
        self.q = [Signal(bits_for(lay.E[m]), name=f"{name}_q{m}") for m in range(rank)]
        self.b = [Signal(bits_for(lay.B[m]), name=f"{name}_b{m}") for m in range(rank)]
        self.r = [Signal(bits_for(lay.g[m]), name=f"{name}_r{m}") for m in range(rank)]
        self.d = [Signal(bits_for(lay.shape[m]), name=f"{name}_d{m}") for m in range(rank)]
        self.addr = Signal(bits_for(max(1, lay.depth - 1)), name=f"{name}_addr")
        self.bank = Signal(bits_for(max(1, lay.nbanks - 1)), name=f"{name}_bank")

    def comb(self):
        lay = self.lay
        st = lay.strides()
        addr = Const(0, self.addr.shape())
        if lay.replicated:
            for m in range(self.rank):
                addr = addr + self.d[m] * st[m]
            return [self.addr.eq(addr), self.bank.eq(0)]
        bid = Const(0, 32)
        for m in range(self.rank):
            addr = addr + (self.q[m] * lay.g[m] + self.r[m]) * st[m]
            radix = 1
            for x in lay.B[m + 1:]:
                radix *= x
            bid = bid + self.b[m] * radix
        phys = Const(0, self.bank.shape())
        from amaranth.hdl import Mux
        for i, cid in enumerate(lay.bank_ids):
            phys = Mux(bid == cid, i, phys)
        return [self.addr.eq(addr), self.bank.eq(phys)]

    def reset(self):
        return [s.eq(0) for s in self.q + self.b + self.r + self.d]

    def advance(self, m_):
        """Statements (added to module m_ under the caller's condition) for d += 1 in row-major order."""
        lay = self.lay
        carry_all = Const(1, 1)
        for m in reversed(range(self.rank)):
            at_end = self.d[m] == lay.shape[m] - 1
            with m_.If(carry_all):
                with m_.If(at_end):
                    m_.d.sync += [self.d[m].eq(0), self.q[m].eq(0), self.b[m].eq(0), self.r[m].eq(0)]
                with m_.Else():
                    m_.d.sync += self.d[m].eq(self.d[m] + 1)
                    r_end = self.r[m] == lay.g[m] - 1
                    b_end = self.b[m] == lay.B[m] - 1
                    with m_.If(~r_end):
                        m_.d.sync += self.r[m].eq(self.r[m] + 1)
                    with m_.Elif(~b_end):
                        m_.d.sync += [self.r[m].eq(0), self.b[m].eq(self.b[m] + 1)]
                    with m_.Else():
                        m_.d.sync += [self.r[m].eq(0), self.b[m].eq(0), self.q[m].eq(self.q[m] + 1)]
            carry_all = carry_all & at_end

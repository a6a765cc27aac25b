"""Bit-vector helpers shared by the SpAtten units."""
from __future__ import annotations

from amaranth import Cat, Const, Mux, Signal


def onehot(m, idx, n: int, name: str):
    """``1 << idx`` as an n-bit vector, decoded in two halves (low bits x high bits). A plain
    ``Const(1, n) << idx`` is one n-bit barrel shifter whose every output bit depends on every input bit:
    n^2 combinational edges, which dominates Amaranth's netlist checks at n = 1024."""
    w = len(idx)
    lo_w = min(w, 5)
    lo = Signal(1 << lo_w, name=f"{name}_lo")
    m.d.comb += lo.eq(Const(1, 1 << lo_w) << idx[:lo_w])
    if w == lo_w:
        return lo[:n]
    hi = Signal(1 << (w - lo_w), name=f"{name}_hi")
    m.d.comb += hi.eq(Const(1, 1 << (w - lo_w)) << idx[lo_w:])
    out = Signal(n, name=f"{name}_oh")
    m.d.comb += out.eq(Cat(*[Mux(hi[h], lo, 0) for h in range(len(hi))])[:n])
    return out

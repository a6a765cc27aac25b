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


def widen(m, x, w: int, name: str):
    """``x`` zero-extended to w bits, as a named signal that keeps its width in the Verilog. Amaranth prints
    an operand at its own width and folds a plain alias (``Signal(w).eq(x)``) back to x in its readers, so
    the high bits are driven by a second statement (the backend then keeps the signal)."""
    if len(x) >= w:
        return x
    s = Signal(w, name=name)
    m.d.comb += [s.eq(x), s[len(x):].eq(0)]
    return s


def one(b, w: int):
    """The 1-bit ``b`` as a w-bit 0/1 (a mux of w-bit constants: an adder operand at the adder's width)."""
    return Mux(b, Const(1, w), Const(0, w))


def word(x, idx, w: int):
    """``x.word_select(idx, w)`` with the shift explicit at x's width and then sliced (Amaranth's
    word_select/bit_select print as a shift assigned to a narrower net, a WIDTHTRUNC)."""
    return (x >> (idx * w if w > 1 else idx))[:w]

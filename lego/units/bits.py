"""Bit-vector helpers for hand-built Amaranth units (first written for SpAtten's pipeline, top-k engine and
pruners): a two-level one-hot decoder, a zero-extension that survives the Verilog backend, a 0/1 operand
at an adder's width, and a mux-tree word select. Each exists because the plain Amaranth spelling costs
far more logic (or a lint warning) in the generated Verilog; the reasons are in the docstrings. ``C``, an
explicitly sized constant that refuses to truncate, serves the row units and PointAcc's mapping unit."""
from __future__ import annotations

from amaranth import Cat, Const, Mux, Signal, unsigned


def C(value: int, width: int) -> Const:
    """An explicitly sized unsigned constant; refuses values that would be silently truncated."""
    if not 0 <= value < (1 << width):
        raise ValueError(f"constant {value} does not fit {width} bits")
    return Const(value, unsigned(width))


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
    """Word ``idx`` of ``x`` (w-bit words, the last one zero-filled; an index past the end reads 0), as a
    binary mux tree on the index bits: (words - 1) w-bit muxes. Amaranth's word_select prints as a shift
    assigned to a narrower net (a WIDTHTRUNC), and an explicit ``(x >> idx*w)[:w]`` is a barrel shifter of
    x's whole width (len(x) * log2 muxes) before Yosys prunes it."""
    n = -(-len(x) // w)
    words = [x[i * w:(i + 1) * w] for i in range(n)]
    words = [v if len(v) == w else Cat(v, Const(0, w - len(v))) for v in words]
    k = max(0, (n - 1).bit_length())
    words += [Const(0, w)] * ((1 << k) - n)
    for b in range(min(k, len(idx))):      # a short index reaches only the first 2**len(idx) words
        words = [Mux(idx[b], words[i + 1], words[i]) for i in range(0, len(words), 2)]
    return Mux(idx[k:].any(), Const(0, w), words[0]) if len(idx) > k else words[0]

"""lego/units/bits.py in Amaranth's simulator, against plain integer arithmetic: ``word`` (a mux tree)
equals ``(x >> idx*w) mod 2**w`` for every index (partial last words, indices past the end, indices
narrower or wider than the word count); ``onehot`` equals ``1 << idx``; ``widen`` zero-extends; ``one``
is a 0/1 at the given width."""
import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from lego.units.bits import one, onehot, widen, word


def _run(m, bench):
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("xbits,w,ibits", [
    (16, 4, 2), (16, 4, 3), (16, 4, 1), (13, 4, 3), (1024 // 16, 1, 6), (70, 1, 8), (48, 16, 2), (40, 8, 4), (8, 8, 2),
])
def test_word_matches_shift(xbits, w, ibits):
    m = Module()
    x, idx, out = Signal(xbits), Signal(ibits), Signal(w)
    m.d.comb += out.eq(word(x, idx, w))
    rng = random.Random(xbits * 131 + w * 7 + ibits)
    seen = []

    async def bench(ctx):
        for _ in range(6):
            xv = rng.getrandbits(xbits)
            ctx.set(x, xv)
            for i in range(1 << ibits):
                ctx.set(idx, i)
                got = ctx.get(out)
                assert got == (xv >> (i * w)) & ((1 << w) - 1), (xv, i)
                seen.append(got)

    _run(m, bench)
    assert len(seen) == 6 << ibits


@pytest.mark.parametrize("n,ibits", [(1, 1), (7, 3), (32, 5), (40, 6), (100, 7), (1024, 10)])
def test_onehot_is_a_shift(n, ibits):
    m = Module()
    idx = Signal(ibits)
    oh = onehot(m, idx, n, "t")
    out = Signal(n)
    m.d.comb += out.eq(oh)
    assert len(oh) == n

    async def bench(ctx):
        picks = random.Random(n).sample(range(1 << ibits), min(8, 1 << ibits))
        for i in sorted({0, 1, n - 1, (1 << ibits) - 1, *picks}):
            ctx.set(idx, i)
            assert ctx.get(out) == ((1 << i) & ((1 << n) - 1)), i

    _run(m, bench)


def test_widen_and_one():
    m = Module()
    x, b = Signal(5), Signal()
    wx = widen(m, x, 12, "wx")
    same = widen(m, x, 5, "same")
    ob = one(b, 9)
    out_w, out_o = Signal(12), Signal(9)
    m.d.comb += [out_w.eq(wx), out_o.eq(ob)]
    assert len(wx) == 12 and same is x and len(ob) == 9

    async def bench(ctx):
        for v in (0, 1, 17, 31):
            ctx.set(x, v)
            assert ctx.get(out_w) == v
        for v in (0, 1):
            ctx.set(b, v)
            assert ctx.get(out_o) == v

    _run(m, bench)

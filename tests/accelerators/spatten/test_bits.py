"""accelerators/spatten/units/bits.py: ``word`` (a mux tree) equals ``(x >> idx*w) mod 2**w`` for every index,
including partial last words, indices past the end, and indices narrower or wider than the word count."""
import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from accelerators.spatten.units.bits import word


@pytest.mark.parametrize("xbits,w,ibits", [
    (16, 4, 2), (16, 4, 3), (16, 4, 1), (13, 4, 3), (1024 // 16, 1, 6), (70, 1, 8), (48, 16, 2), (40, 8, 4), (8, 8, 2),
])
def test_word_matches_shift(xbits, w, ibits):
    m = Module()
    x, idx, out = Signal(xbits), Signal(ibits), Signal(w)
    m.d.comb += out.eq(word(x, idx, w))
    sim = Simulator(m)
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

    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == 6 << ibits

"""lego/units/topk.py (the quick-select top-k engine) in Amaranth's simulator.

Oracles independent of the engine's own model: indices and k-th value against a sort (``topk_reference``:
a lexsort, ties to the lower index), and cycle counts worked out by hand from the engine's documented
schedule (2*ceil(n/P) + 3 + sum over later rounds of ceil(len/P) + 3) and its pivot rule (element 0, then
element 0 of row (lfsr * nrows) >> 16 of the surviving side; LFSR 0xACE1 -> 0xE270 -> 0x7138 -> 0x389C).
The measured cycles are also checked against ``sw_reference.spatten.topk.topk_engine`` on random inputs
(the model that the trace replay and the exact RTL cycle model use)."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from lego.units.lanes import pack, unpack
from lego.units.topk import TopKEngine
from sw_reference.spatten.topk import topk_engine, topk_reference


def run_engine(p, w, max_n, cases):
    """[(indices in output order, cycles from the start cycle to the done cycle, kth)] per (values, k)."""
    u = TopKEngine(p, w, max_n)
    iw = u.iw
    out = []

    async def bench(ctx):
        for vals, k in cases:
            rows = [list(vals[r * p:(r + 1) * p]) for r in range(-(-len(vals) // p))]
            while ctx.get(u.busy):
                await ctx.tick()
            ctx.set(u.start, 1)
            ctx.set(u.n, len(vals))
            ctx.set(u.k, k)
            await ctx.tick()                       # cycle 0: start sampled
            ctx.set(u.start, 0)
            cyc, r, got = 1, 0, []
            while True:
                if ctx.get(u.out_valid):
                    got += unpack(ctx.get(u.out_index), ctx.get(u.out_count), iw, signed=False)
                if ctx.get(u.done):
                    break
                if ctx.get(u.in_ready) and r < len(rows):
                    ctx.set(u.in_valid, 1)
                    ctx.set(u.in_data, pack(rows[r], w))
                    r += 1
                else:
                    ctx.set(u.in_valid, 0)
                await ctx.tick()
                cyc += 1
                assert cyc < 10000, "top-k engine hung"
            out.append((got, cyc, ctx.get(u.kth)))
            ctx.set(u.in_valid, 0)
            await ctx.tick()

    sim = Simulator(u)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


# (values, k) -> (indices, kth, cycles), P = 4, worked out by hand:
HAND = [
    # pivot 5 (element 0): 1 greater, 3 equal; rank 3 falls among the ties in round 0: 2*ceil(5/4) + 3
    (([5, 7, 5, 5, 1], 3), ([0, 1, 2], 5, 7)),
    # all equal: found in round 0, the first 4 ties kept: 2*3 + 3
    (([3] * 10, 4), ([0, 1, 2, 3], 3, 9)),
    # 0..15, k = 1: round 0 pivot 0 leaves 15 greater; round 1 (15 elements, 4 rows) pivot row
    # (0xE270*4)>>16 = 3, element 12 of 1..15 = 13, leaves [14, 15]; round 2 (1 row) pivot 14 leaves [15];
    # round 3 pivot 15 is the answer: 2*4 + 3 + (4 + 3) + (1 + 3) + (1 + 3)
    ((list(range(16)), 1), ([15], 15, 26)),
    # 15..0, k = 16: round 0 pivot 15, rank 16 is below it: 15 smaller remain (t = 14); round 1 pivot
    # element 12 of 14..0 = 2: 12 greater + 1 equal, t = 1 goes on among [1, 0]; round 2 pivot 1, t = 0
    # goes on among [0]; round 3 pivot 0 is the answer: 11 + 7 + 4 + 4; every element kept
    ((list(range(15, -1, -1)), 16), (list(range(16)), 0, 26)),
]


def test_hand_computed_cases():
    res = run_engine(4, 8, 16, [c for c, _ in HAND])
    for (case, (idx, kth, cycles)), (got, cyc, got_kth) in zip(HAND, res):
        assert (got, got_kth, cyc) == (idx, kth, cycles), case
        assert topk_engine(*case, parallelism=4).cycles == cycles      # the model agrees with the hand count


@pytest.mark.parametrize("p,max_n", [(4, 32), (16, 64)])
def test_random_against_sort_and_model(p, max_n):
    rng = random.Random(p * 1000 + max_n)
    cases = []
    for _ in range(10):
        n = rng.randint(1, max_n)
        hi = rng.choice([255, 7, 1])                      # few distinct values: many ties
        vals = [rng.randint(0, hi) for _ in range(n)]
        cases.append((vals, rng.randint(1, n)))
    cases += [([rng.randint(0, 255) for _ in range(max_n)], max_n), ([9] * max_n, 1)]
    for (vals, k), (got, cyc, kth) in zip(cases, run_engine(p, 8, max_n, cases)):
        assert got == topk_reference(vals, k).tolist(), (vals, k)
        assert kth == sorted(vals, reverse=True)[k - 1]
        assert cyc == topk_engine(vals, k, p).cycles, (vals, k)
        assert cyc >= 2 * -(-len(vals) // p) + 3


def test_constructor_checks():
    for kw in ({"parallelism": 6}, {"parallelism": 4, "max_n": 10}, {"parallelism": 4, "max_n": 16, "width": 0}):
        with pytest.raises(ValueError):
            TopKEngine(**kw)


def test_same_verilog_whatever_was_built_before():
    """Signal names are numbered per engine, not per process."""
    import os

    from amaranth.back import verilog
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    texts = []
    for _ in range(2):
        u = TopKEngine(4, 8, 16)
        texts.append(verilog.convert(u, name="tk", ports=u.ports(), emit_src=False))
    assert texts[0] == texts[1]
    assert np.asarray([len(t) for t in texts]).min() > 1000

"""timing.load_cycles (row memo + period skip) against the plain burst-by-burst recurrence it replaces,
written out here from docs/programmable.md ("Timing"), on random tiles, strides, buses and lanes."""
import numpy as np

from lego.prog.spec import bursts
from lego.prog.timing import load_cycles


def reference(addr, rows, cols, stride, eb, bb, latency, P):
    E = bb // eb
    ar, free = 0, 1
    for row in bursts(addr, rows, cols, stride, eb, bb):
        for b in row:
            c0 = max(ar + 3 + latency, free)
            first = min(E - b.off, b.elems)
            if b.beats == 1:
                g_last = groups = -(-first // P)
            else:
                g_last = -(-((b.off + b.elems - 1) % E + 1) // P)
                groups = -(-first // P) + (b.beats - 2) * (E // P) + g_last
            free = c0 + groups
            ar = free - g_last
    return free


def test_load_cycles_equals_the_burst_recurrence():
    rng = np.random.default_rng(11)
    for _ in range(3000):
        eb = int(rng.choice([1, 2, 4]))
        bb = int(rng.choice([8, 16, 32]))
        E = bb // eb
        P = int(rng.choice([p for p in (1, 2, 4, 8, 16, 32) if p <= E]))
        cols = int(rng.integers(1, 300))
        stride = eb * cols + int(rng.choice([0, 0, 1, 3, 64, 4096, 4093])) * eb
        rows = int(rng.integers(1, 400))
        addr = int(rng.integers(0, 1 << 20)) * eb
        lat = int(rng.integers(0, 120))
        args = (addr, rows, cols, stride, eb, bb, lat, P)
        assert load_cycles(*args) == reference(*args), args


def test_a_long_periodic_load_is_exact():
    # 100k rows, stride a multiple of the page: every row at the same offset (one period of one row)
    args = (4 * 4096 + 24, 100_000, 40, 8192, 1, 8, 20, 2)
    assert load_cycles(*args) == reference(*args)

"""sw_reference.spatten.topk: the selection semantics (k largest, ties to the lower index, original order)
and the quick-select engine model's cycles.

The cycle oracle here is independent of ``engine_cycles``: the engine's FSM walked state by state
(IDLE with start, LOAD one row per cycle, DECIDE, then per later round PIV0, PIV1, SCAN one row per cycle,
DECIDE, and at the end OUT0, OUTS one row per cycle, FIN = done), on round lengths from a separate numpy
partition with the documented pivot rule; plus cases worked out by hand. The RTL itself is measured
against the model in tests/lego/units/test_topk_engine.py (Amaranth) and by the units bench (Icarus,
Verilator)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sw_reference.spatten.topk import keep_count, topk_engine, topk_reference


def _rows(length, p):
    return -(-length // p)


def fsm_cycles(values, k, p):
    """Cycles from the start cycle to the done cycle, counted state by state."""
    x = np.asarray(values, dtype=np.int64)
    lfsr, t, cur = 0xACE1, k - 1, x
    pivot = int(cur[0])
    states = ["IDLE"] + ["LOAD"] * _rows(len(x), p) + ["DECIDE"]
    while True:
        g, e = cur[cur > pivot], cur[cur == pivot]
        if t < len(g):
            cur = g
        elif t < len(g) + len(e):
            break
        else:
            t -= len(g) + len(e)
            cur = cur[cur < pivot]
        lfsr = (lfsr >> 1) ^ (0xB400 if lfsr & 1 else 0)
        pivot = int(cur[((lfsr * _rows(len(cur), p)) >> 16) * p])
        states += ["PIV0", "PIV1"] + ["SCAN"] * _rows(len(cur), p) + ["DECIDE"]
    states += ["OUT0"] + ["OUTS"] * _rows(len(x), p) + ["FIN"]
    return len(states) - 1                         # the start cycle is cycle 0, FIN the done cycle


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=80), st.data(), st.sampled_from([2, 4, 16]))
def test_topk_engine_matches_reference(vals, data, p):
    k = data.draw(st.integers(1, len(vals)))
    r = topk_engine(vals, k, p)
    assert r.indices.tolist() == topk_reference(vals, k).tolist()
    assert sorted(vals, reverse=True)[k - 1] == r.kth
    assert r.cycles == fsm_cycles(vals, k, p)
    assert r.round_lengths[0] == len(vals) and all(a > b for a, b in zip(r.round_lengths, r.round_lengths[1:]))


def test_cycles_by_hand():
    # P = 4. Round 0 only: 2*ceil(n/4) + 3.
    assert topk_engine([5, 7, 5, 5, 1], 3, 4).cycles == 7
    assert topk_engine([3] * 10, 4, 4).cycles == 9
    # 0..15, k = 1: rounds of 16, 15, 2 and 1 elements (pivots 0, 13, 14, 15; LFSR 0xE270 picks row 3 of 4)
    r = topk_engine(list(range(16)), 1, 4)
    assert (r.round_lengths, r.cycles) == ([16, 15, 2, 1], 11 + 7 + 4 + 4)
    # P = 16, 0..31, k = 1: pivot 0, then row (0xE270*2)>>16 = 1 of 1..31 -> element 16 = 17, leaving 18..31
    # (14); the next pivots are each first element (one row): 14 more rounds of 14, 13, ..., 1 elements
    r = topk_engine(list(range(32)), 1, 16)
    assert r.round_lengths == [32, 31] + list(range(14, 0, -1))
    assert r.cycles == (2 * 2 + 3) + (2 + 3) + 14 * (1 + 3)


def test_topk_tie_break_lower_index_first():
    assert topk_reference([5, 7, 5, 5, 1], 3).tolist() == [0, 1, 2]
    assert topk_engine([5, 7, 5, 5, 1], 3).indices.tolist() == [0, 1, 2]
    assert topk_reference([0.5, 0.25, 0.5], 1).tolist() == [0]


def test_keep_count():
    assert keep_count(10, 0.25) == 3 and keep_count(10, 0.0) == 1 and keep_count(10, 1.0) == 10
    assert keep_count(10, 0.35) == 4 and keep_count(0, 0.5) == 0


def test_quickselect_latency_model_by_hand():
    from sw_reference.spatten.topk import quickselect_latency_model as qs
    # one element: one round of ceil(1/16) + 3 = 4 cycles, whatever the pivot
    assert qs(1, 1, 16, np.random.default_rng(0)) == 4
    # two elements, k = 2 (the smaller one): pivot 0 -> {1} above, t = 1 = |above|: done after 1 round (4);
    # pivot 1 -> nothing above, t drops to 0 and the round goes on with {0}: 2 rounds (8)
    got = {qs(2, 2, 16, np.random.default_rng(s)) for s in range(40)}
    assert got == {4, 8}
    # P >= n: every round costs 4, at most n rounds; P = 1 on 5 elements: the first round alone costs 5 + 3
    for s in range(20):
        c = qs(9, 4, 16, np.random.default_rng(s))
        assert c % 4 == 0 and 4 <= c <= 36
        assert qs(5, 2, 1, np.random.default_rng(s)) >= 8

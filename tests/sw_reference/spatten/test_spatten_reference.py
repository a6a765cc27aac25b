import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelerators.spatten.config import SpAttenConfig
from sw_reference.spatten import fixed
from sw_reference.spatten.cascade import CascadeState, attention_query_float, attention_query_int, spatten_layer
from sw_reference.spatten.topk import engine_cycles, keep_count, topk_engine, topk_reference

CFG = SpAttenConfig.preset("eighth")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=80), st.data())
def test_topk_engine_matches_reference(vals, data):
    k = data.draw(st.integers(1, len(vals)))
    r = topk_engine(vals, k, 16)
    ref = topk_reference(vals, k)
    assert r.indices.tolist() == ref.tolist()
    assert sorted(vals, reverse=True)[k - 1] == r.kth
    assert r.cycles == engine_cycles(len(vals), r.round_lengths, 16)


def test_topk_tie_break_lower_index_first():
    assert topk_reference([5, 7, 5, 5, 1], 3).tolist() == [0, 1, 2]
    assert topk_engine([5, 7, 5, 5, 1], 3).indices.tolist() == [0, 1, 2]


def test_keep_count():
    assert keep_count(10, 0.25) == 3 and keep_count(10, 0.0) == 1 and keep_count(10, 1.0) == 10


def test_msb_lsb_split_roundtrip():
    x = np.arange(-512, 512)
    msb, lsb = fixed.split_msb_lsb(x, 4)
    assert (fixed.fetch_value(msb, lsb, 4) == x).all()
    assert msb.min() >= -32 and msb.max() <= 31 and lsb.max() <= 15
    assert (fixed.msb_only(x, 4) == (x >> 4) << 4).all()


def test_softmax_fixed_close_to_float():
    rng = np.random.default_rng(0)
    q = rng.integers(-2047, 2048, 64)
    k = rng.integers(-511, 512, (200, 64))
    sq, sk = 1 / 2047, 4 / 511
    dq = fixed.dequant_scale(sq, sk, 64, CFG)
    p = fixed.softmax_fixed(fixed.dot_scores(q, k), dq, CFG) / 65536
    pf = fixed.softmax_float(fixed.dot_scores(q, k) * sq * sk / 8)
    assert abs(p.sum() - 1) < 0.01
    assert np.abs(p - pf).max() < 0.01


def test_progressive_quantization_requants_flat_rows():
    rng = np.random.default_rng(1)
    q = rng.integers(-2047, 2048, 64)
    k = rng.integers(-8, 9, (100, 64))  # tiny keys -> flat softmax -> low confidence
    v = rng.integers(-511, 512, (100, 64))
    dq = fixed.dequant_scale(1 / 2047, 1 / 511, 64, CFG)
    r = attention_query_int(q, k, v, CFG, dq, 0.2)
    assert r.requant and len(r.v_sel) == 20
    k2 = rng.integers(-511, 512, (100, 64))
    dq2 = fixed.dequant_scale(1 / 2047, 16 / 511, 64, CFG)
    assert not attention_query_int(q, k2, v, CFG, dq2, 0.2).requant


@pytest.mark.parametrize("float_mode", [False, True])
def test_cascade_pruning_is_monotone(float_mode):
    rng = np.random.default_rng(2)
    h, n, d = 4, 40, 64
    st_ = CascadeState(n, h, float_mode=float_mode)
    dq = fixed.dequant_scale(1 / 2047, 4 / 511, d, CFG)
    alive_prev, heads_prev = st_.token_alive.copy(), st_.head_alive.copy()
    for _ in range(3):
        q = rng.integers(-2047, 2048, (h, 2, d))
        k = rng.integers(-511, 512, (h, n, d))
        if float_mode:
            q, k = q / 2047.0, k * 4 / 511.0
        spatten_layer(q, k, k, st_, CFG, token_keep=0.7, head_keep=0.75, v_keep=0.5, dq=dq)
        assert not (st_.token_alive & ~alive_prev).any() and not (st_.head_alive & ~heads_prev).any()
        alive_prev, heads_prev = st_.token_alive.copy(), st_.head_alive.copy()
    assert st_.token_alive.sum() == keep_count(keep_count(keep_count(n, 0.7), 0.7), 0.7)
    assert st_.head_alive.sum() == 2


def test_float_mode_unquantized_is_exact_attention():
    rng = np.random.default_rng(3)
    q, k, v = rng.normal(size=16), rng.normal(size=(30, 16)), rng.normal(size=(30, 16))
    r = attention_query_float(q, k, v, CFG, 1.0, progressive=False, quantize=False)
    s = k @ q / 4
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    assert np.allclose(r.out, p @ v)

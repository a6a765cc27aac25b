import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sw_reference import pq_gemm as pq


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 8), st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_split_reconstructs_exactly(msb, lsb, seed):
    rng = np.random.default_rng(seed)
    b = msb + lsb
    k = rng.integers(-(1 << (b - 1)), 1 << (b - 1), (2, 9, 16)).astype(np.int32)
    km, kl = pq.split_k(k, msb, lsb)
    assert km.dtype == np.int8 and kl.dtype == np.int8
    assert ((kl >= 0) & (kl < (1 << lsb))).all()
    assert np.array_equal((km.astype(np.int32) << lsb) + kl, k)


def test_scores_exact_and_policy():
    """Rows of small queries give nearly flat MSB scores (max probability ~ 1/50 < 5 %: requantized, the
    exact q.k); rows of full-range queries are peaked (kept at the MSB scores). Oracle written here: the
    exact product in int64, the MSB plane as floor(k / 16), the decision max_j softmax(alpha s)_j <
    threshold in float64 (every row at least 6 % away from the threshold)."""
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, (2, 6, 32)).astype(np.int8)
    q[:, ::2] = rng.integers(-1, 2, (2, 3, 32))                     # rows 0, 2, 4 of each batch: tiny
    k = rng.integers(-512, 512, (2, 50, 32)).astype(np.int16)
    alpha, thr = 1e-4, 0.05
    s, req = pq.pq_gemm(q, k, 6, 4, thr, alpha)
    full = np.einsum("bmd,bnd->bmn", q.astype(np.int64), k.astype(np.int64))
    msb = np.einsum("bmd,bnd->bmn", q.astype(np.int64), k.astype(np.int64) // 16) * 16
    maxp = 1.0 / np.exp((msb - msb.max(-1, keepdims=True)) * alpha).sum(-1)
    assert (np.abs(maxp - thr) > 0.06 * thr).all()
    assert req.tolist() == (maxp < thr).tolist() == [[True, False] * 3] * 2
    assert np.array_equal(s, np.where(req[..., None], full, msb))
    assert s.dtype == np.int32 and not np.array_equal(full[req], msb[req])   # the branches differ here


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1e-5, 1e-2), st.floats(0.02, 0.9))
def test_integer_decision_tracks_float_softmax(seed, alpha, thr):
    """Away from the threshold the integer rule equals max_prob < threshold in float64."""
    rng = np.random.default_rng(seed)
    s = rng.integers(-20000, 20000, (4, 64)).astype(np.int64)
    z = np.exp((s - s.max(1, keepdims=True)) * alpha).sum(1)
    maxp = 1.0 / z
    dec = pq.row_requant(s, alpha, thr)
    clear = np.abs(maxp - thr) > 0.06 * thr  # LUT steps of 2**(1/16) ~ 4.4%, plus rounding
    assert np.array_equal(dec[clear], (maxp < thr)[clear])


def test_lut_and_params():
    """LUT[t] = floor(2**15 * 2**(-t/16) + 0.5): every entry against math; pinned by hand: t = 1:
    32768 * 2**(-1/16) = 31378.54; t = 8: 32768 / sqrt(2) = 23170.48; t = 100: 431.1; t = 255: 0.51;
    t = 300: 0.007."""
    lut = pq.exp_lut()
    assert lut.shape == (512,)
    assert lut.tolist() == [math.floor(32768 * 2.0 ** (-t / 16) + 0.5) for t in range(512)]
    assert [int(lut[t]) for t in (0, 1, 8, 16, 100, 255, 300, 511)] == [32768, 31379, 23170, 16384, 431, 1, 0, 0]
    assert (np.diff(lut) <= 0).all()
    assert pq.threshold_q(0.05) == round(0.05 * 65536)
    assert pq.lut_mult(1.0) == round(math.log2(math.e) * 16 * 65536)
    with pytest.raises(ValueError, match="^alpha:"):
        pq.lut_mult(0.0)
    with pytest.raises(ValueError, match="^threshold:"):
        pq.threshold_q(1.5)
    with pytest.raises(ValueError, match="^lsb_bits:"):
        pq.split_k(np.zeros((1, 1, 4), np.int16), 6, 8)

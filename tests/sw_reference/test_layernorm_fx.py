"""sw_reference.layernorm_fx: hand-computed rows, the inverse square root (exhaustive), a scalar Python-int
transcription of the spec, and the error bound against the exact real LayerNorm (seeded + hypothesis)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sw_reference.layernorm_fx import (K_ISQRT, QN_HI, QN_LO, error_bound, isqrt_inv, isqrt_inv_restoring,
                                       layernorm_float, layernorm_fx, layernorm_row_consts, normalize, rshr)


def scalar_model(row, gamma, beta, out_shift, frac_bits=10, eps=1, out_bits=8):
    """Straight transcription of the module docstring with Python ints (no numpy, no helpers)."""
    n = len(row)
    s1 = sum(row)
    q = n * sum(v * v for v in row) - s1 * s1 + eps
    s = (q.bit_length() - 15) // 2
    qn = q // 4 ** s if s >= 0 else q * 4 ** (-s)
    lo, hi = 0, 1 << 17                                    # r = max{r : r^2 Qn <= 2^46}, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if mid * mid * qn <= 2 ** 46 else (lo, mid - 1)
    r = lo
    out = []
    for x, g, b in zip(row, gamma, beta):
        d = n * x - s1
        sh = 23 - frac_bits + s
        z = (2 * d * r + 2 ** sh) // 2 ** (sh + 1)          # floor(d r / 2^sh + 1/2)
        v = z * g + b
        y = (2 * v + 2 ** out_shift) // 2 ** (out_shift + 1)
        out.append(min(max(y, -2 ** (out_bits - 1)), 2 ** (out_bits - 1) - 1))
    return out


def test_rshr():
    assert [rshr(v, 2) for v in (-7, -6, -5, -2, -1, 0, 1, 2, 5, 6)] == [-2, -1, -1, 0, 0, 0, 0, 1, 1, 2]
    assert rshr(-3, 0) == -3 and rshr(np.array([3, -3]), 1).tolist() == [2, -1]    # halves go up
    with pytest.raises(ValueError):
        rshr(1, -1)


def test_isqrt_exhaustive():
    """The restoring shift-add recurrence (the RTL's) equals floor(2**23 / sqrt(Qn)) for every Qn."""
    for qn in range(QN_LO, QN_HI):
        r = isqrt_inv(qn)
        assert r == isqrt_inv_restoring(qn)
        assert r * r * qn <= 2 ** 46 < (r + 1) * (r + 1) * qn
    assert isqrt_inv(QN_LO) == 2 ** 16 and isqrt_inv(QN_HI - 1) == 2 ** 15
    with pytest.raises(ValueError):
        isqrt_inv(QN_HI)


def test_normalize():
    assert normalize(1) == (-7, 1 << 14) and normalize(2) == (-7, 1 << 15) and normalize(3) == (-7, 3 << 14)
    assert normalize(0xFFFF) == (0, 0xFFFF) and normalize(0x10000) == (1, 0x4000)
    for qp in [1, 5, 2**14 - 1, 2**14, 2**16 - 1, 2**16, 2**17 + 3, 2**50 - 1, 2**88 + 12345]:
        s, qn = normalize(qp)
        assert QN_LO <= qn < QN_HI and qn == (qp >> 2 * s if s >= 0 else qp << -2 * s)
    with pytest.raises(ValueError):
        normalize(0)


def test_hand_computed():
    """[1, 2, 3, 4], gamma 64, beta 0, F = 10, OS = 10, eps = 1, worked by hand:
    S1 = 10, S2 = 30, Q = 4*30 - 100 = 20, Q' = 21 (5 bits) -> s = (5-15)>>1 = -5, Qn = 21 << 10 = 21504,
    r = floor(2**23 / sqrt(21504)) = floor(57204.51) = 57204; D = [-6, -2, 2, 6], shift 23 - 10 - 5 = 8:
    z = rshr(D r, 8) = rshr(-343224, 8) = -1341 (-1340.72), -447, 447, 1341; v = 64 z;
    y = rshr(v, 10) = -84 (-83.81), -28 (-27.94), 28, 84."""
    c = layernorm_row_consts([1, 2, 3, 4], 1)
    assert (c["s1"], c["q"], c["qp"], c["s"], c["qn"], c["r"]) == (10, 20, 21, -5, 21504, 57204)
    y = layernorm_fx(np.array([1, 2, 3, 4]), 64, 0, out_shift=10, frac_bits=10)
    assert y.tolist() == [-84, -28, 28, 84]
    # beta at F + GF = 16 fraction bits, here +0.5 real with gamma 64 = 1.0 (GF = 6): +32 LSBs at OS = 10
    assert layernorm_fx(np.array([1, 2, 3, 4]), 64, 1 << 15, out_shift=10).tolist() == [-52, 4, 60, 116]


def test_all_equal_rows():
    """Variance 0: D = 0, so y = clamp(rshr(beta, OS)) for any eps and value."""
    for v in (-2**31, -1, 0, 7, 2**31 - 1):
        row = np.full(9, v)
        assert layernorm_fx(row, 100, 0, out_shift=4).tolist() == [0] * 9
        beta = np.array([-5000, -24, -23, 23, 24, 5000, 0, 8, -8])
        assert layernorm_fx(row, -77, beta, out_shift=4, eps=12345).tolist() == \
            [-128, -1, -1, 1, 2, 127, 0, 1, 0]


def test_extremes_and_saturation():
    # int32 extremes, N = 2: D = +-(2**32 - 1) ... z = +-2**F exactly up to eps
    y = layernorm_fx(np.array([-2**31, 2**31 - 1]), 127, 0, out_shift=10, frac_bits=10)
    assert y.tolist() == [-127, 127]
    # one outlier in a long row: z = sqrt(N-1) * 2**F for it, saturates at int8
    row = np.zeros(256, dtype=np.int64)
    row[3] = 1000
    y = layernorm_fx(row, 127, 0, out_shift=10)
    assert y[3] == 127 and y[0] == round(-127 / math.sqrt(255))
    y16 = layernorm_fx(row, 127, 0, out_shift=10, out_bits=16)
    assert abs(y16[3] - 127 * math.sqrt(255)) <= 1


def test_scalar_model_agrees():
    rng = np.random.default_rng(3)
    for i in range(60):
        n = int(rng.integers(1, 40))
        bits = int(rng.choice([4, 8, 16, 32]))
        row = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), n)
        if i % 7 == 0:
            row[:] = row[0]
        g = rng.integers(-128, 128, n)
        b = rng.integers(-(1 << 20), 1 << 20, n)
        f, os_, eps = int(rng.integers(0, 17)), int(rng.integers(0, 24)), int(rng.integers(1, 1 << 20))
        ref = scalar_model([int(v) for v in row], [int(v) for v in g], [int(v) for v in b], os_, f, eps)
        assert layernorm_fx(row, g, b, out_shift=os_, frac_bits=f, eps=eps).tolist() == ref


def _check_bound(x, g, b, os_, f, eps, out_bits=8):
    y = layernorm_fx(x, g, b, out_shift=os_, frac_bits=f, eps=eps, out_bits=out_bits)
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    ystar = np.clip(layernorm_float(x, g, b, out_shift=os_, frac_bits=f, eps=eps), lo, hi)
    bound = error_bound(x.shape[-1], int(np.abs(g).max()), out_shift=os_, frac_bits=f)
    err = np.abs(y - ystar).max()
    assert err <= bound + 1e-9, (err, bound)
    return err


def test_error_bound_seeded():
    """Realistic rows (int16 activations, int8 gamma with 6 fraction bits, int8 output at 1/16):
    the bound holds and outputs are within 1 LSB of round(y*)."""
    rng = np.random.default_rng(5)
    worst = 0.0
    for n in (12, 64, 384, 768):
        x = np.round(rng.standard_normal((8, n)) * rng.uniform(20, 3000, (8, 1))).astype(np.int64)
        x[0, 5] = 30000                                   # an outlier channel, as in BERT
        g = rng.integers(32, 128, n)
        b = rng.integers(-(1 << 15), 1 << 15, n)
        worst = max(worst, _check_bound(x, g, b, 12, 10, 1 + n * n // 1000))
    assert worst <= 0.52          # bound 0.57 at N = 768; nearly all of it is the final rounding


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 64), bits=st.sampled_from([2, 8, 16, 24, 32]), f=st.integers(0, 16),
       os_=st.integers(0, 30), eps=st.integers(1, 1 << 40), seed=st.integers(0, 2**32 - 1),
       out_bits=st.sampled_from([4, 8, 16]))
def test_error_bound_hypothesis(n, bits, f, os_, eps, seed, out_bits):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (3, n))
    x[1] = x[1, 0]                                        # a constant row
    g = rng.integers(-128, 128, n)
    b = rng.integers(-(1 << 30), 1 << 30, n)
    _check_bound(x, g, b, os_, f, eps, out_bits)


def test_shapes_and_errors():
    x = np.arange(24).reshape(2, 3, 4)
    y = layernorm_fx(x, np.arange(4), 0, out_shift=8)
    assert y.shape == (2, 3, 4) and y.dtype == np.int64
    assert (y[1, 2] == layernorm_fx(x[1, 2], np.arange(4), 0, out_shift=8)).all()
    with pytest.raises(TypeError):
        layernorm_fx(np.ones(4), 1, 0, out_shift=8)
    for kw in ({"frac_bits": 17}, {"out_shift": 64}, {"eps": 0}, {"out_bits": 1}):
        with pytest.raises(ValueError):
            layernorm_fx(np.ones(4, dtype=int), 1, 0, **{"out_shift": 8, **kw})
    with pytest.raises(ValueError):
        layernorm_fx(np.array([2**31]), 1, 0, out_shift=8)
    with pytest.raises(ValueError):
        layernorm_fx(np.ones(4, dtype=int), 1 << 15, 0, out_shift=8)
    with pytest.raises(ValueError):
        layernorm_fx(np.zeros((2, 0), dtype=int), 1, 0, out_shift=8)
    assert K_ISQRT == 23

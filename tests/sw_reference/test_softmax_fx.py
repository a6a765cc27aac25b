"""sw_reference.softmax_fx: known values, shapes, a scalar Python-int model, and the float error study."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sw_reference.softmax_fx import (exp2_lut, softmax_exp, softmax_float, softmax_fx,
                                     softmax_params)


def scalar_model(row, mult, shift=16, pb=15):
    """Straight transcription of the spec with Python ints (independent of the numpy version)."""
    m = max(row)
    e = []
    for s in row:
        y = ((m - s) * mult) >> shift
        q, f = y >> 8, y & 255
        lut = math.floor(65536 * 2.0 ** (-f / 256) + 0.5)
        e.append(lut >> q if q < 17 else 0)
    r = (1 << 32) // sum(e)
    return [min((x * r) >> (32 - pb), (1 << pb) - 1) for x in e]


def test_lut():
    lut = exp2_lut()
    assert lut.shape == (256,) and lut[0] == 65536 and lut[128] == 46341 and lut[255] == 32857
    assert np.all(np.diff(lut) < 0)
    # no entry is a rounding tie, so any round-to-nearest gives the same table
    frac = 65536 * 2.0 ** (-np.arange(256) / 256) % 1.0
    assert np.all(np.abs(frac - 0.5) > 1e-6)


def test_known_values():
    m = softmax_params(1 / 256)
    # one element: e = 65536, S = 65536, R = 65536, e*R >> 17 = 2**15 -> clamped
    assert softmax_fx(np.array([123]), m).tolist() == [32767]
    # all equal: 1/4 each exactly
    assert softmax_fx(np.array([-5, -5, -5, -5]), m).tolist() == [8192] * 4
    # huge spread: the loser underflows (q >= 17), the winner saturates
    assert softmax_fx(np.array([2**31 - 1, -2**31]), m).tolist() == [32767, 0]
    # d = 256 score units at scale 1/256 -> logit gap 1.0 -> e = 65536 * 2**(-y/256)
    y = (256 * m) >> 16
    assert softmax_exp(np.array([256, 0]), m).tolist() == [65536, int(exp2_lut()[y & 255]) >> (y >> 8)]
    # mult = 0: every e is 65536
    assert softmax_fx(np.array([1, 2, 3]), 0, pb=8).tolist() == [85, 85, 85]


def test_params():
    assert softmax_params(1.0, 16) == round(math.log2(math.e) * 2**24)
    assert softmax_params(1 / 300) == 80681
    with pytest.raises(ValueError):
        softmax_params(1000.0)
    with pytest.raises(ValueError):
        softmax_params(0.0)


def test_shapes_and_dtype():
    rng = np.random.default_rng(1)
    s = rng.integers(-20000, 20000, size=(3, 4, 17), dtype=np.int32)
    p = softmax_fx(s, softmax_params(1 / 300))
    assert p.shape == s.shape and p.dtype == np.int64
    for idx in np.ndindex(3, 4):
        assert np.array_equal(p[idx], softmax_fx(s[idx], softmax_params(1 / 300)))
    with pytest.raises(TypeError):
        softmax_fx(s.astype(np.float32), 10)
    with pytest.raises(ValueError):
        softmax_fx(np.zeros((2, 0), dtype=np.int32), 10)
    with pytest.raises(ValueError):
        softmax_fx(s, 10, pb=33)


@pytest.mark.parametrize("mult,shift,pb", [(80681, 16, 15), (12345, 12, 12), (2**32 - 1, 16, 15),
                                           (7, 0, 8), (2**23 + 1, 20, 32)])
def test_matches_scalar_model(mult, shift, pb):
    rng = np.random.default_rng(mult % 1000)
    rows = [rng.integers(-2**31, 2**31, size=9), rng.integers(-3000, 3000, size=33),
            rng.integers(-5, 5, size=64), np.full(5, 77), rng.integers(-2**20, 2**20, size=1)]
    for row in rows:
        got = softmax_fx(row.astype(np.int64), mult, shift, pb).tolist()
        assert got == scalar_model([int(v) for v in row], mult, shift, pb)


def _int8_qk_rows(rng, n_rows, L, D):
    """Scores of int8-quantized Q, K (per-tensor scales): returns (int scores, real scale per unit)."""
    q = rng.standard_normal((n_rows, D)) * rng.uniform(0.5, 2.0)
    k = rng.standard_normal((L, D)) * rng.uniform(0.5, 2.0)
    sq, sk = np.abs(q).max() / 127, np.abs(k).max() / 127
    qi = np.clip(np.round(q / sq), -127, 127).astype(np.int64)
    ki = np.clip(np.round(k / sk), -127, 127).astype(np.int64)
    return qi @ ki.T, sq * sk / math.sqrt(D)


def test_error_study():
    """p / 2**PB vs float softmax: max abs error <= 0.01 and relative L2 <= 1%.

    Two families: (a) scores of int8-quantized Gaussian Q, K (D = 8..64) with their exact real scale;
    (b) scale = 1/128 .. 1/512 (typical of int8 Q.K / sqrt(D)) with logits spread over a few units.
    Rows of 16..128 keys, so that p is well above the 2**-15 output step.
    """
    rng = np.random.default_rng(2024)
    worst_abs, worst_rel = 0.0, 0.0
    cases = []
    for D in (8, 16, 32, 64):
        for L in (16, 64, 128):
            cases.append(_int8_qk_rows(rng, 32, L, D))
    for inv in (128, 256, 300, 512):
        for L in (16, 64, 128):
            spread = rng.uniform(1.0, 6.0)                       # logit std
            s = np.round(rng.standard_normal((32, L)) * spread * inv).astype(np.int64)
            s[:4, : L // 4] = s[:4, :1]                          # ties with the max
            cases.append((s, 1.0 / inv))
    for s, scale in cases:
        p = softmax_fx(s, softmax_params(scale)) / 2**15
        ref = softmax_float(s, scale)
        worst_abs = max(worst_abs, float(np.abs(p - ref).max()))
        rel = np.linalg.norm(p - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
        worst_rel = max(worst_rel, float(rel.max()))
    assert worst_abs <= 0.01, worst_abs
    assert worst_rel <= 0.01, worst_rel

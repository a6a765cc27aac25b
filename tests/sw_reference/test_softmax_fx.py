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


def exp2_by_math(f: int) -> int:
    """round(2**16 * 2**(-f/256)) with Python's math (no entry is a tie, see below)."""
    return math.floor(65536 * 2.0 ** (-f / 256) + 0.5)


def test_lut():
    """The softmax RTL's ROM is filled from this table (lego.units.softmax; tests/lego/units/test_softmax.py
    reads it back from the Verilog): pinned entries computed by hand, every entry against math."""
    lut = exp2_lut()
    assert lut.shape == (256,) and lut.dtype == np.int64
    # 2**16 * 2**(-f/256):  f = 1: 65358.78;  2: 65181.99;  64 (2**-1/4): 55109.29;  128 (2**-1/2): 46340.95;
    # 192 (2**-3/4): 38967.83;  255: 32856.89
    pins = {0: 65536, 1: 65359, 2: 65182, 64: 55109, 128: 46341, 192: 38968, 255: 32857}
    assert {f: int(lut[f]) for f in pins} == pins == {f: exp2_by_math(f) for f in pins}
    assert lut.tolist() == [exp2_by_math(f) for f in range(256)]
    assert np.all(np.diff(lut) < 0)
    # no entry is a rounding tie, so any round-to-nearest gives the same table
    frac = 65536 * 2.0 ** (-np.arange(256) / 256) % 1.0
    assert np.all(np.abs(frac - 0.5) > 1e-6)


@pytest.mark.parametrize("lut_bits,frac_bits", [(8, 4), (6, 2), (10, 5), (12, 8)])
def test_spatten_exp_lut(lut_bits, frac_bits):
    """sw_reference.spatten.fixed.exp_lut fills SpAtten's softmax ROM: LUT[i] = round(2**15 exp(-i / 2**frac))
    against math for every entry; with the default (8, 4): 2**15 e**(-1/16) = 30782.66, 2**15 / e =
    12054.66, 2**15 e**-2 = 4434.69, 2**15 e**(-255/16) < 0.5."""
    from sw_reference.spatten.fixed import exp_lut
    lut = exp_lut(lut_bits, frac_bits)
    want = [math.floor(32768 * math.exp(-i / 2 ** frac_bits) + 0.5) for i in range(1 << lut_bits)]
    assert lut.tolist() == want
    if (lut_bits, frac_bits) == (8, 4):
        assert [int(lut[i]) for i in (0, 1, 16, 32, 255)] == [32768, 30783, 12055, 4435, 0]


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

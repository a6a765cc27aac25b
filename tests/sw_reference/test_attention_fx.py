"""Fixed-point attention vs float: relative L2 error <= 2 % at the default widths (int8 Q/K/V,
15-bit probabilities, 8-bit exp LUT fraction)."""
import numpy as np
import pytest

from sw_reference.attention import PB, attention_fx, attention_mult, relative_l2


@pytest.mark.parametrize("L,D", [(12, 8), (16, 16), (64, 32), (5, 3), (128, 64)])
def test_relative_l2_within_2_percent(L, D):
    rng = np.random.default_rng(L * 100 + D)
    Q, K, V = (rng.integers(-128, 128, (L, D)) for _ in range(3))
    assert relative_l2(Q, K, V) <= 0.02


def test_probabilities_are_a_distribution():
    rng = np.random.default_rng(1)
    Q, K, V = (rng.integers(-128, 128, (10, 8)) for _ in range(3))
    S, P, O = attention_fx(Q, K, V, attention_mult(8))
    assert S.dtype == np.int64 and (P >= 0).all() and (P < 2 ** PB).all()
    # truncation only ever loses mass: each row sums to at most 1.0 and within L/2**PB of it
    assert np.all(P.sum(axis=1) <= 2 ** PB) and np.all(P.sum(axis=1) >= 2 ** PB - 10)

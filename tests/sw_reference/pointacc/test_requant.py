"""Requantization and integer linear layers against Python-integer (arbitrary precision) oracles."""
from fractions import Fraction
import math

import numpy as np
import pytest

from sw_reference import pointacc as pa


def requant_oracle(acc: int, shift: int, bits: int) -> int:
    """floor(acc / 2**shift + 1/2) in exact rationals, then saturation."""
    y = math.floor(Fraction(acc, 1 << shift) + Fraction(1, 2)) if shift else acc
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, y))


@pytest.mark.parametrize("shift,bits", [(0, 8), (1, 8), (4, 4), (7, 8), (12, 16), (20, 8), (40, 32), (62, 8)])
def test_requantize_matches_rational_rounding(shift, bits):
    rng = np.random.default_rng(shift * 100 + bits)
    acc = rng.integers(-(1 << 62), 1 << 62, 400, dtype=np.int64) >> rng.integers(0, 62, 400)
    if shift:
        acc[:100] = (2 * rng.integers(-1000, 1000, 100) + 1) << (shift - 1) if shift < 50 else acc[:100]  # exact halves
    acc[100:103] = [np.iinfo(np.int64).max, np.iinfo(np.int64).min, 0]
    got = pa.requantize(acc, shift, bits)
    assert got.dtype == {4: np.int8, 8: np.int8, 16: np.int16, 32: np.int32}[bits]
    assert got.tolist() == [requant_oracle(int(a), shift, bits) for a in acc]


def test_requantize_half_rounds_up():
    assert pa.requantize(np.array([-3, -2, -1, 1, 2, 3, 5, 6]), 1).tolist() == [-1, -1, 0, 1, 1, 2, 3, 3]
    assert pa.requantize(np.array([1000, -1000, 255, -257]), 1).tolist() == [127, -128, 127, -128]


def dot_oracle(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> list[list[int]]:
    rows = x.reshape(-1, x.shape[-1]).tolist()
    wt = w.astype(np.int64).T.tolist()
    out = [[sum(a * c for a, c in zip(r, col)) for col in wt] for r in rows]
    if b is not None:
        out = [[v + int(bb) for v, bb in zip(r, b)] for r in out]
    return out


@pytest.mark.parametrize("seed,cin,xmax", [(0, 16, 127), (1, 3, (1 << 31) - 1), (2, 1 << 14, (1 << 31) - 1),
                                          (3, 40000, (1 << 31) - 1)])
def test_linear_exact(seed, cin, xmax):
    """Small and huge accumulators: the float64 path (bound < 2**53) and the int64 path must both be exact."""
    rng = np.random.default_rng(seed)
    rows = 3 if cin > 1000 else 50
    x = rng.integers(-xmax - 1, xmax + 1, (rows, cin), dtype=np.int64)
    x[0] = xmax  # one row with every product of the same sign: the largest possible sum
    w = rng.integers(-128, 128, (cin, 4)).astype(np.int8)
    w[:, 0] = -128
    b = rng.integers(-(1 << 31), 1 << 31, 4).astype(np.int32)
    got = pa.linear(x, w, b)
    assert got.dtype == np.int64 and got.tolist() == dot_oracle(x, w, b)


def mlp_oracle(x: np.ndarray, layers: list[pa.Layer], bits: int = 8) -> np.ndarray:
    y = x.reshape(-1, x.shape[-1])
    for lay in layers:
        acc = dot_oracle(y, lay.weight, lay.bias)
        s = lay.shift
        out = []
        for r in acc:
            r = [max(a, 0) if lay.relu else a for a in r]
            r = [(a + (1 << (s - 1))) // (1 << s) if s else a for a in r]
            out.append([max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, a)) for a in r])
        y = np.array(out, dtype=np.int64)
    return y.reshape(*x.shape[:-1], y.shape[-1])


def random_layers(rng, widths, shifts, relu_last=True):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(pa.Layer(rng.integers(-128, 128, (a, b)).astype(np.int8),
                               rng.integers(-2000, 2000, b).astype(np.int32), shifts[i],
                               relu_last or i < len(widths) - 2))
    return layers


@pytest.mark.parametrize("seed", range(3))
def test_mlp_matches_oracle(seed):
    rng = np.random.default_rng(seed)
    layers = random_layers(rng, [6, 16, 32, 8], [9, 10, 9], relu_last=bool(seed % 2))
    x = rng.integers(-300, 300, (5, 7, 6))  # int32 activations in the first layer (relative coordinates)
    got = pa.mlp(x, layers)
    want = mlp_oracle(x, layers)
    assert got.dtype == np.int8 and got.shape == (5, 7, 8)
    assert np.array_equal(got, want)
    assert len(np.unique(got)) > 8  # non-degenerate: not all saturated or zero
    assert np.array_equal(pa.mlp(x, layers, bits=12), mlp_oracle(x, layers, 12))


W = np.ones((4, 2), np.int8)
BAD = [
    (lambda: pa.requantize(np.zeros(3), 2), "acc: expected an integer array, got float64"),
    (lambda: pa.requantize(np.zeros(3, np.int32), -1), "shift: must be >= 0, got -1"),
    (lambda: pa.requantize(np.zeros(3, np.int32), 63), "shift: must be <= 62, got 63"),
    (lambda: pa.requantize(np.zeros(3, np.int32), 2, 1), "bits: must be >= 2, got 1"),
    (lambda: pa.linear(np.zeros((2, 4), np.int32), W.astype(np.int16)), "weight: expected int8 (C_in, C_out), got int16 (4, 2)"),
    (lambda: pa.linear(np.zeros((2, 5), np.int32), W), "weight: C_in = 4 but the input has 5 channels"),
    (lambda: pa.linear(np.zeros((2, 4), np.float32), W), "x: expected an integer array (..., C_in), got float32 (2, 4)"),
    (lambda: pa.linear(np.full((2, 4), 1 << 31), W), "x: activations must fit int32"),
    (lambda: pa.linear(np.full((1, 1 << 24), -(1 << 31), np.int32), np.full(((1 << 24), 1), -128, np.int8)),
     "x: the int64 accumulator could overflow (C_in = 16777216, bound 4611686018427387904)"),
    (lambda: pa.linear(np.zeros((2, 4), np.int32), W, np.zeros(2, np.int64)), "bias: expected int32 (2,), got int64 (2,)"),
    (lambda: pa.mlp(np.zeros((2, 4), np.int8), []), "layers: need at least one layer"),
    (lambda: pa.mlp(np.zeros((2, 4), np.int8), [pa.Layer(W, None, 2), pa.Layer(W, None, 2)]),
     "layers[1].weight: C_in = 4 but the input has 2 channels"),
    (lambda: pa.mlp(np.zeros((2, 4), np.int8), [pa.Layer(W, np.zeros(3, np.int32), 2)]),
     "layers[0].bias: expected int32 (2,), got int32 (3,)"),
    (lambda: pa.mlp(np.zeros((2, 4), np.int8), [pa.Layer(W, None, 70)]), "layers[0].shift: must be <= 62, got 70"),
]


@pytest.mark.parametrize("call,msg", BAD)
def test_bad_inputs(call, msg):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == msg

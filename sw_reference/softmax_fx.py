"""Bit-exact fixed-point row softmax (the numerics of ``lego.units.softmax.SoftmaxUnit``).

Input: a row of ``L`` signed integer scores ``s[0..L-1]`` (int32 Q.K^T accumulations; one score unit is
worth ``scale`` in real logit units). Output: unsigned probabilities ``p[j]`` with ``PB`` fraction bits
(``p[j] / 2**PB`` approximates ``softmax(scale * s)[j]``).

Parameters, fixed at generation time: ``MULT`` (unsigned, < 2**32), ``SHIFT`` (default 16), ``PB``
(default 15, 1..32) and ``F = 8`` (fraction bits of the base-2 exponent).

    1. m    = max_j s[j]
    2. d[j] = m - s[j]                                    (>= 0, < 2**33)
    3. y[j] = (d[j] * MULT) >> SHIFT                      (-x*log2(e) with F=8 fraction bits)
    4. q = y >> F,  f = y & (2**F - 1)
       LUT[f] = round(2**16 * 2**(-f / 2**F)),  f = 0..255    (LUT[0] = 65536: 17 bits)
       e[j] = LUT[f] >> q  if q < 17  else 0
    5. S    = sum_j e[j]                                  (>= 65536: the max element has e = 65536)
    6. R    = floor(2**32 / S)                            (<= 65536: 17 bits)
    7. p[j] = min((e[j] * R) >> (32 - PB), 2**PB - 1)

``MULT = round(scale * log2(e) * 2**(F + SHIFT))`` (:func:`softmax_params`).

Error budget (measured by tests/sw_reference/test_softmax_fx.py): the exponent is truncated to 1/256
(e[j] at most ~0.27% low, and nearly the same factor on every element), LUT rounding is 2**-17 relative,
R is floored (<= 2**-16 relative for S <= 2**32 / 2**16) and p is floored to 2**-PB. For rows whose
probabilities are well above 2**-PB (L = 16..128), measured: relative L2 error <= 0.3% and max absolute
error <= 6e-4 (limits asserted: 1% and 0.01); for very long flat rows the final floor dominates
(relative error per element ~ 2**-PB / p).
"""
from __future__ import annotations

import math

import numpy as np

F_BITS = 8          # fraction bits of y (the base-2 exponent)
E_ONE = 1 << 16     # e of the maximum element (LUT[0])
Q_ZERO = 17         # q >= Q_ZERO gives e = 0 (LUT values have 17 bits)
R_BITS = 32         # R = floor(2**R_BITS / S)


def exp2_lut() -> np.ndarray:
    """LUT[f] = round(2**16 * 2**(-f/256)) for f = 0..255, int64 (LUT[0] = 65536). No value is a tie."""
    return np.array([math.floor(E_ONE * 2.0 ** (-f / (1 << F_BITS)) + 0.5)
                     for f in range(1 << F_BITS)], dtype=np.int64)


_LUT = exp2_lut()


def softmax_params(scale: float, shift: int = 16) -> int:
    """MULT = round(scale * log2(e) * 2**(F + shift)) for a score unit worth ``scale`` logit units."""
    if not scale > 0:
        raise ValueError(f"softmax_params: scale must be > 0, got {scale}")
    mult = int(math.floor(scale * math.log2(math.e) * (1 << (F_BITS + shift)) + 0.5))
    if not 0 <= mult < (1 << 32):
        raise ValueError(f"softmax_params: MULT={mult} does not fit 32 bits (scale={scale}, shift={shift})")
    return mult


def _check(mult: int, shift: int, pb: int) -> None:
    if not 0 <= mult < (1 << 32):
        raise ValueError(f"mult must be in [0, 2**32), got {mult}")
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    if not 1 <= pb <= R_BITS:
        raise ValueError(f"pb must be in [1, 32], got {pb}")


def softmax_exp(s: np.ndarray, mult: int, shift: int = 16) -> np.ndarray:
    """Steps 1-4: e[j] (int64, 0..65536) along the last axis."""
    s = np.asarray(s)
    if not np.issubdtype(s.dtype, np.integer):
        raise TypeError(f"softmax_fx: scores must be integers, got dtype {s.dtype}")
    if s.ndim == 0 or s.shape[-1] == 0:
        raise ValueError("softmax_fx: need at least one score on the last axis")
    s64 = s.astype(np.int64)
    d = s64.max(axis=-1, keepdims=True) - s64            # >= 0, < 2**33 for int32 scores
    dmax = int(d.max())
    if dmax * mult < (1 << 63):
        y = (d * np.int64(mult)) >> shift
    else:                                                # exact, slow path (huge MULT and spread)
        y = (d.astype(object) * mult) >> shift
    q = np.minimum(y >> F_BITS, Q_ZERO).astype(np.int64)
    f = (y & ((1 << F_BITS) - 1)).astype(np.int64)
    return _LUT[f] >> q                                  # 17-bit value >> 17 == 0


def softmax_fx(s: np.ndarray, mult: int, shift: int = 16, pb: int = 15) -> np.ndarray:
    """Fixed-point softmax of integer scores along the last axis; int64 p with ``pb`` fraction bits."""
    _check(mult, shift, pb)
    e = softmax_exp(s, mult, shift)
    ssum = e.sum(axis=-1, keepdims=True)                 # >= 65536, < 2**29 for L <= 4096
    r = (np.int64(1) << R_BITS) // ssum                  # <= 65536
    return np.minimum((e * r) >> (R_BITS - pb), (1 << pb) - 1)


def softmax_float(s: np.ndarray, scale: float) -> np.ndarray:
    """Float64 softmax of ``scale * s`` along the last axis (the ideal that softmax_fx approximates)."""
    x = np.asarray(s, dtype=np.float64) * scale
    x = x - x.max(axis=-1, keepdims=True)
    ex = np.exp(x)
    return ex / ex.sum(axis=-1, keepdims=True)

"""Bit-exact integer GELU (the numerics of ``lego.units.gelu.GeluUnit``).

GELU(x) = x/2 * (1 + erf(x / sqrt 2)). The erf is replaced by the second-order polynomial of I-BERT
(Kim et al., ICML 2021, "i-GELU"), restated here from its mathematics:

    erf(u) ~ sgn(u) * (1 - A * (min(|u|, B) - B)^2),   A = 0.2888, B = 1.769

(clipped to +-1 beyond |u| = B; at u -> 0 it gives +-0.096, but GELU multiplies it by x, so the GELU
approximation is continuous). In x = sqrt(2) u: erf(x/sqrt 2) ~ sgn(x) * (1 - (A/2) (min(|x|, B sqrt 2)
- B sqrt 2)^2). With exact constants its GELU error is at most 0.0182 (at |x| ~ 2.35).

Input: a signed integer code q (``in_bits``, 2..16) with real value x = q * S (``in_scale``). Output: a
signed code y (``out_bits``) with real value y * S_y (``out_scale``). Integer constants, fixed at
generation time by :func:`gelu_params`:

    c  = round(B * sqrt(2) / S)                   clip point in input codes (>= 0)
    G  = round(2 / (A * S^2))                     1 / (A S^2 / 2): erf ~ sgn(q) (G - t^2) / G  (>= 1)
    M, SH: M * 2**-SH ~ S / (2 G S_y)              output requantization (M < 2**mult_bits)

Numerics (every step exact on integers; ``rshr`` rounds half up as in sw_reference.layernorm_fx):

    1. t = c - min(|q|, c)                        (0 <= t <= c)
    2. e = t^2              if q < 0              (x/2 (1 + erf) = x/2 * t^2/G      for x < 0)
       e = 2G - t^2         if q >= 0             (x/2 (1 + erf) = x/2 * (2G - t^2)/G for x >= 0)
    3. P = q * e                                  (GELU(x) ~ P * S / (2G))
    4. y = clamp(rshr(P * M, SH), -2**(out_bits-1), 2**(out_bits-1) - 1)

So q <= -c gives y = 0, q = 0 gives y = 0, and q >= c gives y = rshr(q * 2G * M, SH) ~ q * S / S_y.
:func:`gelu_params` keeps 2G >= c^2 (e >= 0); it holds with margin for the I-BERT constants
(4/A = 13.85 > 2 B^2 = 6.26).

Error budget (asserted in tests/sw_reference/test_gelu_fx.py, y* = GELU(q S) / S_y exactly): the
polynomial (<= 0.0182 real), the rounding of c and G (clip point off by <= S/2: <= 0.36 S real, and
G's relative rounding <= 1/(2G)), M's rounding (<= 2**-(mult_bits-1) relative) and the final rounding:

    |y - y*| <= 1/2 + (0.0182 + 0.36 S) / S_y + 2**-(mult_bits-1) * |y*|     (before saturation)
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .layernorm_fx import rshr

A_IBERT = 0.2888
B_IBERT = 1.769


class GeluParams(NamedTuple):
    c: int          # clip point, input codes
    g: int          # G
    mult: int       # M
    shift: int      # SH


def gelu_params(in_scale: float, out_scale: float, *, mult_bits: int = 16,
                a: float = A_IBERT, b: float = B_IBERT) -> GeluParams:
    """Integer constants for input scale S = ``in_scale`` and output scale S_y = ``out_scale``.

    M is normalised to 2**(mult_bits-1) <= M < 2**mult_bits (SH >= 1 so the rounding bit exists)."""
    if not in_scale > 0 or not out_scale > 0:
        raise ValueError(f"gelu_params: scales must be > 0, got {in_scale}, {out_scale}")
    if not 2 <= mult_bits <= 32:
        raise ValueError(f"gelu_params: mult_bits must be in 2..32, got {mult_bits}")
    c = int(math.floor(b * math.sqrt(2) / in_scale + 0.5))
    g = max(1, int(math.floor(2 / (a * in_scale ** 2) + 0.5)))
    if 2 * g < c * c:
        raise ValueError(f"gelu_params: 2G = {2 * g} < c^2 = {c * c}: the polynomial goes negative")
    ratio = in_scale / (2 * g * out_scale)
    shift = mult_bits - 1 - math.floor(math.log2(ratio))
    mult = int(math.floor(ratio * 2.0 ** shift + 0.5))
    if mult >= 1 << mult_bits:                       # ratio just below a power of two rounded up
        shift -= 1
        mult = int(math.floor(ratio * 2.0 ** shift + 0.5))
    if shift < 1:
        raise ValueError(f"gelu_params: output scale {out_scale} too small for input scale {in_scale}")
    if shift > 80:
        raise ValueError(f"gelu_params: output scale {out_scale} too large for input scale {in_scale}")
    return GeluParams(c, g, mult, shift)


def check_params(c: int, g: int, mult: int, shift: int, in_bits: int = 8, out_bits: int = 8) -> None:
    """Range checks shared with GeluUnit (ValueError)."""
    if not 2 <= in_bits <= 16:
        raise ValueError(f"in_bits must be in 2..16, got {in_bits}")
    if not 2 <= out_bits <= 32:
        raise ValueError(f"out_bits must be in 2..32, got {out_bits}")
    if not 0 <= c < (1 << 24):
        raise ValueError(f"c must be in [0, 2**24), got {c}")
    if not 1 <= g < (1 << 40):
        raise ValueError(f"g must be in [1, 2**40), got {g}")
    if 2 * g < c * c:
        raise ValueError(f"2*g must be >= c*c (e >= 0), got g={g}, c={c}")
    if not 0 <= mult < (1 << 32):
        raise ValueError(f"mult must be in [0, 2**32), got {mult}")
    if not 0 <= shift <= 96:
        raise ValueError(f"shift must be in 0..96, got {shift}")


def gelu_fx(q, c: int, g: int, mult: int, shift: int, *, in_bits: int = 8, out_bits: int = 8) -> np.ndarray:
    """Integer GELU of the codes ``q`` (any shape, within signed in_bits); int64 result."""
    check_params(c, g, mult, shift, in_bits, out_bits)
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        raise TypeError(f"gelu_fx: inputs must be integers, got dtype {q.dtype}")
    q = q.astype(np.int64)
    if q.size and (int(q.min()) < -(1 << (in_bits - 1)) or int(q.max()) >= (1 << (in_bits - 1))):
        raise ValueError(f"gelu_fx: inputs must fit signed {in_bits} bits")
    t = c - np.minimum(np.abs(q), c)
    e = np.where(q < 0, t * t, 2 * g - t * t)
    p = q * e                                        # |P| < 2**15 * 2**41: exact in int64
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    pmax = int(np.abs(p).max()) if p.size else 0
    if pmax * max(mult, 1) < (1 << 62):
        y = rshr(p * np.int64(mult), shift)
    else:                                            # exact, slow path: P * M beyond int64
        y = np.vectorize(lambda v: rshr(int(v) * mult, shift), otypes=[object])(p)
        y = np.clip(y, lo, hi)
    return np.clip(y, lo, hi).astype(np.int64)


def gelu_float(x) -> np.ndarray:
    """Exact GELU (erf form), float64."""
    from scipy.special import erf
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_poly(x, a: float = A_IBERT, b: float = B_IBERT) -> np.ndarray:
    """The I-BERT polynomial GELU with exact real constants (float64): what gelu_fx approximates."""
    x = np.asarray(x, dtype=np.float64)
    u = np.abs(x) / math.sqrt(2.0)
    erf = np.sign(x) * (1.0 - a * (np.minimum(u, b) - b) ** 2)
    return 0.5 * x * (1.0 + erf)


def error_bound(y_star, in_scale: float, out_scale: float, mult_bits: int = 16) -> np.ndarray:
    """The documented bound on |y - y*| in output LSBs (before saturation)."""
    return 0.5 + (0.0182 + 0.36 * in_scale) / out_scale + 2.0 ** -(mult_bits - 1) * np.abs(y_star)

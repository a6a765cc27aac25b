"""Bit-exact integer LayerNorm (the numerics of ``lego.units.layernorm.LayerNormUnit``).

Input: a row of ``N`` signed integers ``x[0..N-1]`` (``in_bits`` wide, e.g. int16 residual sums), per
element a signed ``gamma[i]`` (``gamma_bits``, e.g. int8 with ``GF`` implied fraction bits) and a signed
``beta[i]`` (``beta_bits``, at the scale of ``z * gamma``, i.e. ``F + GF`` fraction bits). Output: signed
``y[i]`` (``out_bits``, default int8). Parameters fixed at generation time: ``F = frac_bits`` (0..16,
fraction bits of the normalized value), ``OS = out_shift`` (0..63) and ``eps`` (>= 1, integer, in units
of N^2 x^2: ``eps = round(N**2 * eps_real / scale_x**2)`` for PyTorch's ``eps_real``).

Supported ranges (int64 is then exact): N <= 4096, x within int32, gamma within int16, beta within
int40. Every quantity below is an exact integer; ``>>`` is an arithmetic shift (floor), and
``rshr(v, k) = (v >> k) + ((v >> (k-1)) & 1)`` for k >= 1, ``rshr(v, 0) = v``, is a shift that rounds
half up (toward +inf): rshr(v, k) = floor(v / 2**k + 1/2).

    1. S1 = sum x,  S2 = sum x^2
    2. Q  = N*S2 - S1^2                          (= N^2 * population variance, exact, >= 0)
       Q' = Q + eps                              (>= 1)
    3. D[i] = N*x[i] - S1                        (= N * (x[i] - mean), exact)
    4. normalize:  L = bit_length(Q'),  s = (L - 15) >> 1   (floor; -7 <= s)
                   Qn = Q' >> 2s  if s >= 0  else  Q' << -2s       (2**14 <= Qn < 2**16; the right
                   shift truncates: Qn = floor(Q' / 4**s))
    5. inverse square root: r = floor(2**23 / sqrt(Qn)) = max{r : r^2 * Qn <= 2**46}
                   (2**15 <= r <= 2**16; r = isqrt(2**46 // Qn); the RTL computes it with the restoring
                   shift-add recurrence of :func:`isqrt_inv_restoring`, one bit per cycle, 17 bits)
    6. z[i] = rshr(D[i] * r, 23 - F + s)         (normalized value, F fraction bits; the shift is
                   >= 0 because F <= 16 and s >= -7)
    7. v[i] = z[i] * gamma[i] + beta[i]
    8. y[i] = clamp(rshr(v[i], OS), -2**(out_bits-1), 2**(out_bits-1) - 1)

z approximates 2**F * (x - mean) / sqrt(var + eps / N^2), since D / sqrt(Q') = (x - mean) / sqrt(Q' / N^2).
A row whose elements are all equal has D = 0, so z = 0 and y = clamp(rshr(beta, OS)) whatever eps is.

Error budget (asserted by tests/sw_reference/test_layernorm_fx.py): let y* be the exact real value
(2**F * gamma * (x - mean) / sqrt(var + eps/N^2) + beta) / 2**OS. Qn's truncation and r's floor are each
at most 2**-15 relative (Qn >= 2**14, r >= 2**15), so |z - z*| <= 1/2 + sqrt(N-1) * 2**(F-14) (|z*| <=
2**F sqrt(N-1)), and before saturation

    |y - y*| <= 1/2 + |gamma| * (1/2 + sqrt(N-1) * 2**(F-14)) / 2**OS.

Saturation is 1-Lipschitz, so the bound also holds between y and clamp(y*).
"""
from __future__ import annotations

import math

import numpy as np

QN_LO, QN_HI = 1 << 14, 1 << 16     # Qn in [2**14, 2**16)
K_ISQRT = 23                        # r = floor(2**K / sqrt(Qn))
R_BITS = 17                         # r in [2**15, 2**16]
MAX_FRAC = K_ISQRT - 7              # F <= 16 keeps the shift of step 6 non-negative (s >= -7)


def rshr(v, k: int):
    """Shift right by k >= 0 rounding half up: floor(v / 2**k + 1/2). Works on ints and int arrays."""
    if k < 0:
        raise ValueError(f"rshr: shift must be >= 0, got {k}")
    if k == 0:
        return v
    return (v >> k) + ((v >> (k - 1)) & 1)


def normalize(qp: int) -> tuple[int, int]:
    """(s, Qn) of step 4 for Q' >= 1: Qn = floor(Q' / 4**s) in [2**14, 2**16)."""
    if qp < 1:
        raise ValueError(f"normalize: Q' must be >= 1, got {qp}")
    s = (qp.bit_length() - 15) >> 1
    qn = qp >> (2 * s) if s >= 0 else qp << (-2 * s)
    return s, qn


def isqrt_inv(qn: int) -> int:
    """r = floor(2**23 / sqrt(Qn)) = max{r : r*r*Qn <= 2**46}, for Qn in [2**14, 2**16)."""
    if not QN_LO <= qn < QN_HI:
        raise ValueError(f"isqrt_inv: Qn must be in [2**14, 2**16), got {qn}")
    return math.isqrt((1 << (2 * K_ISQRT)) // qn)      # r^2 <= 2**46 / Qn  <=>  r^2 <= floor(2**46 / Qn)


def isqrt_inv_restoring(qn: int) -> int:
    """The RTL's algorithm for :func:`isqrt_inv`: bits b = 16..0 of r, one per cycle, shifts and adds only.

    Invariants before bit b: P = r^2 * Qn, Ab = r * Qn * 2**(b+1), T2 = Qn * 4**b (r = bits above b).
    Trial (r + 2**b)^2 * Qn = P + Ab + T2; keep the bit when it is <= 2**46, then Ab += 2*T2. Between bits
    Ab >>= 1 and T2 >>= 2 (both exact).
    """
    if not QN_LO <= qn < QN_HI:
        raise ValueError(f"isqrt_inv_restoring: Qn must be in [2**14, 2**16), got {qn}")
    lim = 1 << (2 * K_ISQRT)
    p, ab, t2, r = 0, 0, qn << (2 * (R_BITS - 1)), 0
    for b in range(R_BITS - 1, -1, -1):
        trial = p + ab + t2
        if trial <= lim:
            p, ab, r = trial, ab + 2 * t2, r | (1 << b)
        ab, t2 = ab >> 1, t2 >> 2
    return r


def _check(frac_bits: int, out_shift: int, eps: int, out_bits: int) -> None:
    if not 0 <= frac_bits <= MAX_FRAC:
        raise ValueError(f"frac_bits must be in 0..{MAX_FRAC}, got {frac_bits}")
    if not 0 <= out_shift <= 63:
        raise ValueError(f"out_shift must be in 0..63, got {out_shift}")
    if not 1 <= eps < (1 << 64):
        raise ValueError(f"eps must be in [1, 2**64), got {eps}")
    if not 2 <= out_bits <= 32:
        raise ValueError(f"out_bits must be in 2..32, got {out_bits}")


def _as_int(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"layernorm_fx: {what} must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def layernorm_row_consts(row, eps: int) -> dict:
    """Steps 1-5 for one row (Python ints): S1, S2, Q, Q', s, Qn, r."""
    vals = [int(v) for v in row]
    n = len(vals)
    s1 = sum(vals)
    s2 = sum(v * v for v in vals)
    q = n * s2 - s1 * s1
    qp = q + eps
    s, qn = normalize(qp)
    return {"n": n, "s1": s1, "s2": s2, "q": q, "qp": qp, "s": s, "qn": qn, "r": isqrt_inv(qn)}


def layernorm_fx(x, gamma, beta, *, out_shift: int, frac_bits: int = 10, eps: int = 1,
                 out_bits: int = 8) -> np.ndarray:
    """Integer LayerNorm along the last axis of ``x`` (int64 result); gamma and beta broadcast to x."""
    _check(frac_bits, out_shift, eps, out_bits)
    x = _as_int(x, "x")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError("layernorm_fx: need at least one element on the last axis")
    g = np.broadcast_to(_as_int(gamma, "gamma"), x.shape)
    b = np.broadcast_to(_as_int(beta, "beta"), x.shape)
    n = x.shape[-1]
    for what, a, bits in (("x", x, 32), ("gamma", g, 16), ("beta", b, 40)):
        if a.size and (int(a.min()) < -(1 << (bits - 1)) or int(a.max()) >= (1 << (bits - 1))):
            raise ValueError(f"layernorm_fx: {what} must fit signed {bits} bits")
    if n > 4096:
        raise ValueError(f"layernorm_fx: N must be <= 4096, got {n}")
    flat, gf, bf = x.reshape(-1, n), g.reshape(-1, n), b.reshape(-1, n)
    out = np.empty_like(flat)
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    for i in range(flat.shape[0]):
        c = layernorm_row_consts(flat[i], eps)
        sh = K_ISQRT - frac_bits + c["s"]
        d = n * flat[i] - np.int64(c["s1"])                 # |D| < 2**44, |D * r| < 2**61: int64 is exact
        z = rshr(d * np.int64(c["r"]), sh)
        v = z * gf[i] + bf[i]
        out[i] = np.clip(rshr(v, out_shift), lo, hi)
    return out.reshape(x.shape)


def layernorm_float(x, gamma, beta, *, out_shift: int, frac_bits: int = 10, eps: int = 1) -> np.ndarray:
    """The exact real value y* that layernorm_fx approximates, in output LSBs, before rounding and
    saturation: (2**F * gamma * (x - mean) / sqrt(var + eps / N^2) + beta) / 2**OS (float64)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    zs = (x - mean) / np.sqrt(var + eps / n ** 2)
    return (2.0 ** frac_bits * np.asarray(gamma, np.float64) * zs + np.asarray(beta, np.float64)) / 2.0 ** out_shift


def error_bound(n: int, gamma_abs_max: int, *, out_shift: int, frac_bits: int = 10) -> float:
    """The documented bound on |y - y*| (output LSBs, before saturation)."""
    return 0.5 + gamma_abs_max * (0.5 + math.sqrt(max(n - 1, 0)) * 2.0 ** (frac_bits - 14)) / 2.0 ** out_shift


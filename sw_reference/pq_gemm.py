"""SpAtten progressive quantization for Q.K^T, defined so a GPU reproduces it bit for bit.

Data
  q : int8  (B, M, D)           quantised queries
  k : int16/int32 (B, N, D)     keys as signed integers of ``msb_bits + lsb_bits`` bits,
                                range [-2**(b-1), 2**(b-1))
  K is stored split, as SpAtten keeps it in DRAM:
      k_msb = k >> lsb_bits                 (arithmetic shift = floor division; int8)
      k_lsb = k - (k_msb << lsb_bits)       (in [0, 2**lsb_bits); int8)
  so that k == (k_msb << lsb_bits) + k_lsb exactly.

Policy, per row r = (b, i):
  1. MSB pass: s_j = (q_r . k_msb_j) << lsb_bits            (int32, full-precision units)
  2. Row confidence, integer only:
       d_j  = max_j(s) - s_j                                  (>= 0, int64)
       t_j  = (d_j * mult) >> 16,  mult = round(alpha * log2(e) * 16 * 2**16)
              (t_j is the probability ratio exponent in 1/16 steps of log2)
       w_j  = LUT[t_j] if t_j < 512 else 0,  LUT[t] = floor(2**15 * 2**(-t/16) + 0.5)
       Z    = sum_j w_j                                        (int64, exact)
     The row's max probability is 2**15 / Z (the arg-max key has w = LUT[0] = 2**15).
     With thr_q = round(threshold * 2**16):
       requant  <=>  max_prob < threshold  <=>  2**31 < thr_q * Z
  3. Requantised rows get the exact product q_r . k_j = s_j + q_r . k_lsb_j
     (only the LSB plane is fetched again); other rows keep the MSB scores.

alpha is the real softmax scale of one integer score unit (e.g. q_scale * k_scale / sqrt(D)).
Output: scores int32 (B, M, N) and requant bool (B, M).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["LUT_SIZE", "exp_lut", "lut_mult", "threshold_q", "split_k", "pq_gemm", "pq_gemm_split", "row_requant"]

LUT_SIZE = 512
ONE = 1 << 15


def exp_lut() -> np.ndarray:
    t = np.arange(LUT_SIZE, dtype=np.float64)
    return np.floor(ONE * np.exp2(-t / 16.0) + 0.5).astype(np.int32)


def lut_mult(alpha: float) -> int:
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha: must be a positive finite float, got {alpha!r}")
    m = int(round(alpha * math.log2(math.e) * 16 * 65536))
    if not 1 <= m < 2**31:
        raise ValueError(f"alpha: {alpha!r} gives LUT multiplier {m} outside [1, 2**31)")
    return m


def threshold_q(threshold: float) -> int:
    if not (isinstance(threshold, (int, float)) and 0.0 < threshold <= 1.0):
        raise ValueError(f"threshold: must be in (0, 1], got {threshold!r}")
    return max(1, int(round(threshold * 65536)))


def _check_bits(msb_bits, lsb_bits, d):
    if not isinstance(msb_bits, int) or not 1 <= msb_bits <= 8:
        raise ValueError(f"msb_bits: must be an int in [1, 8], got {msb_bits!r}")
    if not isinstance(lsb_bits, int) or not 1 <= lsb_bits <= 7:
        raise ValueError(f"lsb_bits: must be an int in [1, 7], got {lsb_bits!r}")
    if 7 + (msb_bits + lsb_bits - 1) + math.ceil(math.log2(max(d, 1))) > 30:
        raise ValueError(f"msb_bits: {msb_bits}+{lsb_bits} bits with D={d} may overflow int32")


def split_k(k, msb_bits: int, lsb_bits: int):
    """Split integer keys into (k_msb, k_lsb), both int8; raises if k is out of range."""
    k = np.asarray(k)
    if k.dtype.kind != "i":
        raise ValueError(f"k: dtype must be a signed integer, got {k.dtype}")
    _check_bits(msb_bits, lsb_bits, k.shape[-1] if k.ndim else 1)
    b = msb_bits + lsb_bits
    if k.size and (k.min() < -(1 << (b - 1)) or k.max() >= (1 << (b - 1))):
        raise ValueError(f"k: values must fit in {b} signed bits")
    k64 = k.astype(np.int64)
    msb = k64 >> lsb_bits
    lsb = k64 - (msb << lsb_bits)
    return msb.astype(np.int8), lsb.astype(np.int8)


def row_requant(scores_msb, alpha: float, threshold: float) -> np.ndarray:
    """The integer requant decision for each row of MSB scores (int32, full units)."""
    s = np.asarray(scores_msb).astype(np.int64)
    d = s.max(axis=-1, keepdims=True) - s
    t = (d * lut_mult(alpha)) >> 16
    lut = exp_lut().astype(np.int64)
    w = np.where(t < LUT_SIZE, lut[np.minimum(t, LUT_SIZE - 1)], 0)
    z = w.sum(axis=-1)
    return (1 << 31) < threshold_q(threshold) * z


def pq_gemm(q, k, msb_bits: int = 6, lsb_bits: int = 4, threshold: float = 0.05, alpha: float = 1.0):
    """Progressive-quantization Q.K^T. q int8 (B, M, D), k int (B, N, D). Returns (scores, requant)."""
    q = np.asarray(q)
    if q.dtype != np.int8 or q.ndim != 3:
        raise ValueError(f"q: expected int8 (B, M, D), got {q.dtype} {q.shape}")
    k = np.asarray(k)
    if k.ndim != 3 or k.shape[0] != q.shape[0] or k.shape[2] != q.shape[2]:
        raise ValueError(f"k: expected (B, N, D) matching q {q.shape}, got {k.shape}")
    k_msb, k_lsb = split_k(k, msb_bits, lsb_bits)
    return pq_gemm_split(q, k_msb, k_lsb, lsb_bits, threshold, alpha)


def pq_gemm_split(q, k_msb, k_lsb, lsb_bits: int, threshold: float, alpha: float):
    # int8 x int8 dot products over D <= 2**16 are exact in float64, so BLAS is used
    qf = np.asarray(q).astype(np.float64)
    s_msb = np.matmul(qf, np.swapaxes(np.asarray(k_msb).astype(np.float64), -1, -2)).astype(np.int64) << lsb_bits
    req = row_requant(s_msb, alpha, threshold)
    s_lsb = np.matmul(qf, np.swapaxes(np.asarray(k_lsb).astype(np.float64), -1, -2)).astype(np.int64)
    out = np.where(req[..., None], s_msb + s_lsb, s_msb)
    return out.astype(np.int32), req

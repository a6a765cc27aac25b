"""Bit-accurate SpAtten numerics: K/V quantization with an MSB/LSB split, the fixed-point softmax
(exp LUT + reciprocal), the requantization decision and the P.V product.

Every function here computes exactly what the RTL in accelerators/spatten computes. All integers are
numpy int64 (or Python ints); widths come from ``SpAttenConfig``.

Softmax, for one row of integer scores ``s`` (Q.K with the same scale for every key):
    d_j   = max(s) - s_j                                   (>= 0)
    idx_j = min((d_j * dq + 2**(dequant_shift-1)) >> dequant_shift, 2**exp_lut_bits - 1)
    e_j   = LUT[idx_j],  LUT[i] = round(2**15 * exp(-i / 2**exp_lut_frac_bits))   (unsigned Q1.15)
    sum   = sum_j e_j                                      (>= 2**15: the max contributes LUT[0])
    r     = floor(2**recip_bits / sum)
    p_j   = min((e_j * r) >> (recip_bits - prob_bits), 2**prob_bits - 1)   (unsigned Q0.prob_bits)
``dq`` (the dequantization scale) = round(scale_q * scale_k / sqrt(D) * 2**(frac + dequant_shift)).
"""
from __future__ import annotations

import math

import numpy as np

EXP_ONE_BITS = 15  # LUT values are Q1.15: LUT[0] = 2**15


def exp_lut(lut_bits: int, frac_bits: int) -> np.ndarray:
    i = np.arange(1 << lut_bits, dtype=np.float64)
    return np.floor((1 << EXP_ONE_BITS) * np.exp(-i / (1 << frac_bits)) + 0.5).astype(np.int64)


def quant_scale(x: np.ndarray, bits: int) -> float:
    """Symmetric linear scale so that max|x| maps to 2**(bits-1) - 1."""
    m = float(np.max(np.abs(x))) if np.size(x) else 0.0
    return m / ((1 << (bits - 1)) - 1) if m > 0 else 1.0


def quantize(x: np.ndarray, bits: int, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Symmetric linear quantization (round half away from zero, saturating). Returns (int, scale)."""
    s = quant_scale(x, bits) if scale is None else scale
    lim = (1 << (bits - 1)) - 1
    q = np.sign(x) * np.floor(np.abs(np.asarray(x, dtype=np.float64)) / s + 0.5)
    return np.clip(q, -lim, lim).astype(np.int64), s


def split_msb_lsb(x: np.ndarray, lsb_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """DRAM layout: signed MSB part (x >> lsb, arithmetic) and unsigned LSB part (x & (2**lsb-1))."""
    x = np.asarray(x, dtype=np.int64)
    return x >> lsb_bits, x & ((1 << lsb_bits) - 1)


def fetch_value(msb: np.ndarray, lsb: np.ndarray | None, lsb_bits: int) -> np.ndarray:
    """What the K/V fetcher hands the datapath: MSBs shifted into place, LSBs zero unless fetched."""
    v = np.asarray(msb, dtype=np.int64) << lsb_bits
    if lsb is not None:
        v = v | np.asarray(lsb, dtype=np.int64)
    return v


def msb_only(x: np.ndarray, lsb_bits: int) -> np.ndarray:
    return fetch_value(split_msb_lsb(x, lsb_bits)[0], None, lsb_bits)


def dequant_scale(scale_q: float, scale_k: float, head_dim: int, cfg) -> int:
    v = scale_q * scale_k / math.sqrt(head_dim) * (1 << (cfg.exp_lut_frac_bits + cfg.dequant_shift))
    return max(1, min(int(math.floor(v + 0.5)), (1 << 24) - 1))


def dot_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Integer Q.K: q [D], k [n, D] -> [n] (exact, int64)."""
    return np.asarray(k, dtype=np.int64) @ np.asarray(q, dtype=np.int64)


def lut_index(scores: np.ndarray, dq: int, cfg) -> np.ndarray:
    s = np.asarray(scores, dtype=np.int64)
    d = (int(s.max()) - s).astype(object) if s.size else s
    idx = [(int(x) * dq + (1 << (cfg.dequant_shift - 1))) >> cfg.dequant_shift for x in d]
    top = (1 << cfg.exp_lut_bits) - 1
    return np.array([min(i, top) for i in idx], dtype=np.int64)


def reciprocal(total: int, cfg) -> int:
    return (1 << cfg.recip_bits) // int(total)


def softmax_fixed(scores: np.ndarray, dq: int, cfg) -> np.ndarray:
    """Fixed-point softmax of one row of integer scores -> unsigned Q0.prob_bits probabilities."""
    lut = exp_lut(cfg.exp_lut_bits, cfg.exp_lut_frac_bits)
    e = lut[lut_index(scores, dq, cfg)]
    r = reciprocal(int(e.sum()), cfg)
    sh = cfg.recip_bits - cfg.prob_bits
    pmax = (1 << cfg.prob_bits) - 1
    return np.array([min((int(x) * r) >> sh, pmax) for x in e], dtype=np.int64)


def need_requant(probs: np.ndarray, cfg) -> bool:
    """RequantDecision: the row is 'flat' (low confidence) when max prob < threshold."""
    return int(np.max(probs)) < cfg.threshold_q


def pv_product(probs: np.ndarray, v: np.ndarray, sel: np.ndarray | None = None) -> np.ndarray:
    """Integer P.V over the selected rows: sum_j p_j * v_j -> [D] int64 (Q0.prob_bits * V scale)."""
    p = np.asarray(probs, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    if sel is not None:
        p, v = p[sel], v[sel]
    return p @ v


def softmax_float(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    e = np.exp(s - s.max())
    return e / e.sum()

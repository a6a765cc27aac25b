"""INT8 tensor-core GEMM and SpAtten progressive-quantization Q.K^T."""
from __future__ import annotations

import functools

import numpy as np

from sw_reference import int8_gemm as ref_i8
from sw_reference import pq_gemm as ref_pq

from . import _runtime as rt

# variant -> (BN, BK, STAGES); block tile 128 x BN; shared memory = STAGES * (128 + BN) * BK bytes
I8_VARIANTS = {0: (128, 64, 4), 1: (128, 128, 3), 2: (128, 64, 6), 3: (256, 64, 4), 4: (256, 128, 3)}
I8_DEFAULT = 4  # fastest on the H100 (bench/results)


def _is_i8(x):
    return str(x.dtype).split(".")[-1] == "int8"


def int8_gemm(a, b, variant: int | None = None):
    """C (M, N) int32 = A (M, K) int8 @ B (N, K)^T int8, exact int32 accumulation."""
    variant = I8_DEFAULT if variant is None else variant
    if variant not in I8_VARIANTS:
        raise ValueError(f"variant: must be one of {sorted(I8_VARIANTS)}, got {variant!r}")
    if len(tuple(a.shape)) != 2 or not _is_i8(a):
        raise ValueError(f"a: expected int8 (M, K), got {a.dtype} {tuple(a.shape)}")
    if len(tuple(b.shape)) != 2 or not _is_i8(b) or b.shape[1] != a.shape[1]:
        raise ValueError(f"b: expected int8 (N, K) with K={a.shape[1]}, got {b.dtype} {tuple(b.shape)}")
    if a.shape[1] > 1 << 17:
        raise ValueError("a: K > 131072 may overflow int32")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref_i8.int8_gemm(a, b)
    import torch

    ad, bd = rt.to_dev(a), rt.to_dev(b)
    m, kk = ad.shape
    n = bd.shape[0]
    if kk % 16:
        pad = 16 - kk % 16
        ad = torch.nn.functional.pad(ad, (0, pad))
        bd = torch.nn.functional.pad(bd, (0, pad))
        kk += pad
    c = torch.empty((m, n), dtype=torch.int32, device=ad.device)
    bn, bk, st = I8_VARIANTS[variant]
    tiles = ((m + 127) // 128) * ((n + bn - 1) // bn)
    rt.launch("int8_gemm.cu", f"int8_gemm_tn_v{variant}", tiles, 256,
              (rt.ptr(ad), rt.ptr(bd), rt.ptr(c), rt.i32(m), rt.i32(n), rt.i32(kk)), st * (128 + bn) * bk)
    return rt.like_input(c, a)


@functools.lru_cache(maxsize=None)
def _lut_dev():
    return rt.to_dev(ref_pq.exp_lut())


def _pq_check(q, n_shape_k, lsb_bits, threshold, alpha):
    qs = tuple(q.shape)
    if len(qs) != 3 or not _is_i8(q):
        raise ValueError(f"q: expected int8 (B, M, D), got {q.dtype} {qs}")
    if len(n_shape_k) != 3 or n_shape_k[0] != qs[0] or n_shape_k[2] != qs[2]:
        raise ValueError(f"k: expected (B, N, D) matching q {qs}, got {n_shape_k}")
    if rt.gpu_available() and qs[2] not in (16, 32, 64, 128, 256):
        raise ValueError(f"q: head dim D={qs[2]} not supported on the GPU path (16..256, power of 2)")
    return ref_pq.lut_mult(alpha), ref_pq.threshold_q(threshold)


def pq_gemm(q, k, msb_bits: int = 6, lsb_bits: int = 4, threshold: float = 0.05, alpha: float = 1.0):
    """SpAtten progressive quantization (policy in sw_reference/pq_gemm.py). Returns
    (scores int32 (B, M, N), requant bool (B, M)), bit-exact with the reference."""
    _pq_check(q, tuple(k.shape), lsb_bits, threshold, alpha)
    if not rt.gpu_available():
        rt.note_fallback()
        return ref_pq.pq_gemm(np.asarray(q), np.asarray(k), msb_bits, lsb_bits, threshold, alpha)
    ref_pq._check_bits(msb_bits, lsb_bits, q.shape[2])
    import torch

    kd = rt.to_dev(k)
    if kd.dtype not in (torch.int16, torch.int32, torch.int64, torch.int8):
        raise ValueError(f"k: dtype must be a signed integer, got {k.dtype}")
    lim = 1 << (msb_bits + lsb_bits - 1)
    if kd.numel() and (int(kd.min()) < -lim or int(kd.max()) >= lim):
        raise ValueError(f"k: values must fit in {msb_bits + lsb_bits} signed bits")
    kd = kd.to(torch.int32)
    k_msb = (kd >> lsb_bits)
    k_lsb = (kd - (k_msb << lsb_bits)).to(torch.int8)
    return pq_gemm_split(q, k_msb.to(torch.int8), k_lsb, lsb_bits, threshold, alpha, _like=q)


def pq_gemm_split(q, k_msb, k_lsb, lsb_bits: int, threshold: float, alpha: float, _like=None):
    """pq_gemm on pre-split keys (k_msb, k_lsb int8 (B, N, D)), as SpAtten stores them."""
    mult, thr = _pq_check(q, tuple(k_msb.shape), lsb_bits, threshold, alpha)
    if tuple(k_lsb.shape) != tuple(k_msb.shape):
        raise ValueError(f"k_lsb: shape {tuple(k_lsb.shape)} must equal k_msb {tuple(k_msb.shape)}")
    if not isinstance(lsb_bits, int) or not 1 <= lsb_bits <= 7:
        raise ValueError(f"lsb_bits: must be an int in [1, 7], got {lsb_bits!r}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref_pq.pq_gemm_split(q, k_msb, k_lsb, lsb_bits, threshold, alpha)
    import torch

    qd, km, kl = rt.to_dev(q), rt.to_dev(k_msb), rt.to_dev(k_lsb)
    b, m, d = qd.shape
    n = km.shape[1]
    out = torch.empty((b, m, n), dtype=torch.int32, device=qd.device)
    req = torch.empty((b, m), dtype=torch.uint8, device=qd.device)
    rt.launch("pq_gemm.cu", f"pq_gemm_d{d}", b * m, 256,
              (rt.ptr(qd), rt.ptr(km), rt.ptr(kl), rt.ptr(_lut_dev()), rt.ptr(out), rt.ptr(req),
               rt.i32(m), rt.i32(n), rt.i32(lsb_bits), rt.i64(mult), rt.i64(thr)))
    like = q if _like is None else _like
    return rt.like_input(out, like), rt.like_input(req.bool(), like)

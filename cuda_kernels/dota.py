"""DOTA's quantized crossbar GEMM on the GPU (``dota_crossbar.cu``), bit-exact with ``sw_reference.dota_fx``
(the RTL's golden model); without a GPU every call runs that reference (the package's fallback rule).

    crossbar_gemm(m1, m2, *, n_lambda, cores, tau, adc_bits, adc_shift, adc_share=True, m1_unsigned=False)
        -> Y [n1 x n2] int   (M1 [n1 x d] and M2 [d x n2] DAC codes, at most 8 bits)
    attention_head(Q, K, V, *, n_lambda, cores, tau, in_bits, adc_bits, adc_shift_qk, adc_shift_pv, mult,
                   adc_share=True) -> {S, P, Pc, O}    (the GEMMs on the GPU, softmax_fx on the host)
    linear(W, X, **same) -> Y

``bench/dota_gpu.py`` is the cross-check (GPU against sw_reference on model-sized shapes, and its time).
"""
from __future__ import annotations

import numpy as np

from sw_reference import dota_fx as fx
from sw_reference.softmax_fx import softmax_fx

from . import _runtime as rt

MAX_CORES = 16


def _check(m1, m2, cores: int, m1_unsigned: bool):
    m1, m2 = np.asarray(m1), np.asarray(m2)
    if m1.ndim != 2 or m2.ndim != 2 or m1.shape[1] != m2.shape[0]:
        raise ValueError(f"m1, m2: need [n1 x d] and [d x n2], got {m1.shape} and {m2.shape}")
    lo = 0 if m1_unsigned else -128
    hi = 255 if m1_unsigned else 127
    if m1.size and (m1.min() < lo or m1.max() > hi) or m2.size and (m2.min() < -128 or m2.max() > 127):
        raise ValueError("m1, m2: DAC codes must fit 8 bits")
    if not 1 <= cores <= MAX_CORES:
        raise ValueError(f"cores: must be in 1..{MAX_CORES}, got {cores}")
    return m1, m2


def crossbar_gemm(m1, m2, *, n_lambda: int, cores: int, tau: int, adc_bits: int, adc_shift: int,
                  adc_share: bool = True, m1_unsigned: bool = False) -> np.ndarray:
    m1, m2 = _check(m1, m2, cores, m1_unsigned)
    if not rt.gpu_available():
        rt.note_fallback()
        return fx.crossbar_gemm_fx(m1, m2, n_lambda=n_lambda, cores=cores, tau=tau, adc_bits=adc_bits,
                                   adc_shift=adc_shift, adc_share=adc_share)
    import torch
    a = rt.to_dev(m1.astype(np.uint8 if m1_unsigned else np.int8).view(np.int8))
    b = rt.to_dev(np.ascontiguousarray(m2.T).astype(np.int8))
    n1, d = m1.shape
    n2 = m2.shape[1]
    y = torch.empty((n1, n2), dtype=torch.int32, device=a.device)
    rt.launch("dota_crossbar.cu", "dota_crossbar_gemm", ((n2 + 127) // 128, n1), 128,
              (rt.ptr(a), rt.ptr(b), rt.ptr(y), rt.i32(n1), rt.i32(n2), rt.i32(d), rt.i32(n_lambda), rt.i32(cores),
               rt.i32(tau), rt.i32(adc_bits), rt.i32(adc_shift), rt.i32(int(adc_share)), rt.i32(int(m1_unsigned))))
    return y.cpu().numpy().astype(np.int64)


def attention_head(Q, K, V, *, n_lambda: int, cores: int, tau: int, in_bits: int, adc_bits: int, adc_shift_qk: int,
                   adc_shift_pv: int, mult: int, adc_share: bool = True) -> dict:
    geo = dict(n_lambda=n_lambda, cores=cores, tau=tau, adc_bits=adc_bits, adc_share=adc_share)
    S = crossbar_gemm(Q, np.asarray(K).T, adc_shift=adc_shift_qk, **geo)
    P = softmax_fx(S, mult, pb=fx.PB)
    Pc = fx.requant_unsigned(P, fx.PB, in_bits)
    O = crossbar_gemm(Pc, V, adc_shift=adc_shift_pv, m1_unsigned=True, **geo)
    return {"S": S, "P": P, "Pc": Pc, "O": O}


def linear(W, X, *, n_lambda: int, cores: int, tau: int, adc_bits: int, adc_shift: int,
           adc_share: bool = True) -> np.ndarray:
    return crossbar_gemm(W, X, n_lambda=n_lambda, cores=cores, tau=tau, adc_bits=adc_bits, adc_shift=adc_shift,
                         adc_share=adc_share)

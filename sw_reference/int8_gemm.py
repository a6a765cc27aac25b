"""INT8 GEMM reference: C[m, n] = sum_k A[m, k] * B[n, k], int32 accumulation (exact).

Both operands are K-major ("TN"): A (M, K) int8, B (N, K) int8, C (M, N) int32.
This equals ``torch._int_mm(A, B.T)``.  Overflow cannot happen for K <= 2**17.
"""
from __future__ import annotations

import numpy as np

__all__ = ["int8_gemm"]


def int8_gemm(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != np.int8 or a.ndim != 2:
        raise ValueError(f"a: expected int8 (M, K), got {a.dtype} {a.shape}")
    if b.dtype != np.int8 or b.ndim != 2 or b.shape[1] != a.shape[1]:
        raise ValueError(f"b: expected int8 (N, K) with K={a.shape[1]}, got {b.dtype} {b.shape}")
    if a.shape[1] > 1 << 17:
        raise ValueError("a: K > 131072 may overflow int32")
    # |sum| < 2**14 * K <= 2**31: exact in float64 (53-bit mantissa), so BLAS can be used
    return (a.astype(np.float64) @ b.astype(np.float64).T).astype(np.int32)

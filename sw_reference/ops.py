"""Numpy golden models of the affine workloads (bit-accurate integer semantics).

Integer inputs; products and sums are exact, then the result wraps to the output's accumulator width
(two's complement, ``acc_bits``: 32 for ≤ 12-bit inputs, 48 for 16-bit) exactly as the RTL's
fixed-width adders do.  Zero padding for conv accesses outside the input.
"""
from __future__ import annotations

import numpy as np


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if bits >= 64:
        return x
    m = np.int64(1) << np.int64(bits)
    h = np.int64(1) << np.int64(bits - 1)
    return ((x + h) % m) - h


def _matmul(X, W) -> np.ndarray:
    """Exact integer ``X @ W`` (batched over leading axes). Where every partial sum is below 2**53 in
    magnitude (max|X|·max|W|·K), float64 holds each one exactly whatever the summation order, so the BLAS
    product is the integer product; otherwise numpy's int64 product (no BLAS)."""
    X, W = np.asarray(X, np.int64), np.asarray(W, np.int64)
    if X.size and W.size and int(np.abs(X).max()) * int(np.abs(W).max()) * X.shape[-1] < 1 << 53:
        return (X.astype(np.float64) @ W.astype(np.float64)).astype(np.int64)
    return X @ W


def gemm(X, W, acc_bits: int = 32):
    return wrap(_matmul(X, W), acc_bits)


def bmm(X, W, acc_bits: int = 32):
    return wrap(_matmul(X, W), acc_bits)


def _pair(v) -> tuple[int, int]:
    return (v, v) if np.isscalar(v) else tuple(v)


def _conv(X, W, stride: int, pad: int, acc_bits: int, out_channels, tap, dilation=1):
    """Shared loop of conv2d and dwconv2d: X zero-padded, Y[N, out_channels, P, Q] = sum over the R x S
    kernel taps of ``tap(patch, W, r, s)``, wrapped to acc_bits. ``dilation`` (an int or (dh, dw)): tap
    (r, s) reads the padded input at ``(p·stride + r·dh, q·stride + s·dw)``; the window spans
    ``(R - 1)·dh + 1`` x ``(S - 1)·dw + 1`` pixels."""
    dh, dw = _pair(dilation)
    X = np.pad(np.asarray(X, np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    W = np.asarray(W, np.int64)
    N, C, H, Wd = X.shape
    R, S = W.shape[-2:]
    P = (H - (R - 1) * dh - 1) // stride + 1
    Q = (Wd - (S - 1) * dw - 1) // stride + 1
    Y = np.zeros((N, out_channels(W, C), P, Q), np.int64)
    for r in range(R):
        for s in range(S):
            i, j = r * dh, s * dw
            patch = X[:, :, i:i + stride * (P - 1) + 1:stride, j:j + stride * (Q - 1) + 1:stride]
            Y += tap(patch, W, r, s)
    return wrap(Y, acc_bits)


def conv2d(X, W, stride: int = 1, pad: int = 0, acc_bits: int = 32, dilation=1):
    """X[N,C,H,W] * W[K,C,R,S] -> Y[N,K,P,Q] (cross-correlation, zero padding; ``dilation`` int or (dh, dw))."""
    return _conv(X, W, stride, pad, acc_bits, lambda W, C: W.shape[0],
                 lambda patch, W, r, s: np.einsum("nchw,kc->nkhw", patch, W[:, :, r, s]), dilation)


def dwconv2d(X, W, stride: int = 1, pad: int = 0, acc_bits: int = 32, dilation=1):
    """X[N,C,H,W] * W[C,R,S] -> Y[N,C,P,Q] (depthwise; ``dilation`` int or (dh, dw))."""
    return _conv(X, W, stride, pad, acc_bits, lambda W, C: C,
                 lambda patch, W, r, s: patch * W[None, :, r, s, None, None], dilation)


def affine_mac(workload, inputs: dict, acc_bits: int | None = None):
    """Generic reference for any lego ``mac`` workload: Y[A_Y i] += X[A_X i]·W[A_W i] over the box.

    Independent of the generator's dataflow machinery: it enumerates the iteration box directly.
    """
    w = workload
    acc_bits = acc_bits or w.output.bits
    I = np.indices(w.extents).reshape(len(w.extents), -1).T.astype(np.int64)
    prod = np.ones(len(I), np.int64)
    for t in w.inputs:
        A, a = w.access(t.name)
        d = I @ A.T + a
        x = np.asarray(inputs[t.name], np.int64)
        ok = np.all((d >= 0) & (d < np.array(t.shape)), axis=1)
        v = np.zeros(len(I), np.int64)
        v[ok] = x[tuple(d[ok].T)]
        prod *= v
    Y = w.output
    A, a = w.access(Y.name)
    d = I @ A.T + a
    out = np.zeros(Y.shape, np.int64)
    np.add.at(out, tuple(d.T), prod)
    return wrap(out, acc_bits)


def reference(workload, inputs: dict) -> np.ndarray:
    """Dispatch to the named golden model for built-ins, else the generic affine model."""
    p = dict(workload.params)
    acc = workload.output.bits
    X, W = (inputs[t.name] for t in workload.inputs)
    if workload.name == "gemm":
        return gemm(X, W, acc)
    if workload.name == "bmm":
        return bmm(X, W, acc)
    if workload.name == "conv2d":
        return conv2d(X, W, p.get("STRIDE", 1), p.get("PAD", 0), acc)
    if workload.name == "dwconv2d":
        return dwconv2d(X, W, p.get("STRIDE", 1), p.get("PAD", 0), acc)
    return affine_mac(workload, inputs, acc)


def random_inputs(workload, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for t in workload.inputs:
        lo, hi = (-(1 << (t.bits - 1)), 1 << (t.bits - 1)) if t.signed else (0, 1 << t.bits)
        out[t.name] = rng.integers(lo, hi, size=t.shape).astype(t.np_dtype)
    return out

"""Integer linear layers: int8 weights, int8/int32 activations, exact int64 accumulation, requantization.

One layer computes, per row x (C_in,) of integer activations:

    acc = x @ W + b                       W int8 (C_in, C_out), b int32 (C_out,), acc exact int64
    acc = max(acc, 0)                     if relu (ReLU acts on the accumulator)
    y   = requantize(acc, shift, bits)    round half up, then saturate to signed ``bits``

``requantize``: ``y = floor((acc + 2**(shift-1)) / 2**shift)`` for shift >= 1 (round half toward
+inf, i.e. an arithmetic right shift after adding half an LSB), ``y = acc`` for shift = 0, then
``y = clip(y, -2**(bits-1), 2**(bits-1) - 1)``. It is evaluated as
``(acc >> shift) + ((acc >> (shift-1)) & 1)`` (the shifted value plus the first dropped bit), which
is the same number and cannot overflow int64.

Accumulation is exact in int64 (int8 x int32 products summed over C_in < 2**24 terms stay below
2**62). With int8 activations a 32-bit accumulator would also be exact while
``C_in * 128 * 128 + |b| < 2**31``.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import numpy.typing as npt

from ._checks import check_int

__all__ = ["Layer", "requantize", "linear", "mlp"]

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


class Layer(NamedTuple):
    """One requantized linear layer: int8 ``weight`` (C_in, C_out), int32 ``bias`` (C_out,) or None,
    right ``shift`` of the requantization, and whether a ReLU precedes it."""

    weight: npt.NDArray[np.int8]
    bias: npt.NDArray[np.int32] | None
    shift: int
    relu: bool = True


def _out_dtype(bits: int) -> type[np.signedinteger]:
    return np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32


def requantize(acc: npt.ArrayLike, shift: int, bits: int = 8) -> npt.NDArray[np.signedinteger]:
    """Round-half-up right shift by ``shift`` then saturate to signed ``bits`` (2..32).

    Returns int8 for bits <= 8, int16 for bits <= 16, else int32.
    """
    a = np.asarray(acc)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"acc: expected an integer array, got {a.dtype}")
    s = check_int(shift, "shift", lo=0, hi=62)
    b = check_int(bits, "bits", lo=2, hi=32)
    a = a.astype(np.int64)
    y = a if s == 0 else (a >> s) + ((a >> (s - 1)) & 1)
    lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
    return np.clip(y, lo, hi).astype(_out_dtype(b))


def _int_matmul(x: npt.NDArray[np.int64], w: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Exact x @ w for integer x (P, C) and w (C, Q).

    When every partial sum is below 2**53 in magnitude, float64 (BLAS) is exact for any summation
    order and is used; otherwise int64 (numpy's integer matmul), below 2**62 so a bias still fits.
    """
    bound = x.shape[1] * int(np.abs(x).max(initial=0)) * int(np.abs(w).max(initial=0))
    if bound >= (1 << 62):
        raise ValueError(f"x: the int64 accumulator could overflow (C_in = {x.shape[1]}, bound {bound})")
    if bound < (1 << 53):
        return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return x @ w


def linear(x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None,
           name: str = "weight") -> npt.NDArray[np.int64]:
    """Exact ``x @ weight + bias`` as int64 for integer x (..., C_in) within int32, int8 weight (C_in, C_out),
    int32 bias (C_out,)."""
    xa = np.asarray(x)
    if xa.dtype == np.bool_ or not np.issubdtype(xa.dtype, np.integer) or xa.ndim < 1:
        raise ValueError(f"x: expected an integer array (..., C_in), got {xa.dtype} {xa.shape}")
    if xa.size and (int(xa.min()) < _INT32_MIN or int(xa.max()) > _INT32_MAX):
        raise ValueError("x: activations must fit int32")
    w = np.asarray(weight)
    if w.dtype != np.int8 or w.ndim != 2:
        raise ValueError(f"{name}: expected int8 (C_in, C_out), got {w.dtype} {w.shape}")
    if w.shape[0] != xa.shape[-1]:
        raise ValueError(f"{name}: C_in = {w.shape[0]} but the input has {xa.shape[-1]} channels")
    acc = _int_matmul(xa.reshape(-1, xa.shape[-1]).astype(np.int64), w.astype(np.int64))
    if bias is not None:
        bname = name.rsplit(".", 1)[0] + ".bias" if "." in name else "bias"
        b = np.asarray(bias)
        if b.dtype != np.int32 or b.shape != (w.shape[1],):
            raise ValueError(f"{bname}: expected int32 ({w.shape[1]},), got {b.dtype} {b.shape}")
        acc += b.astype(np.int64)
    return acc.reshape(*xa.shape[:-1], w.shape[1])


def mlp(x: npt.ArrayLike, layers: Sequence[Layer], bits: int = 8) -> npt.NDArray[np.signedinteger]:
    """Shared MLP over the last axis: each layer is ``linear``, optional ReLU, ``requantize(shift, bits)``.

    The input may be int8 or int32 (e.g. relative coordinates); every layer's output is signed
    ``bits`` (int8 by default), which feeds the next layer.
    """
    if len(layers) == 0:
        raise ValueError("layers: need at least one layer")
    y: npt.NDArray[np.signedinteger] = np.asarray(x)
    for i, layer in enumerate(layers):
        acc = linear(y, layer.weight, layer.bias, name=f"layers[{i}].weight")
        if layer.relu:
            np.maximum(acc, 0, out=acc)
        y = requantize(acc, check_int(layer.shift, f"layers[{i}].shift", lo=0, hi=62), bits)
    return y

"""Top-k reference (numpy) with an exactly defined order.

Order: elements are compared by a 32-bit *sortable key*.  For float32 the key
is IEEE-754 total order restricted to non-NaN values (so -0.0 < +0.0); for
int32 it is the signed integer order.  Ties in the key are broken by the
lower index.  ``topk(x, k)`` returns the k largest elements of each row
(``largest=False``: the k smallest, ties again to the lower index).

``sorted=True``: output in selection order (best first).
``sorted=False``: the same set of elements, in ascending index order.

NaN inputs are rejected (ValueError): they have no place in the order.
This is the contract the GPU radix-select kernel in ``cuda_kernels`` meets
bit for bit.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sortable_key", "topk"]


def sortable_key(x: np.ndarray) -> np.ndarray:
    """Map float32/int32 values to uint32 keys whose unsigned order is the value order."""
    x = np.ascontiguousarray(x)
    if x.dtype == np.float32:
        if np.isnan(x).any():
            raise ValueError("x: NaN values have no top-k order")
        u = x.view(np.uint32)
        neg = (u >> np.uint32(31)).astype(bool)
        return np.where(neg, ~u, u | np.uint32(0x80000000)).astype(np.uint32)
    if x.dtype == np.int32:
        return (x.view(np.uint32) ^ np.uint32(0x80000000)).astype(np.uint32)
    raise ValueError(f"x: dtype must be float32 or int32, got {x.dtype}")


def topk(x, k: int, largest: bool = True, sorted: bool = True):
    """Row-wise top-k over the last axis. Returns (values, int64 indices)."""
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError("x: must have at least one dimension")
    n = x.shape[-1]
    if not isinstance(k, (int, np.integer)) or k < 1 or k > n:
        raise ValueError(f"k: must be an int in [1, {n}], got {k!r}")
    key = sortable_key(x).astype(np.int64)
    if not largest:
        key = 0xFFFFFFFF - key
    flat = key.reshape(-1, n)
    # larger key first; the stable sort keeps lower index first among ties
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    if not sorted:
        order = np.sort(order, axis=1)
    vals = np.take_along_axis(x.reshape(-1, n), order, axis=1)
    return vals.reshape(x.shape[:-1] + (k,)), order.reshape(x.shape[:-1] + (k,))

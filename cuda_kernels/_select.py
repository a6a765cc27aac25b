"""Top-k by radix select (cuda_kernels/topk.cu); order contract of sw_reference.topk."""
from __future__ import annotations

import numpy as np

from sw_reference import topk as ref

from . import _runtime as rt

MOD = "topk.cu"


SORT_MAX = 8192  # larger sorted outputs: select in index order, then a stable torch.sort of 32-bit keys


def _multi_block(xd, rows, n, k, is_float, largest, sorted, vals, idx):
    """Few long rows: several blocks per row (one launch per radix pass)."""
    import torch

    segs = max(1, min(-(-n // 2048), -(-2 * 132 // rows)))
    seg = -(-n // segs)
    seg = -(-seg // 4) * 4
    segs = -(-n // seg)
    hist = torch.zeros((rows, 4, 256), dtype=torch.int32, device=xd.device)
    common = (rt.ptr(xd), rt.i32(n), rt.i32(k), rt.i32(is_float), rt.i32(int(largest)), rt.i32(seg))
    for p in range(4):
        rt.launch(MOD, "topk_mb_hist", (segs, rows), 512, common + (rt.i32(p), rt.ptr(hist)))
    counts = torch.empty((rows, segs, 2), dtype=torch.int32, device=xd.device)
    rt.launch(MOD, "topk_mb_count", (segs, rows), 512, common + (rt.ptr(hist), rt.ptr(counts)))
    mode = 0 if not sorted else (2 if k <= SORT_MAX else 3)
    comp = None
    if mode:
        comp = torch.empty((rows, k), dtype=torch.int64 if mode == 2 else torch.int32, device=xd.device)
    rt.launch(MOD, "topk_mb_write", (segs, rows), 512,
              common + (rt.ptr(hist), rt.ptr(counts), rt.i32(mode), rt.ptr(vals), rt.ptr(idx), rt.ptr(comp)))
    return comp, mode


def topk(x, k: int, largest: bool = True, sorted: bool = True, method: str = "auto"):
    """Row-wise top-k over the last axis of float32/int32 data -> (values, int64 indices).
    Ties: larger first, then lower index. sorted=False returns the set in ascending index order.
    GPU path: NaN inputs give unspecified results (the reference raises ValueError)."""
    shape = tuple(x.shape)
    if len(shape) < 1 or shape[-1] < 1:
        raise ValueError(f"x: needs a non-empty last axis, got shape {shape}")
    n = shape[-1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k: must be an int in [1, {n}], got {k!r}")
    dts = str(x.dtype).split(".")[-1]
    if dts not in ("float32", "int32"):
        raise ValueError(f"x: dtype must be float32 or int32, got {x.dtype}")
    if not isinstance(largest, bool) or not isinstance(sorted, bool):
        raise ValueError("largest: largest and sorted must be bools")
    if method not in ("auto", "block", "multi"):
        raise ValueError(f"method: must be 'auto', 'block' or 'multi', got {method!r}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.topk(np.asarray(x), int(k), largest, sorted)
    import torch

    xd = rt.to_dev(x)
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    k = int(k)
    is_float = int(dts == "float32")
    vals = torch.empty((rows, k), dtype=xd.dtype, device=xd.device)
    idx = torch.empty((rows, k), dtype=torch.int64, device=xd.device)
    if method == "auto":
        method = "multi" if (n >= 16384 and rows <= 64) else "block"
    if method == "multi":
        comp, mode = _multi_block(xd, rows, n, k, is_float, largest, sorted, vals, idx)
    else:
        nt = 128 if n <= 2048 else 1024
        avail = 232448 - (5 if nt == 128 else 33) * 1024  # 227 KB opt-in minus static histograms
        sort_cap = 1 << (k - 1).bit_length() if (sorted and k <= SORT_MAX) else 0
        mode = 0 if not sorted else (1 if sort_cap else 3)
        cache = int(n > 2048 and sort_cap * 8 + n * 4 <= avail)
        smem = sort_cap * 8 + cache * n * 4
        comp = torch.empty((rows, k), dtype=torch.int32, device=xd.device) if mode == 3 else None
        rt.launch(MOD, f"topk_radix_{nt}", rows, nt,
                  (rt.ptr(xd), rt.i32(n), rt.i32(k), rt.i32(is_float), rt.i32(int(largest)), rt.i32(mode),
                   rt.i32(sort_cap), rt.i32(cache), rt.ptr(vals), rt.ptr(idx), rt.ptr(comp)), smem)
    if mode == 2 and k <= SORT_MAX:
        pw = 1 << (k - 1).bit_length()
        rt.launch(MOD, "topk_sort_rows", rows, 1024,
                  (rt.ptr(comp), rt.i32(k), rt.i32(pw), rt.i32(is_float), rt.i32(int(largest)),
                   rt.ptr(vals), rt.ptr(idx)), pw * 8)
    elif mode == 3:  # k > SORT_MAX: stable 32-bit key sort keeps ties in index order
        perm = torch.sort(comp, dim=1, descending=True, stable=True).indices
        vals = vals.gather(1, perm)
        idx = idx.gather(1, perm)
    vals = vals.reshape(shape[:-1] + (k,))
    idx = idx.reshape(shape[:-1] + (k,))
    return rt.like_input(vals, x), rt.like_input(idx, x)

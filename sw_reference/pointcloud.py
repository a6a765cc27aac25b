"""Point-cloud mapping references (PointAcc's mapping unit), exact in float32.

Distances are float32 with a fixed evaluation order and no fused multiply-add:
    dx = a.x - b.x (likewise y, z);  d = (dx*dx + dy*dy) + dz*dz
so the GPU kernels (which use __fmul_rn/__fadd_rn) match bit for bit.

fps(xyz, m)                   sel[0] = 0; d = +inf; repeat: d = min(d, dist to last), sel = argmax d
                              (ties: lowest index).                         -> (B, m) int64
knn(ref, query, k)            k smallest (d, index) pairs, lexicographic, ascending
                                                                            -> dist (B, M, k) f32, idx int64
ball_query(xyz, centers, r, k) first k points (index order) with d < r*r (float32), padded with
                              the first one found; -1 where none is found.  -> (B, M, k) int64
kernel_map(coords, ...)       sparse-conv kernel map, coords (N, 4) int32 = (batch, x, y, z), unique.
                              For offset o = ((dx+h)*K + (dy+h))*K + (dz+h), h = K//2, and output o_i:
                              kmap[o, i] = j with c_in[j] = c_out[i] + (0, dx, dy, dz)*tensor_stride,
                              else -1.                                      -> (K**3, N_out) int32
"""
from __future__ import annotations

import numpy as np

__all__ = ["sqdist", "fps", "knn", "ball_query", "kernel_offsets", "kernel_map", "kernel_map_pairs"]

COORD_MIN, COORD_MAX = -(1 << 15), (1 << 15) - 1


def _pts(x, name):
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"{name}: expected float32 (B, N, 3), got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: must be finite")
    return np.ascontiguousarray(x)


def sqdist(a, b):
    """float32 squared distances between a (..., P, 3) and b (..., Q, 3) -> (..., P, Q)."""
    d = a[..., :, None, :] - b[..., None, :, :]
    sq = d * d
    return (sq[..., 0] + sq[..., 1]) + sq[..., 2]


def fps(xyz, m: int):
    xyz = _pts(xyz, "xyz")
    b, n, _ = xyz.shape
    if not isinstance(m, (int, np.integer)) or not 1 <= m <= n:
        raise ValueError(f"m: must be an int in [1, {n}], got {m!r}")
    sel = np.zeros((b, m), dtype=np.int64)
    d = np.full((b, n), np.inf, dtype=np.float32)
    rows = np.arange(b)
    for t in range(1, m):
        last = xyz[rows, sel[:, t - 1]][:, None, :]
        dd = xyz - last
        sq = dd * dd
        nd = (sq[..., 0] + sq[..., 1]) + sq[..., 2]
        d = np.minimum(d, nd)
        sel[:, t] = np.argmax(d, axis=1)  # first maximal index
    return sel


def knn(ref, query, k: int):
    ref = _pts(ref, "ref")
    query = _pts(query, "query")
    if query.shape[0] != ref.shape[0]:
        raise ValueError(f"query: batch {query.shape[0]} != ref batch {ref.shape[0]}")
    n = ref.shape[1]
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n, 64):
        raise ValueError(f"k: must be an int in [1, {min(n, 64)}], got {k!r}")
    d = sqdist(query, ref)  # (B, M, N)
    order = np.argsort(d, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(d, order, axis=-1), order.astype(np.int64)


def ball_query(xyz, centers, radius: float, k: int):
    xyz = _pts(xyz, "xyz")
    centers = _pts(centers, "centers")
    if centers.shape[0] != xyz.shape[0]:
        raise ValueError(f"centers: batch {centers.shape[0]} != xyz batch {xyz.shape[0]}")
    if not (isinstance(radius, (int, float)) and radius > 0 and np.isfinite(radius)):
        raise ValueError(f"radius: must be a positive finite number, got {radius!r}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= 1024:
        raise ValueError(f"k: must be an int in [1, 1024], got {k!r}")
    r = np.float32(radius)
    r2 = np.float32(r * r)
    inside = sqdist(centers, xyz) < r2  # (B, M, N)
    b, m, n = inside.shape
    out = np.full((b, m, k), -1, dtype=np.int64)
    for bi in range(b):
        for mi in range(m):
            hit = np.flatnonzero(inside[bi, mi])[:k]
            if hit.size:
                out[bi, mi, :] = hit[0]
                out[bi, mi, : hit.size] = hit
    return out


def kernel_offsets(kernel_size: int = 3) -> np.ndarray:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0 or kernel_size > 7:
        raise ValueError(f"kernel_size: must be an odd int in [1, 7], got {kernel_size!r}")
    h = kernel_size // 2
    r = np.arange(-h, h + 1)
    g = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    return g.astype(np.int32)


def _coords(c, name):
    c = np.asarray(c)
    if c.dtype != np.int32 or c.ndim != 2 or c.shape[1] != 4:
        raise ValueError(f"{name}: expected int32 (N, 4) = (batch, x, y, z), got {c.dtype} {c.shape}")
    if c.size and (c[:, 0].min() < 0 or c[:, 0].max() > COORD_MAX
                   or c[:, 1:].min() < COORD_MIN or c[:, 1:].max() > COORD_MAX):
        raise ValueError(f"{name}: batch must be in [0, 32767], x/y/z in [-32768, 32767]")
    return c


def pack_coords(c) -> np.ndarray:
    """(N, 4) int32 -> int64 keys whose order is (batch, x, y, z) lexicographic."""
    c = c.astype(np.int64)
    return (c[:, 0] << 48) | ((c[:, 1] + 32768) << 32) | ((c[:, 2] + 32768) << 16) | (c[:, 3] + 32768)


def kernel_map(coords, out_coords=None, kernel_size: int = 3, tensor_stride: int = 1):
    cin = _coords(coords, "coords")
    cout = cin if out_coords is None else _coords(out_coords, "out_coords")
    if not isinstance(tensor_stride, int) or tensor_stride < 1:
        raise ValueError(f"tensor_stride: must be a positive int, got {tensor_stride!r}")
    offs = kernel_offsets(kernel_size)
    keys = pack_coords(cin)
    if np.unique(keys).size != keys.size:
        raise ValueError("coords: input coordinates must be unique")
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    kmap = np.full((offs.shape[0], cout.shape[0]), -1, dtype=np.int32)
    for o, delta in enumerate(offs):
        q = cout.astype(np.int64).copy()
        q[:, 1:] += delta.astype(np.int64) * tensor_stride
        ok = (q[:, 1:] >= COORD_MIN).all(1) & (q[:, 1:] <= COORD_MAX).all(1)
        qk = pack_coords(np.where(ok[:, None], q, 0))
        pos = np.minimum(np.searchsorted(sk, qk), sk.size - 1)
        hit = ok & (sk[pos] == qk)
        kmap[o, hit] = order[pos[hit]]
    return kmap


def kernel_map_pairs(kmap):
    """Per offset, the (in_idx, out_idx) pairs of a dense kernel map, ordered by out_idx."""
    kmap = np.asarray(kmap)
    res = []
    for row in kmap:
        out = np.flatnonzero(row >= 0)
        res.append((row[out].astype(np.int64), out.astype(np.int64)))
    return res

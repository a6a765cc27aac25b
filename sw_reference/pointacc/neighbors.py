"""Neighbour mapping ops on integer points: FPS, kNN, ball query (exact int64 arithmetic).

Points are integer (N, D) arrays (D = 3 for coordinates; kNN also runs in feature space) with
values in [COORD_MIN, COORD_MAX] = [-2**20, 2**20 - 1]. Squared distances
``sum_d (a_d - b_d)**2`` are computed in int64 and are exact (below D * 2**42).

Tie rules (every result is a pure function of the inputs):

- ``fps``: start at index 0; each step takes the arg-max of the running minimum squared distance
  to the points chosen so far, ties to the lowest index. When m exceeds the number of distinct
  points the maximum is 0 and index 0 (the lowest) is chosen again.
- ``knn``: the k points with the smallest (squared distance, index) pairs, compared
  lexicographically, so equal distances go to the lower index; each row is sorted by
  (distance, index). A query that is itself in the cloud is not excluded.
- ``ball_query``: the first k points in index order with ``d2 <= radius**2`` (inclusive). Fewer
  than k hits are padded by repeating the first hit. A centre equal to a cloud point always hits
  that point (d2 = 0), so it has >= 1 hit; a centre with no point within the radius (only possible
  for a centre that is not in the cloud) gets a row of -1.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._checks import as_points, check_count, check_int

__all__ = ["sqdist", "fps", "knn", "ball_query"]

_CHUNK_ELEMS = 1 << 21  # query rows per block are sized so a (rows, N) int64 block stays ~16 MB
_INT64_MAX = np.iinfo(np.int64).max


def _sqdist(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    d = np.zeros((a.shape[0], b.shape[0]), dtype=np.int64)
    for j in range(a.shape[1]):
        t = a[:, j, None] - b[None, :, j]
        d += t * t
    return d


def sqdist(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Exact squared distances between integer points a (P, D) and b (Q, D) -> (P, Q) int64."""
    pa = as_points(a, "a", allow_empty=True)
    pb = as_points(b, "b", dims=pa.shape[1], allow_empty=True)
    return _sqdist(pa, pb)


def _blocks(m: int, n: int) -> range:
    return range(0, m, max(1, _CHUNK_ELEMS // max(n, 1)))


def fps(points: npt.ArrayLike, m: int) -> npt.NDArray[np.int64]:
    """Farthest point sampling: indices (m,) int64 of m points chosen from points (N, D).

    ``sel[0] = 0``; ``d = +inf``; for t = 1..m-1: ``d = min(d, |p - p[sel[t-1]]|^2)`` and
    ``sel[t] = argmax d`` with ties to the lowest index.
    """
    p = as_points(points, "points")
    m = check_count(m, "m", p.shape[0])
    sel = np.zeros(m, dtype=np.int64)
    dmin = np.full(p.shape[0], _INT64_MAX, dtype=np.int64)
    for t in range(1, m):
        diff = p - p[sel[t - 1]]
        np.minimum(dmin, np.einsum("ij,ij->i", diff, diff), out=dmin)
        sel[t] = np.argmax(dmin)  # numpy returns the first maximal index
    return sel


def _smallest_k(d2: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    """Per row, the indices of the k smallest (d2, index) pairs, sorted by (d2, index)."""
    n = d2.shape[1]
    if k < n:
        kth = np.partition(d2, k - 1, axis=1)[:, k - 1:k]  # the k-th smallest distance of each row
        less = d2 < kth
        tie = d2 == kth
        need = k - less.sum(axis=1, keepdims=True)  # how many of the tied points to take, lowest first
        take = less | (tie & (np.cumsum(tie, axis=1) <= need))
        cols = np.nonzero(take)[1].reshape(d2.shape[0], k)  # ascending index within each row
    else:
        cols = np.broadcast_to(np.arange(n, dtype=np.int64), d2.shape)
    order = np.argsort(np.take_along_axis(d2, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def knn(points: npt.ArrayLike, queries: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """k nearest neighbours of each query among points (N, D) by exact squared distance.

    Returns ``(idx, d2)``, both (M, k) int64, each row sorted by (d2, index); ties go to the lower
    index. ``queries`` (M, D) may be empty.
    """
    p = as_points(points, "points")
    q = as_points(queries, "queries", dims=p.shape[1], allow_empty=True)
    k = check_count(k, "k", p.shape[0])
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    dist = np.empty((q.shape[0], k), dtype=np.int64)
    step = _blocks(q.shape[0], p.shape[0]).step
    for s in range(0, q.shape[0], step):
        d2 = _sqdist(q[s:s + step], p)
        sel = _smallest_k(d2, k)
        idx[s:s + step] = sel
        dist[s:s + step] = np.take_along_axis(d2, sel, axis=1)
    return idx, dist


def ball_query(points: npt.ArrayLike, centers: npt.ArrayLike, radius: int, k: int) -> npt.NDArray[np.int64]:
    """First k points (in index order) within ``radius`` of each centre, inclusive: ``d2 <= radius**2``.

    ``radius`` is a positive int in coordinate units. Returns (M, k) int64. A row with h < k hits
    is padded with its first hit; a row with no hit is all -1 (see the module docstring).
    ``k`` may exceed N (the row is then padded).
    """
    p = as_points(points, "points")
    c = as_points(centers, "centers", dims=p.shape[1], allow_empty=True)
    r = check_int(radius, "radius", hi=(1 << 31) - 1)
    if r <= 0:
        raise ValueError(f"radius: must be a positive int, got {r}")
    k = check_int(k, "k")
    if k <= 0:
        raise ValueError(f"k: must be a positive int, got {k}")
    r2 = r * r
    out = np.full((c.shape[0], k), -1, dtype=np.int64)
    step = _blocks(c.shape[0], p.shape[0]).step
    for s in range(0, c.shape[0], step):
        hit = _sqdist(c[s:s + step], p) <= r2
        rank = np.cumsum(hit, axis=1)  # 1-based rank of each hit in index order
        rows, cols = np.nonzero(hit & (rank <= k))
        block = out[s:s + step]
        has = rank[:, -1] > 0
        first = np.argmax(hit, axis=1)
        block[has] = first[has, None]  # pad value: the first hit
        block[rows, rank[rows, cols] - 1] = cols
    return out

"""Independent oracles for the PointAcc golden-model tests (scipy and plain numpy; nothing from
``sw_reference.pointacc``)."""
import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist


def fps_brute(p: np.ndarray, m: int) -> list[int]:
    """O(n^2) FPS: full squared-distance matrix, then arg-max with explicit lowest-index ties."""
    d_all = cdist(p.astype(np.float64), p.astype(np.float64), "sqeuclidean")
    n = len(p)
    sel = [0]
    d = [float("inf")] * n
    for _ in range(1, m):
        row = d_all[sel[-1]]
        d = [min(a, b) for a, b in zip(d, row)]
        sel.append(max(range(n), key=lambda i: (d[i], -i)))
    return sel


def fps_scipy(p: np.ndarray, m: int) -> np.ndarray:
    """FPS with float64 scipy distances (exact for these ranges) and the first index of the maximum."""
    x = p.astype(np.float64)
    d = np.full(len(p), np.inf)
    sel = [0]
    for _ in range(1, m):
        d = np.minimum(d, cdist(x[sel[-1]][None], x, "sqeuclidean")[0])
        sel.append(int(np.flatnonzero(d == d.max())[0]))
    return np.array(sel)


def knn_oracle(p: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """cKDTree gives the k-th distance; every point within it (ties included) is then ranked by (d2, index)."""
    tree = cKDTree(p.astype(np.float64))
    dk, _ = tree.query(q.astype(np.float64), k=[k])
    dk2 = np.rint(dk[:, 0] ** 2)
    cand = tree.query_ball_point(q.astype(np.float64), np.sqrt(dk2 + 0.5))
    idx = np.empty((len(q), k), np.int64)
    dist = np.empty((len(q), k), np.int64)
    for row, c in enumerate(cand):
        c = np.array(sorted(c), dtype=np.int64)
        d2 = ((p[c].astype(np.int64) - q[row].astype(np.int64)) ** 2).sum(axis=1)
        assert d2.max() == dk2[row] and (d2 <= dk2[row]).sum() >= k
        order = np.lexsort((c, d2))[:k]
        idx[row], dist[row] = c[order], d2[order]
    return idx, dist


def ball_oracle(p: np.ndarray, c: np.ndarray, radius: int, k: int) -> np.ndarray:
    """cKDTree hits with d2 <= radius**2 (the search radius sqrt(r**2 + 0.5) separates integers), first k
    by index, padded with the first hit, -1 without hits."""
    tree = cKDTree(p.astype(np.float64))
    out = np.full((len(c), k), -1, np.int64)
    for row, hits in enumerate(tree.query_ball_point(c.astype(np.float64), np.sqrt(radius * radius + 0.5))):
        hits = sorted(hits)[:k]
        if hits:
            out[row] = hits[0]
            out[row, :len(hits)] = hits
    return out


def mlp_oracle_np(x: np.ndarray, layers, bits: int = 8) -> np.ndarray:
    """Integer MLP with numpy int64 einsum (no BLAS) and requantization as floor division."""
    y = np.asarray(x, dtype=np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for w, b, s, relu in layers:
        acc = np.einsum("...i,io->...o", y, w.astype(np.int64))
        if b is not None:
            acc = acc + b.astype(np.int64)
        if relu:
            acc = np.where(acc > 0, acc, 0)
        if s:
            acc = np.floor_divide(acc + (1 << (s - 1)), 1 << s)
        y = np.clip(acc, lo, hi)
    return y

"""Integer point-cloud network layers built on the mapping ops: PointNet++ set abstraction, DGCNN
EdgeConv, MinkowskiNet sparse convolution.

- ``set_abstraction``: centres = FPS; neighbours = ball query (first k in index order within the
  radius, padded with the first hit); grouped input per neighbour j of centre c is
  ``[p_j - p_c (3 int32), f_j (C)]`` (PointNet++ "use_xyz" order); shared ``mlp``; max over the k
  neighbours. Padding repeats a real neighbour, so it never changes the max.
- ``set_abstraction_all``: PointNet++ "group all": input ``[p_j, f_j]`` over all points (absolute
  coordinates), shared ``mlp``, max over all points.
- ``edge_conv``: kNN in feature space (exact int64 squared distances, ties to the lower index, the
  point itself included like DGCNN's reference), edge input ``[x_i, x_j - x_i]``, shared ``mlp``,
  max over the k neighbours.
- ``sparse_conv``: for each kernel offset, gather the input rows of its (in, out) pairs, one GEMM
  with that offset's int8 weight (C_in, C_out), scatter-add into the int64 output accumulator.
  Returns the accumulator (plus bias); apply ReLU/``requantize`` as the network needs.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import numpy.typing as npt

from ._checks import as_points, check_count, check_int
from .kernel_map import KernelMap
from .neighbors import ball_query, fps, knn
from .requant import Layer, _int_matmul, mlp

__all__ = ["SetAbstractionOut", "set_abstraction", "set_abstraction_all", "EdgeConvOut", "edge_conv",
           "sparse_conv"]


class SetAbstractionOut(NamedTuple):
    """``center_index`` (M,) int64 FPS picks, ``centers`` (M, 3) int32, ``neighbors`` (M, k) int64,
    ``features`` (M, C_out) int8."""

    center_index: npt.NDArray[np.int64]
    centers: npt.NDArray[np.int32]
    neighbors: npt.NDArray[np.int64]
    features: npt.NDArray[np.signedinteger]


class EdgeConvOut(NamedTuple):
    """``features`` (N, C_out) int8 and ``neighbors`` (N, k) int64 (the feature-space kNN)."""

    features: npt.NDArray[np.signedinteger]
    neighbors: npt.NDArray[np.int64]


def _features(feats: npt.ArrayLike | None, n: int, name: str = "feats") -> npt.NDArray[np.int64] | None:
    if feats is None:
        return None
    f = np.asarray(feats)
    if f.dtype == np.bool_ or not np.issubdtype(f.dtype, np.integer) or f.ndim != 2 or f.shape[0] != n:
        raise ValueError(f"{name}: expected an integer ({n}, C) array, got {f.dtype} {f.shape}")
    return f.astype(np.int64)


def set_abstraction(points: npt.ArrayLike, feats: npt.ArrayLike | None, n_centers: int, radius: int, k: int,
                    layers: Sequence[Layer]) -> SetAbstractionOut:
    """PointNet++ set abstraction on integer points (N, 3) with optional integer features (N, C)."""
    p = as_points(points, "points", dims=3)
    f = _features(feats, p.shape[0])
    ci = fps(p, check_count(n_centers, "n_centers", p.shape[0]))
    centers = p[ci]
    nb = ball_query(p, centers, radius, k)  # every centre is a cloud point: no -1 rows
    grouped = p[nb] - centers[:, None, :]
    if f is not None:
        grouped = np.concatenate([grouped, f[nb]], axis=-1)
    y = mlp(grouped, layers)
    return SetAbstractionOut(ci, centers.astype(np.int32), nb, y.max(axis=1))


def set_abstraction_all(points: npt.ArrayLike, feats: npt.ArrayLike | None,
                        layers: Sequence[Layer]) -> npt.NDArray[np.signedinteger]:
    """PointNet++ group-all abstraction: ``max_j mlp([p_j, f_j])`` -> (C_out,) int8."""
    p = as_points(points, "points", dims=3)
    f = _features(feats, p.shape[0])
    x = p if f is None else np.concatenate([p, f], axis=-1)
    return mlp(x, layers).max(axis=0)


def edge_conv(feats: npt.ArrayLike, k: int, layers: Sequence[Layer]) -> EdgeConvOut:
    """DGCNN EdgeConv on integer features (N, C): kNN in feature space, ``mlp([x_i, x_j - x_i])``, max."""
    x = as_points(feats, "feats")
    idx, _ = knn(x, x, k)
    xi = np.broadcast_to(x[:, None, :], (x.shape[0], idx.shape[1], x.shape[1]))
    edge = np.concatenate([xi, x[idx] - xi], axis=-1)
    return EdgeConvOut(mlp(edge, layers).max(axis=1), idx)


def sparse_conv(feats: npt.ArrayLike, weight: npt.ArrayLike, kmap: KernelMap, n_out: int,
                bias: npt.ArrayLike | None = None) -> npt.NDArray[np.int64]:
    """Sparse convolution by gather - per-offset GEMM - scatter-add -> int64 accumulators (n_out, C_out).

    ``feats`` (N_in, C_in) integer within int32; ``weight`` (K**3, C_in, C_out) int8 in the offset
    order of ``kmap.offsets``; ``bias`` (C_out,) int32 or None. ``out[o] = b + sum over offsets d and
    pairs (i, o) of d: feats[i] @ weight[d]``.
    """
    f = np.asarray(feats)
    if f.dtype == np.bool_ or not np.issubdtype(f.dtype, np.integer) or f.ndim != 2:
        raise ValueError(f"feats: expected an integer (N_in, C_in) array, got {f.dtype} {f.shape}")
    if f.size and (int(f.min()) < -(1 << 31) or int(f.max()) >= (1 << 31)):
        raise ValueError("feats: activations must fit int32")
    w = np.asarray(weight)
    nk = len(kmap.pairs)
    if w.dtype != np.int8 or w.ndim != 3 or w.shape[0] != nk or w.shape[1] != f.shape[1]:
        raise ValueError(f"weight: expected int8 ({nk}, {f.shape[1]}, C_out), got {w.dtype} {w.shape}")
    n = check_int(n_out, "n_out", lo=0)
    acc = np.zeros((n, w.shape[2]), dtype=np.int64)
    if bias is not None:
        b = np.asarray(bias)
        if b.dtype != np.int32 or b.shape != (w.shape[2],):
            raise ValueError(f"bias: expected int32 ({w.shape[2]},), got {b.dtype} {b.shape}")
        acc += b.astype(np.int64)
    f64 = f.astype(np.int64)
    for d, pr in enumerate(kmap.pairs):
        if pr.shape[0] == 0:
            continue
        if int(pr[:, 0].max()) >= f.shape[0] or int(pr[:, 1].max()) >= n or int(pr.min()) < 0:
            raise ValueError(f"kmap: offset {d} has an index outside feats ({f.shape[0]}) or n_out ({n})")
        part = _int_matmul(f64[pr[:, 0]], w[d].astype(np.int64))
        np.add.at(acc, pr[:, 1], part)
    return acc

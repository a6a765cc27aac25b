"""Sparse-convolution kernel maps by sort-merge intersection (PointAcc's mapping unit; no hashing).

A kernel map lists, for each kernel offset delta, the pairs (in_index, out_index) with

    in_coords[in_index] == out_coords[out_index] + delta * tensor_stride

Offsets (``kernel_offsets``): per axis, ``-(K//2) .. K//2`` for odd K and ``0 .. K-1`` for even K
(the TorchSparse/MinkowskiEngine convention: an even kernel, e.g. K = 2 with stride 2, covers the
block ``[c, c + K*tensor_stride)`` above its output site). The K**3 offsets are listed in
lexicographic (dx, dy, dz) order, dz fastest: offset number ``(ix*K + iy)*K + iz``, where ix is the
position of dx in the ascending per-axis list. For K = 3, offset 13 is (0, 0, 0).

Algorithm: both coordinate lists are sorted once by their lexicographic key (``coord_keys``).
Adding a constant delta to every output coordinate keeps the list sorted, so for each offset the
shifted output stream and the input stream are two sorted streams; one merge pass and a compare
of neighbours in the merged stream yields every match in O(N_in + N_out) (``merge_intersect``).
Output coordinates whose shifted value leaves the coordinate range cannot match and are dropped.

Pairs of each offset come out sorted by out_index; each out_index appears at most once per offset
because input coordinates must be unique (as must output coordinates).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ._checks import COORD_MAX, COORD_MIN, as_points, check_int
from .quantize import coord_keys, downsample

__all__ = ["KernelMap", "kernel_offsets", "merge_intersect", "kernel_map", "submanifold_kernel_map",
           "strided_kernel_map", "kernel_map_dense"]

MAX_KERNEL_SIZE = 7


class KernelMap(NamedTuple):
    """A kernel map: ``offsets`` (K**3, 3) int64 (in units of the input tensor stride),
    ``tensor_stride`` of the input, and ``pairs``: per offset an (P_o, 2) int64 array of
    (in_index, out_index) rows sorted by out_index."""

    offsets: npt.NDArray[np.int64]
    tensor_stride: int
    pairs: tuple[npt.NDArray[np.int64], ...]

    @property
    def n_pairs(self) -> int:
        """Total number of (in, out) pairs over all offsets."""
        return int(sum(p.shape[0] for p in self.pairs))


def kernel_offsets(kernel_size: int) -> npt.NDArray[np.int64]:
    """The K**3 offsets (K**3, 3) int64 of a cubic kernel, in the order described in the module doc."""
    k = check_int(kernel_size, "kernel_size", lo=1, hi=MAX_KERNEL_SIZE)
    axis = np.arange(k, dtype=np.int64) - (k // 2 if k % 2 else 0)
    g = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack(g, axis=-1).reshape(-1, 3)


def _strictly_increasing(keys: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    a = np.asarray(keys)
    if a.ndim != 1 or a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected a 1-D integer array, got {a.dtype} {a.shape}")
    a = a.astype(np.int64)
    if a.size > 1 and not (a[1:] > a[:-1]).all():
        raise ValueError(f"{name}: keys must be strictly increasing")
    return a


def merge_intersect(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Positions (ia, ib) of the keys common to two strictly increasing int64 streams.

    The streams are merged (a stable sort of the two concatenated sorted runs, which numpy's
    timsort does as one linear merge; on equal keys the element of ``a`` comes first) and each
    adjacent equal pair of the merged stream is one match: ``a[ia] == b[ib]``, ia and ib ascending.
    """
    ka = _strictly_increasing(a, "a")
    kb = _strictly_increasing(b, "b")
    merged = np.concatenate([ka, kb])
    order = np.argsort(merged, kind="stable")
    m = merged[order]
    hit = np.flatnonzero(m[1:] == m[:-1])
    return order[hit], order[hit + 1] - ka.size


def _sorted_unique(coords: npt.ArrayLike, name: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                                              npt.NDArray[np.int64]]:
    """(sorted coords (N, 3) int64, their keys, the sorting permutation); duplicates raise."""
    c = as_points(coords, name, dims=3)
    keys = coord_keys(c)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    dup = np.flatnonzero(sk[1:] == sk[:-1])
    if dup.size:
        i, j = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise ValueError(f"{name}: duplicate coordinate {tuple(int(v) for v in c[i])} at rows {i} and {j}; "
                         "a kernel map needs unique coordinates")
    return c[order], sk, order


def kernel_map(in_coords: npt.ArrayLike, out_coords: npt.ArrayLike, kernel_size: int,
               tensor_stride: int = 1) -> KernelMap:
    """Kernel map between unique input coordinates (N_in, 3) and unique output coordinates (N_out, 3).

    Pair (i, o) is listed under offset delta when ``in_coords[i] == out_coords[o] + delta * tensor_stride``.
    """
    offsets = kernel_offsets(kernel_size)
    ts = check_int(tensor_stride, "tensor_stride", lo=1, hi=COORD_MAX)
    _, in_keys, in_order = _sorted_unique(in_coords, "in_coords")
    out_sorted, _, out_order = _sorted_unique(out_coords, "out_coords")
    pairs = []
    for delta in offsets:
        shifted = out_sorted + delta * ts  # still sorted: a translation keeps lexicographic order
        ok = ((shifted >= COORD_MIN) & (shifted <= COORD_MAX)).all(axis=1)
        rows = np.flatnonzero(ok)
        ia, ib = merge_intersect(in_keys, coord_keys(shifted[rows]))
        p = np.stack([in_order[ia], out_order[rows[ib]]], axis=1)
        pairs.append(p[np.argsort(p[:, 1], kind="stable")])
    return KernelMap(offsets, ts, tuple(pairs))


def submanifold_kernel_map(coords: npt.ArrayLike, kernel_size: int, tensor_stride: int = 1) -> KernelMap:
    """Submanifold (stride-1) kernel map: the outputs are the inputs themselves."""
    return kernel_map(coords, coords, kernel_size, tensor_stride)


def strided_kernel_map(coords: npt.ArrayLike, kernel_size: int, stride: int,
                       tensor_stride: int = 1) -> tuple[npt.NDArray[np.int32], KernelMap]:
    """Strided convolution map: outputs are ``downsample(coords, stride * tensor_stride)``.

    Returns ``(out_coords (N_out, 3) int32 sorted, kmap)``; the output tensor stride is
    ``stride * tensor_stride`` and the offsets step in units of the input ``tensor_stride``.
    """
    s = check_int(stride, "stride", lo=1, hi=COORD_MAX)
    ts = check_int(tensor_stride, "tensor_stride", lo=1, hi=COORD_MAX)
    out, _ = downsample(coords, s * ts)
    return out, kernel_map(coords, out, kernel_size, ts)


def kernel_map_dense(kmap: KernelMap, n_out: int) -> npt.NDArray[np.int64]:
    """The map as a (K**3, n_out) table: input index per (offset, output), -1 where there is none."""
    n = check_int(n_out, "n_out", lo=0)
    table = np.full((len(kmap.pairs), n), -1, dtype=np.int64)
    for o, p in enumerate(kmap.pairs):
        table[o, p[:, 1]] = p[:, 0]
    return table

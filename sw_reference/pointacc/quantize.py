"""Float clouds -> integer coordinates: quantization, voxelization, downsampling.

Conventions (all arithmetic in float64 on the float32/float64 input, then exact integers):

- ``quantize``: ``q = rint((xyz - offset) * scale)`` (round half to even), int32. ``scale`` is
  integer units per input unit (1000 turns metres into millimetres); ``dequantize`` inverts it up
  to the rounding: ``xyz ~= q / scale + offset``.
- ``voxelize``: ``v = floor(xyz / voxel_size)``, then the unique voxels.
- ``downsample``: ``floor(c / s) * s`` on integer coordinates (coordinates keep their resolution,
  as in MinkowskiEngine/TorchSparse: a stride-s tensor has coordinates that are multiples of s).
- Unique coordinates are found by sort then de-duplicate (``unique_coords``), and come out in
  lexicographic (x, y, z) order, x slowest, together with the point -> unique-row inverse map.
- Every integer coordinate must lie in [COORD_MIN, COORD_MAX] = [-2**20, 2**20 - 1]; a value
  outside raises ``ValueError`` (no wrap-around, no clipping).

Sort keys: ``coord_keys`` packs (x, y, z) into one int64, 21 bits per axis, biased by 2**20, so
that the integer order of the keys is the lexicographic order of the coordinates.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._checks import COORD_BITS, COORD_MAX, COORD_MIN, as_float_points, as_points, check_int, check_positive_float

__all__ = ["quantize", "dequantize", "coord_keys", "keys_to_coords", "unique_coords", "voxelize", "downsample"]

_MASK = (1 << COORD_BITS) - 1


def _range_check(q: npt.NDArray[np.floating] | npt.NDArray[np.integer], name: str, what: str) -> None:
    lo, hi = q.min(), q.max()
    if lo < COORD_MIN or hi > COORD_MAX:
        bad = lo if lo < COORD_MIN else hi
        raise ValueError(f"{name}: {what} {bad:.0f} outside the quantization range [{COORD_MIN}, {COORD_MAX}]")


def _offset(offset: npt.ArrayLike) -> npt.NDArray[np.float64]:
    o = np.asarray(offset, dtype=np.float64)
    if o.shape != (3,) or not np.isfinite(o).all():
        raise ValueError(f"offset: expected 3 finite numbers, got {offset!r}")
    return o


def quantize(xyz: npt.ArrayLike, scale: float, offset: npt.ArrayLike = (0.0, 0.0, 0.0)) -> npt.NDArray[np.int32]:
    """Quantize float points (N, 3) to int32 ``rint((xyz - offset) * scale)``, round half to even.

    Raises ``ValueError`` for an empty cloud, NaN/Inf, ``scale <= 0`` or a result outside
    [COORD_MIN, COORD_MAX].
    """
    x = as_float_points(xyz, "xyz")
    s = check_positive_float(scale, "scale")
    q = np.rint((x - _offset(offset)) * s)
    _range_check(q, "xyz", "quantized coordinate")
    return q.astype(np.int32)


def dequantize(q: npt.ArrayLike, scale: float, offset: npt.ArrayLike = (0.0, 0.0, 0.0)) -> npt.NDArray[np.float64]:
    """The float64 points ``q / scale + offset`` that ``quantize`` rounded to ``q``."""
    c = as_points(q, "q", dims=3, allow_empty=True)
    s = check_positive_float(scale, "scale")
    return c / s + _offset(offset)


def coord_keys(coords: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Pack (N, 3) integer coordinates into int64 keys ordered like (x, y, z) lexicographically.

    ``key = (x + 2**20) << 42 | (y + 2**20) << 21 | (z + 2**20)``.
    """
    c = as_points(coords, "coords", dims=3, allow_empty=True) - COORD_MIN
    return (c[:, 0] << (2 * COORD_BITS)) | (c[:, 1] << COORD_BITS) | c[:, 2]


def keys_to_coords(keys: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """Inverse of ``coord_keys``: int64 keys -> (N, 3) int32 coordinates."""
    k = np.asarray(keys, dtype=np.int64)
    c = np.stack([k >> (2 * COORD_BITS), (k >> COORD_BITS) & _MASK, k & _MASK], axis=-1)
    return (c + COORD_MIN).astype(np.int32)


def unique_coords(coords: npt.ArrayLike) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """Sort then de-duplicate integer coordinates (N, 3).

    Returns ``(unique, inverse)``: ``unique`` (V, 3) int32 in lexicographic (x, y, z) order with no
    repeats, and ``inverse`` (N,) int64 with ``unique[inverse] == coords``.
    """
    keys = coord_keys(coords)
    if keys.size == 0:
        raise ValueError("coords: empty cloud (0 points)")
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    first = np.empty(sk.size, dtype=bool)
    first[0] = True
    np.not_equal(sk[1:], sk[:-1], out=first[1:])
    inverse = np.empty(sk.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return keys_to_coords(sk[first]), inverse


def voxelize(xyz: npt.ArrayLike, voxel_size: float) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """Voxel coordinates ``floor(xyz / voxel_size)`` (float64), unique and sorted, plus the inverse map.

    Returns ``(voxels (V, 3) int32, inverse (N,) int64)`` with ``voxels[inverse[i]]`` the voxel of
    point i.
    """
    x = as_float_points(xyz, "xyz")
    v = np.floor(x / check_positive_float(voxel_size, "voxel_size"))
    _range_check(v, "xyz", "voxel coordinate")
    return unique_coords(v.astype(np.int64))


def downsample(coords: npt.ArrayLike, stride: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """Downsample integer coordinates by ``stride``: unique ``floor(c / stride) * stride``, sorted.

    Returns ``(out (V, 3) int32, inverse (N,) int64)``; ``out[inverse[i]]`` is the coarse site of
    input row i. ``stride = 1`` de-duplicates and sorts only.
    """
    c = as_points(coords, "coords", dims=3)
    s = check_int(stride, "stride", lo=1, hi=COORD_MAX)
    d = np.floor_divide(c, s) * s
    _range_check(d, "coords", "downsampled coordinate")
    return unique_coords(d)

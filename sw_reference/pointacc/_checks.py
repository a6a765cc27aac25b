"""Argument checks shared by the PointAcc golden models.

Every check raises ``ValueError`` whose message starts with the parameter name, e.g.
``"k: 20 > n = 10 points"``, so a caller can map it to a user-facing error unchanged.

Integer coordinates are stored as int32 but must lie in ``[COORD_MIN, COORD_MAX]`` =
``[-2**20, 2**20 - 1]`` (21-bit signed). That range makes every result of the models exact in
the obvious carriers: three coordinates pack into one int64 sort key (21 bits each), and a
squared distance over D dimensions is below ``D * 2**42``, exact in int64 and, for D < 2**11,
in float64 as well.
"""
from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt

COORD_BITS = 21
COORD_MIN = -(1 << (COORD_BITS - 1))
COORD_MAX = (1 << (COORD_BITS - 1)) - 1

__all__ = ["COORD_BITS", "COORD_MIN", "COORD_MAX", "check_int", "check_count", "check_positive_float",
           "as_points", "as_float_points"]


def check_int(value: object, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as a Python int; it must be an integer (not bool) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: must be an int, got {value!r}")
    v = int(value)
    if lo is not None and v < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name}: must be <= {hi}, got {v}")
    return v


def check_count(value: object, name: str, n: int) -> int:
    """A count of points to pick from ``n`` (k of kNN, m of FPS): an int in ``[1, n]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: must be an int, got {value!r}")
    v = int(value)
    if v <= 0:
        raise ValueError(f"{name}: must be a positive int, got {v}")
    if v > n:
        raise ValueError(f"{name}: {v} > n = {n} points")
    return v


def check_positive_float(value: object, name: str) -> float:
    """A positive finite real number (voxel size, scale) as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: must be a positive finite number, got {value!r}")
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name}: must be a positive finite number, got {value!r}")
    return v


def as_points(x: npt.ArrayLike, name: str, dims: int | None = None,
              allow_empty: bool = False) -> npt.NDArray[np.int64]:
    """An integer (N, D) array with values in [COORD_MIN, COORD_MAX], returned as int64.

    ``dims`` fixes D (for example 3 for coordinates, or the D of the reference cloud). An empty
    array (N = 0) raises ``"<name>: empty cloud (0 points)"`` unless ``allow_empty``.
    """
    a = np.asarray(x)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer) or a.ndim != 2 or a.shape[1] < 1:
        want = f"(N, {dims})" if dims is not None else "(N, D)"
        raise ValueError(f"{name}: expected an integer {want} array, got {a.dtype} {a.shape}")
    if dims is not None and a.shape[1] != dims:
        raise ValueError(f"{name}: expected {dims} columns, got {a.shape[1]}")
    if a.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name}: empty cloud (0 points)")
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < COORD_MIN or hi > COORD_MAX:
            bad = lo if lo < COORD_MIN else hi
            raise ValueError(f"{name}: coordinate {bad} outside the quantization range "
                             f"[{COORD_MIN}, {COORD_MAX}]")
    return a.astype(np.int64)


def as_float_points(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """A real (N, 3) non-empty array without NaN/Inf, returned as float64."""
    a = np.asarray(x)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) \
            or a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{name}: expected a real (N, 3) array, got {a.dtype} {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: empty cloud (0 points)")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} points have NaN or Inf coordinates "
                         f"(first at row {int(np.flatnonzero(bad)[0])})")
    return a

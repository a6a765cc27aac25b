"""Point-cloud loading for the ``--cloud`` option: KITTI ``.bin``, ModelNet-style ``.txt``, ``.npy``.

``load_cloud(path)`` returns the x, y, z columns as a C-contiguous float32 (n, 3) array. Every bad
input raises ``LegoError("--cloud: <path>: <problem>")`` on one line.

- ``.bin``: KITTI velodyne layout, float32 little-endian rows (x, y, z, intensity), 16 bytes each;
  a size that is not a multiple of 16 is a truncated file.
- ``.txt``: comma-separated numbers, one point per line, at least 3 columns (x, y, z first), as in
  ModelNet40 ``modelnet40_normal_resampled`` (x, y, z, nx, ny, nz).
- ``.npy``: a real (n, c) array with c >= 3 (x, y, z first); no pickles.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from lego.errors import LegoError

__all__ = ["DATA_DIR", "SUFFIXES", "load_cloud"]

DATA_DIR = Path(__file__).resolve().parent / "data"
SUFFIXES = (".bin", ".txt", ".npy")


def _fail(path: Path, problem: str) -> LegoError:
    text = f"--cloud: {path}: {problem}"
    return LegoError(" ".join(text.split()))  # one line, whatever the path or a parser said


def _read_bin(path: Path) -> np.ndarray:
    size = path.stat().st_size
    if size % 16:
        raise _fail(path, f"truncated KITTI .bin: {size} bytes is not a multiple of 16 "
                          "(float32 x, y, z, intensity per point)")
    return np.fromfile(path, dtype="<f4").reshape(-1, 4)


def _read_txt(path: Path) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            a = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _fail(path, f"not comma-separated numbers ({first})") from None
    return a


def _read_npy(path: Path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _fail(path, f"not a readable .npy array ({first})") from None
    if not isinstance(a, np.ndarray) or a.dtype == np.bool_ or not (
            np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise _fail(path, f"expected a real-valued array, got {getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim != 2 and not (a.ndim == 1 and a.size == 0):
        raise _fail(path, f"expected a 2-D (n, 3+) array, got shape {a.shape}")
    return a.reshape(-1, a.shape[-1]) if a.ndim == 2 else a.reshape(0, 3)


def load_cloud(path: str | os.PathLike[str]) -> np.ndarray:
    """Load a point cloud and return its x, y, z as float32 (n, 3).

    Raises ``LegoError("--cloud: ...")`` for a missing file, an unknown suffix, a truncated ``.bin``,
    unparsable text, fewer than 3 columns, an empty cloud, or NaN/Inf coordinates.
    """
    p = Path(path)
    if not p.exists():
        raise _fail(p, "no such file")
    if not p.is_file():
        raise _fail(p, "not a regular file")
    suffix = p.suffix.lower()
    readers = {".bin": _read_bin, ".txt": _read_txt, ".npy": _read_npy}
    if suffix not in readers:
        raise _fail(p, f"unknown suffix {p.suffix or '(none)'!r}; expected one of {', '.join(SUFFIXES)}")
    a = readers[suffix](p)
    if a.shape[0] == 0:
        raise _fail(p, "empty cloud (0 points)")
    if a.shape[1] < 3:
        raise _fail(p, f"need at least 3 columns (x, y, z), got {a.shape[1]}")
    xyz = a[:, :3].astype(np.float64)
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        raise _fail(p, f"{int(bad.sum())} of {a.shape[0]} points have NaN or Inf coordinates "
                       f"(first at row {int(np.flatnonzero(bad)[0])})")
    if np.abs(xyz).max() > np.finfo(np.float32).max:
        raise _fail(p, "coordinates overflow float32")
    return np.ascontiguousarray(a[:, :3], dtype=np.float32)

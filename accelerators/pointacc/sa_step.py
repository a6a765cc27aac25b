"""One PointNet++ set-abstraction layer through ``pointacc_top`` (the ``sa`` step of ``lego sim DIR``).

``sw_reference.pointacc.set_abstraction(points, feats[:, :R-3], M, BALL_RADIUS, K, [Layer(W, None, shift)])``
with M = the bench's kNN / ball-query centres (the first FPS picks: ``fps(p, M)`` is a prefix of the FPS job's
picks) and K its ball-query K. On the top:

* FPS and ball query: the mapping unit's ``fps`` and ``ball_query`` jobs (the same jobs the bench checks);
* grouping + the MLP's layer: a gather-GEMM like a convolution offset: one MMU gather of the ball-query map,
  M*K entries (row ``SA_DRAM_BASE + nb[c, j]``, tag c*K + j), staged into the matrix unit's X, then the GEMM
  program with the R x C weights ``W``. DRAM row ``SA_DRAM_BASE + i`` holds point i's input row
  ``[x, y, z, f_0 .. f_{R-4}]`` (int8), so the matrix unit returns ``[p_j, f_j] W`` (int32) per neighbour;
* the host, per centre c: subtracts ``p_c W[:3]`` (the centre's coordinates, one 3 x C product per centre:
  ``[p_j - p_c, f_j] W = [p_j, f_j] W - p_c W[:3]``), then ReLU, requantization (``SA_SHIFT``) and the max over
  the K neighbours (padding repeats a neighbour, so it never changes the max).

The coordinates enter the int8 matrix unit as they are, so the step needs every coordinate in [-128, 127]
(the bench's crops: at most 53 in magnitude); other ``--inputs`` clouds run without it (``sa_skip`` names why).
Its cycles: ``cycles.gather_gemm_cycles`` on the MMU gather and the program (the cache state carried, as for the
offsets).
"""
from __future__ import annotations

import numpy as np

from sw_reference import pointacc as ref


__all__ = ["SA_DRAM_BASE", "sa_shift", "sa_weight", "sa_skip", "sa_input_rows", "sa_expected", "sa_entries",
           "sa_decode"]

SA_DRAM_BASE = 1 << 19           # DRAM row of point 0's set-abstraction input row (past the conv's rows)


def sa_shift(rows: int) -> int:
    """The layer's requantization shift: 7 + ceil(log2 R) // 2 (int8 outputs of R-term int8 sums)."""
    return 7 + (max(1, rows) - 1).bit_length() // 2


def sa_weight(rows: int, cols: int, seed: int) -> np.ndarray:
    """The layer's R x C int8 weights, from their own stream of the seed."""
    return np.random.default_rng([seed, 13]).integers(-128, 128, (rows, cols)).astype(np.int8)


def sa_skip(points: np.ndarray, rows: int) -> str:
    """Why the step cannot run on these points ('' when it can)."""
    if rows < 4:
        return f"mxu_rows: the set-abstraction input row needs 3 coordinates and a feature, R = {rows}"
    big = int(np.abs(np.asarray(points, dtype=np.int64)).max(initial=0))
    return f"points: a coordinate of magnitude {big} does not fit the matrix unit's int8 inputs" if big > 127 else ""


def sa_input_rows(points: np.ndarray, feats: np.ndarray, rows: int) -> np.ndarray:
    """(n, R) int8: ``[x, y, z, feats[:, :R-3]]``, the DRAM rows of the step."""
    return np.concatenate([np.asarray(points, dtype=np.int64), np.asarray(feats, dtype=np.int64)[:, :rows - 3]],
                          axis=1).astype(np.int8)


def sa_expected(points: np.ndarray, feats: np.ndarray, weight: np.ndarray, m: int, radius: int, k: int):
    """The golden layer: ``sw_reference.pointacc.set_abstraction`` (SetAbstractionOut)."""
    rows = weight.shape[0]
    layer = ref.Layer(np.asarray(weight, dtype=np.int8), None, sa_shift(rows), True)
    return ref.set_abstraction(np.asarray(points, dtype=np.int64), np.asarray(feats, dtype=np.int64)[:, :rows - 3],
                               m, radius, k, [layer])


def sa_entries(neighbors: np.ndarray) -> list[tuple[int, int]]:
    """The MMU gather's map: (DRAM row, tag = entry number) per (centre, neighbour), centre by centre."""
    nb = np.asarray(neighbors, dtype=np.int64).reshape(-1)
    return [(SA_DRAM_BASE + int(i), e) for e, i in enumerate(nb)]


def sa_decode(y: np.ndarray, centers: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """The host's part on the matrix unit's results ((M*K, C) int32, one row per map entry, in map order):
    (M, C) int8."""
    cols = weight.shape[1]
    y = np.asarray(y, dtype=np.int64).reshape(len(centers), k, cols)
    acc = y - (np.asarray(centers, dtype=np.int64) @ np.asarray(weight[:3], dtype=np.int64))[:, None, :]
    return ref.requantize(np.maximum(acc, 0), sa_shift(weight.shape[0])).max(axis=1)

"""Dataflow IR: the affine space-time map ``i = A_T·t + A_S·s + b`` plus the control vector ``c``.

FU ``s`` runs temporal step ``t`` at cycle ``τ(t,s) = ℓ·t + c·s - min_s(c·s)``, with ``ℓ`` the
lexicographic strides of the temporal box ``T`` (one step per cycle).  Tiling is written with extra
temporal coordinates (``i = P·t_i + s``), never with div/mod.

Presets (systolic, c = (1,1); add ``-bcast`` for c = (0,0) broadcast/adder-tree arrays):
``os`` output stationary, ``ws`` weight (second input) stationary, ``is`` input (first input) stationary.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import LegoError
from .workload import Workload

PRESETS = ("os", "ws", "is", "os-bcast", "ws-bcast", "is-bcast")

# Built-in choice of (row iterator, column iterator, innermost temporal iterator) per preset.
PRESET_TABLE: dict[str, dict[str, tuple[str, str, str]]] = {
    "gemm": {"os": ("i", "j", "k"), "ws": ("k", "j", "i"), "is": ("i", "k", "j")},
    "bmm": {"os": ("i", "j", "k"), "ws": ("k", "j", "i"), "is": ("i", "k", "j")},
    "conv2d": {"os": ("k", "w", "s"), "ws": ("c", "k", "w"), "is": ("c", "w", "k")},
    "dwconv2d": {"os": ("c", "w", "s"), "ws": ("c", "s", "w"), "is": ("c", "w", "r")},
    "attn_qk": {"os": ("i", "j", "d"), "ws": ("d", "j", "i"), "is": ("i", "d", "j")},
    "attn_pv": {"os": ("i", "e", "j"), "ws": ("j", "e", "i"), "is": ("i", "j", "e")},
}


@dataclass(frozen=True)
class Dataflow:
    name: str
    A_T: tuple[tuple[int, ...], ...]   # n_I x n_T
    A_S: tuple[tuple[int, ...], ...]   # n_I x n_S
    b: tuple[int, ...]
    T: tuple[int, ...]                 # temporal box
    P: tuple[int, ...]                 # array box
    c: tuple[int, ...]                 # control vector
    time_names: tuple[str, ...] = ()

    @cached_property
    def AT(self) -> np.ndarray:
        return np.array(self.A_T, dtype=np.int64).reshape(len(self.b), len(self.T))

    @cached_property
    def AS(self) -> np.ndarray:
        return np.array(self.A_S, dtype=np.int64).reshape(len(self.b), len(self.P))

    @cached_property
    def bvec(self) -> np.ndarray:
        return np.array(self.b, dtype=np.int64)

    @property
    def steps(self) -> int:
        return int(np.prod(self.T, dtype=np.int64))

    @property
    def fus(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(p) for p in self.P)))

    @cached_property
    def skew0(self) -> int:
        """-min_s c·s: offset that makes every FU's control delay non-negative."""
        return -min(int(np.dot(self.c, s)) for s in self.fus)

    def ctl_delay(self, s) -> int:
        return int(np.dot(self.c, s)) + self.skew0

    def time_coords(self) -> np.ndarray:
        """All temporal points in step order, shape (steps, n_T)."""
        grids = np.indices(self.T).reshape(len(self.T), -1).T
        return grids.astype(np.int64)


def _tiled(w: Workload, name: str, rows: str, cols: str, inner: str, P: tuple[int, int], c) -> Dataflow:
    its = list(w.iterators)
    ext = dict(zip(w.iterators, w.extents))
    for it in (rows, cols, inner):
        if it not in ext:
            raise LegoError(f"--dataflow: preset '{name}' needs iterator '{it}', absent from {w.name}")
    spatial = [rows, cols]
    if rows == cols:
        raise LegoError(f"--dataflow: preset '{name}' maps one iterator to both array axes")
    time_names: list[str] = []
    cols_T: list[list[int]] = []
    T: list[int] = []
    n = len(its)
    b = [0] * n
    A_S = [[0, 0] for _ in range(n)]
    # tile loops of the spatial iterators, outermost
    for ax, it in enumerate(spatial):
        k = its.index(it)
        A_S[k][ax] = 1
        col = [0] * n
        col[k] = P[ax]
        cols_T.append(col)
        T.append(math.ceil(ext[it] / P[ax]))
        time_names.append(f"t_{it}")
    order = [it for it in its if it not in spatial and it != inner] + ([inner] if inner not in spatial else [])
    for it in order:
        col = [0] * n
        col[its.index(it)] = 1
        cols_T.append(col)
        T.append(ext[it])
        time_names.append(it)
    A_T = [[cols_T[j][i] for j in range(len(T))] for i in range(n)]
    return Dataflow(name, tuple(map(tuple, A_T)), tuple(map(tuple, A_S)), tuple(b), tuple(T), tuple(P),
                    tuple(c), tuple(time_names))


def _generic_choice(w: Workload, preset: str) -> tuple[str, str, str]:
    """Preset rule for user workloads: pick iterators by role, largest extent first."""
    ext = dict(zip(w.iterators, w.extents))
    used = {t.name: {w.iterators[k] for a in t.index for k, c in enumerate(a.coeffs) if c} for t in w.tensors}
    out = used[w.output.name]
    red = [it for it in w.iterators if it not in out]
    x, wt = w.inputs[0].name, w.inputs[1].name

    def big(cands, avoid=()):
        cands = [c for c in cands if c not in avoid]
        if not cands:
            raise LegoError(f"--dataflow: preset '{preset}' does not apply to workload {w.name} "
                            f"(no suitable iterator); give an explicit dataflow file")
        return max(cands, key=lambda it: (ext[it], -w.iterators.index(it)))

    if preset == "os":
        r = big(out)
        cc = big(out, [r])
        inner = big(red) if red else big(w.iterators, [r, cc])
    elif preset == "ws":
        r = big([i for i in red if i in used[wt]] or red)
        cc = big([i for i in out if i in used[wt]], [r])
        inner = big([i for i in w.iterators if i not in used[wt]] or w.iterators, [r, cc])
    else:
        r = big([i for i in out if i in used[x]])
        cc = big([i for i in red if i in used[x]] or red, [r])
        inner = big([i for i in w.iterators if i not in used[x]] or w.iterators, [r, cc])
    return r, cc, inner


def preset_dataflow(w: Workload, preset: str, P: tuple[int, int]) -> Dataflow:
    base, _, variant = preset.partition("-")
    if preset not in PRESETS:
        raise LegoError(f"--dataflow: unknown dataflow '{preset}' (allowed: {', '.join(PRESETS)}, or a .yaml file)")
    c = (0, 0) if variant == "bcast" else (1, 1)
    table = PRESET_TABLE.get(w.name)
    choice = table[base] if table else _generic_choice(w, base)
    return _tiled(w, preset, *choice, P, c)


def _int_matrix(v, rows: int | None, where: str) -> list[list[int]]:
    if not isinstance(v, list) or not all(isinstance(r, list) for r in v):
        raise LegoError(f"{where}: must be a list of integer rows")
    for r in v:
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in r):
            raise LegoError(f"{where}: entries must be integers")
    if rows is not None and len(v) != rows:
        raise LegoError(f"{where}: has {len(v)} rows, the workload has {rows} iterators (rank mismatch)")
    if len({len(r) for r in v}) > 1:
        raise LegoError(f"{where}: rows have different lengths")
    return v


def file_dataflow(w: Workload, path: Path, P: tuple[int, int]) -> Dataflow:
    from .workload import _safe_load

    doc = _safe_load(Path(path))
    if not isinstance(doc, dict):
        raise LegoError(f"{Path(path).name}: a dataflow file is a mapping (A_T, A_S, b, T, c) or (spatial, inner, c)")
    n = len(w.iterators)
    name = str(doc.get("name", Path(path).stem))
    c = doc.get("c", [1, 1])
    if not isinstance(c, list) or len(c) != len(P) or not all(isinstance(x, int) for x in c):
        raise LegoError(f"c: control vector must be a list of {len(P)} integers")
    if "spatial" in doc:
        sp = doc["spatial"]
        if not isinstance(sp, list) or len(sp) != 2:
            raise LegoError("spatial: must list two iterators (rows, columns)")
        return _tiled(w, name, sp[0], sp[1], doc.get("inner", sp[0]), P, c)
    for key in ("A_T", "A_S", "T"):
        if key not in doc:
            raise LegoError(f"{key}: missing in dataflow file (need A_T, A_S, T, optional b and c)")
    A_T = _int_matrix(doc["A_T"], n, "A_T")
    A_S = _int_matrix(doc["A_S"], n, "A_S")
    T = doc["T"]
    if not isinstance(T, list) or not all(isinstance(x, int) and x >= 1 for x in T):
        raise LegoError("T: must be a list of positive integers (temporal extents)")
    if any(len(r) != len(T) for r in A_T):
        raise LegoError(f"A_T: needs {len(T)} columns (one per temporal loop in T) (shape mismatch)")
    if any(len(r) != len(P) for r in A_S):
        raise LegoError(f"A_S: needs {len(P)} columns (one per array axis of --array) (shape mismatch)")
    b = doc.get("b", [0] * n)
    if not isinstance(b, list) or len(b) != n:
        raise LegoError(f"b: must be a list of {n} integers (rank mismatch)")
    return Dataflow(name, tuple(map(tuple, A_T)), tuple(map(tuple, A_S)), tuple(b), tuple(T), tuple(P),
                    tuple(c), tuple(f"t{k}" for k in range(len(T))))


def _separable_cover(w: Workload, df: Dataflow) -> bool:
    """Proof of injectivity and coverage without enumeration, for maps where every space-time
    coordinate feeds one iterator and each iterator's coordinates form a mixed-radix number
    (coefficients c_1 < c_2 < ... with c_{j+1} = c_j·extent_j, c_1 = 1, b = 0)."""
    M = np.hstack([df.AT, df.AS])
    ext = list(df.T) + list(df.P)
    if (M < 0).any() or (df.bvec != 0).any():
        return False
    owner = {}
    for j in range(M.shape[1]):
        rows = np.nonzero(M[:, j])[0]
        if len(rows) > 1:
            return False
        if len(rows) == 1:
            owner[j] = int(rows[0])
        elif ext[j] > 1:
            return False           # a coordinate that maps to no iterator repeats work
    for i, n in enumerate(w.extents):
        cols = sorted((int(M[i, j]), ext[j]) for j, r in owner.items() if r == i and ext[j] > 1)
        radix = 1
        for c, e in cols:
            if c != radix:
                return False
            radix *= e
        if radix < n:
            return False           # some iterations never run
    return True


def check_dataflow(w: Workload, df: Dataflow) -> Dataflow:
    """Legality: every iteration covered exactly once (injective, covering); shapes consistent."""
    n = len(w.iterators)
    if df.AT.shape[0] != n or df.AS.shape[0] != n or len(df.b) != n:
        raise LegoError(f"--dataflow: {df.name}: matrices have {df.AT.shape[0]} rows, workload has {n} iterators")
    pts = int(np.prod(df.T)) * int(np.prod(df.P))
    if _separable_cover(w, df):
        return df
    if pts > 4_000_000:
        raise LegoError(f"--dataflow: {df.name}: {pts} space-time points is too many to check injectivity by "
                        f"enumeration (max 4e6) and the map is not a separable mixed-radix tiling")
    t = df.time_coords()
    s = np.array(df.fus, dtype=np.int64)
    I = (t @ df.AT.T)[:, None, :] + (s @ df.AS.T)[None, :, :] + df.bvec
    I = I.reshape(-1, n)
    ext = np.array(w.extents)
    inside = np.all((I >= 0) & (I < ext), axis=1)
    lin = np.ravel_multi_index(I[inside].T, w.extents)
    counts = np.bincount(lin, minlength=int(np.prod(ext)))
    if (counts > 1).any():
        k = int(np.argmax(counts > 1))
        pt = np.unravel_index(k, w.extents)
        raise LegoError(f"--dataflow: {df.name}: not injective: iteration {dict(zip(w.iterators, map(int, pt)))} "
                        f"runs {int(counts[k])} times (two space-time points on one iteration)")
    if (counts == 0).any():
        k = int(np.argmin(counts))
        pt = np.unravel_index(k, w.extents)
        raise LegoError(f"--dataflow: {df.name}: iteration {dict(zip(w.iterators, map(int, pt)))} is never executed")
    return df


def make_dataflow(w: Workload, spec: str, P: tuple[int, int]) -> Dataflow:
    if spec.endswith((".yaml", ".yml", ".json")):
        if not Path(spec).is_file():
            raise LegoError(f"--dataflow: file '{spec}' not found")
        df = file_dataflow(w, Path(spec), P)
    else:
        df = preset_dataflow(w, spec, P)
    return check_dataflow(w, df)

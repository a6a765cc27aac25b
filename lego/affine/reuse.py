"""Reuse analysis: exact integer null spaces of the access-times-dataflow matrices.

FUs ``s₁, s₂`` share an element of D when ``A_D(A_T Δt + A_S Δs) = 0``.  Spatial reuse in one step
is the kernel of ``A_D·A_S``; temporal reuse at one FU is the kernel of ``A_D·A_T``.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from math import gcd

import numpy as np

from .dataflow import Dataflow
from .workload import Workload


def rational_nullspace(rows: list[list[int]], ncols: int) -> list[list[Fraction]]:
    """Null-space basis read off the reduced row echelon form, one vector per free column (1 there,
    minus the pivot rows' entries in the pivot columns): the basis sympy's ``Matrix.nullspace`` returns,
    since the RREF is unique."""
    A = [[Fraction(int(x)) for x in r] for r in rows]
    pivots: list[int] = []
    for c in range(ncols):
        r = len(pivots)
        if r == len(A):
            break
        p = next((i for i in range(r, len(A)) if A[i][c] != 0), None)
        if p is None:
            continue
        A[r], A[p] = A[p], A[r]
        A[r] = [x / A[r][c] for x in A[r]]
        for i in range(len(A)):
            if i != r and A[i][c] != 0:
                f = A[i][c]
                A[i] = [a - f * b for a, b in zip(A[i], A[r])]
        pivots.append(c)
    basis = []
    for free in (c for c in range(ncols) if c not in pivots):
        v = [Fraction(0)] * ncols
        v[free] = Fraction(1)
        for row, c in enumerate(pivots):
            v[c] -= A[row][free]
        basis.append(v)
    return basis


def int_nullspace(M: np.ndarray) -> list[tuple[int, ...]]:
    """Integer basis of {x : M x = 0} (primitive vectors, first non-zero entry positive)."""
    M = np.asarray(M, dtype=np.int64)
    if M.size == 0:
        return [tuple(int(i == j) for j in range(M.shape[1])) for i in range(M.shape[1])]
    basis = []
    for v in rational_nullspace(M.tolist(), M.shape[1]):
        den = reduce(lambda a, b: a * b // gcd(a, b), [x.denominator for x in v], 1)
        iv = [int(x * den) for x in v]
        g = reduce(gcd, [abs(x) for x in iv if x]) or 1
        iv = [x // g for x in iv]
        first = next(x for x in iv if x)
        basis.append(tuple(x if first > 0 else -x for x in iv))
    return sorted(basis, key=lambda v: (sum(abs(x) for x in v), [-abs(x) for x in v]))


@dataclass(frozen=True)
class Reuse:
    tensor: str
    spatial: tuple[tuple[int, ...], ...]    # kernel of A_D A_S  (FUs sharing an element in one step)
    temporal: tuple[tuple[int, ...], ...]   # kernel of A_D A_T  (steps reusing an element at one FU)
    full: tuple[tuple[int, ...], ...]       # kernel of [A_D A_T | A_D A_S]
    held: bool                              # consecutive steps reuse the element at one FU (stationary)


def analyze(w: Workload, df: Dataflow, tensor: str) -> Reuse:
    A, _ = w.access(tensor)
    MT = A @ df.AT
    MS = A @ df.AS
    # innermost temporal loop with extent > 1 decides whether the element is held across steps
    inner = [k for k, e in enumerate(df.T) if e > 1]
    held = bool(inner) and not MT[:, inner[-1]].any()
    return Reuse(tensor, tuple(int_nullspace(MS)), tuple(int_nullspace(MT)),
                 tuple(int_nullspace(np.hstack([MT, MS]))), held)

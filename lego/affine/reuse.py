"""Reuse analysis: exact integer null spaces of the access-times-dataflow matrices.

FUs ``s₁, s₂`` share an element of D when ``A_D(A_T Δt + A_S Δs) = 0``.  Spatial reuse in one step
is the kernel of ``A_D·A_S``; temporal reuse at one FU is the kernel of ``A_D·A_T``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from math import gcd

import numpy as np

from .dataflow import Dataflow
from .workload import Workload


def int_nullspace(M: np.ndarray) -> list[tuple[int, ...]]:
    """Integer basis of {x : M x = 0} (primitive vectors, first non-zero entry positive)."""
    import sympy   # imported on first use: it dominates `lego` start-up time

    M = np.asarray(M, dtype=np.int64)
    if M.size == 0:
        return [tuple(int(i == j) for j in range(M.shape[1])) for i in range(M.shape[1])]
    basis = []
    for v in sympy.Matrix(M.tolist()).nullspace():
        den = reduce(lambda a, b: a * b // gcd(a, b), [sympy.fraction(x)[1] for x in v], 1)
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

"""Accumulator width inference: the narrowest two's-complement width that holds every partial sum.

``sw_reference`` accumulates at the output dtype's width and wraps there (32 bits for int32). A partial sum
of one output element is a sum of at most ``terms_per_output(w)`` products, each in ``product_range(w)``
(which contains 0). So every partial sum lies in ``terms * [pmin, pmax]``. When that interval fits in
``b`` < output bits, no sum ever wraps at the output width, and adders, accumulators and output banks of
``b`` bits, sign-extended where the host reads them, are bit-exact against the reference. For GEMM on int8
with K = 64 that is 22 bits instead of 32.

The bound is exact for the built-in nests: the term count is the product of the extents of the loops
that the output index does not determine (K for GEMM, C·R·S for conv2d, R·S for dwconv2d).
"""
from __future__ import annotations

from math import prod

from .reuse import rational_nullspace
from .workload import Tensor, Workload


def value_range(t: Tensor) -> tuple[int, int]:
    """Smallest and largest value of one element of ``t``."""
    if t.signed:
        return -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1
    return 0, (1 << t.bits) - 1


def product_range(w: Workload) -> tuple[int, int]:
    """Smallest and largest product x·w of the two inputs (zero-padded reads give 0, which is inside)."""
    (xl, xh), (wl, wh) = (value_range(t) for t in w.inputs)
    ps = (xl * wl, xl * wh, xh * wl, xh * wh, 0)
    return min(ps), max(ps)


def _rank(cols: list[list[int]], nrows: int) -> int:
    """Rank of the matrix whose columns are ``cols`` (exact, over the rationals)."""
    if not cols:
        return 0
    rows = [[c[r] for c in cols] for r in range(nrows)]
    return len(cols) - len(rational_nullspace(rows, len(cols)))


def terms_per_output(w: Workload) -> int:
    """An upper bound on the iterations that write one output element.

    Pick loops greedily (largest extent first) whose columns of the output access ``A_Y`` are linearly
    independent. Fixing the output index and every other loop leaves at most one value for those loops,
    so the count is at most the product of the other loops' extents."""
    A, _ = w.access(w.output.name)
    nrows = A.shape[0]
    chosen: list[list[int]] = []
    free = []
    for k in sorted(range(len(w.iterators)), key=lambda k: -w.extents[k]):
        col = [int(x) for x in A[:, k]]
        if any(col) and _rank(chosen + [col], nrows) > len(chosen):
            chosen.append(col)
        else:
            free.append(w.extents[k])
    return prod(free)


def acc_bits(w: Workload) -> int:
    """Width of the adders, accumulators and output banks: the output dtype's width, or fewer when no
    partial sum can need it (see the module doc)."""
    n = terms_per_output(w)
    lo, hi = product_range(w)
    lo, hi = n * lo, n * hi
    need = 1
    while not (-(1 << (need - 1)) <= lo and hi <= (1 << (need - 1)) - 1):
        need += 1
    return min(w.output.bits, need)


__all__ = ["value_range", "product_range", "terms_per_output", "acc_bits"]

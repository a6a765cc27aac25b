"""Top-k selection: the exact reference and the quick-select engine model (bit- and cycle-exact with
lego/units/topk.py, the engine SpAtten uses).

Semantics (shared by every SpAtten selection: token pruning, head pruning, local V pruning):
the k largest values; among equal values the lower index wins; the result is the selected indices in
ascending (original) order.

The engine (parallelism P, capacity max_n):
- round 0 partitions the input while it streams in (P elements per cycle), pivot = element 0;
- each later round reads the surviving side from a banked buffer; its pivot is element 0 of row
  ``(lfsr * nrows) >> 16`` (a 16-bit Galois LFSR, taps 0xB400, reset 0xACE1, stepped once per round);
- comparators split a row into >, == and < the pivot; two zero eliminators (prefix-sum compaction)
  append the '>' and '<' elements to two buffers, preserving order;
- when the target rank falls among the pivot's ties, the k-th value is found; an output pass streams
  the original data once more and keeps x > kth, plus the first ``need_eq`` elements equal to kth.
Latency from the start cycle to the done cycle:
    2*ceil(n/P) + 3 + sum over rounds r >= 1 of (ceil(len_r/P) + 3)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LFSR_SEED = 0xACE1
LFSR_TAPS = 0xB400


def lfsr_step(x: int) -> int:
    return (x >> 1) ^ (LFSR_TAPS if x & 1 else 0)


def keep_count(n: int, keep_ratio: float) -> int:
    """Number of elements kept out of n at a keep ratio (round half up, at least 1)."""
    if n <= 0:
        return 0
    return int(min(n, max(1, int(np.floor(keep_ratio * n + 0.5)))))


def topk_reference(values, k: int) -> np.ndarray:
    """Indices of the k largest values, ties to the lower index, in ascending index order."""
    v = np.asarray(values)
    n = v.shape[0]
    if not 0 <= k <= n:
        raise ValueError(f"k={k} out of range for n={n}")
    order = np.lexsort((np.arange(n), -v.astype(np.float64) if v.dtype.kind == "f" else -v.astype(np.int64)))
    return np.sort(order[:k])


@dataclass
class TopKRun:
    indices: np.ndarray
    kth: int
    need_eq: int
    round_lengths: list[int] = field(default_factory=list)  # elements scanned per round, round 0 = n
    cycles: int = 0


def engine_cycles(n: int, round_lengths: list[int], p: int) -> int:
    r0 = -(-n // p)
    return 2 * r0 + 3 + sum(-(-ln // p) + 3 for ln in round_lengths[1:])


def topk_engine(values, k: int, parallelism: int = 16) -> TopKRun:
    """Run the quick-select engine on unsigned integer values; returns indices, k-th value, rounds
    and the exact cycle count of the RTL."""
    x = [int(v) for v in values]
    n = len(x)
    if n == 0 or not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    p = parallelism
    cur = x
    pivot = cur[0]
    t = k - 1
    lfsr = LFSR_SEED
    rounds = [n]
    while True:
        g = [v for v in cur if v > pivot]
        ne = sum(1 for v in cur if v == pivot)
        if t < len(g):
            cur = g
        elif t < len(g) + ne:
            kth, need_eq = pivot, t - len(g) + 1
            break
        else:
            t -= len(g) + ne
            cur = [v for v in cur if v < pivot]
        lfsr = lfsr_step(lfsr)
        nrows = -(-len(cur) // p)
        pivot = cur[((lfsr * nrows) >> 16) * p]
        rounds.append(len(cur))
    sel, ties = [], 0
    for i, v in enumerate(x):
        if v > kth:
            sel.append(i)
        elif v == kth and ties < need_eq:
            sel.append(i)
            ties += 1
    return TopKRun(np.array(sel, dtype=np.int64), kth, need_eq, rounds, engine_cycles(n, rounds, p))


def quickselect_latency_model(n: int, k: int, parallelism: int, rng: np.random.Generator) -> int:
    """The authors' statistical top-k latency model as described in the study notes: random pivots,
    each round costs ceil(len/P) + 3 cycles (rounds only; no load or output pass)."""
    cur = rng.permutation(n)  # distinct values
    t = k - 1
    cyc = 0
    while True:
        cyc += -(-len(cur) // parallelism) + 3
        piv = cur[rng.integers(len(cur))]
        g = cur[cur > piv]
        if t < len(g):
            cur = g
        elif t == len(g):
            return cyc
        else:
            t -= len(g) + 1
            cur = cur[cur < piv]

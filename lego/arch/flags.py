"""Control-flag algebra of the lexicographic step counter, shared by the emitter (which builds the
flags in hardware) and the cycle engine (which evaluates them for all steps at once)."""
from __future__ import annotations

import numpy as np


def same_tables(df, M: np.ndarray) -> list[bool]:
    """same[k]: the tensor index does not change when the step counter increments position k."""
    nT = len(df.T)
    out = []
    for k in range(nT):
        delta = np.zeros(nT, dtype=np.int64)
        delta[k] = 1
        for j in range(k + 1, nT):
            delta[j] = -(df.T[j] - 1)
        out.append(not (M @ delta).any())
    return out


def increment_positions(T) -> np.ndarray:
    """For every step n: the counter position incremented to reach it (len(T) for step 0)."""
    t = np.indices(T).reshape(len(T), -1).T
    nz = t != 0
    return np.where(nz.any(axis=1), len(T) - 1 - np.argmax(nz[:, ::-1], axis=1), len(T))


def last_flags(arch, mode: int) -> np.ndarray:
    """Per step: the output index changes after it (the accumulator flushes)."""
    md = arch.modes[mode]
    df = md.df
    kp = increment_positions(df.T)
    same = np.array(same_tables(df, md.nets[arch.workload.output.name].M) + [False])
    return ~same[np.append(kp[1:], len(df.T))]


def output_writes(arch, mode: int) -> int:
    """In-range accumulator flushes of all output ports over one run."""
    md = arch.modes[mode]
    df = md.df
    Y = arch.workload.output
    ynet = md.nets[Y.name]
    last = last_flags(arch, mode)
    nlast = int(last.sum())
    tmax = np.array(df.T) - 1
    total, tco = 0, None
    for p in ynet.ports:
        k = np.array(p.k)
        lo = k + np.minimum(ynet.M, 0) @ tmax
        hi = k + np.maximum(ynet.M, 0) @ tmax
        if (lo >= 0).all() and (hi < np.array(Y.shape)).all():
            total += nlast                 # this port never leaves the tensor: every flush writes
            continue
        if tco is None:
            tco = df.time_coords()[last]
        d = tco @ ynet.M.T + k
        total += int(np.all((d >= 0) & (d < np.array(Y.shape)), axis=1).sum())
    return total


def single_flush(arch) -> bool:
    """Every output element is written exactly once per run in every mode, so the write ports need no
    read-modify-write (each element is covered, so writes == elements means no revisit)."""
    size = int(np.prod(arch.workload.output.shape))
    return all(output_writes(arch, m.index) == size for m in arch.modes)


def _zero_columns(df, M: np.ndarray) -> list[bool]:
    """Positions that never move the tensor index: a zero column of M, or a counter of extent 1."""
    return [df.T[k] == 1 or not M[:, k].any() for k in range(len(df.T))]


def fresh_positions(arch, mode: int) -> tuple[int, ...]:
    """Counter positions whose all-zero value marks an accumulator flush as the first write of its output
    element in a run (the write port then stores the value instead of adding it to the bank word).

    Positions that never move the output index (reduction counters) and sit outside the innermost such run
    are the revisit counters; the first visit of an element is the one with all of them at 0. That holds
    when (A) the other positions move the index injectively (their columns of M are independent) and (B)
    every increment of a position outside the innermost run changes the index, so every visit ends in a
    flush. Designs where either fails are checked by enumerating their flushes (``_check_fresh``); the
    output banking gives every write port a bank of its own, so ports never share an element."""
    from ..errors import LegoError

    md = arch.modes[mode]
    df = md.df
    Y = arch.workload.output
    M = md.nets[Y.name].M
    nT = len(df.T)
    zero = _zero_columns(df, M)
    j = nT
    while j > 0 and zero[j - 1]:
        j -= 1
    pos = tuple(k for k in range(j) if zero[k] and df.T[k] > 1)
    moving = [k for k in range(nT) if not zero[k]]
    same = same_tables(df, M)
    if np.linalg.matrix_rank(M[:, moving].astype(float)) == len(moving) and \
            not any(same[k] for k in range(j) if df.T[k] > 1):
        return pos
    if not _check_fresh(arch, mode, pos):
        raise LegoError(f"--dataflow: {df.name} revisits output {Y.name} in an order where the first write of an "
                        f"element is not fixed by the step counters; choose another dataflow")
    return pos


def _check_fresh(arch, mode: int, pos: tuple[int, ...], limit: int = 1 << 26) -> bool:
    """Enumerate every in-range flush of every output port: the flushes with the counters ``pos`` at 0 are
    exactly the first writes of their elements."""
    md = arch.modes[mode]
    df = md.df
    Y = arch.workload.output
    ynet = md.nets[Y.name]
    last = last_flags(arch, mode)
    if int(last.sum()) * len(ynet.ports) > limit:
        return False
    tco = df.time_coords()[last]
    fresh = np.all(tco[:, list(pos)] == 0, axis=1) if pos else np.ones(len(tco), bool)
    shape = np.array(Y.shape)
    for p in ynet.ports:
        d = tco @ ynet.M.T + np.array(p.k)
        ok = np.all((d >= 0) & (d < shape), axis=1)
        flat = np.ravel_multi_index(tuple(d[ok].T), Y.shape)
        first = np.zeros(len(flat), bool)
        first[np.unique(flat, return_index=True)[1]] = True
        if not np.array_equal(first, fresh[ok]):
            return False
    return True

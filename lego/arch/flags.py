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

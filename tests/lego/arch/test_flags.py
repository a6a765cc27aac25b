"""lego/arch/flags.py: the step-counter flag algebra, against enumeration of the steps."""
import numpy as np
import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch
from lego.arch.flags import (fresh_positions, increment_positions, last_flags, output_writes, same_tables,
                             single_flush)

CASES = [("gemm", "M=5,N=6,K=3", (2, 4)), ("gemm", "M=4,N=4,K=4", (2, 2)),
         ("conv2d", "C=2,K=3,H=5,W=5,R=2,S=3,STRIDE=2,PAD=1", (2, 3)), ("dwconv2d", "C=3,H=5,W=4", (2, 2)),
         ("bmm", "B=2,M=3,N=5,K=2", (3, 2))]
DFS = ["os", "ws", "is", "ws-bcast"]


def _arch(name, shape, arr, df):
    w = builtin_workload(name, parse_shape(shape, name))
    return build_arch(w, [make_dataflow(w, df, arr)])


def test_increment_positions_by_hand():
    assert increment_positions((2, 3)).tolist() == [2, 1, 1, 0, 1, 1]
    assert increment_positions((3,)).tolist() == [1, 0, 0]
    assert increment_positions((2, 1, 2)).tolist() == [3, 2, 0, 2]
    assert increment_positions((1, 1)).tolist() == [2]


@pytest.mark.parametrize("T", [(2, 3), (3, 1, 2), (2, 2, 2), (4,), (1, 3, 1, 2)])
def test_increment_positions_by_enumeration(T):
    t = np.indices(T).reshape(len(T), -1).T
    want = [len(T)] + [int(np.nonzero(t[n] != t[n - 1])[0][0]) for n in range(1, len(t))]
    assert increment_positions(T).tolist() == want


@pytest.mark.parametrize("name,shape,arr", CASES)
@pytest.mark.parametrize("df", DFS)
def test_flags_by_enumeration(name, shape, arr, df):
    a = _arch(name, shape, arr, df)
    md = a.modes[0]
    t = md.df.time_coords()
    kp = increment_positions(md.df.T)
    Y = a.workload.output
    for tname, net in md.nets.items():
        same = same_tables(md.df, net.M)
        assert len(same) == len(md.df.T)
        for n in range(1, len(t)):       # same[k] says whether the index moves when position k increments
            if md.df.T[kp[n]] > 1:
                assert same[kp[n]] == (not (net.M @ (t[n] - t[n - 1])).any())
    ynet = md.nets[Y.name]
    last = last_flags(a, 0)
    moves = [bool((ynet.M @ (t[n + 1] - t[n])).any()) for n in range(len(t) - 1)] + [True]
    assert last.tolist() == moves
    writes = 0
    seen = {}
    for p in ynet.ports:
        d = t[last] @ ynet.M.T + np.array(p.k)
        ok = np.all((d >= 0) & (d < np.array(Y.shape)), axis=1)
        writes += int(ok.sum())
        for x in map(tuple, d[ok]):
            seen[x] = seen.get(x, 0) + 1
    assert output_writes(a, 0) == writes
    once = len(seen) == int(np.prod(Y.shape)) and all(v == 1 for v in seen.values())
    assert single_flush(a) == once
    if not once:      # the revisit counters at 0 mark exactly the first write of each element
        pos = fresh_positions(a, 0)
        for p in ynet.ports:
            tl = t[last]
            d = tl @ ynet.M.T + np.array(p.k)
            ok = np.all((d >= 0) & (d < np.array(Y.shape)), axis=1)
            first, got = set(), []
            for x, tt in zip(map(tuple, d[ok]), tl[ok]):
                got.append(all(tt[k] == 0 for k in pos) == (x not in first))
                first.add(x)
            assert all(got)


def test_same_tables_by_hand():
    class DF:
        T = (2, 3, 4)
    M = np.array([[1, 0, 0], [0, 0, 1]])      # the index uses positions 0 and 2
    # incrementing position 1 resets position 2 from 3 to 0: the index moves; position 0 resets 1 and 2
    assert same_tables(DF, M) == [False, False, False]
    M = np.array([[1, 0, 0]])
    assert same_tables(DF, M) == [False, True, True]
    M = np.array([[0, 0, 0]])
    assert same_tables(DF, M) == [True, True, True]
    M = np.array([[0, 4, 1]])                 # moving 1 forward and 2 back by 3 moves the index by 1
    assert same_tables(DF, M) == [False, False, False]
    M = np.array([[0, 3, 1]])                 # ... by 3 - 3 = 0: the index stays
    assert same_tables(DF, M) == [False, True, False]


def test_single_flush_and_fresh_on_known_designs():
    assert single_flush(_arch("gemm", "M=4,N=4,K=4", (2, 2), "os"))         # k innermost: one flush each
    ws = _arch("gemm", "M=4,N=4,K=4", (2, 2), "ws")                           # rows k: revisited per t_k
    assert not single_flush(ws)
    assert fresh_positions(ws, 0) == (0,)
    big = _arch("gemm", "M=4,N=4,K=8", (2, 2), "ws")
    assert fresh_positions(big, 0) == (0,)

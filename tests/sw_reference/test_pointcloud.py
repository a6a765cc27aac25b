import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sw_reference import pointcloud as pc


def _brute_fps(x, m):
    n = len(x)
    sel, d = [0], [np.float32(np.inf)] * n
    for _ in range(1, m):
        last = x[sel[-1]]
        for i in range(n):
            dd = x[i] - last
            sq = dd * dd
            d[i] = min(d[i], np.float32(np.float32(sq[0] + sq[1]) + sq[2]))
        best = max(range(n), key=lambda i: (d[i], -i))
        sel.append(best)
    return sel


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 40))
def test_fps_brute(seed, n):
    rng = np.random.default_rng(seed)
    x = (np.round(rng.random((1, n, 3)) * 4) / 4).astype(np.float32)  # ties on purpose
    m = int(rng.integers(1, n + 1))
    assert pc.fps(x, m)[0].tolist() == _brute_fps(x[0], m)


def test_knn_and_ball_query_brute():
    rng = np.random.default_rng(1)
    ref = (np.round(rng.random((2, 60, 3)) * 4) / 4).astype(np.float32)
    q = ref[:, :7].copy()
    d, i = pc.knn(ref, q, 5)
    bq = pc.ball_query(ref, q, 0.3, 4)
    for b in range(2):
        for m in range(7):
            dist = pc.sqdist(q[b, m:m + 1], ref[b])[0]
            order = sorted(range(60), key=lambda j: (dist[j], j))[:5]
            assert i[b, m].tolist() == order
            hits = [j for j in range(60) if dist[j] < np.float32(0.3) * np.float32(0.3)][:4]
            exp = hits + [hits[0]] * (4 - len(hits)) if hits else [-1] * 4
            assert bq[b, m].tolist() == exp


@pytest.mark.parametrize("ts", [1, 2])
def test_kernel_map_matches_hash_map(ts):
    rng = np.random.default_rng(2)
    c = np.unique(rng.integers(-6, 6, (300, 4)).astype(np.int32), axis=0)
    c[:, 0] = np.abs(c[:, 0]) % 2
    c = np.unique(c, axis=0)
    km = pc.kernel_map(c, None, 3, ts)
    table = {tuple(r): i for i, r in enumerate(c.tolist())}
    for o, dl in enumerate(pc.kernel_offsets(3)):
        for i, r in enumerate(c.tolist()):
            key = (r[0], r[1] + dl[0] * ts, r[2] + dl[1] * ts, r[3] + dl[2] * ts)
            assert km[o, i] == table.get(key, -1)
    assert (km[13] == np.arange(len(c))).all()  # centre offset maps every voxel to itself
    pairs = pc.kernel_map_pairs(km)
    assert sum(len(p[0]) for p in pairs) == int((km >= 0).sum())


def test_bad_args():
    with pytest.raises(ValueError, match="^coords:"):
        pc.kernel_map(np.zeros((2, 4), np.int32))
    with pytest.raises(ValueError, match="^k:"):
        pc.knn(np.zeros((1, 5, 3), np.float32), np.zeros((1, 2, 3), np.float32), 6)

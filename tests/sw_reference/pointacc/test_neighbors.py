"""FPS, kNN and ball query against independent oracles.

- FPS: a brute-force O(n^2) FPS (scipy cdist, Python arg-max with explicit ties), a
  float64 scipy variant for the 4k-point Ouster crops, the float32 ``sw_reference.pointcloud`` and
  the ``cuda_kernels`` CPU fallback (exact on centimetre crops: every squared distance < 2**24).
- kNN and ball query: ``scipy.spatial.cKDTree`` on the integer coordinates as float64 (exact here),
  with ties resolved by collecting every point at the k-th distance.
The oracles live in pointacc_oracles.py and use nothing from sw_reference.pointacc.
"""
import numpy as np
import pytest
from pointacc_oracles import ball_oracle, fps_brute, fps_scipy, knn_oracle
from pointacc_testdata import CM, FRAMES, load_frame

import cuda_kernels as ck
from cuda_kernels import _runtime as rt
from sw_reference import pointacc as pa
from sw_reference import pointcloud as pc


@pytest.fixture
def cpu_fallback():
    rt.reset(force_fallback=True)
    yield
    rt.reset()


def grid_cloud(seed: int, n: int, lo: int = 0, hi: int = 5, dims: int = 3) -> np.ndarray:
    """Integer points on a tiny grid: many duplicate points and equal distances."""
    return np.random.default_rng(seed).integers(lo, hi, (n, dims)).astype(np.int32)


# ---------------------------------------------------------------- FPS
@pytest.mark.parametrize("seed", range(6))
def test_fps_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 120))
    p = grid_cloud(seed, n, -2, 3)
    m = int(rng.integers(1, n + 1))  # may exceed the number of distinct points: repeats of index 0
    got = pa.fps(p, m)
    assert got.dtype == np.int64 and got.tolist() == fps_brute(p, m)


def test_fps_distinct_points_first():
    p = np.array([[0, 0, 0], [0, 0, 0], [3, 0, 0], [0, 4, 0], [3, 4, 0]], np.int32)
    assert pa.fps(p, 5).tolist() == [0, 4, 2, 3, 0]  # from 0: d = 9, 16, 25 -> 4; then 2 and 3 tie at 9 -> 2 (lower index); then 3; then all 0 -> 0


def test_fps_ouster_crop(ouster_crop_cm, cpu_fallback):
    p = ouster_crop_cm
    got = pa.fps(p, 512)
    assert np.array_equal(got, fps_scipy(p, 512))
    f = p.astype(np.float32)[None]
    assert np.array_equal(got, pc.fps(f, 512)[0])
    with pytest.warns(RuntimeWarning, match="sw_reference fallback"):
        assert np.array_equal(got, ck.fps(f, 512)[0])
    assert len(set(got.tolist())) == 512


# ---------------------------------------------------------------- kNN
@pytest.mark.parametrize("seed,dims,k", [(0, 3, 1), (1, 3, 7), (2, 3, 40), (3, 8, 20), (4, 2, 5)])
def test_knn_ties_against_kdtree(seed, dims, k):
    p = grid_cloud(seed, 300, -3, 4, dims)
    q = np.concatenate([p[:20], grid_cloud(seed + 100, 30, -4, 5, dims)])
    idx, d2 = pa.knn(p, q, k)
    oi, od = knn_oracle(p, q, k)
    assert np.array_equal(d2, od)
    assert np.array_equal(idx, oi)


def test_knn_full_sort_path():
    p = grid_cloud(7, 25, 0, 3)
    idx, d2 = pa.knn(p, p[:4], 25)
    oi, od = knn_oracle(p, p[:4], 25)
    assert np.array_equal(idx, oi) and np.array_equal(d2, od)
    assert sorted(idx[0].tolist()) == list(range(25))


def test_knn_ouster_crop(ouster_crop_cm, cpu_fallback):
    p = ouster_crop_cm
    q = p[::4]
    idx, d2 = pa.knn(p, q, 16)
    oi, od = knn_oracle(p, q, 16)
    assert np.array_equal(idx, oi) and np.array_equal(d2, od)
    f, fq = p.astype(np.float32)[None], q.astype(np.float32)[None]
    fd, fi = pc.knn(f, fq, 16)
    assert np.array_equal(idx, fi[0]) and np.array_equal(d2, fd[0].astype(np.int64))
    with pytest.warns(RuntimeWarning, match="sw_reference fallback"):
        assert np.array_equal(idx, ck.knn(f, fq, 16)[1][0])


def test_knn_empty_queries():
    idx, d2 = pa.knn(grid_cloud(1, 10), np.zeros((0, 3), np.int32), 3)
    assert idx.shape == (0, 3) and d2.shape == (0, 3)


# ---------------------------------------------------------------- ball query
@pytest.mark.parametrize("seed,radius,k", [(0, 1, 4), (1, 2, 16), (2, 3, 64), (3, 1, 1)])
def test_ball_query_against_kdtree(seed, radius, k):
    p = grid_cloud(seed, 200, -6, 7)
    c = np.concatenate([p[:15], grid_cloud(seed + 50, 40, -12, 13)])  # some centres far from the cloud
    got = pa.ball_query(p, c, radius, k)
    want = ball_oracle(p, c, radius, k)
    assert np.array_equal(got, want)
    assert (got[:15] >= 0).all()  # a centre in the cloud always hits itself
    if seed == 2:
        assert (got == -1).all(axis=1).any() and (got[:, -1] == got[:, 0]).any()  # both paddings exercised


def test_ball_query_inclusive_radius():
    p = np.array([[0, 0, 0], [3, 4, 0], [3, 4, 1], [5, 0, 0], [0, 0, 6]], np.int32)
    assert pa.ball_query(p, p[:1], 5, 4).tolist() == [[0, 1, 3, 0]]  # d2 == 25 is inside
    assert pa.ball_query(p, np.array([[100, 0, 0]]), 5, 3).tolist() == [[-1, -1, -1]]


def test_ball_query_ouster_crop(ouster_crop_cm, cpu_fallback):
    p = ouster_crop_cm
    centers = p[pa.fps(p, 256)]
    got = pa.ball_query(p, centers, 40, 32)  # 40 cm
    assert np.array_equal(got, ball_oracle(p, centers, 40, 32))
    # the float32 reference uses d < r*r: r = sqrt(40**2 + 0.5) selects the same integer distances
    f, fc = p.astype(np.float32)[None], centers.astype(np.float32)[None]
    rf = float(np.sqrt(40 * 40 + 0.5))
    assert np.array_equal(got, pc.ball_query(f, fc, rf, 32)[0])
    with pytest.warns(RuntimeWarning, match="sw_reference fallback"):
        assert np.array_equal(got, ck.ball_query(f, fc, rf, 32)[0])
    assert (got[:, -1] == got[:, 0]).any() and (got[:, -1] != got[:, 0]).any()


@pytest.mark.slow
@pytest.mark.parametrize("name", FRAMES)
def test_full_frame(name):
    """A whole Ouster frame in centimetres (squared distances beyond float32, exact in int64)."""
    p = pa.quantize(load_frame(name), CM)
    sel = pa.fps(p, 1024)
    assert np.array_equal(sel, fps_scipy(p, 1024))
    idx, d2 = pa.knn(p, p[sel], 16)
    oi, od = knn_oracle(p, p[sel], 16)
    assert np.array_equal(idx, oi) and np.array_equal(d2, od)
    assert np.array_equal(pa.ball_query(p, p[sel], 50, 32), ball_oracle(p, p[sel], 50, 32))


def test_sqdist_exact_at_range_limits():
    a = np.array([[pa.COORD_MIN] * 3, [0, 0, 0]])
    b = np.array([[pa.COORD_MAX] * 3])
    assert pa.sqdist(a, b).tolist() == [[3 * (2 ** 21 - 1) ** 2], [3 * (2 ** 20 - 1) ** 2]]


# ---------------------------------------------------------------- bad inputs
P10 = grid_cloud(0, 10)
BAD = [
    (lambda: pa.knn(P10, P10, 20), "k: 20 > n = 10 points"),
    (lambda: pa.knn(P10, P10, 0), "k: must be a positive int, got 0"),
    (lambda: pa.knn(P10, P10, 2.0), "k: must be an int, got 2.0"),
    (lambda: pa.knn(P10, P10[:, :2], 2), "queries: expected 3 columns, got 2"),
    (lambda: pa.knn(np.zeros((0, 3), np.int32), P10, 1), "points: empty cloud (0 points)"),
    (lambda: pa.knn(P10.astype(np.float32), P10, 1), "points: expected an integer (N, D) array, got float32 (10, 3)"),
    (lambda: pa.fps(P10, 11), "m: 11 > n = 10 points"),
    (lambda: pa.fps(P10, -1), "m: must be a positive int, got -1"),
    (lambda: pa.fps(np.array([[0, 0, 1 << 20]]), 1),
     "points: coordinate 1048576 outside the quantization range [-1048576, 1048575]"),
    (lambda: pa.ball_query(P10, P10, 0, 4), "radius: must be a positive int, got 0"),
    (lambda: pa.ball_query(P10, P10, -3, 4), "radius: must be a positive int, got -3"),
    (lambda: pa.ball_query(P10, P10, 0.5, 4), "radius: must be an int, got 0.5"),
    (lambda: pa.ball_query(P10, P10, 2, 0), "k: must be a positive int, got 0"),
    (lambda: pa.ball_query(np.zeros((0, 3), np.int32), P10, 2, 4), "points: empty cloud (0 points)"),
    (lambda: pa.ball_query(P10, np.zeros((2, 4), np.int32), 2, 4), "centers: expected 3 columns, got 4"),
]


@pytest.mark.parametrize("call,msg", BAD)
def test_bad_inputs(call, msg):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == msg

"""Sort-merge kernel maps against a Python dict (hash-map) oracle, the float reference's
sort + search map (``sw_reference.pointcloud``) and the ``cuda_kernels`` CPU fallback."""
import itertools

import numpy as np
import pytest
from pointacc_testdata import FRAMES, load_frame

import cuda_kernels as ck
from cuda_kernels import _runtime as rt
from sw_reference import pointacc as pa
from sw_reference import pointcloud as pc


def axis_offsets(k: int) -> list[int]:
    return list(range(-(k // 2), k // 2 + 1)) if k % 2 else list(range(k))


def kmap_oracle(cin: np.ndarray, cout: np.ndarray, k: int, ts: int) -> list[np.ndarray]:
    """Hash-map kernel map: per offset (dx slowest, dz fastest), pairs (in, out) by ascending out."""
    table = {tuple(c): i for i, c in enumerate(cin.tolist())}
    assert len(table) == len(cin)
    maps = []
    for d in itertools.product(axis_offsets(k), repeat=3):
        rows = []
        for o, c in enumerate(cout.tolist()):
            i = table.get((c[0] + d[0] * ts, c[1] + d[1] * ts, c[2] + d[2] * ts))
            if i is not None:
                rows.append((i, o))
        maps.append(np.array(rows, dtype=np.int64).reshape(-1, 2))
    return maps


def downsample_oracle(c: np.ndarray, s: int) -> np.ndarray:
    return np.array(sorted({tuple(v // s * s for v in row) for row in c.tolist()}), dtype=np.int64)


def sparse_coords(seed: int, n: int, extent: int, ts: int = 1) -> np.ndarray:
    """n unique random coordinates (multiples of ts, some negative), in shuffled order."""
    rng = np.random.default_rng(seed)
    c = np.unique(rng.integers(-extent, extent, (n, 3)), axis=0) * ts
    return c[rng.permutation(len(c))].astype(np.int32)


def assert_same_map(km: pa.KernelMap, want: list[np.ndarray]) -> None:
    assert len(km.pairs) == len(want)
    for o, (got, exp) in enumerate(zip(km.pairs, want)):
        assert got.dtype == np.int64
        assert np.array_equal(got, exp), f"offset {o}"


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_kernel_offsets_order(k):
    offs = pa.kernel_offsets(k)
    assert offs.tolist() == [list(d) for d in itertools.product(axis_offsets(k), repeat=3)]
    if k == 3:
        assert offs[13].tolist() == [0, 0, 0] and offs[0].tolist() == [-1, -1, -1] and offs[1].tolist() == [-1, -1, 0]


def merge_oracle(a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
    """A plain two-pointer merge of two sorted lists."""
    i = j = 0
    ia, ib = [], []
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            ia.append(i)
            ib.append(j)
            i += 1
            j += 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return ia, ib


@pytest.mark.parametrize("seed", range(4))
def test_merge_intersect_two_pointer(seed):
    rng = np.random.default_rng(seed)
    a = np.unique(rng.integers(-10**12, 10**12, 300) // 10**10)
    b = np.unique(rng.integers(-10**12, 10**12, 200) // 10**10)
    ia, ib = pa.merge_intersect(a, b)
    wa, wb = merge_oracle(a.tolist(), b.tolist())
    assert ia.tolist() == wa and ib.tolist() == wb
    assert len(wa) == len(set(a.tolist()) & set(b.tolist())) > 0
    e, _ = pa.merge_intersect(a, np.zeros(0, np.int64))
    assert e.size == 0


@pytest.mark.parametrize("k,ts", [(2, 1), (3, 1), (3, 2), (5, 1), (2, 2)])
def test_submanifold_against_dict(k, ts):
    c = sparse_coords(10 * k + ts, 400, 7, ts)
    km = pa.submanifold_kernel_map(c, k, ts)
    want = kmap_oracle(c, c, k, ts)
    assert_same_map(km, want)
    assert km.tensor_stride == ts and km.n_pairs == sum(len(w) for w in want)
    if k % 2:
        center = len(want) // 2
        assert np.array_equal(km.pairs[center], np.stack([np.arange(len(c))] * 2, axis=1))


@pytest.mark.parametrize("k,s,ts", [(2, 2, 1), (3, 2, 1), (2, 2, 2), (3, 3, 1), (3, 2, 2)])
def test_strided_against_dict(k, s, ts):
    c = sparse_coords(100 + 10 * k + s + ts, 500, 9, ts)
    out, km = pa.strided_kernel_map(c, k, s, ts)
    assert np.array_equal(out, downsample_oracle(c, s * ts))
    assert_same_map(km, kmap_oracle(c, out, k, ts))
    if k == 2 and s == 2:  # K = s = 2 tiles the input: every input appears exactly once
        ins = np.concatenate([p[:, 0] for p in km.pairs])
        assert sorted(ins.tolist()) == list(range(len(c)))


def test_coordinates_at_the_range_limits():
    lim = [pa.COORD_MIN, pa.COORD_MAX]
    c = np.array([[x, y, z] for x in lim for y in lim for z in (lim[0], lim[0] + 1, lim[1] - 1, lim[1])], np.int32)
    assert_same_map(pa.submanifold_kernel_map(c, 3), kmap_oracle(c, c, 3, 1))


def test_kernel_map_ouster_crop(ouster_crop):
    vox, _ = pa.voxelize(ouster_crop, 0.05)
    assert len(vox) > 2000
    assert_same_map(pa.submanifold_kernel_map(vox, 3), kmap_oracle(vox, vox, 3, 1))
    out, km = pa.strided_kernel_map(vox, 2, 2)
    assert_same_map(km, kmap_oracle(vox, out, 2, 1))


def with_batch(c: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((len(c), 1), np.int32), c.astype(np.int32)], axis=1)


@pytest.mark.parametrize("ts", [1, 2])
def test_matches_float_reference(ts):
    c = sparse_coords(7 + ts, 600, 8, ts)
    km = pa.submanifold_kernel_map(c, 3, ts)
    dense = pa.kernel_map_dense(km, len(c))
    assert np.array_equal(dense, pc.kernel_map(with_batch(c), None, 3, ts))
    out, kms = pa.strided_kernel_map(c, 3, 2, ts)
    assert np.array_equal(pa.kernel_map_dense(kms, len(out)), pc.kernel_map(with_batch(c), with_batch(out), 3, ts))


@pytest.mark.parametrize("ts", [1, 2])
def test_cuda_fallback_matches_the_dense_map(ts):
    c = sparse_coords(7 + ts, 600, 8, ts)
    dense = pa.kernel_map_dense(pa.submanifold_kernel_map(c, 3, ts), len(c))
    rt.reset(force_fallback=True)
    try:
        with pytest.warns(RuntimeWarning, match="sw_reference fallback"):
            assert np.array_equal(dense, ck.kernel_map(with_batch(c), None, 3, ts))
    finally:
        rt.reset()


@pytest.mark.slow
@pytest.mark.parametrize("name", FRAMES)
def test_full_frame_against_dict_and_float_reference(name):
    vox, _ = pa.voxelize(load_frame(name), 0.05)
    km = pa.submanifold_kernel_map(vox, 3)
    assert_same_map(km, kmap_oracle(vox, vox, 3, 1))
    assert np.array_equal(pa.kernel_map_dense(km, len(vox)), pc.kernel_map(with_batch(vox), None, 3, 1))
    out, kms = pa.strided_kernel_map(vox, 2, 2)
    assert_same_map(kms, kmap_oracle(vox, out, 2, 1))


C3 = np.array([[0, 0, 0], [1, 2, 3], [4, 5, 6], [1, 2, 3]], np.int32)
BAD = [
    (lambda: pa.submanifold_kernel_map(C3, 3),
     "in_coords: duplicate coordinate (1, 2, 3) at rows 1 and 3; a kernel map needs unique coordinates"),
    (lambda: pa.kernel_map(C3[:3], C3, 3),
     "out_coords: duplicate coordinate (1, 2, 3) at rows 1 and 3; a kernel map needs unique coordinates"),
    (lambda: pa.kernel_map(np.zeros((0, 3), np.int32), C3[:3], 3), "in_coords: empty cloud (0 points)"),
    (lambda: pa.submanifold_kernel_map(C3[:3], 0), "kernel_size: must be >= 1, got 0"),
    (lambda: pa.submanifold_kernel_map(C3[:3], 8), "kernel_size: must be <= 7, got 8"),
    (lambda: pa.submanifold_kernel_map(C3[:3], 3, 0), "tensor_stride: must be >= 1, got 0"),
    (lambda: pa.strided_kernel_map(C3[:3], 2, 0), "stride: must be >= 1, got 0"),
    (lambda: pa.submanifold_kernel_map(C3[:3].astype(np.float64), 3),
     "in_coords: expected an integer (N, 3) array, got float64 (3, 3)"),
    (lambda: pa.submanifold_kernel_map(np.array([[0, 0, -(1 << 20) - 1]]), 3),
     "in_coords: coordinate -1048577 outside the quantization range [-1048576, 1048575]"),
    (lambda: pa.merge_intersect(np.array([1, 3, 2]), np.array([1])), "a: keys must be strictly increasing"),
    (lambda: pa.merge_intersect(np.array([1, 2]), np.array([4, 4])), "b: keys must be strictly increasing"),
]


@pytest.mark.parametrize("call,msg", BAD)
def test_bad_inputs(call, msg):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == msg

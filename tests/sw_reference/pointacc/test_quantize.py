"""quantize / voxelize / downsample / sort keys against plain-Python and numpy.unique oracles."""
import math

import numpy as np
import pytest
from pointacc_testdata import FRAMES, load_frame

from sw_reference import pointacc as pa


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantize_matches_python_round(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((300, 3)) * 20).astype(np.float32)
    x[:60] = rng.integers(-40, 40, (60, 3)) / 4  # exact halves: round-half-to-even cases
    scale, offset = [2.0, 1000.0, 37.5][seed], [(0, 0, 0), (1.5, -2.25, 0.125), (-3, 7, 0.5)][seed]
    q = pa.quantize(x, scale, offset)
    want = [[round((float(v) - float(o)) * scale) for v, o in zip(row, offset)] for row in x]
    assert q.dtype == np.int32
    assert q.tolist() == want
    back = pa.dequantize(q, scale, offset)
    assert np.abs(back - x.astype(np.float64)).max() <= 0.5 / scale + 1e-12


def test_quantize_half_to_even_examples():
    x = np.array([[0.5, 1.5, 2.5], [-0.5, -1.5, -2.5]], np.float32)
    assert pa.quantize(x, 1.0).tolist() == [[0, 2, 2], [0, -2, -2]]


@pytest.mark.parametrize("seed", [3, 4])
def test_voxelize_matches_unique(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2000, 3)) * 3).astype(np.float32)
    vox, inv = pa.voxelize(x, 0.25)
    cells = [tuple(math.floor(float(v) / 0.25) for v in row) for row in x]
    want = sorted(set(cells))
    assert vox.dtype == np.int32 and inv.dtype == np.int64
    assert [tuple(r) for r in vox.tolist()] == want
    pos = {c: i for i, c in enumerate(want)}
    assert inv.tolist() == [pos[c] for c in cells]
    assert (vox.min() < 0) and len(want) < len(cells)  # negative cells and merged points were exercised


@pytest.mark.parametrize("name,counts", [(FRAMES[0], (103091, 77741)), (FRAMES[1], (110390, 79112))])
def test_voxelize_ouster_counts_match_readme(name, counts):
    xyz = load_frame(name)
    for v, want in zip((0.05, 0.1), counts):
        vox, inv = pa.voxelize(xyz, v)
        assert vox.shape == (want, 3)
        assert np.array_equal(vox[inv], np.floor(xyz.astype(np.float64) / v).astype(np.int32))


def test_coord_keys_order_is_lexicographic():
    rng = np.random.default_rng(5)
    c = rng.integers(pa.COORD_MIN, pa.COORD_MAX + 1, (500, 3))
    c[:100] = rng.integers(-3, 3, (100, 3))  # many shared prefixes
    c[100] = [pa.COORD_MIN] * 3
    c[101] = [pa.COORD_MAX] * 3
    keys = pa.coord_keys(c)
    by_key = c[np.argsort(keys, kind="stable")].tolist()
    assert by_key == sorted(c.tolist())
    assert np.array_equal(pa.keys_to_coords(keys), c)


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
def test_downsample_matches_python_floor(stride):
    rng = np.random.default_rng(10 + stride)
    c = rng.integers(-20, 20, (400, 3)).astype(np.int32)
    out, inv = pa.downsample(c, stride)
    cells = [tuple((v // stride) * stride for v in row) for row in c.tolist()]
    want = sorted(set(cells))
    assert [tuple(r) for r in out.tolist()] == want
    assert [tuple(r) for r in out[inv].tolist()] == cells


def test_unique_coords_inverse():
    rng = np.random.default_rng(6)
    c = rng.integers(-2, 3, (200, 3))
    u, inv = pa.unique_coords(c)
    assert [tuple(r) for r in u.tolist()] == sorted({tuple(r) for r in c.tolist()})
    assert np.array_equal(u[inv], c)


LIM = pa.COORD_MAX + 1
BAD = [
    (lambda: pa.quantize(np.array([[0, np.nan, 0]], np.float32), 1.0),
     "xyz: 1 points have NaN or Inf coordinates (first at row 0)"),
    (lambda: pa.quantize(np.array([[0, 0, 0], [1, 1, np.inf]]), 1.0),
     "xyz: 1 points have NaN or Inf coordinates (first at row 1)"),
    (lambda: pa.quantize(np.zeros((0, 3), np.float32), 1.0), "xyz: empty cloud (0 points)"),
    (lambda: pa.quantize(np.zeros((4, 2), np.float32), 1.0), "xyz: expected a real (N, 3) array, got float32 (4, 2)"),
    (lambda: pa.quantize(np.zeros((4, 3)), 0.0), "scale: must be a positive finite number, got 0.0"),
    (lambda: pa.quantize(np.zeros((4, 3)), float("nan")), "scale: must be a positive finite number, got nan"),
    (lambda: pa.quantize(np.full((1, 3), 2000.0), 1000.0),
     f"xyz: quantized coordinate 2000000 outside the quantization range [{-LIM}, {LIM - 1}]"),
    (lambda: pa.quantize(np.zeros((1, 3)), 1.0, offset=(0, 0)), "offset: expected 3 finite numbers, got (0, 0)"),
    (lambda: pa.voxelize(np.zeros((2, 3)), -0.1), "voxel_size: must be a positive finite number, got -0.1"),
    (lambda: pa.voxelize(np.array([[-2e6, 0, 0]]), 1.0),
     f"xyz: voxel coordinate -2000000 outside the quantization range [{-LIM}, {LIM - 1}]"),
    (lambda: pa.downsample(np.zeros((3, 3), np.int32), 0), "stride: must be >= 1, got 0"),
    (lambda: pa.downsample(np.zeros((0, 3), np.int32), 2), "coords: empty cloud (0 points)"),
    (lambda: pa.downsample(np.array([[LIM, 0, 0]]), 2),
     f"coords: coordinate {LIM} outside the quantization range [{-LIM}, {LIM - 1}]"),
    (lambda: pa.downsample(np.array([[-LIM, 0, 0]]), 3),
     f"coords: downsampled coordinate {-LIM - 2} outside the quantization range [{-LIM}, {LIM - 1}]"),
    (lambda: pa.downsample(np.zeros((3, 3), np.float32), 2), "coords: expected an integer (N, 3) array, got float32 (3, 3)"),
    (lambda: pa.coord_keys(np.zeros((3, 4), np.int32)), "coords: expected 3 columns, got 4"),
]


@pytest.mark.parametrize("call,msg", BAD)
def test_bad_inputs(call, msg):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == msg

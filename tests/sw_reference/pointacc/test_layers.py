"""Integer network layers against independent oracles.

- set abstraction: scipy FPS + cKDTree ball query + a numpy-einsum MLP with floor-division
  requantization (``pointacc_oracles``), on the 4096-point Ouster crops;
- EdgeConv: cKDTree kNN in feature space (ties resolved explicitly) + the same MLP oracle;
- sparse convolution: a dense Conv3d evaluated over the whole voxel grid with numpy, read at the
  active output sites (the TorchSparse test recipe), on random sparse tensors and on voxelized crops.
"""
import itertools

import numpy as np
import pytest
from pointacc_oracles import ball_oracle, fps_scipy, knn_oracle, mlp_oracle_np

from sw_reference import pointacc as pa


def random_layers(rng, widths, shifts):
    return [pa.Layer(rng.integers(-128, 128, (a, b)).astype(np.int8), rng.integers(-500, 500, b).astype(np.int32), s)
            for a, b, s in zip(widths[:-1], widths[1:], shifts)]


def non_degenerate(y: np.ndarray) -> bool:
    """Many distinct values, few saturated: the requantization shifts exercise real data."""
    return len(np.unique(y)) > 20 and np.mean(np.abs(y.astype(np.int64)) == 127) < 0.5


# ---------------------------------------------------------------- PointNet++ set abstraction
def test_set_abstraction_ouster_crop(ouster_crop_cm):
    p = ouster_crop_cm
    rng = np.random.default_rng(0)
    feats = rng.integers(-128, 128, (len(p), 4)).astype(np.int8)
    layers = random_layers(rng, [7, 16, 32], [8, 11])
    out = pa.set_abstraction(p, feats, 256, 40, 32, layers)
    ci = fps_scipy(p, 256)
    nb = ball_oracle(p, p[ci], 40, 32)
    grouped = np.concatenate([p[nb].astype(np.int64) - p[ci][:, None, :], feats[nb]], axis=-1)
    want = mlp_oracle_np(grouped, layers).max(axis=1)
    assert np.array_equal(out.center_index, ci)
    assert np.array_equal(out.centers, p[ci]) and out.centers.dtype == np.int32
    assert np.array_equal(out.neighbors, nb)
    assert out.features.dtype == np.int8 and np.array_equal(out.features, want)
    assert non_degenerate(out.features)
    assert (nb[:, -1] == nb[:, 0]).any()  # some groups were padded


def test_set_abstraction_without_features_and_group_all():
    rng = np.random.default_rng(1)
    p = rng.integers(-60, 60, (700, 3)).astype(np.int32)
    layers = random_layers(rng, [3, 24, 16], [5, 10])
    out = pa.set_abstraction(p, None, 64, 25, 16, layers)
    centers = p[fps_scipy(p, 64)]
    nb = ball_oracle(p, centers, 25, 16)
    want = mlp_oracle_np(p[nb].astype(np.int64) - centers[:, None, :], layers).max(axis=1)
    assert np.array_equal(out.features, want) and non_degenerate(out.features)

    feats = rng.integers(-128, 128, (700, 5)).astype(np.int8)
    layers2 = random_layers(rng, [8, 32, 64], [8, 9])
    g = pa.set_abstraction_all(p, feats, layers2)
    want2 = mlp_oracle_np(np.concatenate([p, feats], axis=1), layers2).max(axis=0)
    assert g.shape == (64,) and np.array_equal(g, want2) and len(np.unique(g)) > 10


# ---------------------------------------------------------------- DGCNN EdgeConv
def edge_conv_oracle(x: np.ndarray, k: int, layers) -> tuple[np.ndarray, np.ndarray]:
    idx, _ = knn_oracle(x, x, k)
    xi = np.repeat(x[:, None, :].astype(np.int64), k, axis=1)
    edge = np.concatenate([xi, x[idx].astype(np.int64) - xi], axis=-1)
    return mlp_oracle_np(edge, layers).max(axis=1), idx


def test_edge_conv_feature_space_with_ties():
    rng = np.random.default_rng(2)
    x = rng.integers(-4, 5, (400, 6)).astype(np.int8)  # small range: many equal feature distances
    layers = random_layers(rng, [12, 32, 32], [4, 10])
    out = pa.edge_conv(x, 20, layers)
    want, idx = edge_conv_oracle(x, 20, layers)
    assert np.array_equal(out.neighbors, idx)
    assert np.array_equal(out.features, want) and non_degenerate(out.features)


def test_edge_conv_ouster_crop_xyz(ouster_crop_cm):
    """DGCNN's first EdgeConv runs on coordinates (here integer centimetres)."""
    rng = np.random.default_rng(3)
    layers = random_layers(rng, [6, 16], [9])
    out = pa.edge_conv(ouster_crop_cm, 20, layers)
    want, idx = edge_conv_oracle(ouster_crop_cm, 20, layers)
    assert np.array_equal(out.neighbors, idx) and np.array_equal(out.features, want)
    assert non_degenerate(out.features)


# ---------------------------------------------------------------- MinkowskiNet sparse convolution
def axis_offsets(k: int) -> list[int]:
    return list(range(-(k // 2), k // 2 + 1)) if k % 2 else list(range(k))


def dense_conv_oracle(cin, feats, cout, weight, k, ts):
    """Dense Conv3d (correlation, dilation ts) over a zero-filled voxel grid, read at the output sites.

    out[c] = sum_d W[d]^T G[c + d*ts]; a stride-s convolution is the stride-1 one read at the
    (coarser) output coordinates.
    """
    offs = list(itertools.product(axis_offsets(k), repeat=3))
    lo = np.minimum(cin.min(axis=0), cout.min(axis=0)).astype(np.int64)
    hi = np.maximum(cin.max(axis=0), cout.max(axis=0)).astype(np.int64)
    size = hi - lo + 1
    pad = (k - 1) * ts
    grid = np.zeros(tuple(size + 2 * pad) + (feats.shape[1],), np.int64)
    gi = cin - lo + pad
    grid[gi[:, 0], gi[:, 1], gi[:, 2]] = feats
    dense = np.zeros(tuple(size) + (weight.shape[2],), np.int64)
    for o, d in enumerate(offs):
        s = [pad + d[a] * ts for a in range(3)]
        view = grid[s[0]:s[0] + size[0], s[1]:s[1] + size[1], s[2]:s[2] + size[2]]
        dense += np.einsum("xyzc,co->xyzo", view, weight[o].astype(np.int64))
    oi = cout - lo
    return dense[oi[:, 0], oi[:, 1], oi[:, 2]]


def random_sparse(seed, n, extent, ts, cin_ch):
    rng = np.random.default_rng(seed)
    c = np.unique(rng.integers(-extent, extent, (n, 3)), axis=0) * ts
    c = c[rng.permutation(len(c))].astype(np.int32)
    return c, rng.integers(-128, 128, (len(c), cin_ch)).astype(np.int8), rng


@pytest.mark.parametrize("k,stride,ts", [(3, 1, 1), (2, 1, 1), (3, 1, 2), (2, 2, 1), (3, 2, 1), (2, 2, 2), (3, 3, 1)])
def test_sparse_conv_against_dense(k, stride, ts):
    c, f, rng = random_sparse(k * 100 + stride * 10 + ts, 300, 6, ts, 3)
    w = rng.integers(-128, 128, (k ** 3, 3, 4)).astype(np.int8)
    b = rng.integers(-1000, 1000, 4).astype(np.int32)
    if stride == 1:
        out_c, km = c, pa.submanifold_kernel_map(c, k, ts)
    else:
        out_c, km = pa.strided_kernel_map(c, k, stride, ts)
    acc = pa.sparse_conv(f, w, km, len(out_c), b)
    want = dense_conv_oracle(c, f, out_c, w, k, ts) + b
    assert acc.dtype == np.int64 and np.array_equal(acc, want)
    assert np.count_nonzero(want) > want.size // 2


def test_sparse_conv_block_on_ouster_crop(ouster_crop):
    """A MinkowskiNet block: submanifold conv 3 -> ReLU -> requant, then a stride-2 conv (K = 2)."""
    vox, _ = pa.voxelize(ouster_crop, 0.1)
    rng = np.random.default_rng(4)
    f = rng.integers(-128, 128, (len(vox), 4)).astype(np.int8)
    w1 = rng.integers(-128, 128, (27, 4, 8)).astype(np.int8)
    acc1 = pa.sparse_conv(f, w1, pa.submanifold_kernel_map(vox, 3), len(vox))
    assert np.array_equal(acc1, dense_conv_oracle(vox, f, vox, w1, 3, 1))
    h = pa.requantize(np.maximum(acc1, 0), 9)
    assert non_degenerate(h)
    out_c, km = pa.strided_kernel_map(vox, 2, 2)
    w2 = rng.integers(-128, 128, (8, 8, 16)).astype(np.int8)
    acc2 = pa.sparse_conv(h, w2, km, len(out_c))
    assert np.array_equal(acc2, dense_conv_oracle(vox, h, out_c, w2, 2, 1))
    assert len(vox) > 900 and len(out_c) < len(vox)


P = np.random.default_rng(9).integers(0, 50, (500, 3)).astype(np.int32)
L1 = [pa.Layer(np.ones((3, 4), np.int8), None, 2)]
KM = pa.submanifold_kernel_map(P[:20], 3)
BAD = [
    (lambda: pa.set_abstraction(P, None, 600, 5, 8, L1), "n_centers: 600 > n = 500 points"),
    (lambda: pa.set_abstraction(P, None, 0, 5, 8, L1), "n_centers: must be a positive int, got 0"),
    (lambda: pa.set_abstraction(P, None, 10, 0, 8, L1), "radius: must be a positive int, got 0"),
    (lambda: pa.set_abstraction(P, None, 10, 5, 0, L1), "k: must be a positive int, got 0"),
    (lambda: pa.set_abstraction(P, np.zeros((499, 2), np.int8), 10, 5, 8, L1),
     "feats: expected an integer (500, C) array, got int8 (499, 2)"),
    (lambda: pa.set_abstraction(P, np.zeros((500, 2), np.int8), 10, 5, 8, L1),
     "layers[0].weight: C_in = 3 but the input has 5 channels"),
    (lambda: pa.set_abstraction(np.zeros((0, 3), np.int32), None, 1, 5, 8, L1), "points: empty cloud (0 points)"),
    (lambda: pa.edge_conv(P[:10], 30, L1), "k: 30 > n = 10 points"),
    (lambda: pa.edge_conv(P[:10].astype(np.float32), 3, L1),
     "feats: expected an integer (N, D) array, got float32 (10, 3)"),
    (lambda: pa.sparse_conv(np.zeros((20, 4), np.int8), np.zeros((8, 4, 2), np.int8), KM, 20),
     "weight: expected int8 (27, 4, C_out), got int8 (8, 4, 2)"),
    (lambda: pa.sparse_conv(np.zeros((20, 4), np.float32), np.zeros((27, 4, 2), np.int8), KM, 20),
     "feats: expected an integer (N_in, C_in) array, got float32 (20, 4)"),
    (lambda: pa.sparse_conv(np.zeros((20, 4), np.int8), np.zeros((27, 4, 2), np.int8), KM, 20, np.zeros(2)),
     "bias: expected int32 (2,), got float64 (2,)"),
    (lambda: pa.sparse_conv(np.zeros((20, 4), np.int8), np.zeros((27, 4, 2), np.int8), KM, 5),
     "kmap: offset 13 has an index outside feats (20) or n_out (5)"),
]


@pytest.mark.parametrize("call,msg", BAD)
def test_bad_inputs(call, msg):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == msg

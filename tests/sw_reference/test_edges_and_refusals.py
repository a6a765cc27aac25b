"""Edges of the sw_reference golden models found by the mutation bench (bench/mutation.py): inclusive
bounds, refusals naming their field, and values checked by hand."""
import numpy as np
import pytest

from sw_reference import pointcloud as pc
from sw_reference.attention_float import compact_kv
from sw_reference.gelu_fx import gelu_params
from sw_reference.pq_gemm import pq_gemm, threshold_q
from sw_reference.spatten import fixed
from sw_reference.spatten.topk import topk_reference
from sw_reference.topk import sortable_key


def test_threshold_q_accepts_one_and_refuses_outside():
    assert threshold_q(1.0) == 65536 and threshold_q(0.5) == 32768 and threshold_q(1e-9) == 1
    for bad in (0.0, 1.0000001, -0.1):
        with pytest.raises(ValueError, match=r"^threshold: must be in \(0, 1\], got "):
            threshold_q(bad)


def test_pq_gemm_refuses_k_of_another_batch():
    q = np.zeros((2, 3, 4), np.int8)
    with pytest.raises(ValueError, match=r"^k: expected \(B, N, D\) matching q \(2, 3, 4\), got \(1, 5, 4\)$"):
        pq_gemm(q, np.zeros((1, 5, 4), np.int64))


def test_compact_kv_refuses_index_equal_to_length():
    k = np.arange(2 * 1 * 4 * 2).reshape(2, 1, 4, 2)
    kc, _ = compact_kv(k, k, np.array([[3, 0], [1, 2]]))
    assert kc[0, 0].tolist() == [[6, 7], [0, 1]] and kc[1, 0].tolist() == [[10, 11], [12, 13]]
    with pytest.raises(ValueError, match="^idx: token index out of range$"):
        compact_kv(k, k, np.array([[4, 0], [1, 2]]))


def test_gelu_params_refuses_a_tiny_output_scale():
    with pytest.raises(ValueError, match=r"^gelu_params: output scale 1e-12 too small for input scale 1\.0$"):
        gelu_params(1.0, 1e-12)


def test_pointcloud_refusals_name_the_argument():
    with pytest.raises(ValueError, match=r"^xyz: expected float32 \(B, N, 3\), got float64 \(1, 4, 3\)$"):
        pc.ball_query(np.zeros((1, 4, 3)), np.zeros((1, 2, 3), np.float32), 1.0, 2)
    with pytest.raises(ValueError, match=r"^centers: batch 2 != xyz batch 1$"):
        pc.ball_query(np.zeros((1, 5, 3), np.float32), np.zeros((2, 2, 3), np.float32), 1.0, 2)


def test_sortable_key_refuses_nan():
    with pytest.raises(ValueError, match="^x: NaN values have no top-k order$"):
        sortable_key(np.array([1.0, np.nan], np.float32))


def test_spatten_quantize_by_hand():
    # scale 0.5 at 4 bits (limit 7): 1.2 / 0.5 = 2.4 -> 2, -1.3 -> -2.6 -> -3, 0.75 -> 1.5 -> 2 (half away), 9 -> 7
    q, s = fixed.quantize(np.array([1.2, -1.3, 0.75, 9.0, -9.0]), 4, 0.5)
    assert q.tolist() == [2, -3, 2, 7, -7] and s == 0.5
    q, s = fixed.quantize(np.array([2.0, -1.0, 0.5]), 3)          # scale max|x| / 3 = 2/3
    assert s == pytest.approx(2 / 3) and q.tolist() == [3, -2, 1]  # 3, -1.5 -> -2, 0.75 -> 1


def test_topk_reference_on_fractions_and_ties():
    assert topk_reference(np.array([0.2, 0.9, 0.5, 0.9]), 2).tolist() == [1, 3]
    assert topk_reference(np.array([0.25, 0.75, 0.5]), 1).tolist() == [1]
    assert topk_reference(np.array([3, -1, 7, 7]), 3).tolist() == [0, 2, 3]        # indices, ascending


def test_kernel_map_coordinate_bounds_are_inclusive():
    # x/y/z = -32768 and 32767 are in range (the keys pack them into 16 bits each); one past either end, in
    # any of the three columns, is refused
    ok = np.array([[0, -32768, -32768, -32768], [0, 32767, 32767, 32767]], np.int32)
    pc.kernel_map(ok, kernel_size=1)
    for col in (1, 2, 3):
        bad = ok.astype(np.int64)
        bad[1, col] = 32768
        with pytest.raises(ValueError, match=r"^coords: batch must be in \[0, 32767\], x/y/z in \[-32768, 32767\]$"):
            pc.kernel_map(_i32(bad))


def _i32(a):
    """int64 -> int32 without wrapping checks (32768 fits int32)."""
    return a.astype(np.int32)


def test_float_attention_uses_the_given_scale():
    rng = np.random.default_rng(7)
    q, k, v = (rng.normal(size=(1, 1, 3, 4)) for _ in range(3))
    s = q[0, 0] @ k[0, 0].T * 0.3                        # softmax by hand at scale 0.3 (not 1/sqrt(4))
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    from sw_reference.attention_float import attention
    assert np.allclose(attention(q, k, v, scale=0.3)[0, 0], p @ v[0, 0], rtol=1e-12, atol=1e-12)


def test_sparse_conv_refuses_activations_beyond_int32():
    from sw_reference.pointacc.kernel_map import KernelMap
    from sw_reference.pointacc.layers import sparse_conv
    km = KernelMap(np.zeros((1, 3), np.int64), 1, (np.array([[0, 0]], np.int64),))
    w = np.ones((1, 1, 1), np.int8)
    assert sparse_conv(np.array([[(1 << 31) - 1]], np.int64), w, km, 1).tolist() == [[(1 << 31) - 1]]
    for bad in ((1 << 31), -(1 << 31) - 1):
        with pytest.raises(ValueError, match="^feats: activations must fit int32$"):
            sparse_conv(np.array([[bad]], np.int64), w, km, 1)

"""CPU path: the cuda_kernels API falls back to sw_reference, warns once, validates arguments."""
import warnings

import numpy as np
import pytest

import cuda_kernels as ck
from cuda_kernels import _runtime as rt
from sw_reference import attention_float as ref_att
from sw_reference import int8_gemm as ref_i8
from sw_reference import pointcloud as ref_pc
from sw_reference import pq_gemm as ref_pq
from sw_reference import topk as ref_topk

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def force_fallback():
    rt.reset(force_fallback=True)
    yield
    rt.reset()


def test_warns_exactly_once():
    x = RNG.standard_normal((4, 50)).astype(np.float32)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ck.topk(x, 5)
        ck.topk(x, 6)
        ck.fps(RNG.random((1, 20, 3), dtype=np.float32), 4)
    msgs = [str(m.message) for m in w if "sw_reference fallback" in str(m.message)]
    assert len(msgs) == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fallback_matches_reference():
    q = RNG.standard_normal((2, 3, 10, 16)).astype(np.float32)
    k = RNG.standard_normal((2, 3, 12, 16)).astype(np.float32)
    v = RNG.standard_normal((2, 3, 12, 16)).astype(np.float32)
    np.testing.assert_allclose(ck.attention(q, k, v, causal=True), ref_att.attention(q, k, v, True), rtol=1e-5, atol=1e-6)
    imp = RNG.integers(0, 5, (2, 12)).astype(np.float32)
    out, idx = ck.pruned_attention(q[:, :, :1], k, v, imp, 0.5)
    assert np.array_equal(idx, ref_att.select_tokens(imp, 0.5))
    np.testing.assert_allclose(ck.token_importance(q, k), ref_att.token_importance(q, k), rtol=1e-5)
    np.testing.assert_allclose(ck.head_importance(q), ref_att.head_importance(q), rtol=1e-5)
    qi = RNG.integers(-127, 128, (1, 2, 5, 16)).astype(np.int8)
    np.testing.assert_allclose(ck.attention_int8(qi, qi, v[:1, :2, :5], 0.1, 0.1),
                               ref_att.attention_int8(qi, qi, v[:1, :2, :5], 0.1, 0.1), rtol=1e-5)
    x = RNG.integers(-3, 3, (3, 40)).astype(np.float32)
    for a, b in zip(ck.topk(x, 7, sorted=False), ref_topk.topk(x, 7, sorted=False)):
        assert np.array_equal(a, b)
    qq = RNG.integers(-128, 128, (1, 2, 16)).astype(np.int8)
    kk = RNG.integers(-512, 512, (1, 30, 16)).astype(np.int16)
    for a, b in zip(ck.pq_gemm(qq, kk, 6, 4, 0.1, 1e-4), ref_pq.pq_gemm(qq, kk, 6, 4, 0.1, 1e-4)):
        assert np.array_equal(a, b)
    A = RNG.integers(-128, 128, (5, 33)).astype(np.int8)
    B = RNG.integers(-128, 128, (7, 33)).astype(np.int8)
    assert np.array_equal(ck.int8_gemm(A, B), ref_i8.int8_gemm(A, B))
    pts = RNG.random((2, 64, 3), dtype=np.float32)
    assert np.array_equal(ck.fps(pts, 9), ref_pc.fps(pts, 9))
    assert np.array_equal(ck.fps_pointnet2_baseline(pts, 9), ref_pc.fps(pts, 9))
    assert np.array_equal(ck.knn(pts, pts[:, :5], 4)[1], ref_pc.knn(pts, pts[:, :5], 4)[1])
    assert np.array_equal(ck.ball_query(pts, pts[:, :5], 0.3, 6), ref_pc.ball_query(pts, pts[:, :5], 0.3, 6))
    c = np.unique(RNG.integers(0, 4, (40, 4)).astype(np.int32), axis=0)
    assert np.array_equal(ck.kernel_map(c), ref_pc.kernel_map(c))


BAD = [
    (lambda: ck.topk(np.zeros((2, 5), np.float32), 6), "k"),
    (lambda: ck.topk(np.zeros((2, 5), np.float64), 2), "x"),
    (lambda: ck.attention(np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 4)), np.zeros((2, 3, 4))), "q"),
    (lambda: ck.attention(np.zeros((1, 1, 4, 8)), np.zeros((1, 2, 4, 8)), np.zeros((1, 2, 4, 8))), "k"),
    (lambda: ck.attention(np.zeros((1, 1, 4, 8)), np.zeros((1, 1, 4, 8)), np.zeros((1, 1, 5, 8))), "v"),
    (lambda: ck.attention(np.zeros((1, 1, 4, 8)), np.zeros((1, 1, 4, 8)), np.zeros((1, 1, 4, 8)), scale=-1.0), "scale"),
    (lambda: ck.select_tokens(np.zeros((2, 10), np.float32), 1.5), "keep"),
    (lambda: ck.int8_gemm(np.zeros((2, 4), np.int16), np.zeros((2, 4), np.int8)), "a"),
    (lambda: ck.int8_gemm(np.zeros((2, 4), np.int8), np.zeros((2, 5), np.int8)), "b"),
    (lambda: ck.pq_gemm(np.zeros((1, 2, 16), np.int8), np.zeros((1, 3, 16), np.int16), 9, 4), "msb_bits"),
    (lambda: ck.pq_gemm(np.zeros((1, 2, 16), np.int8), np.zeros((1, 3, 16), np.int16), 6, 4, threshold=0.0), "threshold"),
    (lambda: ck.pq_gemm(np.zeros((1, 2, 16), np.int8), np.full((1, 3, 16), 600, np.int16), 6, 4), "k"),
    (lambda: ck.fps(np.zeros((1, 10, 3), np.float32), 11), "m"),
    (lambda: ck.fps(np.zeros((1, 10, 2), np.float32), 1), "xyz"),
    (lambda: ck.knn(np.zeros((1, 10, 3), np.float32), np.zeros((2, 4, 3), np.float32), 2), "query"),
    (lambda: ck.ball_query(np.zeros((1, 10, 3), np.float32), np.zeros((1, 4, 3), np.float32), -1.0, 2), "radius"),
    (lambda: ck.kernel_map(np.zeros((3, 3), np.int32)), "coords"),
    (lambda: ck.kernel_map(np.zeros((2, 4), np.int32)), "coords"),
    (lambda: ck.kernel_map(np.arange(8, dtype=np.int32).reshape(2, 4), kernel_size=2), "kernel_size"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("call,arg", BAD)
def test_bad_arguments_raise_value_error(call, arg):
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert msg.startswith(arg + ":") and "\n" not in msg

"""GPU kernels vs sw_reference. Exact for integer/selection outputs (ties included), stated
tolerances for floating point. Run: python -m pytest -m gpu tests/cuda_kernels"""
import numpy as np
import pytest

import cuda_kernels as ck
from sw_reference import attention_float as ref_att
from sw_reference import int8_gemm as ref_i8
from sw_reference import pointcloud as ref_pc
from sw_reference import pq_gemm as ref_pq
from sw_reference import topk as ref_topk

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")
if not ck.gpu_available():
    pytest.skip("no usable GPU", allow_module_level=True)

RNG = np.random.default_rng(1234)
# relative L2 error bounds vs float64 on the same (rounded) inputs
TOL = {torch.float16: 4e-3, torch.bfloat16: 2e-2}


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def f64(t):
    return t.float().cpu().numpy().astype(np.float64)


def rand(shape, dt):
    return torch.randn(shape, device="cuda").to(dt)


@pytest.mark.parametrize("mt", [1, 2, "wgmma", "wgmma3"])
@pytest.mark.parametrize("dt", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lq,lk", [(128, 128), (100, 100), (77, 300), (200, 77), (384, 384), (1, 1000), (1, 33),
                                   (1, 70000)])
def test_attention(dt, d, causal, lq, lk, mt, monkeypatch):
    import cuda_kernels._attention as A
    if mt == "wgmma3":
        mt = "wgmma"
        monkeypatch.setattr(A, "WGMMA_WG", 3)
    monkeypatch.setitem(A.FLASH_MT, d, mt)
    if mt == "wgmma" and d == 64:
        pytest.skip("wgmma kernel is D=128 only")
    if lk > 10000 and (mt != 1 or dt == torch.bfloat16 or causal):
        pytest.skip("one long decode case is enough")
    q, k, v = rand((2, 3, lq, d), dt), rand((2, 3, lk, d), dt), rand((2, 3, lk, d), dt)
    o = ck.attention(q, k, v, causal=causal)
    assert o.shape == q.shape and o.dtype == dt
    ref = ref_att.attention(f64(q), f64(k), f64(v), causal)
    assert np.isfinite(f64(o)).all()
    assert rel(f64(o), ref) < TOL[dt]


@pytest.mark.parametrize("mt", [1, 2])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_int8(d, causal, mt, monkeypatch):
    import cuda_kernels._attention as A
    monkeypatch.setitem(A.FLASH_MT, d, mt)
    q = torch.randint(-127, 128, (2, 2, 130, d), dtype=torch.int8, device="cuda")
    k = torch.randint(-127, 128, (2, 2, 130, d), dtype=torch.int8, device="cuda")
    v = rand((2, 2, 130, d), torch.float16)
    o = ck.attention_int8(q, k, v, 0.01, 0.01, causal=causal)
    ref = ref_att.attention_int8(q.cpu().numpy(), k.cpu().numpy(), f64(v), 0.01, 0.01, causal)
    assert rel(f64(o), ref) < 5e-3


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("lq,causal", [(1, False), (64, True), (96, False), (300, True)])
def test_importance(lq, causal, d):
    q, k = rand((2, 4, lq, d), torch.float16), rand((2, 4, 200, d), torch.float16)
    prev = torch.rand((2, 200), device="cuda")
    imp = ck.token_importance(q, k, causal=causal, prev=prev)
    ref = ref_att.token_importance(f64(q), f64(k), causal, None, f64(prev))
    assert rel(f64(imp), ref) < 1e-3
    out = rand((2, 4, lq, 64), torch.float16)
    h = ck.head_importance(out, prev=torch.ones((2, 4), device="cuda"))
    assert rel(f64(h), ref_att.head_importance(f64(out), np.ones((2, 4)))) < 1e-4


def test_pruned_attention_and_compaction():
    b, h, L, d = 2, 4, 1000, 128
    q, k, v = rand((b, h, 1, d), torch.float16), rand((b, h, L, d), torch.float16), rand((b, h, L, d), torch.float16)
    imp = torch.randint(0, 50, (b, L), device="cuda").float()  # many ties
    out, idx = ck.pruned_attention(q, k, v, imp, 0.25)
    ridx = ref_att.select_tokens(imp.cpu().numpy(), 0.25)
    assert np.array_equal(idx.cpu().numpy(), ridx)
    kc, vc = ck.compact_kv(k, v, idx)
    rk, rv = ref_att.compact_kv(k.cpu().numpy(), v.cpu().numpy(), ridx)
    assert np.array_equal(kc.cpu().numpy(), rk) and np.array_equal(vc.cpu().numpy(), rv)
    ro = ref_att.attention(f64(q), rk.astype(np.float64), rv.astype(np.float64))
    assert rel(f64(out), ro) < TOL[torch.float16]


def _tie_data(rows, n, dtype):
    x = RNG.integers(-20, 20, (rows, n))
    if dtype == np.float32:
        x = x.astype(np.float32) * np.float32(0.5)
        x[:, :3] = [-0.0, 0.0, -0.0][: min(3, n)]
        return x
    return x.astype(np.int32)


@pytest.mark.parametrize("n,k", [(128, 32), (128, 128), (1000, 7), (4096, 1024), (4096, 600),
                                 (5000, 4000), (5001, 300), (2048, 2048), (32768, 8192), (32768, 9000), (131072, 32768),
                                 (131072, 1), (40000, 5)])
@pytest.mark.parametrize("sorted_", [True, False])
@pytest.mark.parametrize("method", ["auto", "block", "multi"])
def test_topk_ties(n, k, sorted_, method):
    x = _tie_data(3, n, np.float32)
    v, i = ck.topk(torch.from_numpy(x).cuda(), k, sorted=sorted_, method=method)
    rv, ri = ref_topk.topk(x, k, sorted=sorted_)
    assert np.array_equal(i.cpu().numpy(), ri)
    assert np.array_equal(v.cpu().numpy().view(np.uint32), rv.view(np.uint32))


@pytest.mark.parametrize("method", ["block", "multi"])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_int32_and_smallest(largest, method):
    x = _tie_data(5, 3000, np.int32)
    v, i = ck.topk(x, 100, largest=largest, method=method)
    rv, ri = ref_topk.topk(x, 100, largest=largest)
    assert np.array_equal(i, ri) and np.array_equal(v, rv)
    xf = RNG.standard_normal((4, 777)).astype(np.float32)
    v, i = ck.topk(xf, 50, largest=largest, sorted=True)
    rv, ri = ref_topk.topk(xf, 50, largest=largest)
    assert np.array_equal(i, ri) and np.array_equal(v, rv)


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("alpha", [1e-5, 3e-4, 2e-3])
def test_pq_gemm_exact(d, alpha):
    q = RNG.integers(-128, 128, (3, 5, d)).astype(np.int8)
    k = RNG.integers(-512, 512, (3, 700, d)).astype(np.int16)
    s, req = ck.pq_gemm(q, k, 6, 4, threshold=0.05, alpha=alpha)
    rs, rreq = ref_pq.pq_gemm(q, k, 6, 4, threshold=0.05, alpha=alpha)
    assert np.array_equal(req, rreq)
    assert np.array_equal(s, rs)


def test_pq_gemm_mixed_rows():
    # rows with a dominant key stay MSB-only; flat rows are recomputed
    d = 64
    q = RNG.integers(-128, 128, (1, 64, d)).astype(np.int8)
    k = RNG.integers(-512, 512, (1, 300, d)).astype(np.int16)
    k[0, 7] = np.clip(q[0, 0].astype(np.int16) * 4, -512, 511)
    s, req = ck.pq_gemm(q, k, 6, 4, threshold=0.3, alpha=3e-4)
    rs, rreq = ref_pq.pq_gemm(q, k, 6, 4, threshold=0.3, alpha=3e-4)
    assert np.array_equal(req, rreq) and np.array_equal(s, rs)


@pytest.mark.parametrize("variant", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("m,n,k", [(128, 128, 64), (256, 384, 512), (200, 136, 48), (1000, 520, 272),
                                   (33, 17, 100), (1, 8, 16), (130, 250, 1040)])
def test_int8_gemm_exact(m, n, k, variant):
    a = RNG.integers(-128, 128, (m, k)).astype(np.int8)
    b = RNG.integers(-128, 128, (n, k)).astype(np.int8)
    assert np.array_equal(ck.int8_gemm(a, b, variant=variant), ref_i8.int8_gemm(a, b))


def test_int8_gemm_matches_torch_int_mm():
    a = torch.randint(-128, 128, (512, 1024), dtype=torch.int8, device="cuda")
    b = torch.randint(-128, 128, (768, 1024), dtype=torch.int8, device="cuda")
    assert torch.equal(ck.int8_gemm(a, b), torch._int_mm(a, b.t()))


def _cloud(b, n, dup=True):
    x = RNG.random((b, n, 3), dtype=np.float32)
    if dup:  # exact duplicates and grid-snapped values create distance ties
        x = np.round(x * 16) / 16
        x[:, n // 2:n // 2 + 5] = x[:, :5]
    return x.astype(np.float32)


@pytest.mark.parametrize("b,n,m", [(2, 100, 10), (3, 1024, 256), (2, 2048, 100), (2, 3000, 200),
                                   (2, 5000, 300), (1, 16384, 200), (1, 20000, 100)])
def test_fps_exact(b, n, m):
    x = _cloud(b, n)
    r = ref_pc.fps(x, m)
    assert np.array_equal(ck.fps(x, m), r)
    assert np.array_equal(ck.fps_pointnet2_baseline(x, m), r)


@pytest.mark.parametrize("k", [1, 3, 20, 32, 64])
def test_knn_exact(k):
    ref_pts, q = _cloud(2, 3000), _cloud(2, 300)
    d, i = ck.knn(ref_pts, q, k)
    rd, ri = ref_pc.knn(ref_pts, q, k)
    assert np.array_equal(i, ri) and np.array_equal(d, rd)


@pytest.mark.parametrize("r,k", [(0.05, 8), (0.2, 32), (0.4, 64), (1e-4, 4)])
def test_ball_query_exact(r, k):
    x, c = _cloud(2, 2000), _cloud(2, 200)
    assert np.array_equal(ck.ball_query(x, c, r, k), ref_pc.ball_query(x, c, r, k))


@pytest.mark.parametrize("ts,ks", [(1, 3), (2, 3), (1, 5)])
def test_kernel_map_exact(ts, ks):
    c = RNG.integers(-30, 30, (20000, 4)).astype(np.int32)
    c[:, 0] = RNG.integers(0, 3, 20000)
    c = np.unique(c, axis=0)
    RNG.shuffle(c)
    out = np.unique(c[:, :] // np.array([1, 2, 2, 2]) * np.array([1, 2, 2, 2]), axis=0).astype(np.int32)
    assert np.array_equal(ck.kernel_map(c, None, ks, ts), ref_pc.kernel_map(c, None, ks, ts))
    assert np.array_equal(ck.kernel_map(c, out, ks, ts), ref_pc.kernel_map(c, out, ks, ts))


def test_kernel_map_rejects_duplicates():
    c = np.zeros((4, 4), dtype=np.int32)
    with pytest.raises(ValueError, match="coords"):
        ck.kernel_map(c)

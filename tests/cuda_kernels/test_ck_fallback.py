"""CPU path: the cuda_kernels API falls back to sw_reference, warns once, validates arguments; the
fallback's results checked against oracles written here (loops and scipy, not sw_reference)."""
import warnings

import numpy as np
import pytest

import cuda_kernels as ck
from cuda_kernels import _runtime as rt

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


# ----------------------------------------------------------------------------- independent oracles
# Written here from the documented semantics (loops, scipy), never calling sw_reference: the fallback IS
# sw_reference, so comparing the two would pass whatever sw_reference computes.

def softmax_attention(q, k, v, causal=False, scale=None):
    """softmax(q k^T scale) v per (b, h, i); causal: query i sees key j iff j <= i + (Lk - Lq)."""
    from scipy.special import softmax
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    scale = 1 / np.sqrt(D) if scale is None else scale
    out = np.zeros((B, H, Lq, v.shape[3]))
    probs = np.zeros((B, H, Lq, Lk))
    for b, h, i in np.ndindex(B, H, Lq):
        seen = [j for j in range(Lk) if not causal or j <= i + (Lk - Lq)]
        logits = np.array([np.dot(q[b, h, i].astype(np.float64), k[b, h, j].astype(np.float64)) for j in seen])
        p = softmax(logits * scale)
        probs[b, h, i, seen] = p
        out[b, h, i] = p @ v[b, h, seen].astype(np.float64)
    return out, probs


def top_indices(row, n):
    """The n largest of a row, ties to the lower index, returned in ascending index order."""
    return sorted(sorted(range(len(row)), key=lambda j: (-row[j], j))[:n])


def d2(a, b):
    """float32 squared distance, evaluated as ((dx*dx + dy*dy) + dz*dz) with float32 rounding."""
    dx, dy, dz = (np.float32(a[c]) - np.float32(b[c]) for c in range(3))
    return np.float32(np.float32(np.float32(dx * dx) + np.float32(dy * dy)) + np.float32(dz * dz))


def fps_loop(pts, m):
    out = []
    for P in pts:
        sel, d = [0], [np.float32(np.inf)] * len(P)
        while len(sel) < m:
            d = [min(d[j], d2(P[j], P[sel[-1]])) for j in range(len(P))]
            sel.append(max(range(len(P)), key=lambda j: (d[j], -j)))       # first maximal index
        out.append(sel)
    return np.array(out)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fallback_matches_independent_oracles():
    q = RNG.standard_normal((2, 3, 10, 16)).astype(np.float32)
    k = RNG.standard_normal((2, 3, 12, 16)).astype(np.float32)
    v = RNG.standard_normal((2, 3, 12, 16)).astype(np.float32)
    want, _ = softmax_attention(q, k, v, causal=True)                # bottom-right aligned: Lq 10, Lk 12
    np.testing.assert_allclose(ck.attention(q, k, v, causal=True), want, rtol=1e-5, atol=1e-6)

    imp = RNG.integers(0, 5, (2, 12)).astype(np.float32)             # many ties
    out, idx = ck.pruned_attention(q[:, :, :1], k, v, imp, 0.5)
    keep = [top_indices(imp[b].tolist(), 6) for b in range(2)]       # round(0.5 * 12) tokens
    assert np.asarray(idx).tolist() == keep
    for b in range(2):
        w, _ = softmax_attention(q[b:b + 1, :, :1], k[b:b + 1, :, keep[b]], v[b:b + 1, :, keep[b]])
        np.testing.assert_allclose(np.asarray(out)[b:b + 1], w, rtol=1e-5, atol=1e-6)

    _, probs = softmax_attention(q, k, v)
    np.testing.assert_allclose(ck.token_importance(q, k), probs.sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(ck.head_importance(q), np.abs(q.astype(np.float64)).sum(axis=(2, 3)), rtol=1e-5)

    qi = RNG.integers(-127, 128, (1, 2, 5, 16)).astype(np.int8)
    want, _ = softmax_attention(qi.astype(np.int64) * 0.1, qi.astype(np.int64) * 0.1, v[:1, :2, :5])
    np.testing.assert_allclose(ck.attention_int8(qi, qi, v[:1, :2, :5], 0.1, 0.1), want, rtol=1e-5)

    x = RNG.integers(-3, 3, (3, 40)).astype(np.float32)              # ties: the lower index wins
    vals, ids = ck.topk(x, 7, sorted=False)
    want_idx = [top_indices(r.tolist(), 7) for r in x]
    assert np.asarray(ids).tolist() == want_idx
    assert np.asarray(vals).tolist() == [[r[j] for j in ix] for r, ix in zip(x.tolist(), want_idx)]

    qq = RNG.integers(-128, 128, (1, 4, 16)).astype(np.int8)
    qq[0, :2] //= 64                                                 # two nearly flat rows: requantized
    kk = RNG.integers(-512, 512, (1, 30, 16)).astype(np.int16)
    scores, req = ck.pq_gemm(qq, kk, 6, 4, 0.1, 2e-4)
    full = np.einsum("bmd,bnd->bmn", qq.astype(np.int64), kk.astype(np.int64))
    msb = np.einsum("bmd,bnd->bmn", qq.astype(np.int64), kk.astype(np.int64) // 16) * 16
    maxp = 1 / np.exp((msb - msb.max(-1, keepdims=True)) * 2e-4).sum(-1)
    assert np.asarray(req).tolist() == (maxp < 0.1).tolist() == [[True, True, False, False]]
    assert np.array_equal(np.asarray(scores), np.where(maxp[..., None] < 0.1, full, msb))

    A = RNG.integers(-128, 128, (5, 33)).astype(np.int8)
    B = RNG.integers(-128, 128, (7, 33)).astype(np.int8)
    C = [[sum(int(a) * int(b) for a, b in zip(A[m], B[n])) for n in range(7)] for m in range(5)]
    assert np.asarray(ck.int8_gemm(A, B)).tolist() == C

    pts = RNG.random((2, 64, 3), dtype=np.float32)
    want = fps_loop(pts, 9)
    assert np.array_equal(ck.fps(pts, 9), want) and np.array_equal(ck.fps_pointnet2_baseline(pts, 9), want)
    nn = [[sorted(range(64), key=lambda j: (d2(pts[b, i], pts[b, j]), j))[:4] for i in range(5)] for b in range(2)]
    assert np.asarray(ck.knn(pts, pts[:, :5], 4)[1]).tolist() == nn
    r2 = np.float32(np.float32(0.3) * np.float32(0.3))
    ball = []
    for b in range(2):
        ball.append([])
        for i in range(5):
            hit = [j for j in range(64) if d2(pts[b, i], pts[b, j]) < r2][:6]
            ball[-1].append(hit + [hit[0]] * (6 - len(hit)) if hit else [-1] * 6)
    assert np.asarray(ck.ball_query(pts, pts[:, :5], 0.3, 6)).tolist() == ball

    c = np.unique(RNG.integers(0, 4, (40, 4)).astype(np.int32), axis=0)
    where = {tuple(row): j for j, row in enumerate(c.tolist())}
    offs = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]   # o = 9(dx+1)+3(dy+1)+dz+1
    want = [[where.get((bb, x + dx, y + dy, z + dz), -1) for bb, x, y, z in c.tolist()] for dx, dy, dz in offs]
    assert np.asarray(ck.kernel_map(c)).tolist() == want


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

import math

import numpy as np
import pytest

from sw_reference import attention_float as af


def _loop_attention(q, k, v, causal):
    b, h, lq, d = q.shape
    lk = k.shape[2]
    out = np.zeros((b, h, lq, d))
    for bi in range(b):
        for hi in range(h):
            for i in range(lq):
                s = [q[bi, hi, i] @ k[bi, hi, j] / math.sqrt(d) if (not causal or j <= i + lk - lq) else -np.inf
                     for j in range(lk)]
                e = np.exp(np.array(s) - max(s))
                out[bi, hi, i] = (e / e.sum()) @ v[bi, hi]
    return out


@pytest.mark.parametrize("causal,lq,lk", [(False, 5, 7), (True, 5, 5), (True, 3, 8), (True, 1, 6)])
def test_attention_loop(causal, lq, lk):
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((2, 2, lq, 4)), rng.standard_normal((2, 2, lk, 4)), rng.standard_normal((2, 2, lk, 4))
    np.testing.assert_allclose(af.attention(q, k, v, causal), _loop_attention(q, k, v, causal), rtol=1e-12)


def test_importance_and_pruning():
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 3, 4, 8)), rng.standard_normal((2, 3, 10, 8)), rng.standard_normal((2, 3, 10, 8))
    imp = af.token_importance(q, k)
    np.testing.assert_allclose(imp.sum(1), 3 * 4)  # each query's probabilities sum to 1
    np.testing.assert_allclose(af.token_importance(q, k, prev=imp), 2 * imp)
    idx = af.select_tokens(np.array([[1, 9, 9, 3, 9, 0, 0, 0, 0, 0]] * 2, np.float32), 3)
    assert idx.tolist() == [[1, 2, 4]] * 2
    out, idx2 = af.pruned_attention(q, k, v, np.tile(np.arange(10.0), (2, 1)), 0.5)
    assert idx2.tolist() == [[5, 6, 7, 8, 9]] * 2
    np.testing.assert_allclose(out, af.attention(q, k[:, :, 5:], v[:, :, 5:]))
    hi = af.head_importance(out)
    np.testing.assert_allclose(hi, np.abs(out).sum((2, 3)))
    assert af.n_keep(0.1, 1000) == 100 and af.n_keep(7, 10) == 7
    with pytest.raises(ValueError, match="^keep:"):
        af.n_keep(0.0, 10)


def test_int8_attention_matches_float():
    rng = np.random.default_rng(2)
    q = rng.integers(-127, 128, (1, 2, 6, 16)).astype(np.int8)
    k = rng.integers(-127, 128, (1, 2, 9, 16)).astype(np.int8)
    v = rng.standard_normal((1, 2, 9, 16))
    ref = af.attention(q * 0.02, k * 0.03, v)
    np.testing.assert_allclose(af.attention_int8(q, k, v, 0.02, 0.03), ref, rtol=1e-10)
    with pytest.raises(ValueError, match="^q:"):
        af.attention_int8(q.astype(np.int16), k, v, 1.0, 1.0)

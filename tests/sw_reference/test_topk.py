import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from sw_reference.topk import sortable_key, topk


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 40)),
                  elements=st.sampled_from([-2.0, -0.0, 0.0, 1.5, 3.0, -np.inf, np.inf])),
       st.data(), st.booleans(), st.booleans())
def test_topk_matches_python_sort(x, data, largest, srt):
    n = x.shape[1]
    k = data.draw(st.integers(1, n))
    v, i = topk(x, k, largest=largest, sorted=srt)
    for r in range(x.shape[0]):
        key = [(int(sortable_key(x[r:r + 1, j:j + 1])[0, 0]), j) for j in range(n)]
        order = sorted(range(n), key=lambda j: ((-key[j][0]) if largest else key[j][0], j))[:k]
        if not srt:
            order = sorted(order)
        assert list(i[r]) == order
        assert np.array_equal(v[r].view(np.uint32), x[r, order].view(np.uint32))


def test_key_order_and_zero_sign():
    x = np.array([-np.inf, -1.0, -0.0, 0.0, 1e-30, 2.0, np.inf], np.float32)
    assert (np.diff(sortable_key(x).astype(np.int64)) > 0).all()
    xi = np.array([-5, -1, 0, 3], np.int32)
    assert (np.diff(sortable_key(xi).astype(np.int64)) > 0).all()


def test_ties_lower_index_first():
    v, i = topk(np.array([[1, 5, 5, 2, 5]], np.float32), 2)
    assert i.tolist() == [[1, 2]]
    v, i = topk(np.array([[1, 5, 5, 2, 1]], np.float32), 2, largest=False)
    assert i.tolist() == [[0, 4]]


@pytest.mark.parametrize("bad", [dict(k=0), dict(k=9)])
def test_bad_k(bad):
    with pytest.raises(ValueError, match="^k:"):
        topk(np.zeros((2, 8), np.float32), **bad)


def test_nan_rejected():
    with pytest.raises(ValueError, match="^x:"):
        topk(np.array([[1.0, np.nan]], np.float32), 1)

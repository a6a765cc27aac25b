"""Named golden models agree with the generic affine model (independent enumeration of the box)."""
import numpy as np
import pytest

from lego.affine.library import builtin_workload, parse_shape
from sw_reference.ops import affine_mac, random_inputs, reference, wrap


@pytest.mark.parametrize("name,shape", [
    ("gemm", "M=5,N=7,K=3"), ("bmm", "B=2,M=3,N=4,K=5"),
    ("conv2d", "N=2,C=3,K=4,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1"), ("conv2d", "C=2,K=3,H=5,W=5,R=3,S=3"),
    ("dwconv2d", "C=4,H=6,W=7,R=3,S=3,STRIDE=1,PAD=1"), ("dwconv2d", "C=3,H=9,W=9,R=3,S=3,STRIDE=2")])
@pytest.mark.parametrize("bits", [8, 16])
def test_named_equals_affine(name, shape, bits):
    w = builtin_workload(name, parse_shape(shape, name), bits)
    ins = random_inputs(w, 3)
    assert np.array_equal(reference(w, ins), affine_mac(w, ins))


def test_wrap_is_twos_complement():
    assert wrap(np.array([2 ** 31, -2 ** 31 - 1, 5]), 32).tolist() == [-2 ** 31, 2 ** 31 - 1, 5]


def test_gemm_and_bmm_exact_on_both_paths():
    """The BLAS path (partial sums < 2**53) and the int64 path (beyond) both equal Python's integers."""
    import numpy as np

    from sw_reference.ops import bmm, gemm
    rng = np.random.default_rng(5)
    for lo, hi, k in ((-128, 128, 300), (-32768, 32768, 1000), (-(1 << 30), 1 << 30, 40)):
        X = rng.integers(lo, hi, (7, k), dtype=np.int64)
        W = rng.integers(lo, hi, (k, 5), dtype=np.int64)
        ref = [[sum(int(X[i, t]) * int(W[t, j]) for t in range(k)) for j in range(5)] for i in range(7)]
        want = np.array([[((v + (1 << 47)) % (1 << 48)) - (1 << 47) for v in row] for row in ref], np.int64)
        assert np.array_equal(gemm(X, W, 48), want), (lo, k)
        B = np.stack([X, X[::-1]]), np.stack([W, W[:, ::-1]])
        assert np.array_equal(bmm(*B, 48)[0], want) and np.array_equal(bmm(*B, 48)[1], gemm(X[::-1], W[:, ::-1], 48))

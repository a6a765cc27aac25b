"""lego/affine/reuse.py: exact integer null spaces and the reuse they imply."""
import numpy as np
import sympy

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.affine.reuse import analyze, int_nullspace


def test_int_nullspace_known():
    assert int_nullspace(np.array([[1, 0], [0, 0]])) == [(0, 1)]
    assert int_nullspace(np.array([[1, 1]])) == [(1, -1)]
    assert int_nullspace(np.array([[2, 4, 0]])) in ([(0, 0, 1), (2, -1, 0)], [(0, 0, 1), (-2, 1, 0)])
    assert int_nullspace(np.eye(2, dtype=int)) == []


def test_int_nullspace_random_against_sympy():
    """An independent oracle: sympy's rational null space spans the same lattice directions."""
    rng = np.random.default_rng(3)
    for _ in range(40):
        r, c = rng.integers(1, 4), rng.integers(1, 6)
        M = rng.integers(-3, 4, size=(r, c))
        ours = int_nullspace(M)
        ref = sympy.Matrix(M.tolist()).nullspace()
        assert len(ours) == len(ref)
        for v in ours:
            assert not (M @ np.array(v)).any() and any(v)
        if ours:   # same span: stacking ours onto sympy's basis adds no rank
            both = sympy.Matrix.hstack(*ref, *[sympy.Matrix(v) for v in ours])
            assert both.rank() == len(ref)


def test_reuse_gemm_os():
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    df = make_dataflow(w, "os", (4, 4))
    # X[i,k] is shared along the columns (s1), W[k,j] along the rows (s0); Y is held (k innermost)
    assert analyze(w, df, "X").spatial == ((0, 1),)
    assert analyze(w, df, "W").spatial == ((1, 0),)
    assert analyze(w, df, "Y").spatial == ()
    assert analyze(w, df, "Y").held
    assert not analyze(w, df, "X").held

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


def test_rational_nullspace_is_sympys_basis():
    """The RREF is unique, so the basis vectors are exactly sympy's (same order, same entries)."""
    from lego.affine.reuse import rational_nullspace
    rng = np.random.default_rng(8)
    for _ in range(60):
        r, c = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        M = rng.integers(-3, 4, size=(r, c))
        if rng.random() < 0.3:
            M[int(rng.integers(0, r))] = 0               # zero rows and repeated rows
        if r > 1 and rng.random() < 0.3:
            M[1] = 2 * M[0]
        ours = rational_nullspace(M.tolist(), c)
        ref = sympy.Matrix(M.tolist()).nullspace()
        assert [[sympy.Rational(x.numerator, x.denominator) for x in v] for v in ours] == [list(v) for v in ref]


def test_int_nullspace_normal_form():
    # primitive, first non-zero positive, sorted by L1 norm then by largest entries first
    v = int_nullspace(np.array([[3, 6, 0]]))
    assert v == [(0, 0, 1), (2, -1, 0)]
    assert int_nullspace(np.array([[1, -2, 0], [0, 0, 0]])) == [(0, 0, 1), (2, 1, 0)]
    assert int_nullspace(np.array([[0, 3]])) == [(1, 0)]
    assert int_nullspace(np.array([[4, 6]])) == [(3, -2)]
    assert int_nullspace(np.array([[1, 2]])) == [(2, -1)]
    assert int_nullspace(np.array([[2, 3, 0, 0], [0, 0, 1, -1]])) == [(0, 0, 1, 1), (3, -2, 0, 0)]
    assert int_nullspace(np.zeros((0, 3), dtype=int)) == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert int_nullspace(np.zeros((2, 2), dtype=int)) == [(1, 0), (0, 1)]


def test_reuse_temporal_full_and_held():
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    os_ = make_dataflow(w, "os", (4, 4))          # time (t_i, t_j, k)
    x = analyze(w, os_, "X")
    assert x.tensor == "X" and x.temporal == ((0, 1, 0),)    # X[i,k] does not depend on t_j
    assert analyze(w, os_, "Y").temporal == ((0, 0, 1),)
    # full kernel of [A T | A S] for Y: k moves freely, and i = 4 t_i + s0, j = 4 t_j + s1 trade off
    full = analyze(w, os_, "Y").full
    assert set(full) == {(0, 0, 1, 0, 0), (1, 0, 0, -4, 0), (0, 1, 0, 0, -4)}
    ws = make_dataflow(w, "ws", (4, 4))           # time (t_k, t_j, i): W[k,j] is held across i
    assert analyze(w, ws, "W").held and not analyze(w, ws, "X").held and not analyze(w, ws, "Y").held
    # a design whose every temporal extent is 1 holds nothing
    one = make_dataflow(builtin_workload("gemm", parse_shape("M=2,N=2,K=1", "gemm")), "os", (2, 2))
    assert one.T == (1, 1, 1) and not analyze(w, one, "Y").held
    # the innermost loop of extent > 1 decides, not the last one
    tail = make_dataflow(builtin_workload("gemm", parse_shape("M=4,N=8,K=1", "gemm")), "os", (2, 2))
    assert tail.T == (2, 4, 1)
    w1 = builtin_workload("gemm", parse_shape("M=4,N=8,K=1", "gemm"))
    assert analyze(w1, tail, "X").held and not analyze(w1, tail, "W").held

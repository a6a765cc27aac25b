import numpy as np
import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.affine.reuse import analyze, int_nullspace
from lego.affine.workload import parse_affine
from lego.errors import LegoError

ITS = ("h", "w", "r")


@pytest.mark.parametrize("expr,coeffs,const", [
    ("h + r", (1, 0, 1), 0), ("2*h + r - 1", (2, 0, 1), -1), ("w*3", (0, 3, 0), 0), ("-h + 4", (-1, 0, 0), 4),
    (5, (0, 0, 0), 5)])
def test_parse_affine(expr, coeffs, const):
    a = parse_affine(expr, ITS, "x")
    assert a.coeffs == coeffs and a.const == const


@pytest.mark.parametrize("expr", ["h*w", "h/2", "h % 4", "q + 1", "h +", "", "h**2"])
def test_parse_affine_rejects(expr):
    with pytest.raises(LegoError):
        parse_affine(expr, ITS, "tensors.X.index[0]")


def test_int_nullspace_known():
    assert int_nullspace(np.array([[1, 0], [0, 0]])) == [(0, 1)]
    assert int_nullspace(np.array([[1, 1]])) == [(1, -1)]
    assert int_nullspace(np.array([[2, 4, 0]])) in ([(0, 0, 1), (2, -1, 0)], [(0, 0, 1), (-2, 1, 0)])
    assert int_nullspace(np.eye(2, dtype=int)) == []


def test_reuse_gemm_os():
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    df = make_dataflow(w, "os", (4, 4))
    # X[i,k] is shared along the columns (s1), W[k,j] along the rows (s0); Y is held (k innermost)
    assert analyze(w, df, "X").spatial == ((0, 1),)
    assert analyze(w, df, "W").spatial == ((1, 0),)
    assert analyze(w, df, "Y").spatial == ()
    assert analyze(w, df, "Y").held
    assert not analyze(w, df, "X").held


def test_tiling_covers_nondividing_shapes():
    w = builtin_workload("gemm", parse_shape("M=37,N=23,K=19", "gemm"))
    for p in ("os", "ws", "is"):
        df = make_dataflow(w, p, (4, 8))
        assert df.steps * 32 >= w.macs


def test_conv_preset_and_padding():
    w = builtin_workload("conv2d", parse_shape("H=7,W=7,STRIDE=2,PAD=1", "conv2d"))
    assert w.tensor("X").pad
    assert w.output.shape == (1, 8, 4, 4)

"""lego/affine/library.py: the built-in nests (checked against loops written out here), shapes, attention."""
import itertools

import numpy as np
import pytest

from lego.affine.library import (ARRAY_WORKLOADS, DEFAULTS, WORKLOADS, attention_stages, builtin_workload,
                                 parse_shape)
from lego.errors import LegoError


def _accesses(w, name):
    """{iteration point: tensor coordinates} of one tensor, from the workload's affine maps."""
    A, a = w.access(name)
    return {p: tuple(int(x) for x in A @ np.array(p) + a) for p in itertools.product(*(range(e) for e in w.extents))}


def test_defaults_and_names():
    assert WORKLOADS == ("gemm", "bmm", "conv2d", "dwconv2d", "attention")
    assert ARRAY_WORKLOADS == ("gemm", "bmm", "conv2d", "dwconv2d")
    assert parse_shape(None, "gemm") == {"M": 16, "N": 16, "K": 16}
    assert parse_shape("", "conv2d") == DEFAULTS["conv2d"]
    s = parse_shape(" M = 3 ,K=1048576", "gemm")
    assert s == {"M": 3, "N": 16, "K": 1 << 20}
    assert DEFAULTS["gemm"] == {"M": 16, "N": 16, "K": 16}          # not modified by parse_shape
    assert parse_shape("PAD=0", "conv2d")["PAD"] == 0


@pytest.mark.parametrize("text,msg", [
    ("M3", "--shape: 'M3' is not KEY=VALUE (keys for gemm: M, N, K)"),
    ("Q=3", "--shape: unknown key 'Q' for gemm (allowed: M, N, K)"),
    ("M=x", "--shape: M='x' is not an integer"),
    ("M=0", "--shape: M=0 is out of range (1..1048576)"),
    ("M=1048577", "--shape: M=1048577 is out of range (1..1048576)"),
    ("M=-1", "--shape: M=-1 is out of range (1..1048576)"),
])
def test_parse_shape_errors(text, msg):
    with pytest.raises(LegoError) as e:
        parse_shape(text, "gemm")
    assert str(e.value) == msg


def test_parse_shape_pad_range():
    with pytest.raises(LegoError) as e:
        parse_shape("PAD=-1", "conv2d")
    assert str(e.value) == "--shape: PAD=-1 is out of range (0..1048576)"


def test_gemm_and_bmm_by_hand():
    w = builtin_workload("gemm", {"M": 2, "N": 3, "K": 4})
    assert w.iterators == ("i", "j", "k") and w.extents == (2, 3, 4) and w.params == (("K", 4), ("M", 2), ("N", 3))
    assert [(t.name, t.role, t.dtype, t.shape, t.pad) for t in w.tensors] == [
        ("X", "input", "int8", (2, 4), False), ("W", "input", "int8", (4, 3), False),
        ("Y", "output", "int32", (2, 3), False)]
    for name, f in (("X", lambda i, j, k: (i, k)), ("W", lambda i, j, k: (k, j)), ("Y", lambda i, j, k: (i, j))):
        assert all(v == f(*p) for p, v in _accesses(w, name).items())
    b = builtin_workload("bmm", {"B": 2, "M": 2, "N": 3, "K": 2}, bits=16)
    assert b.iterators == ("b", "i", "j", "k") and b.extents == (2, 2, 3, 2)
    assert [t.dtype for t in b.tensors] == ["int16", "int16", "int48"]
    for name, f in (("X", lambda b_, i, j, k: (b_, i, k)), ("W", lambda b_, i, j, k: (b_, k, j)),
                    ("Y", lambda b_, i, j, k: (b_, i, j))):
        assert all(v == f(*p) for p, v in _accesses(b, name).items())
    assert [t.shape for t in b.tensors] == [(2, 2, 2), (2, 2, 3), (2, 2, 3)]


@pytest.mark.parametrize("bits,dt_in,dt_out", [(4, "int4", "int32"), (8, "int8", "int32"), (12, "int12", "int32"),
                                               (16, "int16", "int48")])
def test_accumulator_dtype(bits, dt_in, dt_out):
    w = builtin_workload("gemm", {"M": 1, "N": 1, "K": 1}, bits)
    assert [t.dtype for t in w.tensors] == [dt_in, dt_in, dt_out]


@pytest.mark.parametrize("H,W,R,S,st,pd", [(7, 6, 3, 2, 2, 1), (5, 5, 3, 3, 1, 0), (6, 9, 2, 4, 3, 2)])
def test_conv2d_by_hand(H, W, R, S, st, pd):
    sh = {"N": 2, "C": 3, "K": 2, "H": H, "W": W, "R": R, "S": S, "STRIDE": st, "PAD": pd}
    w = builtin_workload("conv2d", sh)
    oh, ow = (H + 2 * pd - R) // st + 1, (W + 2 * pd - S) // st + 1
    assert w.iterators == ("n", "k", "c", "h", "w", "r", "s")
    assert w.extents == (2, 2, 3, oh, ow, R, S)
    X, Wt, Y = w.tensors
    assert X.shape == (2, 3, H, W) and Wt.shape == (2, 3, R, S) and Y.shape == (2, 2, oh, ow)
    assert X.pad == (pd > 0) and not Wt.pad and not Y.pad
    for p, v in _accesses(w, "X").items():
        n, k, c, h, w_, r, s = p
        assert v == (n, c, h * st + r - pd, w_ * st + s - pd)
    assert all(v == (p[1], p[2], p[5], p[6]) for p, v in _accesses(w, "W").items())
    assert all(v == (p[0], p[1], p[3], p[4]) for p, v in _accesses(w, "Y").items())
    assert w.shape_dict == sh


def test_dwconv2d_by_hand():
    sh = {"N": 1, "C": 4, "H": 6, "W": 7, "R": 3, "S": 2, "STRIDE": 2, "PAD": 1}
    w = builtin_workload("dwconv2d", sh)
    oh, ow = (6 + 2 - 3) // 2 + 1, (7 + 2 - 2) // 2 + 1
    assert w.iterators == ("n", "c", "h", "w", "r", "s") and w.extents == (1, 4, oh, ow, 3, 2)
    assert [t.shape for t in w.tensors] == [(1, 4, 6, 7), (4, 3, 2), (1, 4, oh, ow)]
    for p, v in _accesses(w, "X").items():
        n, c, h, w_, r, s = p
        assert v == (n, c, 2 * h + r - 1, 2 * w_ + s - 1)
    assert all(v == (p[1], p[4], p[5]) for p, v in _accesses(w, "W").items())
    assert all(v == (p[0], p[1], p[2], p[3]) for p, v in _accesses(w, "Y").items())
    assert not builtin_workload("dwconv2d", dict(sh, PAD=0)).tensor("X").pad


@pytest.mark.parametrize("name", ["conv2d", "dwconv2d"])
def test_conv_without_output(name):
    sh = dict(DEFAULTS[name], H=2, R=3)
    with pytest.raises(LegoError) as e:
        builtin_workload(name, sh)
    assert str(e.value) == "--shape: H=2 with kernel 3, STRIDE=1, PAD=0 gives no output"
    sh = dict(DEFAULTS[name], W=1, S=2, STRIDE=2)
    with pytest.raises(LegoError) as e:
        builtin_workload(name, sh)
    assert str(e.value) == "--shape: W=1 with kernel 2, STRIDE=2, PAD=0 gives no output"
    assert builtin_workload(name, dict(DEFAULTS[name], H=1, R=3, PAD=1)).output.shape[2] == 1   # (1+2-3)//1+1


def test_unknown_workload():
    with pytest.raises(LegoError) as e:
        builtin_workload("attention", {"L": 2, "D": 2})
    assert str(e.value) == ("--workload: unknown workload 'attention' (built-in: gemm, bmm, conv2d, dwconv2d; "
                            "or a .yaml/.json file)")


def test_attention_stages_by_hand():
    qk, pv = attention_stages({"L": 3, "D": 2})
    assert qk.name == "attn_qk" and qk.iterators == ("i", "j", "d") and qk.extents == (3, 3, 2)
    assert [(t.name, t.dtype, t.shape) for t in qk.tensors] == [("Q", "int8", (3, 2)), ("K", "int8", (3, 2)),
                                                                ("S", "int32", (3, 3))]
    assert all(v == (p[0], p[2]) for p, v in _accesses(qk, "Q").items())
    assert all(v == (p[1], p[2]) for p, v in _accesses(qk, "K").items())
    assert pv.name == "attn_pv" and pv.iterators == ("i", "e", "j") and pv.extents == (3, 2, 3)
    assert [(t.name, t.role, t.dtype, t.shape) for t in pv.tensors] == [
        ("P", "input", "int16", (3, 3)), ("V", "input", "int8", (3, 2)), ("O", "output", "int32", (3, 2))]
    assert all(v == (p[0], p[2]) for p, v in _accesses(pv, "P").items())
    assert all(v == (p[2], p[1]) for p, v in _accesses(pv, "V").items())
    assert all(v == (p[0], p[1]) for p, v in _accesses(pv, "O").items())
    assert pv.params == qk.params == (("D", 2), ("L", 3)) and pv.body == "mac"

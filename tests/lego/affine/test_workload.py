"""lego/affine/workload.py: the affine index parser and the workload checks."""
import json

import pytest

from lego.affine.workload import parse_affine
from lego.errors import LegoError

ITS = ("h", "w", "r")


@pytest.mark.parametrize("expr,coeffs,const", [
    ("h + r", (1, 0, 1), 0), ("2*h + r - 1", (2, 0, 1), -1), ("w*3", (0, 3, 0), 0), ("-h + 4", (-1, 0, 0), 4),
    (5, (0, 0, 0), 5), ("h - h + 2", (0, 0, 0), 2), ("3*r + 2*r", (0, 0, 5), 0)])
def test_parse_affine(expr, coeffs, const):
    a = parse_affine(expr, ITS, "x")
    assert a.coeffs == coeffs and a.const == const


@pytest.mark.parametrize("expr,why", [
    ("h*w", "is not affine"), ("h/2", "is not affine"), ("h % 4", "is not affine"), ("q + 1", "unknown iterator 'q'"),
    ("h +", "is not affine"), ("", "is not an affine index expression"), ("h**2", "is not affine")])
def test_parse_affine_rejects_naming_the_field(expr, why):
    with pytest.raises(LegoError, match=r"^tensors\.X\.index\[0\]: ") as e:
        parse_affine(expr, ITS, "tensors.X.index[0]")
    assert why in str(e.value)


# ---------------------------------------------------------------- dtypes, Affine, Tensor, Workload

import itertools  # noqa: E402

import numpy as np  # noqa: E402

from lego.affine.workload import (DTYPES, Affine, Tensor, Workload, dtype_for, dtype_info, index_range,  # noqa: E402
                                  numpy_dtype, parse_workload_file, validate)


def test_dtype_names_round_trip():
    for name, (bits, signed) in DTYPES.items():
        assert dtype_for(bits, signed) == name and dtype_info(name) == (bits, signed)
    assert dtype_for(8) == "int8" and dtype_for(8, False) == "uint8" and dtype_for(16, True) == "int16"
    with pytest.raises(LegoError) as e:
        dtype_for(12, False)
    assert str(e.value) == "--bits: 12-bit unsigned data is not supported (allowed: 4, 8, 12, 16)"
    with pytest.raises(LegoError, match="^--bits: 7-bit signed data"):
        dtype_for(7)


@pytest.mark.parametrize("name,want", [("int10", (10, True)), ("uint17", (17, False)), ("int1", (1, True)),
                                       ("uint64", (64, False)), ("int64", (64, True))])
def test_dtype_info_internal_widths(name, want):
    assert dtype_info(name) == want


@pytest.mark.parametrize("name", ["int0", "uint65", "int", "float32", "sint8", "int8x"])
def test_dtype_info_rejects(name):
    with pytest.raises(LegoError) as e:
        dtype_info(name)
    assert str(e.value) == f"dtype: '{name}' is not intN/uintN"


def test_numpy_dtype_smallest_container():
    for bits in range(1, 65):
        want = 8 if bits <= 8 else 16 if bits <= 16 else 32 if bits <= 32 else 64
        assert numpy_dtype(bits, True) == np.dtype(f"int{want}")
        assert numpy_dtype(bits, False) == np.dtype(f"uint{want}")
    with pytest.raises(LegoError, match="^dtype: 65 bits is too wide$"):
        numpy_dtype(65, True)


@pytest.mark.parametrize("coeffs,const,text", [
    ((1, -1, 2), -3, "h - w + 2*r - 3"), ((0, 0, 0), 0, "0"), ((0, 0, 0), 5, "5"), ((-2, 0, 1), 0, "-2*h + r"),
    ((0, 1, 0), 4, "w + 4"), ((3, 0, 0), 0, "3*h")])
def test_affine_render(coeffs, const, text):
    assert Affine(coeffs, const).render(ITS) == text
    if text != "0":     # and parse_affine reads it back
        assert parse_affine(text, ITS, "x") == Affine(coeffs, const)


def test_tensor_properties():
    u = Tensor("X", "input", "uint8", (Affine((1,)),), (4,))
    s = Tensor("Y", "output", "int12", (Affine((1,)),), (4,))
    assert (u.bits, u.signed, u.vbits, u.np_dtype) == (8, False, 9, np.dtype("uint8"))
    assert (s.bits, s.signed, s.vbits, s.np_dtype) == (12, True, 12, np.dtype("int16"))
    assert not u.pad


def _gemm(m=3, n=4, k=5, extra=()):
    its = ("i", "j", "k")
    X = Tensor("X", "input", "int8", (Affine((1, 0, 0)), Affine((0, 0, 1))), (m, k))
    W = Tensor("W", "input", "int8", (Affine((0, 0, 1)), Affine((0, 1, 0))), (k, n))
    Y = Tensor("Y", "output", "int32", (Affine((1, 0, 0)), Affine((0, 1, 0))), (m, n))
    return Workload("g", its, (m, n, k), (X, W, Y) + tuple(extra))


def test_workload_accessors():
    w = _gemm()
    assert [t.name for t in w.inputs] == ["X", "W"] and w.output.name == "Y"
    assert w.tensor("W").shape == (5, 4)
    with pytest.raises(KeyError):
        w.tensor("Z")
    A, a = w.access("X")
    assert A.tolist() == [[1, 0, 0], [0, 0, 1]] and a.tolist() == [0, 0] and A.dtype == np.int64
    assert w.macs == 60
    assert w.shape_dict == {"i": 3, "j": 4, "k": 5}
    w2 = Workload("g", w.iterators, w.extents, w.tensors, params=(("M", 3), ("N", 4)))
    assert w2.shape_dict == {"M": 3, "N": 4}
    assert validate(w) is w


def test_index_range_by_enumeration():
    rng = np.random.default_rng(11)
    for _ in range(30):
        ext = tuple(int(x) for x in rng.integers(1, 5, size=3))
        rows = [tuple(int(x) for x in rng.integers(-3, 4, size=3)) for _ in range(2)]
        consts = [int(x) for x in rng.integers(-4, 5, size=2)]
        t = Tensor("T", "input", "int8", tuple(Affine(r, c) for r, c in zip(rows, consts)), (1, 1))
        w = Workload("w", ("a", "b", "c"), ext, (t,))
        lo, up = index_range(w, t)
        vals = np.array([[sum(x * y for x, y in zip(r, p)) + c for r, c in zip(rows, consts)]
                         for p in itertools.product(*(range(e) for e in ext))])
        assert lo.tolist() == vals.min(0).tolist() and up.tolist() == vals.max(0).tolist()


def _bad(w, msg):
    with pytest.raises(LegoError) as e:
        validate(w)
    assert str(e.value) == msg


def test_validate_messages():
    w = _gemm()
    X, W, Y = w.tensors
    _bad(Workload("g", w.iterators, w.extents, w.tensors, body="max"),
         "body: unknown functional unit 'max' (allowed: mac)")
    _bad(Workload("g", ("i", "1j", "k"), w.extents, w.tensors), "iterators: '1j' is not a valid iterator name")
    _bad(Workload("g", w.iterators, (3, 0, 5), w.tensors), "iterators.j: extent must be a positive integer, got 0")
    _bad(Workload("g", ("i", "i", "k"), w.extents, w.tensors), "iterators: duplicate iterator names")
    _bad(Workload("g", w.iterators, w.extents, (X, W)),
         "tensors: a 'mac' workload needs exactly one output tensor, got 0")
    _bad(Workload("g", w.iterators, w.extents, (X, W, Y, Y)),
         "tensors: a 'mac' workload needs exactly one output tensor, got 2")
    _bad(Workload("g", w.iterators, w.extents, (X, Y)),
         "tensors: a 'mac' workload needs exactly two input tensors, got 1")
    Xr = Tensor("X", "input", "int8", X.index, (3,))
    _bad(Workload("g", w.iterators, w.extents, (Xr, W, Y)), "tensors.X: shape has rank 1 but index has rank 2")
    X0 = Tensor("X", "input", "int8", X.index, (3, 0))
    _bad(Workload("g", w.iterators, w.extents, (X0, W, Y)), "tensors.X.shape[1]: must be positive, got 0")
    Xs = Tensor("X", "input", "int8", X.index, (3, 4))
    _bad(Workload("g", w.iterators, w.extents, (Xs, W, Y)),
         "tensors.X.index[1]: access 'k' ranges over [0, 4] but the dimension has size 4 (out-of-range access)")
    Xn = Tensor("X", "input", "int8", (X.index[0], Affine((0, 0, 1), -1)), (3, 5))
    _bad(Workload("g", w.iterators, w.extents, (Xn, W, Y)),
         "tensors.X.index[1]: access 'k - 1' ranges over [-1, 3] but the dimension has size 5 (out-of-range access)")
    validate(Workload("g", w.iterators, w.extents, (Tensor("X", "input", "int8", Xn.index, (3, 5), True), W, Y)))
    Yp = Tensor("Y", "output", "int32", (Affine((1, 0, 0), -1), Y.index[1]), (3, 4), True)   # pad: inputs only
    _bad(Workload("g", w.iterators, w.extents, (X, W, Yp)),
         "tensors.Y.index[0]: access 'i - 1' ranges over [-1, 1] but the dimension has size 3 (out-of-range access)")
    for dt in ("uint16", "int4"):
        Yd = Tensor("Y", "output", dt, Y.index, Y.shape)
        _bad(Workload("g", w.iterators, w.extents, (X, W, Yd)),
             "tensors.Y.dtype: the output must be a signed type at least as wide as the inputs")
    validate(Workload("g", w.iterators, w.extents, (X, W, Tensor("Y", "output", "int8", Y.index, Y.shape))))
    Wk = Tensor("W", "input", "int8", (Affine((0, 0, 1)), Affine((0, 0, 0))), (5, 1))
    Yi = Tensor("Y", "output", "int32", (Affine((1, 0, 0)),), (3,))
    _bad(Workload("g", w.iterators, w.extents, (X, Wk, Yi)), "iterators.j: iterator is used by no tensor")
    # an iterator only the output uses, or only the second input uses, is used
    validate(Workload("g", w.iterators, w.extents, (X, Wk, Y)))
    validate(Workload("g", w.iterators, w.extents, (X, W, Yi)))


def test_parse_affine_more():
    assert parse_affine(" 2 * h - 3 * w + 7 ", ITS, "x") == Affine((2, -3, 0), 7)
    assert parse_affine("-3", ITS, "x") == Affine((0, 0, 0), -3)
    assert parse_affine(-4, ITS, "x") == Affine((0, 0, 0), -4)
    assert parse_affine("r*2 - 1 - 1", ITS, "x") == Affine((0, 0, 2), -2)
    for bad in (True, None, 1.5, "   ", "h r", "2 3"):
        with pytest.raises(LegoError, match=r"^f: "):
            parse_affine(bad, ITS, "f")
    with pytest.raises(LegoError) as e:
        parse_affine("h + 2*q", ITS, "f")
    assert str(e.value) == "f: unknown iterator 'q' in 'h + 2*q' (iterators: h, w, r)"
    with pytest.raises(LegoError) as e:
        parse_affine("h*h", ITS, "f")
    assert str(e.value) == "f: 'h*h' is not affine (allowed: integer combinations of iterators h, w, r plus a constant)"
    with pytest.raises(LegoError) as e:
        parse_affine(False, ITS, "f")
    assert str(e.value) == "f: 'False' is not an affine index expression"


# ---------------------------------------------------------------- workload files

GEMM_YAML = """name: mm
iterators: {i: 3, j: 4, k: 5}
tensors:
  X: {index: [i, k], role: input, dtype: int8}
  W: {index: [k, j], role: input}
  Y: {index: [i, j], role: output}
"""


def _file(tmp_path, text, name="w.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_parse_workload_file_inferred(tmp_path):
    w = parse_workload_file(_file(tmp_path, GEMM_YAML))
    assert w.name == "mm" and w.iterators == ("i", "j", "k") and w.extents == (3, 4, 5)
    assert [(t.name, t.role, t.dtype, t.shape, t.pad) for t in w.tensors] == [
        ("X", "input", "int8", (3, 5), False), ("W", "input", "int8", (5, 4), False),
        ("Y", "output", "int32", (3, 4), False)]
    assert w.body == "mac"
    j = json.dumps({"iterators": {"i": 2, "k": 3}, "tensors": {
        "A": {"index": ["i", "k"], "role": "input"}, "B": {"index": ["k"], "role": "input", "dtype": "int4"},
        "C": {"index": ["i"], "role": "output", "dtype": "int16"}}})
    w = parse_workload_file(_file(tmp_path, j, "mv.json"))
    assert w.name == "mv" and w.tensor("B").dtype == "int4" and w.tensor("C").shape == (2,)


def test_parse_workload_file_explicit_shape_and_pad(tmp_path):
    text = ("iterators: {h: 4, r: 3}\ntensors:\n  X: {index: [h + r - 1], role: input, shape: [4], pad: true}\n"
            "  W: {index: [r], role: input}\n  Y: {index: [h], role: output}\n")
    w = parse_workload_file(_file(tmp_path, text, "c1.yaml"))
    assert w.tensor("X").shape == (4,) and w.tensor("X").pad and not w.tensor("W").pad
    with pytest.raises(LegoError) as e:
        parse_workload_file(_file(tmp_path, text.replace(", shape: [4], pad: true", ""), "c2.yaml"))
    assert str(e.value) == ("tensors.X.index[0]: access reaches -1 < 0 (out-of-range access; give an explicit shape "
                            "and pad: true for zero padding)")


@pytest.mark.parametrize("text,msg", [
    ("- 1\n", "w.yaml: top level must be a mapping with name, iterators, tensors, body"),
    (GEMM_YAML + "extra: 1\n", "w.yaml: unknown key 'extra' (allowed: name, iterators, tensors, body)"),
    (GEMM_YAML.replace("name: mm", "name: 3x"), "name: '3x' must be an identifier"),
    (GEMM_YAML.replace("{i: 3, j: 4, k: 5}", "{}"), "iterators: must be a non-empty mapping name -> extent"),
    (GEMM_YAML.replace("{i: 3, j: 4, k: 5}", "[i, j]"), "iterators: must be a non-empty mapping name -> extent"),
    (GEMM_YAML.replace("j: 4", "j: 4.5"), "iterators.j: extent must be an integer, got 4.5"),
    (GEMM_YAML.replace("j: 4", "j: true"), "iterators.j: extent must be an integer, got True"),
    ("iterators: {i: 2}\ntensors: {}\n", "tensors: must be a non-empty mapping name -> {index, role, dtype}"),
    (GEMM_YAML.replace("W: {index: [k, j], role: input}", "W: [k, j]"),
     "tensors.W: must be a mapping with index, role, dtype"),
    (GEMM_YAML.replace("role: input}", "role: input, bits: 8}"),
     "tensors.W: unknown key 'bits' (allowed: index, role, dtype, shape, pad)"),
    (GEMM_YAML.replace("role: input}", "role: weight}"), "tensors.W.role: 'weight' (allowed: input, output)"),
    (GEMM_YAML.replace("role: input}", "role: input, dtype: int10}"),
     "tensors.W.dtype: 'int10' (allowed: int4, int8, uint8, int12, int16, uint16, int32, int48, int64)"),
    (GEMM_YAML.replace("index: [k, j]", "index: []"),
     "tensors.W.index: must be a non-empty list of affine expressions"),
    (GEMM_YAML.replace("index: [k, j]", "index: k"), "tensors.W.index: must be a non-empty list of affine expressions"),
    (GEMM_YAML.replace("role: input}", "role: input, shape: [5, true]}"), "tensors.W.shape: must be a list of integers"),
    (GEMM_YAML.replace("role: input}", "role: input, shape: 5}"), "tensors.W.shape: must be a list of integers"),
    (GEMM_YAML.replace("role: input}", "role: input, pad: 1}"), "tensors.W.pad: must be true or false"),
    (GEMM_YAML + "body: max\n", "body: unknown functional unit 'max' (allowed: mac)"),
    (GEMM_YAML + "iterators: {i: 2}\n", "w.yaml: 'iterators' is declared twice (line 2 and line 7)"),
    (GEMM_YAML.replace("{i: 3, j: 4, k: 5}", "{i: 3, j: 4, k: 5, i: 2}"),
     "w.yaml: 'i' is declared twice (line 2 and line 2)"),
    ("name: !!python/object:os.system x\n", "w.yaml: YAML tag not allowed"),
    ("name: [unclosed\n", "w.yaml: invalid YAML at line 2"),
])
def test_parse_workload_file_errors(tmp_path, text, msg):
    with pytest.raises(LegoError) as e:
        parse_workload_file(_file(tmp_path, text))
    assert str(e.value).startswith(msg)
    if "tag" not in msg:
        assert str(e.value) == msg


def test_parse_workload_file_missing_and_bad_json(tmp_path):
    with pytest.raises(LegoError) as e:
        parse_workload_file(tmp_path / "nope.yaml")
    assert str(e.value) == f"--workload: '{tmp_path / 'nope.yaml'}' is neither a built-in workload nor a readable file"
    with pytest.raises(LegoError) as e:
        parse_workload_file(_file(tmp_path, '{"name": ', "b.json"))
    assert str(e.value) == "b.json: invalid JSON (Expecting value at line 1)"

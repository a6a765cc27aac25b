"""lego/affine/dataflow.py: presets, tiling of shapes that do not divide the array, legality."""
import itertools

import numpy as np
import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape


@pytest.mark.parametrize("preset", ["os", "ws", "is", "os-bcast"])
@pytest.mark.parametrize("wl,shape", [("gemm", "M=37,N=23,K=19"), ("conv2d", "C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1")])
def test_tiling_executes_every_iteration_exactly_once(wl, shape, preset):
    """Enumerate every (t, s) point of the tiled space-time map: the in-range points hit each iteration of
    the nest exactly once (exact coverage and injectivity, computed here, not by the legality check)."""
    w = builtin_workload(wl, parse_shape(shape, wl))
    df = make_dataflow(w, preset, (4, 8) if wl == "gemm" else (3, 4))
    t = df.time_coords()
    s = np.array(list(itertools.product(*(range(p) for p in df.P))))
    I = (t @ df.AT.T)[:, None, :] + (s @ df.AS.T)[None] + df.bvec
    I = I.reshape(-1, I.shape[-1])
    I = I[np.all((I >= 0) & (I < np.array(w.extents)), axis=1)]
    flat = np.ravel_multi_index(I.T, w.extents)
    assert len(flat) == w.macs and len(np.unique(flat)) == w.macs


def test_tiled_steps_by_hand():
    """GEMM 37x23x19 on 4x8, os: rows i, columns j tiled, k innermost: ceil(37/4)*ceil(23/8)*19 steps."""
    w = builtin_workload("gemm", parse_shape("M=37,N=23,K=19", "gemm"))
    assert make_dataflow(w, "os", (4, 8)).steps == 10 * 3 * 19
    assert make_dataflow(w, "ws", (4, 8)).steps == 5 * 3 * 37          # rows k, columns j, i innermost


def test_conv_preset_and_padding():
    w = builtin_workload("conv2d", parse_shape("H=7,W=7,STRIDE=2,PAD=1", "conv2d"))
    assert w.tensor("X").pad
    assert w.output.shape == (1, 8, 4, 4)       # (7 + 2 - 3) // 2 + 1 = 4


# ---------------------------------------------------------------- the Dataflow IR, presets, files, legality

import json  # noqa: E402

from lego.affine.dataflow import (PRESET_TABLE, PRESETS, Dataflow, _generic_choice, _separable_cover,  # noqa: E402
                                  check_dataflow, file_dataflow, preset_dataflow)
from lego.affine.workload import parse_workload_file  # noqa: E402
from lego.errors import LegoError  # noqa: E402


def _gemm(shape="M=5,N=6,K=7"):
    return builtin_workload("gemm", parse_shape(shape, "gemm"))


def test_dataflow_properties_by_hand():
    df = Dataflow("d", ((1, 0), (0, 1)), ((2, 0), (0, 0)), (0, 1), (3, 2), (2, 3), (1, -2))
    assert df.AT.tolist() == [[1, 0], [0, 1]] and df.AS.tolist() == [[2, 0], [0, 0]] and df.bvec.tolist() == [0, 1]
    assert df.steps == 6
    assert df.fus == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert df.skew0 == 4                            # min c·s = 1*0 - 2*2
    assert [df.ctl_delay(s) for s in df.fus] == [4, 2, 0, 5, 3, 1]
    assert df.time_coords().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]
    assert df.time_coords().dtype == np.int64


@pytest.mark.parametrize("preset,rows,cols,inner,c", [
    ("os", "i", "j", "k", (1, 1)), ("ws", "k", "j", "i", (1, 1)), ("is", "i", "k", "j", (1, 1)),
    ("os-bcast", "i", "j", "k", (0, 0)), ("is-bcast", "i", "k", "j", (0, 0))])
def test_preset_maps_by_hand(preset, rows, cols, inner, c):
    w = _gemm()
    ext = dict(zip(w.iterators, w.extents))
    df = preset_dataflow(w, preset, (2, 3))
    its = list(w.iterators)
    other = [x for x in its if x not in (rows, cols, inner)]
    assert df.time_names == (f"t_{rows}", f"t_{cols}", *other, inner)
    assert df.T == (-(-ext[rows] // 2), -(-ext[cols] // 3), *[ext[x] for x in other], ext[inner])
    assert df.P == (2, 3) and df.c == c and df.b == (0, 0, 0) and df.name == preset
    A_S = np.zeros((3, 2), int)
    A_S[its.index(rows), 0] = 1
    A_S[its.index(cols), 1] = 1
    assert df.AS.tolist() == A_S.tolist()
    A_T = np.zeros((3, 3), int)
    A_T[its.index(rows), 0] = 2
    A_T[its.index(cols), 1] = 3
    A_T[its.index(inner), 2] = 1
    assert df.AT.tolist() == A_T.tolist()


def test_preset_errors():
    w = _gemm()
    with pytest.raises(LegoError) as e:
        preset_dataflow(w, "rs", (2, 2))
    assert str(e.value) == "--dataflow: unknown dataflow 'rs' (allowed: os, ws, is, os-bcast, ws-bcast, is-bcast, or a .yaml file)"
    with pytest.raises(LegoError, match="^--dataflow: unknown dataflow 'os-x'"):
        preset_dataflow(w, "os-x", (2, 2))
    assert set(PRESET_TABLE) == {"gemm", "bmm", "conv2d", "dwconv2d", "attn_qk", "attn_pv"}
    assert PRESETS == ("os", "ws", "is", "os-bcast", "ws-bcast", "is-bcast")


def _user(tmp_path, text):
    f = tmp_path / "u.yaml"
    f.write_text(text)
    return parse_workload_file(f)


MV = ("name: mv\niterators: {a: 6, b: 4, c: 5}\ntensors:\n  X: {index: [a, c], role: input}\n"
      "  W: {index: [c, b], role: input}\n  Y: {index: [a, b], role: output}\n")


def test_generic_choice_picks_by_role_and_extent(tmp_path):
    w = _user(tmp_path, MV)         # a gemm under other names: out {a, b}, reduction {c}
    assert _generic_choice(w, "os") == ("a", "b", "c")      # largest output loops, reduction innermost
    assert _generic_choice(w, "ws") == ("c", "b", "a")      # reduction x W's output loop, X-only loop inner
    assert _generic_choice(w, "is") == ("a", "c", "b")      # X's output loop x reduction, W-only loop inner
    for p in ("os", "ws", "is"):
        check_dataflow(w, preset_dataflow(w, p, (2, 2)))
    # ties go to the earlier iterator
    w2 = _user(tmp_path, MV.replace("a: 6, b: 4", "a: 4, b: 4"))
    assert _generic_choice(w2, "os") == ("a", "b", "c")


def test_generic_choice_without_reduction(tmp_path):
    # elementwise product Y[a, b, c] = X[a, b, c] * W[c]: no reduction loop, os takes the third loop inner
    w = _user(tmp_path, "iterators: {a: 3, b: 5, c: 4}\ntensors:\n  X: {index: [a, b, c], role: input}\n"
                        "  W: {index: [c], role: input}\n  Y: {index: [a, b, c], role: output}\n")
    assert _generic_choice(w, "os") == ("b", "c", "a")
    for p in ("is", "ws"):
        with pytest.raises(LegoError) as e:
            _generic_choice(w, p)
        assert str(e.value) == (f"--dataflow: preset '{p}' does not apply to workload u (no suitable iterator); "
                                "give an explicit dataflow file")


def test_tiled_errors(tmp_path):
    w = _gemm()
    f = tmp_path / "d.yaml"
    f.write_text("spatial: [i, q]\n")
    with pytest.raises(LegoError) as e:
        file_dataflow(w, f, (2, 2))
    assert str(e.value) == "--dataflow: preset 'd' needs iterator 'q', absent from gemm"
    f.write_text("spatial: [i, i]\n")
    with pytest.raises(LegoError) as e:
        file_dataflow(w, f, (2, 2))
    assert str(e.value) == "--dataflow: preset 'd' maps one iterator to both array axes"


def test_file_dataflow_spatial_and_matrices(tmp_path):
    w = _gemm("M=4,N=6,K=3")
    f = tmp_path / "sp.yaml"
    f.write_text("name: mine\nspatial: [j, i]\ninner: k\nc: [1, 0]\n")
    df = make_dataflow(w, str(f), (3, 2))
    assert df.name == "mine" and df.c == (1, 0) and df.T == (2, 2, 3) and df.time_names == ("t_j", "t_i", "k")
    f.write_text("spatial: [j, i]\n")            # inner defaults to the row iterator: no inner loop added
    df = file_dataflow(w, f, (3, 2))
    assert df.name == "sp" and df.c == (1, 1) and df.time_names == ("t_j", "t_i", "k")
    g = tmp_path / "m.json"
    g.write_text(json.dumps({"A_T": [[2, 0, 0], [0, 3, 0], [0, 0, 1]], "A_S": [[1, 0], [0, 1], [0, 0]],
                             "T": [2, 2, 3], "c": [0, 1]}))
    df = make_dataflow(w, str(g), (2, 3))
    assert df.name == "m" and df.b == (0, 0, 0) and df.time_names == ("t0", "t1", "t2") and df.c == (0, 1)
    assert df.AT.tolist() == [[2, 0, 0], [0, 3, 0], [0, 0, 1]]
    g.write_text(json.dumps({"A_T": [[2, 0, 0], [0, 3, 0], [0, 0, 1]], "A_S": [[1, 0], [0, 1], [0, 0]],
                             "T": [2, 2, 3], "b": [0, 0, 0]}))
    assert file_dataflow(w, g, (2, 3)).c == (1, 1)


@pytest.mark.parametrize("doc,msg", [
    ([1, 2], "x.yaml: a dataflow file is a mapping (A_T, A_S, b, T, c) or (spatial, inner, c)"),
    ({"spatial": ["i"]}, "spatial: must list two iterators (rows, columns)"),
    ({"spatial": "ij"}, "spatial: must list two iterators (rows, columns)"),
    ({"spatial": ["i", "j"], "c": [1]}, "c: control vector must be a list of 2 integers"),
    ({"spatial": ["i", "j"], "c": 1}, "c: control vector must be a list of 2 integers"),
    ({"spatial": ["i", "j"], "c": [1, 0.5]}, "c: control vector must be a list of 2 integers"),
    ({"A_S": [[1, 0]], "T": [1]}, "A_T: missing in dataflow file (need A_T, A_S, T, optional b and c)"),
    ({"A_T": [[1]], "T": [1]}, "A_S: missing in dataflow file (need A_T, A_S, T, optional b and c)"),
    ({"A_T": [[1]], "A_S": [[1]]}, "T: missing in dataflow file (need A_T, A_S, T, optional b and c)"),
    ({"A_T": [1, 2, 3], "A_S": [], "T": [1]}, "A_T: must be a list of integer rows"),
    ({"A_T": "x", "A_S": [], "T": [1]}, "A_T: must be a list of integer rows"),
    ({"A_T": [[1], [1], [True]], "A_S": [], "T": [1]}, "A_T: entries must be integers"),
    ({"A_T": [[1], [1], [1.0]], "A_S": [], "T": [1]}, "A_T: entries must be integers"),
    ({"A_T": [[1], [1]], "A_S": [], "T": [1]}, "A_T: has 2 rows, the workload has 3 iterators (rank mismatch)"),
    ({"A_T": [[1], [1], [1, 2]], "A_S": [], "T": [1]}, "A_T: rows have different lengths"),
    ({"A_T": [[1], [1], [1]], "A_S": [[1, 0], [0, 1], [0, 0]], "T": [0]},
     "T: must be a list of positive integers (temporal extents)"),
    ({"A_T": [[1], [1], [1]], "A_S": [[1, 0], [0, 1], [0, 0]], "T": 3},
     "T: must be a list of positive integers (temporal extents)"),
    ({"A_T": [[1], [1], [1]], "A_S": [[1, 0], [0, 1], [0, 0]], "T": [2, 2]},
     "A_T: needs 2 columns (one per temporal loop in T) (shape mismatch)"),
    ({"A_T": [[1], [1], [1]], "A_S": [[1], [0], [0]], "T": [2]},
     "A_S: needs 2 columns (one per array axis of --array) (shape mismatch)"),
    ({"A_T": [[1], [1], [1]], "A_S": [[1, 0], [0, 1], [0, 0]], "T": [2], "b": [0, 0]},
     "b: must be a list of 3 integers (rank mismatch)"),
    ({"A_T": [[1], [1], [1]], "A_S": [[1, 0], [0, 1], [0, 0]], "T": [2], "b": 0},
     "b: must be a list of 3 integers (rank mismatch)"),
])
def test_file_dataflow_errors(tmp_path, doc, msg):
    f = tmp_path / "x.yaml"
    f.write_text(json.dumps(doc))
    with pytest.raises(LegoError) as e:
        file_dataflow(_gemm(), f, (2, 2))
    assert str(e.value) == msg


def test_make_dataflow_missing_file(tmp_path):
    with pytest.raises(LegoError) as e:
        make_dataflow(_gemm(), str(tmp_path / "no.yml"), (2, 2))
    assert str(e.value) == f"--dataflow: file '{tmp_path / 'no.yml'}' not found"


def _legal_by_enumeration(w, df):
    t = df.time_coords()
    s = np.array(df.fus)
    I = ((t @ df.AT.T)[:, None, :] + (s @ df.AS.T)[None] + df.bvec).reshape(-1, len(w.extents))
    I = I[np.all((I >= 0) & (I < np.array(w.extents)), axis=1)]
    flat = np.ravel_multi_index(I.T, w.extents)
    return len(flat) == w.macs and len(np.unique(flat)) == w.macs


def test_check_dataflow_agrees_with_enumeration():
    """Preset maps on random array shapes (legal) and the same maps with one entry of A_T, A_S or b changed
    (mostly illegal): check_dataflow accepts exactly the maps that run every iteration once."""
    rng = np.random.default_rng(5)
    w = _gemm("M=3,N=4,K=2")
    seen = {True: 0, False: 0}
    for _ in range(150):
        P = tuple(int(x) for x in rng.integers(1, 4, size=2))
        df = preset_dataflow(w, PRESETS[int(rng.integers(0, 6))], P)
        A_T, A_S, b = df.AT.copy(), df.AS.copy(), df.bvec.copy()
        which = int(rng.integers(0, 4))
        if which == 1:
            A_T[rng.integers(0, 3), rng.integers(0, A_T.shape[1])] += int(rng.choice([-1, 1]))
        elif which == 2:
            A_S[rng.integers(0, 3), rng.integers(0, 2)] += int(rng.choice([-1, 1]))
        elif which == 3:
            b[rng.integers(0, 3)] += int(rng.choice([-1, 1]))
        df = Dataflow("r", tuple(map(tuple, A_T.tolist())), tuple(map(tuple, A_S.tolist())), tuple(b.tolist()),
                      df.T, df.P, df.c)
        legal = _legal_by_enumeration(w, df)
        seen[legal] += 1
        if legal:
            assert check_dataflow(w, df) is df
        else:
            with pytest.raises(LegoError, match=r"^--dataflow: r: (not injective: iteration \{|iteration \{)"):
                check_dataflow(w, df)
        if _separable_cover(w, df):
            assert legal
    assert seen[True] > 20 and seen[False] > 20


def test_separable_cover_cases():
    w = _gemm("M=4,N=6,K=3")
    for p in ("os", "ws", "is", "ws-bcast"):
        assert _separable_cover(w, preset_dataflow(w, p, (2, 3)))    # dividing tiles: mixed radix
        assert _separable_cover(w, preset_dataflow(w, p, (1, 1)))
    w5 = _gemm("M=5,N=6,K=3")
    assert _separable_cover(w5, preset_dataflow(w5, "os", (2, 3)))   # radix 2*3 = 6 >= 5 still covers
    base = dict(A_T=((2, 0), (0, 1), (0, 0)), A_S=((1, 0), (0, 0), (0, 1)), T=(2, 6), P=(2, 3), c=(1, 1))
    ok = Dataflow("d", base["A_T"], base["A_S"], (0, 0, 0), base["T"], base["P"], base["c"])
    assert _separable_cover(w, ok) and check_dataflow(w, ok) is ok
    assert not _separable_cover(w, Dataflow("d", base["A_T"], base["A_S"], (0, 1, 0), base["T"], base["P"], base["c"]))
    assert not _separable_cover(w, Dataflow("d", ((-2, 0), (0, 1), (0, 0)), base["A_S"], (0, 0, 0), base["T"],
                                            base["P"], base["c"]))
    # one coordinate feeding two iterators
    assert not _separable_cover(w, Dataflow("d", ((2, 0), (0, 1), (0, 1)), base["A_S"], (0, 0, 0), base["T"],
                                            base["P"], base["c"]))
    # a coordinate that feeds no iterator and has extent > 1 repeats work; extent 1 is harmless
    assert not _separable_cover(w, Dataflow("d", ((2, 0, 0), (0, 1, 0), (0, 0, 0)), base["A_S"], (0, 0, 0),
                                            (2, 6, 2), base["P"], base["c"]))
    assert _separable_cover(w, Dataflow("d", ((2, 0, 0), (0, 1, 0), (0, 0, 0)), base["A_S"], (0, 0, 0),
                                        (2, 6, 1), base["P"], base["c"]))
    # wrong radix (i = 3 t + s, P = 2): a gap; too few steps: some iterations never run
    assert not _separable_cover(w, Dataflow("d", ((3, 0), (0, 1), (0, 0)), base["A_S"], (0, 0, 0), base["T"],
                                            base["P"], base["c"]))
    assert not _separable_cover(w, Dataflow("d", base["A_T"], base["A_S"], (0, 0, 0), (1, 6), base["P"], base["c"]))


def test_check_dataflow_errors():
    w = _gemm("M=4,N=6,K=3")
    bad_rows = Dataflow("b", ((1,), (1,)), ((1, 0), (0, 1)), (0, 0), (2,), (2, 2), (1, 1))
    with pytest.raises(LegoError) as e:
        check_dataflow(w, bad_rows)
    assert str(e.value) == "--dataflow: b: matrices have 2 rows, workload has 3 iterators"
    dup = Dataflow("d", ((2, 0), (0, 1), (0, 0)), ((1, 0), (0, 0), (0, 0)), (0, 0, 0), (2, 6), (2, 3), (1, 1))
    with pytest.raises(LegoError) as e:
        check_dataflow(w, dup)
    assert str(e.value) == ("--dataflow: d: not injective: iteration {'i': 0, 'j': 0, 'k': 0} runs 3 times "
                            "(two space-time points on one iteration)")
    gap = Dataflow("g", ((2, 0), (0, 1), (0, 0)), ((1, 0), (0, 0), (0, 1)), (0, 0, 0), (2, 5), (2, 3), (1, 1))
    with pytest.raises(LegoError) as e:
        check_dataflow(w, gap)
    assert str(e.value) == "--dataflow: g: iteration {'i': 0, 'j': 5, 'k': 0} is never executed"
    big = builtin_workload("gemm", parse_shape("M=200,N=200,K=200", "gemm"))
    huge = Dataflow("h", ((1, 0, 0), (0, 1, 0), (0, 0, 1)), ((0, 0), (0, 0), (0, 0)), (1, 0, 0), (200, 200, 200),
                    (1, 1), (1, 1))
    with pytest.raises(LegoError) as e:
        check_dataflow(big, huge)
    assert str(e.value) == ("--dataflow: h: 8000000 space-time points is too many to check injectivity by "
                            "enumeration (max 4e6) and the map is not a separable mixed-radix tiling")

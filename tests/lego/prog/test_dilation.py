"""Dilated convolutions (docs/programmable.md, "Models" and "Hardware im2col"): ``conv2d:...,DIL=d`` and
``dwconv2d:...,DIL=d``, ONNX ``Conv`` with ``dilations``: through the host's im2col on a gemm design (and with
``--im2col host``), through the load DMA's window generator on a conv design (its WIN_DH / WIN_DW registers: by
default and with ``--im2col hardware``; ``auto`` takes the faster by exact cycles).

The oracle is a direct dilated convolution written here (loops over output pixels and taps, bounds checked
against the unpadded image: no padding array, no im2col, no sw_reference); the code under test is the
parser, ``lower.im2col`` / ``conv_out``, the compiler (host im2col and windowed LOADs), the cycle engine and
``sw_reference.ops``' dilation.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.prog.compiler import parse_layer
from lego.prog.generate import generate_prog
from lego.prog.lower import LayerSpec, conv_out, conv_output, conv_weights, im2col, lower
from lego.prog import program as P
from lego.prog.spec import decode
from lego.prog.topology import read_onnx
from simulator.program import simulate_program
from tests.conv_oracle import direct_conv, wrap32
from sw_reference.ops import conv2d as ref_conv2d
from sw_reference.ops import dwconv2d as ref_dwconv2d


# --------------------------------------------------------------------------------------------- oracle

def dilated_conv(x, w, stride, pads, dil, groups) -> np.ndarray:
    """x [N, C, H, W], w [K, C/groups, R, S] -> [N, K, Ho, Wo]: tests/conv_oracle.py's direct convolution."""
    return direct_conv(x, w, stride, pads, dil, groups)


def random_layer(rng, min_dil: int = 1) -> str:
    """A valid ``--layer`` text: conv2d (groups 1-2) or dwconv2d, stride 1-2, pad 0-2, dilation min_dil..3."""
    st, pad, dil = int(rng.integers(1, 3)), int(rng.integers(0, 3)), int(rng.integers(min_dil, 4))
    r, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    h = int(rng.integers(max(1, (r - 1) * dil + 1 - 2 * pad), 10))
    wd = int(rng.integers(max(1, (s - 1) * dil + 1 - 2 * pad), 10))
    n = int(rng.integers(1, 3))
    if rng.integers(0, 3) == 0:
        c = int(rng.integers(1, 5))
        return f"dwconv2d:N={n},C={c},H={h},W={wd},R={r},S={s},STRIDE={st},PAD={pad},DIL={dil}"
    g = int(rng.integers(1, 3))
    c, k = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 4))
    return f"conv2d:N={n},C={c},H={h},W={wd},K={k},R={r},S={s},STRIDE={st},PAD={pad},GROUPS={g},DIL={dil}"


def tensors(spec, seed):
    rng = np.random.default_rng(seed)
    d, g = spec.dims, spec.groups
    x = rng.integers(-128, 128, size=(d["N"], d["C"], d["H"], d["W"]), dtype=np.int64)
    w = rng.integers(-128, 128, size=(d["K"], d["C"] // g, d["R"], d["S"]), dtype=np.int64)
    return x, w


def test_the_oracle_by_hand():
    """1 channel, 5x5 ramp, a 2x2 kernel of ones at dilation 2: output (0, 0) sums pixels (0,0) (0,2) (2,0) (2,2)."""
    x = np.arange(25).reshape(1, 1, 5, 5)
    y = dilated_conv(x, np.ones((1, 1, 2, 2), np.int64), (1, 1), (0, 0, 0, 0), (2, 2), 1)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 0, 0] == 0 + 2 + 10 + 12 and y[0, 0, 2, 1] == 11 + 13 + 21 + 23


# ------------------------------------------------------------------------------------------- layers

def test_parse_layer_dilation():
    s = parse_layer("conv2d:C=4,H=20,W=18,K=8,R=3,S=3,PAD=2,DIL=2")
    assert s.dilation == (2, 2) and s.stride == (1, 1) and s.pads == (2, 2, 2, 2)
    # effective kernel (3 - 1)·2 + 1 = 5: Ho = 20 + 4 - 5 + 1 = 20, Wo = 18
    assert conv_out(s) == (20, 18)
    low = lower(s)
    assert (low.G, low.M, low.N, low.K) == (1, 20 * 18, 8, 4 * 9)
    dw = parse_layer("dwconv2d:C=6,H=9,W=9,R=3,S=3,STRIDE=2,DIL=3")
    assert dw.dilation == (3, 3) and dw.groups == 6 and conv_out(dw) == (2, 2)     # (9 - 7) // 2 + 1
    assert parse_layer("conv2d:C=1,H=5,W=5,K=1,R=3,S=3").dilation == (1, 1)
    assert parse_layer("dwconv2d:C=1,H=5,W=5,R=3,S=3").dilation == (1, 1)


CASES = [  # N, C, H, W, K, R, S, (sh, sw), pads (t, l, b, r), (dh, dw), groups
    (1, 3, 9, 9, 4, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 1),
    (2, 4, 11, 8, 6, 3, 2, (2, 1), (1, 0, 2, 1), (3, 2), 2),
    (1, 5, 7, 7, 5, 3, 3, (1, 2), (0, 0, 0, 0), (1, 3), 5),          # depthwise
    (1, 2, 6, 10, 3, 2, 4, (2, 2), (1, 2, 0, 1), (3, 1), 1),
]


@pytest.mark.parametrize("case", CASES, ids=[f"c{i}" for i in range(len(CASES))])
def test_host_im2col_equals_direct_dilated_conv(case):
    """``lower.im2col`` x ``conv_weights`` per group, read back by ``conv_output``, on asymmetric strides, pads and
    dilations, against the loops above; and sw_reference's conv2d / dwconv2d with a dilation pair."""
    n, c, h, wd, k, r, s, st, pads, dil, g = case
    spec = LayerSpec("c", "conv2d", {"N": n, "C": c, "H": h, "W": wd, "K": k, "R": r, "S": s}, st, pads, g, dil)
    x, w = tensors(spec, sum(case[:7]))
    X, W = im2col(x, spec), conv_weights(w, spec)
    low = lower(spec)
    assert X.shape == (low.G, low.M, low.K) and W.shape == (low.G, low.K, low.N)
    want = dilated_conv(x, w, st, pads, dil, g)
    assert conv_out(spec) == want.shape[2:]
    assert np.array_equal(conv_output(np.stack([X[i] @ W[i] for i in range(g)]), spec), want)
    if st[0] == st[1] and len(set(pads)) == 1:
        cg, kg = c // g, k // g
        ref = (ref_dwconv2d(x, w[:, 0], st[0], pads[0], dilation=dil) if g == c == k else
               np.concatenate([ref_conv2d(x[:, i * cg:(i + 1) * cg], w[i * kg:(i + 1) * kg], st[0], pads[0],
                                          dilation=dil) for i in range(g)], axis=1))
        assert np.array_equal(ref, want)


@pytest.mark.parametrize("seed", range(8))
def test_sw_reference_dilation(seed):
    rng = np.random.default_rng(seed)
    n, c, k, st, pad, dil = 1 + seed % 2, int(rng.integers(1, 4)), int(rng.integers(1, 4)), 1 + seed % 2, \
        seed % 3, (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    r, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    h, wd = (r - 1) * dil[0] + int(rng.integers(1, 5)), (s - 1) * dil[1] + int(rng.integers(1, 5))
    x = rng.integers(-128, 128, (n, c, h, wd))
    w = rng.integers(-128, 128, (k, c, r, s))
    p4 = (pad,) * 4
    assert np.array_equal(ref_conv2d(x, w, st, pad, dilation=dil), dilated_conv(x, w, (st, st), p4, dil, 1))
    wdw = rng.integers(-128, 128, (c, r, s))
    assert np.array_equal(ref_dwconv2d(x, wdw, st, pad, dilation=dil),
                          dilated_conv(x, wdw[:, None], (st, st), p4, dil, c))
    if dil[0] == dil[1]:     # an int is both axes
        assert np.array_equal(ref_conv2d(x, w, st, pad, dilation=dil[0]), ref_conv2d(x, w, st, pad, dilation=dil))


# --------------------------------------------------------------------------------- designs and refusals

@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict:
    """A gemm design (host im2col only) and a conv design (window generator), 2x2 ws+os, 1 KiB."""
    out = {}
    for wl in ("gemm", "conv2d"):
        d = tmp_path_factory.mktemp("dil") / wl
        generate_prog(wl, "2x2", ("ws", "os"), 8, 1, 1, 64, True, d)
        out[wl] = d
    return out


def _err(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lego: error: "), err
    return err[0][len("lego: error: "):]


def test_refusals_name_the_field(designs, tmp_path, capsys):
    conv, gemm = designs["conv2d"], designs["gemm"]
    prog = tmp_path / "p.prog"
    base = ["compile", conv, "--out", prog, "--layer"]
    assert _err(capsys, base + ["conv2d:C=2,H=8,W=8,K=2,R=3,S=3,DIL=0"]) == "--layer: DIL=0 must be at least 1"
    assert _err(capsys, base + ["dwconv2d:C=2,H=8,W=8,R=3,S=3,DIL=-2"]) == "--layer: DIL=-2 must be at least 1"
    assert _err(capsys, base + ["conv2d:C=2,H=8,W=8,K=2,R=3,S=3,DIL=two"]) == "--layer: DIL='two' is not an integer"
    assert _err(capsys, base + ["conv2d:C=2,H=8,W=8,K=2,R=3,S=3,DIL=1.5"]) == "--layer: DIL='1.5' is not an integer"
    assert _err(capsys, base + ["gemm:M=4,N=4,K=4,DIL=2"]) == "--layer: unknown key 'DIL' (gemm takes M, N, K)"
    # effective kernel (3 - 1)·3 + 1 = 7 > the padded 4 + 2 = 6
    assert _err(capsys, base + ["conv2d:C=2,H=4,W=4,K=2,R=3,S=3,PAD=1,DIL=3"]) == (
        "--layer: layer 'layer': the 3x3 window (dilation 3x3: 7x7 input pixels) does not fit the padded 6x6 input")
    assert _err(capsys, base + ["dwconv2d:C=2,H=5,W=9,R=3,S=3,DIL=3", "--im2col", "host"]).startswith(
        "--layer: layer 'layer': the 3x3 window (dilation 3x3: 7x7 input pixels)")
    # a dilated layer's window still has to fit the window registers: the last tap's row offset (3 - 1)·40000
    assert _err(capsys, base + ["conv2d:C=1,H=65535,W=1,K=1,R=3,S=1,PAD=7233,DIL=40000", "--im2col", "hardware"]) == (
        "--layer: layer 'layer': Rd=80000 overflows the 16-bit window register WIN_RD0")
    assert _err(capsys, ["compile", gemm, "--out", prog, "--layer", "conv2d:C=2,H=9,W=9,K=2,R=3,S=3,DIL=2",
                         "--im2col", "hardware"]).startswith("--im2col: hardware needs a design generated for conv")
    assert not prog.exists() and not Path(str(prog) + ".json").exists()


def _compile(d, layer, out: Path, capsys, *extra) -> dict:
    assert main(["compile", str(d), "--layer", layer, "--out", str(out), *extra]) == 0
    capsys.readouterr()
    return json.loads(Path(str(out) + ".json").read_text())


def test_header_records_dilation_and_the_path(designs, tmp_path, capsys):
    """The program header's layer shape carries the dilation; a gemm design and ``--im2col host`` take the host's
    im2col (the X region is the expanded matrix), a conv design by default and with ``--im2col hardware`` the
    windows (the X region is the NHWC input), ``auto`` the one of fewer predicted cycles."""
    layer = "conv2d:C=3,H=10,W=10,K=4,R=3,S=3,PAD=2,DIL=2"
    cycles = {}
    for d, pol, who in ((designs["gemm"], (), "host"), (designs["conv2d"], ("--im2col", "host"), "host"),
                        (designs["conv2d"], (), "hardware"), (designs["conv2d"], ("--im2col", "hardware"), "hardware")):
        h = _compile(d, layer, tmp_path / "p.prog", capsys, *pol)
        rec = h["layers"][0]
        assert rec["shape"]["dilation"] == [2, 2] and rec["shape"]["pads"] == [2, 2, 2, 2]
        assert h["im2col"] == rec["im2col"] == who
        assert rec["gemm"] == {"G": 1, "M": 100, "N": 4, "K": 27}
        if who == "host":
            assert rec["lowering"].startswith("host im2col") and rec["dram"]["X"]["shape"] == [1, 100, 27]
        else:
            assert rec["lowering"].startswith("hardware im2col") and rec["dram"]["X"]["shape"] == [1, 10, 10, 3]
        if d == designs["conv2d"]:
            cycles[who] = h["predicted"]["cycles"]
    auto = _compile(designs["conv2d"], layer, tmp_path / "a.prog", capsys, "--im2col", "auto")
    want = "hardware" if cycles["hardware"] <= cycles["host"] else "host"
    assert auto["im2col"] == want and auto["predicted"]["cycles"] == min(cycles.values())
    plain = _compile(designs["conv2d"], "conv2d:C=3,H=10,W=10,K=4,R=3,S=3,PAD=1", tmp_path / "q.prog", capsys)
    assert plain["im2col"] == "hardware" and plain["layers"][0]["shape"]["dilation"] == [1, 1]


# ---------------------------------------------------------------------------------- the cycle engine

def _engine(d, layer, tmp_path, capsys, seed, who, *extra):
    """Compile ``layer`` for design ``d`` (its im2col must be ``who``), run it on the cycle engine with the inputs
    that path places (host: the im2col'd matrix; hardware: the NHWC input and ``[G, R, S, Cg, Kg]`` weights)."""
    spec = parse_layer(layer)
    h = _compile(d, layer, tmp_path / "p.prog", capsys, *extra)
    assert h["layers"][0]["im2col"] == who
    x, w = tensors(spec, seed)
    want = dilated_conv(x, w, spec.stride, spec.pads, spec.dilation, spec.groups)
    if who == "host":
        inputs = {"X": im2col(x, spec), "W": conv_weights(w, spec)}
    else:
        d_, g = spec.dims, spec.groups
        cg, kg = d_["C"] // g, d_["K"] // g
        inputs = {"X": x.transpose(0, 2, 3, 1),
                  "W": w.reshape(g, kg, cg, d_["R"], d_["S"]).transpose(0, 3, 4, 2, 1)}
    rep = simulate_program(d, tmp_path / "p.prog", "cycle", inputs=inputs, latency=20)
    assert rep.match and rep.cycles == h["predicted"]["cycles"]
    got = conv_output(rep.outputs["Y"], spec) if who == "host" else rep.outputs["Y"].transpose(0, 3, 1, 2)
    assert np.array_equal(got, want), layer


@pytest.mark.parametrize("seed", range(15))
def test_engine_dilated_random_layers(designs, tmp_path, capsys, seed):
    """Random dilated layers (conv2d grouped or not, dwconv2d; stride 1-2, pad 0-2, dilation 1-3) compiled in a
    random mode for the gemm design (host im2col), the conv design by default (the windows) and the conv design
    with ``--im2col host``, run on the cycle engine; the layers drawn are printed on failure by the assertion."""
    rng = np.random.default_rng(1000 + seed)
    layer = random_layer(rng, 1 + seed % 2)
    d, who, pol = ((designs["gemm"], "host", ()), (designs["conv2d"], "hardware", ()),
                   (designs["conv2d"], "host", ("--im2col", "host")))[seed % 3]
    _engine(d, layer, tmp_path, capsys, seed, who, "--mode", ("ws", "os")[seed // 3 % 2], *pol)


def test_engine_dilated_fixed_cases(designs, tmp_path, capsys):
    """Grouped, depthwise, strided and per-axis dilated layers that the random draw may miss, on both paths."""
    for i, layer in enumerate(("conv2d:N=2,C=4,H=9,W=8,K=6,R=3,S=2,STRIDE=2,PAD=1,GROUPS=2,DIL=3",
                               "dwconv2d:C=5,H=10,W=11,R=3,S=3,PAD=2,DIL=2",
                               "conv2d:C=3,H=12,W=12,K=5,R=2,S=2,STRIDE=2,DIL=3")):
        _engine(designs["gemm"], layer, tmp_path, capsys, i, "host")
        _engine(designs["conv2d"], layer, tmp_path, capsys, i, "hardware", "--im2col", "hardware")


# ----------------------------------------------------------------------------------------------- ONNX

def _dilated_onnx(path: Path) -> Path:
    """Three Convs: dilations [2, 3] with explicit pads and 2 groups; a depthwise SAME_UPPER one at dilation 2;
    an undilated one; and a Relu (skipped)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Conv", ["x", "w1"], ["y1"], name="aspp", dilations=[2, 3], pads=[1, 2, 3, 0],
                              group=2),
             helper.make_node("Conv", ["y1", "w2"], ["y2"], name="dw", dilations=[2, 2], strides=[2, 2],
                              auto_pad="SAME_UPPER", group=6),
             helper.make_node("Conv", ["y2", "w3"], ["y3"], name="plain", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["y3"], ["z"], name="act")]
    inits = [numpy_helper.from_array(np.zeros(shape, np.float32), n)
             for n, shape in (("w1", (6, 2, 3, 3)), ("w2", (6, 1, 3, 3)), ("w3", (4, 6, 3, 3)))]
    g = helper.make_graph(nodes, "dil", [vi("x", TensorProto.FLOAT, [1, 4, 12, 11])],
                          [vi("z", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_dilated_conv_is_imported(designs, tmp_path, capsys):
    f = _dilated_onnx(tmp_path / "dil.onnx")
    layers, skipped = read_onnx(f)
    assert [(s["name"], s["op"]) for s in skipped] == [("act", "Relu")]
    aspp, dw, plain = layers
    assert (aspp.op, aspp.dilation, aspp.pads, aspp.groups) == ("conv2d", (2, 3), (1, 2, 3, 0), 2)
    # Ho = (12 + 1 + 3 - 5) + 1 = 12, Wo = (11 + 2 + 0 - 7) + 1 = 7
    assert conv_out(aspp) == (12, 7)
    # SAME_UPPER, stride 2, effective kernel 5 on 12x7: out 6x4, total pads (6-1)·2 + 5 - 12 = 3 and
    # (4-1)·2 + 5 - 7 = 4, the extra one at the end
    assert (dw.op, dw.dilation, dw.stride, dw.pads, dw.groups) == ("dwconv2d", (2, 2), (2, 2), (1, 2, 2, 2), 6)
    assert conv_out(dw) == (6, 4) and plain.dilation == (1, 1)
    prog = tmp_path / "m.prog"
    assert main(["compile", str(designs["conv2d"]), "--model", str(f), "--out", str(prog)]) == 0
    assert "skipped 1: act (Relu)" in capsys.readouterr().out
    h = json.loads(Path(str(prog) + ".json").read_text())
    assert [r["im2col"] for r in h["layers"]] == ["hardware"] * 3 and h["im2col"] == "hardware"
    assert [r["shape"]["dilation"] for r in h["layers"]] == [[2, 3], [2, 2], [1, 1]]
    assert [r["gemm"] for r in h["layers"]] == [{"G": 2, "M": 84, "N": 3, "K": 18}, {"G": 6, "M": 24, "N": 1, "K": 9},
                                                 {"G": 1, "M": 24, "N": 4, "K": 54}]
    # the dilated layers hand the next layer the reset dilation: the undilated layer's stream never writes it
    words = P.loads(prog.read_bytes())[1]
    cmds = [decode(w) for w in words]
    for (first, n), rec in zip((r["commands"] for r in h["layers"]), h["layers"]):
        dil = [(c["reg"], c["value"]) for c in cmds[first:first + n] if c["op"] == "SET" and c["reg"] in
               ("WIN_DH", "WIN_DW")]
        assert dil == ([] if rec["name"] == "plain" else
                       [("WIN_DH", rec["shape"]["dilation"][0]), ("WIN_DW", rec["shape"]["dilation"][1]),
                        ("WIN_DH", 0), ("WIN_DW", 0)])
    assert main(["compile", str(designs["conv2d"]), "--model", str(f), "--out", str(prog), "--im2col", "host"]) == 0
    capsys.readouterr()
    h = json.loads(Path(str(prog) + ".json").read_text())
    assert [r["im2col"] for r in h["layers"]] == ["host"] * 3 and h["im2col"] == "host"


def test_onnx_dilated_layer_runs_on_the_engine(designs, tmp_path, capsys):
    """The ONNX dilated grouped conv (dilations 2 and 3, asymmetric pads), compiled as a one-layer model and run on
    the cycle engine with the host's im2col'd input, against the loops."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="aspp", dilations=[2, 3],
                                            pads=[1, 2, 3, 0], strides=[1, 2], group=2)],
                          "one", [vi("x", TensorProto.FLOAT, [2, 4, 9, 11])], [vi("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.zeros((6, 2, 3, 3), np.float32), "w")])
    f = tmp_path / "one.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(f))
    (spec,), _ = read_onnx(f)
    prog = tmp_path / "one.prog"
    assert main(["compile", str(designs["gemm"]), "--model", str(f), "--out", str(prog)]) == 0
    capsys.readouterr()
    x, w = tensors(spec, 7)
    rep = simulate_program(designs["gemm"], prog, "cycle", inputs={"X": im2col(x, spec), "W": conv_weights(w, spec)})
    assert rep.match
    want = dilated_conv(x, w, (1, 2), (1, 2, 3, 0), (2, 3), 2)
    assert want.shape == (2, 6, 9, 4) and np.array_equal(conv_output(rep.outputs["Y"], spec), want)


def test_onnx_bad_dilation_refused(designs, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="bad", dilations=[0, 1])], "b",
                          [vi("x", TensorProto.FLOAT, [1, 2, 6, 6])], [vi("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.zeros((2, 2, 3, 3), np.float32), "w")])
    f = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(f))
    assert _err(capsys, ["compile", designs["gemm"], "--model", f, "--out", tmp_path / "b.prog"]) == (
        "--model: layer 'bad': dilation [0, 1] must be two integers >= 1")


def test_sim_model_onnx_runs_the_dilated_layers(designs, tmp_path, capsys):
    """``lego sim --model FILE.onnx --design DIR`` times the dilated layers (not skipped), the same cycles as the
    compiled program on the cycle engine."""
    f = _dilated_onnx(tmp_path / "dil.onnx")
    d = designs["conv2d"]
    assert main(["sim", "--model", str(f), "--design", str(d), "--out", str(tmp_path / "o"), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    rows = obj["layers"]
    assert [r["layer"] for r in rows] == ["aspp", "dw", "plain"] and obj["total"]["skipped"][0]["op"] == "Relu"
    assert [r["lowering"].split(",")[0] for r in rows] == ["hardware im2col (windowed LOAD)"] * 3
    assert [r["macs"] for r in rows] == [2 * 84 * 3 * 18, 6 * 24 * 9, 24 * 4 * 54]
    assert all(r["cycles"] > 0 for r in rows)
    prog = tmp_path / "m.prog"
    assert main(["compile", str(d), "--model", str(f), "--out", str(prog)]) == 0
    capsys.readouterr()
    assert main(["sim", str(d), "--program", str(prog), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["match"] and [r["cycles"] for r in run["layers"]] == [r["cycles"] for r in rows]

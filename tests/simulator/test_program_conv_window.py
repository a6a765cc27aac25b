"""Hardware im2col end to end on the cycle engine: designs generated for conv2d / dwconv2d (``prog.im2col``),
conv layers (dilated ones included) compiled into windowed LOADs (lego/prog/conv.py), run by ``lego sim --program``;
the outputs against a direct convolution written here (loops over NHWC indices, wrapped to int32), the cycles equal to
the compiler's prediction, model runs consistent with the program; bad input (a windowed LOAD or a WIN_* SET
on a gemm design, a window segment outside the program's DRAM, WIN_C0 >= WIN_CG, sizes beyond the window
registers, WIN_MERGE=1 or a wrong WIN_RD0 on a dilated window, a workload the programmable array does not
generate) exits 2 with one line naming the field.
No RTL here (the lead runs the windowed LOAD on Icarus / Verilator)."""
import json
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.emit.directory import read_manifest
from lego.prog import program as P
from lego.prog.generate import generate_prog
from lego.prog.lower import LayerSpec, conv_out
from lego.prog.model import compile_model
from lego.prog.spec import CSR, enc_load, enc_set, decode
from simulator.program import simulate_program
from tests.conv_oracle import direct_conv_nhwc as oracle_nhwc
from test_program_badinput import refused as _refused

_designs: dict = {}


def design(tmp_path_factory, workload="conv2d", array="2x2", dfs=("ws",), bits=8, kib=1, dram=64, n=4) -> Path:
    key = (workload, array, dfs, bits, kib, dram, n)
    if key not in _designs:
        d = tmp_path_factory.mktemp("conv") / "d"
        generate_prog(workload, array, dfs, bits, kib, kib, dram, True, d, outstanding=n)
        _designs[key] = d
    return _designs[key]


def direct_conv_nhwc(x, w, s: LayerSpec) -> np.ndarray:
    """x [N,H,W,C], w [G,R,S,Cg,Kg] -> y [N,Ho,Wo,G·Kg], int32 wrap: tests/conv_oracle.py's direct convolution
    (loops over the output, index arithmetic on the unpadded input) with the layer's stride, pads, dilation."""
    return oracle_nhwc(x, w, s.stride, s.pads, s.dilation)


def compile_to(d: Path, specs, out: Path, **kw) -> dict:
    kw.setdefault("im2col", "hardware")
    header, words, cmds = compile_model(read_manifest(d), specs, model="t", field="--layer", **kw)
    P.write(out, header, words, cmds)
    return header


def random_spec(rng, op: str, dilate: bool = False) -> LayerSpec:
    """A random conv2d / dwconv2d layer; ``dilate``: dilation 1-3 per axis (not both 1), the image grown to fit."""
    while True:
        G = int(rng.integers(1, 4))
        cg = int(rng.integers(1, 4))
        C = G * cg
        if op == "dwconv2d":
            G, K = C, C
        else:
            K = G * int(rng.integers(1, 4))
        st = (int(rng.integers(1, 3)),) * 2 if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 3, 2))
        pads = (int(rng.integers(0, 2)),) * 4 if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(0, 3, 4))
        dims = {"N": int(rng.integers(1, 3)), "C": C, "H": int(rng.integers(2, 8)), "W": int(rng.integers(2, 8)),
                "K": K, "R": int(rng.integers(1, 4)), "S": int(rng.integers(1, 4))}
        dil = (1, 1)
        if dilate:
            dil = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            dil = dil if dil != (1, 1) else (2, 1)
            dims["H"] += (dims["R"] - 1) * (dil[0] - 1)
            dims["W"] += (dims["S"] - 1) * (dil[1] - 1)
        s = LayerSpec("l", op, dims, st, pads, G, dil)
        if min(conv_out(s)) >= 1:
            return s


CASES = [  # (design kwargs, op) : 8/16 bits, 64/128-bit bus, 1 and 4 outstanding, ws and ws+os
    ({}, "conv2d"), ({}, "dwconv2d"), ({"n": 1}, "conv2d"),
    ({"array": "4x4", "dfs": ("ws", "os"), "bits": 16, "kib": 4, "dram": 128}, "conv2d"),
    ({"workload": "dwconv2d", "array": "2x4", "bits": 16, "kib": 2, "dram": 128, "n": 2}, "dwconv2d"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", range(4))
def test_engine_conv_matches_a_direct_convolution(tmp_path_factory, tmp_path, case, seed):
    engine_case(tmp_path_factory, tmp_path, case, seed, False)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", range(2))
def test_engine_dilated_conv_matches_a_direct_convolution(tmp_path_factory, tmp_path, case, seed):
    """Dilated layers (WIN_DH / WIN_DW) through the windows on every design of CASES."""
    engine_case(tmp_path_factory, tmp_path, case, seed, True)


def engine_case(tmp_path_factory, tmp_path, case, seed, dilate):
    kw, op = CASES[case]
    d = design(tmp_path_factory, **kw)
    man = read_manifest(d)
    bits = man["prog"]["bits"]
    rng = np.random.default_rng(100 * case + seed + 7000 * dilate)
    s = random_spec(rng, op, dilate)
    header = compile_to(d, [s], tmp_path / "p.prog")
    rec = header["layers"][0]
    assert header["im2col"] == rec["im2col"] == "hardware"
    words = P.loads((tmp_path / "p.prog").read_bytes())[1]
    assert any(decode(w).get("window") for w in words)
    G, cg, kg = s.groups, s.dims["C"] // s.groups, s.dims["K"] // s.groups
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    x = rng.integers(lo, hi, (s.dims["N"], s.dims["H"], s.dims["W"], s.dims["C"]))
    w = rng.integers(lo, hi, (G, s.dims["R"], s.dims["S"], cg, kg))
    rep = simulate_program(d, tmp_path / "p.prog", inputs={"X": x, "W": w})
    want = direct_conv_nhwc(x, w, s)
    assert rep.outputs["Y"].shape == want.shape
    np.testing.assert_array_equal(rep.outputs["Y"], want, err_msg=str(s))
    assert rep.match, s                       # the sim's own oracle (sw_reference / host im2col) agrees
    assert rep.cycles == rep.extra["cycles_predicted"] == rec["predicted_cycles"]


def test_random_inputs_and_the_zero_region(tmp_path_factory, tmp_path):
    """lego sim --program with no --inputs: random X/W of the placed shapes; the zero region stays zero."""
    d = design(tmp_path_factory)
    s = LayerSpec("l", "conv2d", {"N": 1, "C": 3, "H": 5, "W": 4, "K": 2, "R": 3, "S": 3}, (1, 1), (1, 1, 1, 1), 1)
    h = compile_to(d, [s], tmp_path / "p.prog")
    rec = h["layers"][0]
    assert rec["dram"]["X"]["shape"] == [1, 5, 4, 3] and rec["dram"]["W"]["shape"] == [1, 3, 3, 3, 2]
    assert rec["dram"]["Y"]["shape"] == [1, 5, 4, 2] and rec["dram"]["Z"]["bytes"] >= 3
    assert main(["sim", str(d), "--program", str(tmp_path / "p.prog"), "--seed", "3"]) == 0


def test_cli_gen_compile_sim(tmp_path, capsys):
    d = tmp_path / "d"
    assert main(["gen", "--workload", "dwconv2d", "--array", "2x2", "--dataflow", "ws", "--scratchpad-kib", "1",
                 "--accumulator-kib", "1", "--out", str(d), "--json"]) == 0
    capsys.readouterr()
    man = read_manifest(d)
    assert man["workload"] == man["prog"]["workload"] == man["spec"]["workload"] == "dwconv2d"
    assert man["prog"]["im2col"] is True
    prog = tmp_path / "p.prog"
    assert main(["compile", str(d), "--layer", "dwconv2d:C=3,H=6,W=5,R=3,S=3,PAD=1,STRIDE=2", "--out",
                 str(prog), "--im2col", "hardware", "--json"]) == 0
    hdr = json.loads(capsys.readouterr().out)
    assert hdr["im2col"] == "hardware" and hdr["layers"][0]["lowering"].startswith("hardware im2col")
    assert main(["sim", str(d), "--program", str(prog), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["match"] and obj["cycles"] == obj["cycles_predicted"]


def test_gemm_design_keeps_host_im2col(tmp_path_factory, tmp_path):
    d = design(tmp_path_factory, workload="gemm")
    s = LayerSpec("l", "conv2d", {"N": 1, "C": 2, "H": 4, "W": 4, "K": 2, "R": 3, "S": 3}, (1, 1), (1, 1, 1, 1), 1)
    h = compile_to(d, [s], tmp_path / "p.prog", im2col="auto")
    assert h["im2col"] == h["layers"][0]["im2col"] == "host"
    assert h["layers"][0]["dram"]["X"]["shape"] == [1, 16, 18]
    words = P.loads((tmp_path / "p.prog").read_bytes())[1]
    assert not any(decode(w).get("window") for w in words)


def test_model_on_an_im2col_design(tmp_path_factory, tmp_path, capsys):
    """lego sim --model M --design DIR: conv layers through windows, the gemm layer as today; the per-layer
    cycles equal the compiled program's run on the cycle engine (relocated segments time the same)."""
    d = design(tmp_path_factory)
    (tmp_path / "net.csv").write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "c1, 7, 6, 3, 3, 3, 4, 1,\nc2, 5, 4, 1, 1, 4, 3, 2,\nc3, 7, 6, 3, 3, 3, 4, 1,\n")
    out = tmp_path / "o"
    assert main(["sim", "--model", str(tmp_path / "net.csv"), "--design", str(d), "--out", str(out),
                 "--im2col", "hardware", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    rows = obj["layers"]
    assert [r["lowering"].split(" (")[0] for r in rows] == ["hardware im2col"] * 3
    assert obj["total"]["im2col"].startswith("hardware")
    assert rows[0]["cycles"] == rows[2]["cycles"]
    prog = tmp_path / "net.prog"
    assert main(["compile", str(d), "--model", str(tmp_path / "net.csv"), "--out", str(prog), "--im2col",
                 "hardware"]) == 0
    capsys.readouterr()
    assert main(["sim", str(d), "--program", str(prog), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["match"] and [r["cycles"] for r in run["layers"]] == [r["cycles"] for r in rows]


def test_im2col_auto_takes_the_faster_per_layer(tmp_path_factory, tmp_path, capsys):
    """--im2col auto: each conv layer of a model on a design generated for conv is compiled both ways and the one
    with fewer exact cycles is kept (ties: the windows); the model's cycles are the per-layer minimum of the two
    pure runs, and its program (host im2col'd inputs where it chose the host) runs bit-exact on the cycle engine
    and Icarus with the engine's cycles. The default on this design is the window generator."""
    d = design(tmp_path_factory, array="2x4", kib=2)
    net = tmp_path / "net.csv"
    net.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                   "Strides,\nc1, 11, 11, 3, 3, 1, 8, 1,\nc2, 9, 9, 3, 3, 8, 8, 1,\nc3, 9, 9, 1, 1, 16, 8, 1,\n")
    runs = {}
    for pol in ("auto", "hardware", "host"):
        assert main(["sim", "--model", str(net), "--design", str(d), "--out", str(tmp_path / pol), "--im2col", pol,
                     "--json"]) == 0
        runs[pol] = json.loads(capsys.readouterr().out)["layers"]
    best = [min(a["cycles"], b["cycles"]) for a, b in zip(runs["hardware"], runs["host"])]
    assert [r["cycles"] for r in runs["auto"]] == best
    assert all(a["cycles"] != b["cycles"] for a, b in zip(runs["hardware"], runs["host"]))
    want = ["hardware im2col" if a["cycles"] < b["cycles"] else "host im2col"
            for a, b in zip(runs["hardware"], runs["host"])]
    assert [r["lowering"].split(" (")[0].split(",")[0] for r in runs["auto"]] == want
    assert main(["sim", "--model", str(net), "--design", str(d), "--out", str(tmp_path / "dflt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == runs["hardware"]
    prog = tmp_path / "net.prog"
    assert main(["compile", str(d), "--model", str(net), "--out", str(prog), "--im2col", "auto", "--json"]) == 0
    hdr = json.loads(capsys.readouterr().out)
    assert hdr["predicted"]["cycles"] == sum(best)
    assert hdr["im2col"] == ("mixed" if len(set(want)) > 1 else want[0].split()[0])
    for engine in ("cycle", "icarus"):
        assert main(["sim", str(d), "--program", str(prog), "--engine", engine, "--json"]) == 0
        run = json.loads(capsys.readouterr().out)
        assert run["match"] and run["cycles"] == sum(best), engine


def test_im2col_policy_refused(tmp_path_factory, tmp_path, capsys):
    conv = design(tmp_path_factory)
    gemm = design(tmp_path_factory, workload="gemm")
    refused(capsys, ["compile", conv, "--layer", "conv2d:C=3,H=5,W=5,K=2,R=3,S=3", "--out", tmp_path / "p",
                     "--im2col", "fast"], "--im2col", ("'fast' is not one of auto, hardware, host",))
    refused(capsys, ["compile", gemm, "--layer", "conv2d:C=3,H=5,W=5,K=2,R=3,S=3", "--out", tmp_path / "p",
                     "--im2col", "hardware"], "--im2col", ("no window address generator",))
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------------------------------------- bad input

def refused(capsys, argv, field: str, says: tuple[str, ...] = ()) -> str:
    """Exit 2, one ``lego: error: FIELD: ...`` line holding ``says``, no traceback (test_program_badinput's)."""
    return _refused(capsys, argv, field, says=says)


def rewrite(src: Path, dst: Path, edit) -> Path:
    """``src`` with its command words edited by ``edit(words, cmds)`` (in place), the CRC recomputed."""
    header, words = P.loads(src.read_bytes())
    edit(words, [decode(w) for w in words])
    dst.write_bytes(P.dumps(header, words))
    return dst


def first(cmds, **kw) -> int:
    return next(i for i, c in enumerate(cmds) if all(c.get(k) == v for k, v in kw.items()))


def refused_set(capsys, d: Path, p: Path, tmp_path: Path, reg: str, value: int, says: tuple[str, ...]) -> None:
    """Program ``p`` with its first SET of ``reg`` changed to ``value`` is refused by ``lego sim`` (the checker)."""
    def edit(words, cmds):
        words[first(cmds, op="SET", reg=reg)] = enc_set(CSR[reg], value)
    bad = rewrite(p, tmp_path / f"bad-{reg}-{value}.prog", edit)
    refused(capsys, ["sim", d, "--program", bad], "--program", says)


@pytest.fixture
def gemm_prog(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory, workload="gemm")
    p = tmp_path / "g.prog"
    assert main(["compile", str(d), "--layer", "gemm:M=5,N=4,K=6", "--out", str(p)]) == 0
    capsys.readouterr()
    return d, p


def test_windowed_load_on_a_gemm_design(gemm_prog, tmp_path, capsys):
    d, p = gemm_prog

    def edit(words, cmds):
        i = first(cmds, op="LOAD", tensor="X")
        words[i] = enc_load(0, cmds[i]["buf"], cmds[i]["mode"], 1)
    bad = rewrite(p, tmp_path / "bad.prog", edit)
    refused(capsys, ["sim", d, "--program", bad], "--program", ("windowed LOAD", "command"))


def test_win_set_on_a_gemm_design(gemm_prog, tmp_path, capsys):
    d, p = gemm_prog

    def edit(words, cmds):
        words[0] = enc_set(CSR["WIN_CG"], 1)
    bad = rewrite(p, tmp_path / "bad.prog", edit)
    refused(capsys, ["sim", d, "--program", bad], "--program", ("command 0", "WIN_CG"))


def windowed_prog(tmp_path_factory, tmp_path, capsys, layer: str) -> tuple[Path, Path]:
    """(design, program) of ``layer`` compiled through the windows on the default conv design."""
    d = design(tmp_path_factory)
    p = tmp_path / "w.prog"
    assert main(["compile", str(d), "--layer", layer, "--out", str(p), "--im2col", "hardware"]) == 0
    capsys.readouterr()
    return d, p


@pytest.fixture
def conv_prog(tmp_path_factory, tmp_path, capsys):
    return windowed_prog(tmp_path_factory, tmp_path, capsys, "conv2d:C=3,H=5,W=5,K=2,R=3,S=3,PAD=1")


def test_window_segment_outside_dram(conv_prog, tmp_path, capsys):
    d, p = conv_prog
    dram = json.loads(Path(str(p) + ".json").read_text())["dram_bytes"]

    refused_set(capsys, d, p, tmp_path, "WIN_ZERO", dram - 1, ("window segment", "leaves the program's DRAM"))


def test_win_c0_not_below_win_cg(conv_prog, tmp_path, capsys):
    d, p = conv_prog
    refused_set(capsys, d, p, tmp_path, "WIN_C0", 3, ("WIN_C0=3 must be below WIN_CG=3",))


def test_win_merge_needs_whole_pixels(conv_prog, tmp_path, capsys):
    """WIN_MERGE runs a kernel row's taps together, which is only the im2col row where a pixel is WIN_CG channels:
    with WIN_PIX widened (as a grouped layer's would be) the program is refused, and WIN_MERGE=2 too."""
    d, p = conv_prog
    refused_set(capsys, d, p, tmp_path, "WIN_PIX", 6, ("WIN_MERGE=1 needs a pixel of exactly WIN_CG",
                                                       "WIN_PIX=6"))
    refused_set(capsys, d, p, tmp_path, "WIN_MERGE", 2, ("WIN_MERGE=2 must be 0 or 1",))


@pytest.fixture
def dilated_prog(tmp_path_factory, tmp_path, capsys):
    return windowed_prog(tmp_path_factory, tmp_path, capsys, "conv2d:C=3,H=7,W=7,K=2,R=3,S=3,PAD=1,DIL=2")


def test_dilated_window_refusals(dilated_prog, tmp_path, capsys):
    """A dilated layer's taps are not contiguous: WIN_MERGE=1 with WIN_DH 2 is refused; WIN_RD0 must be WIN_R0 times
    WIN_DH (the hardware has no multiplier); the compiled program itself passes and runs."""
    d, p = dilated_prog
    assert main(["sim", str(d), "--program", str(p)]) == 0
    capsys.readouterr()

    refused_set(capsys, d, p, tmp_path, "WIN_MERGE", 1, ("WIN_MERGE=1 with dilation WIN_DH=2, WIN_DW=2",
                                                         "not contiguous"))
    refused_set(capsys, d, p, tmp_path, "WIN_RD0", 5, ("WIN_RD0=5 must be WIN_R0·WIN_DH = 0",))


@pytest.mark.parametrize("reg,value,says", [("WIN_WO", 0, "WIN_WO=0 must be at least 1"),
                                             ("WIN_CG", 1 << 16, "WIN_CG=65536 overflows"),
                                             ("WIN_OW0", 9, "WIN_OW0=9 must be below WIN_WO=5")])
def test_window_geometry_refused(conv_prog, tmp_path, capsys, reg, value, says):
    d, p = conv_prog
    refused_set(capsys, d, p, tmp_path, reg, value, (says,))


def test_layer_beyond_the_window_registers(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    out = tmp_path / "p.prog"
    refused(capsys, ["compile", d, "--layer", "conv2d:C=1,H=1,W=70000,K=1,R=1,S=1", "--out", out, "--im2col",
                     "hardware"], "--layer", ("W=70000 overflows",))
    assert not out.exists()
    refused(capsys, ["compile", d, "--layer", "conv2d:C=1,H=1,W=70000,K=1,R=1,S=1", "--out", out], "--layer",
            ("W=70000 overflows",))          # (the default on a conv design is the window generator)
    assert not out.exists()
    # --im2col auto takes the host's im2col for a layer the window registers cannot hold
    assert main(["compile", str(d), "--layer", "conv2d:C=1,H=1,W=70000,K=1,R=1,S=1", "--out", str(out),
                 "--im2col", "auto", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][0]["im2col"] == "host"


def test_gen_refuses_other_workloads(tmp_path, capsys):
    refused(capsys, ["gen", "--workload", "attention", "--array", "2x2", "--dataflow", "ws", "--scratchpad-kib",
                     "1", "--accumulator-kib", "1", "--out", tmp_path / "d"], "--workload",
            ("gemm, bmm, conv2d, dwconv2d", "'attention'"))
    assert not (tmp_path / "d").exists()

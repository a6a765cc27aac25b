"""Conv (stride 2, padding 1), grouped conv and bmm layers end to end: lego compile --layer, the host's im2col
into --inputs, lego sim --program on the cycle engine and on Icarus; outputs bit-exact against a direct
numpy convolution / batched product written here, cycles equal between the engines. lego sim --model M
--design DIR: per-layer rows against MAC counts by hand and the bound cycles >= MACs / (R·C)."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.prog.compiler import parse_layer
from lego.prog.generate import generate_prog
from lego.prog.lower import conv_output, conv_weights, im2col


def direct_conv(x, w, stride, pad, groups):
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    out = np.zeros((n, k, ho, wo), np.int64)
    kg = k // groups
    for o in range(k):
        g = o // kg
        for i in range(ho):
            for j in range(wo):
                win = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + r, j * stride:j * stride + s]
                out[:, o, i, j] = (win * w[o]).sum(axis=(1, 2, 3))
    return out


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prog") / "d"
    generate_prog("gemm", "2x2", ("ws", "os"), 8, 1, 1, 64, True, d)
    return d


def _run(d, prog, inputs, tmp_path, engine, capsys):
    np.savez(tmp_path / "in.npz", **inputs)
    out = tmp_path / f"out-{engine}.npz"
    assert main(["sim", str(d), "--program", str(prog), "--engine", engine, "--inputs", str(tmp_path / "in.npz"),
                 "--out", str(out), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    with np.load(out) as z:
        return obj, z["Y"].astype(np.int64)


LAYERS = {
    "conv-s2-p1": ("conv2d:C=3,H=9,W=9,K=4,R=3,S=3,STRIDE=2,PAD=1", (1, 3, 9, 9), (4, 3, 3, 3), 2, 1, 1),
    "conv-grouped": ("conv2d:N=2,C=4,H=5,W=6,K=6,R=3,S=3,PAD=1,GROUPS=2", (2, 4, 5, 6), (6, 2, 3, 3), 1, 1, 2),
}


@pytest.mark.rtl
@pytest.mark.parametrize("case", list(LAYERS))
def test_conv_layers_cycle_and_icarus_against_direct_conv(case, design, tmp_path, capsys):
    text, xs, ws, stride, pad, groups = LAYERS[case]
    prog = tmp_path / "p.prog"
    assert main(["compile", str(design), "--layer", text, "--out", str(prog)]) == 0
    capsys.readouterr()
    spec = parse_layer(text)
    rng = np.random.default_rng(len(case))
    x, w = rng.integers(-128, 128, xs), rng.integers(-128, 128, ws)
    ins = {"X": im2col(x, spec), "W": conv_weights(w, spec)}          # the host's side
    want = direct_conv(x, w, stride, pad, groups)
    res = {e: _run(design, prog, ins, tmp_path, e, capsys) for e in ("cycle", "icarus")}
    for e, (obj, y) in res.items():
        assert obj["match"], e
        assert np.array_equal(conv_output(y, spec), want), e
    assert res["cycle"][0]["cycles"] == res["icarus"][0]["cycles"] == res["icarus"][0]["cycles_register"]


@pytest.mark.rtl
def test_bmm_cycle_and_icarus_against_einsum(design, tmp_path, capsys):
    prog = tmp_path / "b.prog"
    assert main(["compile", str(design), "--layer", "bmm:B=3,M=5,N=9,K=11", "--out", str(prog)]) == 0
    capsys.readouterr()
    rng = np.random.default_rng(7)
    a, b = rng.integers(-128, 128, (3, 5, 11)), rng.integers(-128, 128, (3, 11, 9))
    want = np.einsum("bmk,bkn->bmn", a, b)
    res = {e: _run(design, prog, {"X": a, "W": b}, tmp_path, e, capsys) for e in ("cycle", "icarus")}
    for e, (obj, y) in res.items():
        assert obj["match"] and np.array_equal(y, want), e
    assert res["cycle"][0]["cycles"] == res["icarus"][0]["cycles"]


def test_sim_model_on_a_programmable_design(design, tmp_path, capsys):
    (tmp_path / "net.csv").write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "c1, 10, 10, 3, 3, 4, 8, 1,\nc2, 8, 8, 1, 1, 8, 6, 2,\n")
    out = tmp_path / "o"
    assert main(["sim", "--model", str(tmp_path / "net.csv"), "--design", str(design), "--out", str(out),
                 "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    rows = obj["layers"]
    # c1: Ho=Wo=8 -> 64 pixels x 8 filters x 4*3*3; c2: Ho=Wo=4 -> 16 x 6 x 8
    assert [r["macs"] for r in rows] == [64 * 8 * 36, 16 * 6 * 8]
    for r in rows:
        assert r["cycles"] >= r["macs"] / 4
        assert r["utilization"] == pytest.approx(r["macs"] / (4 * r["cycles"]))
    assert obj["total"]["cycles"] == sum(r["cycles"] for r in rows)
    assert obj["total"]["outputs"].startswith("not computed")
    with open(out / "net_prog_layers.csv") as f:
        assert [int(r["cycles"]) for r in csv.DictReader(f)] == [r["cycles"] for r in rows]
    assert (out / "net_prog.png").stat().st_size > 1000
    # the program of the same model, run on the cycle engine, counts the same cycles per layer
    prog = tmp_path / "net.prog"
    assert main(["compile", str(design), "--model", str(tmp_path / "net.csv"), "--out", str(prog)]) == 0
    capsys.readouterr()
    assert main(["sim", str(design), "--program", str(prog), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["match"] and [r["cycles"] for r in run["layers"]] == [r["cycles"] for r in rows]

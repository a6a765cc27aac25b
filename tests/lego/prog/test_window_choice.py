"""A windowed conv layer's mode and tile are chosen by the windowed stream's own exact cycles (``conv.choose``).

The oracle is the slow way: every (mode, tile) candidate's windowed stream written out in full and timed from its
decoded commands (``program_cycles``), the first of the fastest kept. The search's pruning bound
(``conv.window_floor``: a plain-load busy floor) is checked to be a lower bound of every candidate's exact
windowed cycles, and its lemma (a windowed LOAD takes at least ``load_floor`` of its rows x cols) on random
windowed tiles directly; the chosen streams run on the cycle engine against a direct convolution."""
import json
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.prog import conv
from lego.prog.compiler import candidates, choose as plain_choose, load_floor
from lego.prog.generate import generate_prog
from lego.prog.lower import LayerSpec, conv_out
from lego.prog.model import compile_model
from lego.prog.timing import Timeline, program_cycles, window_cycles
from simulator.program import simulate_program
from test_conv_window import random_layer as tiny_layer
from test_dilation import dilated_conv, tensors


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict:
    """Conv designs: 2x3 os+ws+is (64-bit, 4 bursts outstanding) and 2x2 ws+os (128-bit, one burst)."""
    out = {}
    for name, arr, dfs, bits, n in (("a", "2x3", ("os", "ws", "is"), 64, None), ("b", "2x2", ("ws", "os"), 128, 1)):
        d = tmp_path_factory.mktemp("wc") / name
        generate_prog("conv2d", arr, dfs, 8, 1, 1, bits, True, d, outstanding=n)
        out[name] = d
    return out


def _prog(d: Path, beat_cycles: int = 1) -> dict:
    prog = json.loads((d / "manifest.json").read_text())["prog"]
    return {**prog, "dram_beat_cycles": beat_cycles}


def bigger_layer(rng) -> LayerSpec:
    """A conv2d / dwconv2d layer larger than the tile box on every GEMM dim often (M up to 2·14·14, K up to
    5·5·8), stride 1-2, pads 0-2, dilation 1-2, groups 1-2."""
    while True:
        op = "dwconv2d" if rng.random() < 0.2 else "conv2d"
        g = int(rng.integers(1, 3))
        cg = int(rng.integers(1, 9))
        c = g * cg
        k, g = (c, c) if op == "dwconv2d" else (g * int(rng.integers(1, 9)), g)
        r, s = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        spec = LayerSpec("l", op, {"N": int(rng.integers(1, 3)), "C": c, "H": int(rng.integers(3, 15)),
                                   "W": int(rng.integers(3, 15)), "K": k, "R": r, "S": s},
                         (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                         tuple(int(v) for v in rng.integers(0, 3, size=4)), g, dil)
        if min(conv_out(spec)) >= 1 and conv.fits_windows(spec):
            return spec


def exhaustive(prog: dict, s: LayerSpec, latency: int):
    """Every candidate's windowed stream written in full, timed from its decoded commands -> (the first of
    the fastest: cycles, mode, tile, commands; every candidate's (exact cycles, window_floor))."""
    pl = conv.placement(s, prog["bits"] // 8, prog["dram_bits"] // 8, 0)
    best, pairs = None, []
    for name, t in conv.window_candidates(prog, s, None, None):
        _, cmds = conv.conv_stream(prog, s, name, t, pl)
        cyc = program_cycles(prog, cmds, latency).cycles
        pairs.append((cyc, conv.window_floor(prog, s, name, t, latency)))
        if best is None or cyc < best[0]:
            best = (cyc, name, t, cmds)
    return best, pairs


@pytest.mark.parametrize("case", range(4))
def test_choice_is_the_exhaustive_one(designs, case):
    """Random layers (tiny ones of test_conv_window and ones larger than the tile box), random DRAM latency, both
    designs, read bandwidth 1 or 1/2 beat a cycle: the search's (cycles, mode, tile, stream) is the exhaustive
    one's, its timeline (taken while writing, abandoned candidates aside) the decoded stream's, and the pruning
    bound never exceeds a candidate's exact cycles."""
    d = designs["ab"[case % 2]]
    prog = _prog(d, 1 + case // 2)
    rng = np.random.default_rng(40 + case)
    slack = []
    for i in range(14):
        s = bigger_layer(rng) if i % 2 else tiny_layer(rng, "dwconv2d" if i % 4 == 2 else "conv2d", i % 3 == 0)
        lat = int(rng.integers(0, 45))
        cyc, name, t, words, cmds, tl = conv.choose(prog, s, None, None, lat)
        ref, pairs = exhaustive(prog, s, lat)
        assert (cyc, name, t) == ref[:3], (s, lat)
        assert cmds == ref[3] and len(words) == len(cmds) == tl.commands
        again = program_cycles(prog, cmds, lat)
        assert again.cycles == tl.cycles and again.busy_cycles == tl.busy_cycles
        assert all(f <= c for c, f in pairs), (s, lat, pairs)
        slack += [c - f for c, f in pairs]
    assert min(slack) >= 0 and max(slack) > 0


@pytest.mark.parametrize("n_out,beat", [(1, 1), (4, 1), (1, 3), (4, 2)])
def test_a_windowed_load_takes_at_least_the_plain_floor(n_out, beat):
    """``window_floor``'s lemma, tile by tile: ``window_cycles`` of random windowed tiles (every layer kind,
    dilated or not, tiles starting anywhere, in padding or not) >= ``load_floor(rows, cols)`` at the same
    bus, latency, lanes, outstanding bursts and read bandwidth; equality occurs (the floor is tight)."""
    rng = np.random.default_rng(7 + n_out + 10 * beat)
    eb, tight = 1, 0
    for i in range(300):
        s = tiny_layer(rng, ("conv2d", "dwconv2d")[i % 2], i % 3 == 0) if i % 4 else bigger_layer(rng)
        geo = conv.geometry(s)
        bb = int(rng.choice([8, 16]))
        lanes = int(rng.choice([p for p in (1, 2, 4, 8, 16) if (bb // eb) % p == 0]))
        lat = int(rng.integers(0, 30))
        M, K = geo["N"] * geo["Ho"] * geo["Wo"], geo["R"] * geo["S"] * geo["Cg"]
        m0, k0 = int(rng.integers(0, M)), int(rng.integers(0, K))
        rows, cols = int(rng.integers(1, M - m0 + 1)), int(rng.integers(1, K - k0 + 1))
        g = int(rng.integers(0, geo["G"]))
        pl = conv.placement(s, eb, bb, int(rng.integers(0, 64)) * 4096)
        csr = conv.window_regs(geo, pl["X"]["addr"] + g * geo["Cg"] * eb, pl["Z"]["addr"], m0, k0, rows, cols, eb)
        exact = window_cycles(csr, eb, bb, lat, lanes, n_out, beat)
        floor = load_floor(rows, cols, eb, bb, lat, lanes, beat)
        assert floor <= exact, (s, m0, k0, rows, cols, bb, lanes, lat)
        tight += floor == exact
    assert tight > 0


def test_the_windowed_choice_beats_the_plain_one(designs):
    """A layer whose fastest windowed stream is not the plain-load choice's: the search takes K = 12 (a tile
    boundary on a kernel row, 2·6 columns) where plain loads take K = 18, 12 cycles fewer through windows;
    ``compile_model`` records that choice and those cycles."""
    prog = _prog(designs["b"])
    s = LayerSpec("l", "conv2d", {"N": 1, "C": 2, "H": 5, "W": 7, "K": 2, "R": 3, "S": 3}, (1, 2), (0, 1, 2, 0), 1,
                  (1, 3))
    cyc, name, t, *_ = conv.choose(prog, s, None, None, 26, keep=False)
    _, pm, pt, *_ = plain_choose(prog, conv.gemm_dims(s), None, None, 26, keep=False)
    tl = Timeline(prog, 26)
    conv.conv_stream(prog, s, pm, pt, conv.placement(s, 1, 16, 0), tl, keep=False)
    assert (name, t, pm, pt) == ("ws", {"M": 5, "N": 2, "K": 12}, "ws", {"M": 5, "N": 2, "K": 18})
    assert cyc < tl.cycles and cyc == exhaustive(prog, s, 26)[0][0]
    h, _, _ = compile_model({"prog": prog}, [s], latency=26, im2col="hardware")
    rec = h["layers"][0]
    assert (rec["mode"], rec["tile"], rec["predicted_cycles"]) == (name, t, cyc)


def test_given_mode_and_tile_are_kept(designs):
    """``--mode`` and ``--tile`` both given: that stream, as before the search existed; ``--mode`` alone: the
    fastest tile of that mode."""
    prog = _prog(designs["a"])
    rng = np.random.default_rng(3)
    for _ in range(6):
        s = bigger_layer(rng)
        dims = conv.gemm_dims(s)
        tile = {"M": int(rng.integers(1, min(dims["M"], 6) + 1)), "N": int(rng.integers(1, min(dims["N"], 6) + 1)),
                "K": int(rng.integers(1, min(dims["K"], 18) + 1))}
        h, words, cmds = compile_model({"prog": prog}, [s], latency=9, mode="is", tile=tile, im2col="hardware")
        _, want = conv.conv_stream(prog, s, "is", tile, conv.placement(s, 1, 8, 0))
        assert (h["layers"][0]["mode"], h["layers"][0]["tile"]) == ("is", tile) and cmds == want
        assert h["predicted"]["cycles"] == program_cycles(prog, want, 9).cycles
        h, _, _ = compile_model({"prog": prog}, [s], latency=9, mode="os", keep=False, im2col="hardware")
        best = min((program_cycles(prog, conv.conv_stream(prog, s, "os", t, conv.placement(s, 1, 8, 0))[1], 9).cycles,
                    i) for i, (_, t) in enumerate(conv.window_candidates(prog, s, "os", None)))
        assert h["layers"][0]["mode"] == "os" and h["predicted"]["cycles"] == best[0]


# layers whose windowed choice on design b at latency 20 is not the plain-load choice (asserted below: K = 12
# where plain loads take 18, M = 10 where they take 5, mode os where they take ws), and one where they agree
ENGINE_LAYERS = ["conv2d:N=2,C=4,H=3,W=9,K=2,R=3,S=3,STRIDE=2,PAD=1,GROUPS=2",
                 "conv2d:C=4,H=5,W=7,K=4,R=1,S=2,STRIDE=2,GROUPS=2",
                 "dwconv2d:C=2,H=8,W=5,R=1,S=3,STRIDE=2,PAD=2",
                 "conv2d:C=2,H=3,W=4,K=4,R=1,S=3,PAD=1,GROUPS=2,DIL=2",
                 "conv2d:N=2,C=5,H=10,W=9,K=7,R=3,S=2,STRIDE=2,PAD=2",     # K = 20 (window_tiles) where plain: 24
                 "conv2d:C=8,H=6,W=6,K=8,R=3,S=3,PAD=1"]


@pytest.mark.parametrize("layer", ENGINE_LAYERS)
def test_chosen_windowed_stream_is_exact_on_the_cycle_engine(designs, tmp_path, capsys, layer):
    """``lego compile`` through windows (the search's mode and tile, checked against ``conv.choose``) run on the
    cycle engine with random int8 NHWC inputs: Y equals a direct convolution written in test_dilation, the
    engine's cycles the predicted ones; ``--im2col auto`` takes the fewer of the best windowed and best host
    streams' cycles."""
    from lego.prog.compiler import parse_layer
    d = designs["b"]
    spec = parse_layer(layer)
    out = tmp_path / "p.prog"
    preds = {}
    for pol in ("hardware", "host", "auto"):
        assert main(["compile", str(d), "--layer", layer, "--out", str(out), "--dram-latency", "20",
                     "--im2col", pol]) == 0
        capsys.readouterr()
        preds[pol] = json.loads(Path(str(out) + ".json").read_text())
    assert preds["auto"]["predicted"]["cycles"] == min(preds[p]["predicted"]["cycles"] for p in ("hardware", "host"))
    h = preds["hardware"]
    prog = _prog(d)
    cyc, name, t, *_ = conv.choose(prog, spec, None, None, 20, keep=False)
    _, pm, pt, *_ = plain_choose(prog, conv.gemm_dims(spec), None, None, 20, keep=False)
    assert ((name, t) != (pm, pt)) == (layer != ENGINE_LAYERS[-1])
    assert (h["layers"][0]["mode"], h["layers"][0]["tile"], h["predicted"]["cycles"]) == (name, t, cyc)
    assert main(["compile", str(d), "--layer", layer, "--out", str(out), "--dram-latency", "20"]) == 0
    capsys.readouterr()
    x, w = tensors(spec, 11)
    dm, g = spec.dims, spec.groups
    cg, kg = dm["C"] // g, dm["K"] // g
    inputs = {"X": x.transpose(0, 2, 3, 1), "W": w.reshape(g, kg, cg, dm["R"], dm["S"]).transpose(0, 3, 4, 2, 1)}
    rep = simulate_program(d, out, "cycle", inputs=inputs, latency=20)
    assert rep.match and rep.cycles == cyc
    want = dilated_conv(x, w, spec.stride, spec.pads, spec.dilation, spec.groups)
    assert np.array_equal(rep.outputs["Y"].transpose(0, 3, 1, 2), want), layer

"""The compiler's tile search (lego.prog.compiler.choose) prunes and abandons candidates and times streams
while it writes them; ``lego sim --model`` keeps no commands at all. Each shortcut is checked against the
slow way: every candidate built in full and timed from its decoded commands (``program_cycles``)."""
import json
from pathlib import Path

import numpy as np
import pytest

from lego.prog.compiler import _candidates, build, choose, tile_busy
from lego.prog.generate import generate_prog
from lego.prog.lower import LayerSpec
from lego.prog.model import compile_model
from lego.prog.program import segments
from lego.prog.timing import program_cycles


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("prog") / "d"
    generate_prog("gemm", "2x3", ("os", "ws", "is"), 8, 1, 1, 64, True, d)
    prog = json.loads((d / "manifest.json").read_text())["prog"]
    # beat-wide and element-wide load scatter both occur (docs/programmable.md, "ld_lanes")
    assert {p for m in prog["ld_lanes"].values() for p in m.values()} == {1, 2}
    return prog


def _exhaustive(prog, dims, latency):
    """Every (mode, tile) built in full and timed from its commands; the first of the fastest wins."""
    best = None
    for name in prog["dataflows"]:
        for t in _candidates(prog["box"], dims):
            _, cmds, _ = build(prog, dims, name, t)
            cyc = program_cycles(prog, cmds, latency).cycles
            if best is None or cyc < best[0]:
                best = (cyc, name, t, cmds)
    return best


def test_pruned_choice_is_the_exhaustive_one(prog):
    rng = np.random.default_rng(7)
    for _ in range(25):
        dims = {k: int(rng.integers(1, 70)) for k in "MNK"}
        lat = int(rng.integers(0, 60))
        cyc, name, t, words, cmds, tl = choose(prog, dims, None, None, lat)
        ref = _exhaustive(prog, dims, lat)
        assert (cyc, name, t) == ref[:3], dims
        assert cmds == ref[3] and len(words) == len(cmds) == tl.commands
        # the timeline taken while writing equals the one taken from the decoded commands
        again = program_cycles(prog, cmds, lat)
        assert again.cycles == tl.cycles and again.busy_cycles == tl.busy_cycles


def test_tile_busy_equals_the_timelines_busy_cycles(prog):
    """Closed-form compute time and once-per-distinct-tile load time against the stepped timeline."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        dims = {k: int(rng.integers(1, 90)) for k in "MNK"}
        lat = int(rng.integers(0, 40))
        for name in prog["dataflows"]:
            for t in _candidates(prog["box"], dims):
                busy = tile_busy(prog, dims, name, t, lat)
                tl = program_cycles(prog, build(prog, dims, name, t)[1], lat)
                assert busy == {"cp": tl.busy_cycles["cp"], "ld": tl.busy_cycles["ld"]}, (dims, name, t)
                assert max(busy.values()) <= tl.cycles


def test_model_timing_without_commands_equals_timing_of_the_written_program(prog):
    man = {"prog": prog}
    layers = [LayerSpec("c1", "conv2d", {"N": 1, "C": 3, "H": 11, "W": 9, "K": 5, "R": 3, "S": 3}, (2, 2), (1, 1, 1, 1)),
              LayerSpec("dw", "dwconv2d", {"N": 1, "C": 4, "H": 7, "W": 7, "K": 4, "R": 3, "S": 3}, (1, 1),
                        (0, 0, 0, 0), 4),
              LayerSpec("fc", "gemm", {"M": 33, "N": 17, "K": 50}),
              LayerSpec("fc2", "gemm", {"M": 33, "N": 17, "K": 50}),
              LayerSpec("qk", "bmm", {"B": 3, "M": 9, "N": 13, "K": 6})]
    h_full, words, cmds = compile_model(man, layers, model="m", latency=17)
    h_fast, w2, c2 = compile_model(man, layers, model="m", latency=17, keep=False)
    assert w2 == c2 == [] and len(words) == len(cmds) == h_full["commands"]
    assert h_fast == h_full
    # each relocated segment of the written program (bases 4 KiB apart) times as its record says
    for rec, (_, seg) in zip(h_full["layers"], segments(h_full, cmds)):
        tl = program_cycles(prog, seg, 17)
        assert tl.cycles == rec["predicted_cycles"] and tl.busy_cycles == rec["predicted_busy"], rec["name"]
    assert h_full["layers"][2]["dram"]["X"]["addr"] != h_full["layers"][3]["dram"]["X"]["addr"]

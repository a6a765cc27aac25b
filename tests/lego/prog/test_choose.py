"""The compiler's tile search (lego.prog.compiler.choose) prunes and abandons candidates and times streams
while it writes them; ``lego sim --model`` keeps no commands at all. Each shortcut is checked against the
slow way: every candidate built in full and timed from its decoded commands (``program_cycles``). The
search's two lower bounds (``busy_floor``, no walk over rows; ``tile_busy``, LOADs grouped by page offset)
are checked against the timeline, against ``load_cycles`` and against the per-tile sum they replace."""
import json
from pathlib import Path

import numpy as np
import pytest

from lego.prog.compiler import (_candidates, _degenerate_k, build, busy_floor, choose, load_floor, placement,
                                tile_busy)
from lego.prog.generate import generate_prog
from lego.prog.lower import LayerSpec
from lego.prog.model import compile_model
from lego.prog.program import segments
from lego.prog.timing import compute_cycles, load_cycles, program_cycles


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


def _variants(prog, rng):
    """The design's prog with a random number of read bursts in flight and read bandwidth (both run-time
    inputs of the timing: ``dram_outstanding``, ``dram_beat_cycles``)."""
    return {**prog, "dram_outstanding": int(rng.choice([1, 2, 4])), "dram_beat_cycles": int(rng.integers(1, 5))}


def tile_busy_per_tile(prog, dims, mode, tile, latency):
    """The busy cycles as the search computed them before LOADs were grouped by page offset: every X tile
    (per output row tile) and every W tile (per output column tile) timed at its own DRAM address."""
    cs, drain = prog["counters"][mode], prog["drain"][mode]
    eb, bb = prog["bits"] // 8, prog["dram_bits"] // 8
    pl = placement(dims, eb)
    M, N, K = dims["M"], dims["N"], dims["K"]
    tm, tn = tile["M"], tile["N"]

    def split(n, t):
        return [(t, n // t)] + ([(n % t, 1)] if n % t else [])

    def ksteps(mt, nt):
        kk = _degenerate_k(prog, mode, mt, nt)
        return range(0, K, min(tile["K"], kk) if kk else tile["K"])

    lanes = {t: prog.get("ld_lanes", {}).get(t, {}).get(mode, 1) for t in "XW"}

    def ld(t, r0, c0, rows, cols):
        return load_cycles(pl[t]["addr"] + r0 * pl[t]["stride"] + c0 * eb, rows, cols, pl[t]["stride"], eb, bb,
                           latency, lanes[t], prog.get("dram_outstanding", 1), prog.get("dram_beat_cycles", 1))
    cp = ldx = ldw = 0
    mcls, ncls = split(M, tm), split(N, tn)
    for mt, cm in mcls:
        for nt, cn in ncls:
            ks = ksteps(mt, nt)
            for k0 in ks:
                t = {"i": mt, "j": nt, "k": min(ks.step, K - k0)}
                cp += cm * cn * compute_cycles([-(-t[it] // div) for it, div in cs], drain)
    for m0 in range(0, M, tm):
        mt = min(tm, M - m0)
        for nt, cn in ncls:
            ks = ksteps(mt, nt)
            ldx += cn * sum(ld("X", m0, k0, mt, min(ks.step, K - k0)) for k0 in ks)
    for n0 in range(0, N, tn):
        nt = min(tn, N - n0)
        for mt, cm in mcls:
            ks = ksteps(mt, nt)
            ldw += cm * sum(ld("W", k0, n0, min(ks.step, K - k0), nt) for k0 in ks)
    return {"cp": cp, "ld": ldx + ldw}


def test_grouped_tile_busy_equals_the_per_tile_sum_and_bounds_it(prog):
    """Large layers (X and W over many 4 KiB pages, odd row strides, so tiles start at many page offsets):
    grouping LOADs by page offset changes no cycle; ``busy_floor`` never exceeds the exact busy time."""
    rng = np.random.default_rng(5)
    for _ in range(12):
        p = _variants(prog, rng)
        # K a multiple of 16 or 64 half the time: X tiles then start at recurring page offsets (grouped)
        K = int(rng.choice([rng.integers(1, 500), 16 * rng.integers(1, 30), 64 * rng.integers(1, 8)]))
        dims = {"M": int(rng.integers(1, 400)), "N": int(rng.integers(1, 100)), "K": K}
        lat = int(rng.integers(0, 60))
        for name in p["dataflows"]:
            for t in _candidates(p["box"], dims):
                busy = tile_busy(p, dims, name, t, lat)
                assert busy == tile_busy_per_tile(p, dims, name, t, lat), (dims, name, t)
                assert busy_floor(p, dims, name, t, lat) <= max(busy.values()), (dims, name, t)


def test_load_floor_is_a_lower_bound_and_sometimes_tight():
    rng = np.random.default_rng(17)
    tight = 0
    for _ in range(3000):
        eb, bb = int(rng.choice([1, 2, 4])), int(rng.choice([8, 16, 32]))
        E = bb // eb
        P = int(rng.choice([x for x in (1, 2, 4, 8, 16, 32) if x <= E]))
        cols, rows = int(rng.integers(1, 300)), int(rng.integers(1, 60))
        stride = eb * cols + int(rng.choice([0, 0, 1, 3, 64, 4096, 4093])) * eb
        addr, lat = int(rng.integers(0, 1 << 20)) * eb, int(rng.integers(0, 120))
        N, D = int(rng.choice([1, 2, 4, 8])), int(rng.integers(1, 5))
        exact = load_cycles(addr, rows, cols, stride, eb, bb, lat, P, N, D)
        floor = load_floor(rows, cols, eb, bb, lat, P, D)
        assert floor <= exact, (addr, rows, cols, stride, eb, bb, lat, P, N, D)
        tight += floor == exact
    assert tight > 100          # the bound is attained (one row, one burst), not vacuous


def test_pruned_choice_is_the_exhaustive_one_on_large_layers(prog):
    """As above, on layers of many tiles and page-crossing rows, at random outstanding reads and bandwidth."""
    rng = np.random.default_rng(23)
    for _ in range(8):
        p = _variants(prog, rng)
        dims = {"M": int(rng.integers(20, 160)), "N": int(rng.integers(1, 40)), "K": int(rng.integers(40, 400))}
        lat = int(rng.integers(0, 60))
        cyc, name, t, _, cmds, _ = choose(p, dims, None, None, lat)
        ref = _exhaustive(p, dims, lat)
        assert (cyc, name, t) == ref[:3] and cmds == ref[3], dims

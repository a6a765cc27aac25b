"""The windowed LOAD (hardware im2col, lego/prog/conv.py, lego/prog/spec.py ``window_segments``) against
independent oracles written here:

* the gather: the compiler's WIN_* registers for random tiles of random conv layers (stride 1/2, symmetric
  and asymmetric pads, groups, dilation 1-3 per axis, tiles crossing (r, s), output-row and image boundaries),
  walked by
  ``window_segments`` over an NHWC DRAM image, against the im2col matrix in (r, s, c) column order built
  here with numpy from a zero-padded input;
* the timing: a plain LOAD written as a windowed LOAD (one segment per row) takes exactly ``load_cycles``;
  random windows against a burst-by-burst simulation written here from the rules of ``_row_load_n``'s
  docstring (and the Timeline of a windowed LOAD command uses it);
* the placement records and the gemm streams the refactored ``emit_gemm`` still writes.
"""
import numpy as np
import pytest

from lego.prog import conv
from lego.prog.lower import LayerSpec, conv_out
from lego.prog.spec import PAGE, window_segments
from lego.prog.timing import Timeline, load_cycles, window_cycles, window_load_cycles



def random_layer(rng, op: str = "conv2d", dilate: bool = False) -> LayerSpec:
    """A random conv2d / dwconv2d layer; ``dilate``: a dilation of 1-3 per axis (else 1)."""
    while True:
        G = 1 if op == "conv2d" and rng.random() < 0.5 else int(rng.integers(1, 4))
        cg = int(rng.integers(1, 5))
        C = G * cg
        K = C if op == "dwconv2d" else G * int(rng.integers(1, 4))
        if op == "dwconv2d":
            G = C
        R, S = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        H, W = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pads = tuple(int(v) for v in rng.integers(0, 3, size=4))
        dil = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if dilate else (1, 1)
        if dilate:
            H, W = H + (R - 1) * (dil[0] - 1), W + (S - 1) * (dil[1] - 1)
        s = LayerSpec("l", op, {"N": int(rng.integers(1, 3)), "C": C, "H": H, "W": W, "K": K, "R": R, "S": S},
                      st, pads, G, dil)
        if min(conv_out(s)) >= 1:
            return s


def im2col_rsc(x: np.ndarray, s: LayerSpec, g: int) -> np.ndarray:
    """Group g's im2col matrix, rows (n, oh, ow), columns (r, s, c) with c fastest, from NHWC ``x``: index
    arithmetic on the zero-padded input (no code of lego's); tap (r, q) reads padded pixel
    (oh·sh + r·dh, ow·sw + q·dw), the output size from the effective kernel written here."""
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = s.stride, s.pads, s.dilation
    R, S, G = s.dims["R"], s.dims["S"], s.groups
    cg = s.dims["C"] // G
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (xp.shape[1] - (R - 1) * dh - 1) // sh + 1
    wo = (xp.shape[2] - (S - 1) * dw - 1) // sw + 1
    rows = []
    for n in range(s.dims["N"]):
        for oh in range(ho):
            for ow in range(wo):
                rows.append([xp[n, oh * sh + r * dh, ow * sw + q * dw, g * cg + c]
                             for r in range(R) for q in range(S) for c in range(cg)])
    return np.array(rows, dtype=np.int64)


def gather(img: np.ndarray, csr: dict, eb: int) -> np.ndarray:
    dt = np.dtype(f"<i{eb}")
    rows = [np.concatenate([img[a:a + n * eb].view(dt) for a, n in segs]) for segs in window_segments(csr, eb)]
    return np.array(rows, dtype=np.int64)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("dilate", [False, True], ids=["plain", "dilated"])
def test_window_tiles_gather_the_im2col_matrix(seed, dilate):
    rng = np.random.default_rng(seed + 500 * dilate)
    s = random_layer(rng, "dwconv2d" if seed % 5 == 4 else "conv2d", dilate)
    eb, bb = (1, 8) if seed % 2 else (2, 16)
    base = PAGE * int(rng.integers(0, 3))
    pl = conv.placement(s, eb, bb, base)
    geo = conv.geometry(s)
    d = s.dims
    x = rng.integers(-(1 << (8 * eb - 1)), 1 << (8 * eb - 1), size=(d["N"], d["H"], d["W"], d["C"]))
    img = np.zeros(pl["end"], np.uint8)
    img[pl["X"]["addr"]:pl["X"]["addr"] + pl["X"]["bytes"]] = np.frombuffer(x.astype(f"<i{eb}").tobytes(),
                                                                             np.uint8)
    assert pl["Z"]["bytes"] >= geo["Cg"] * eb and pl["Z"]["bytes"] % bb == 0
    M = d["N"] * geo["Ho"] * geo["Wo"]
    Kd = d["R"] * d["S"] * geo["Cg"]
    for g in range(s.groups):
        want = im2col_rsc(x, s, g)
        assert want.shape == (M, Kd)
        for _ in range(6):
            m0, k0 = int(rng.integers(0, M)), int(rng.integers(0, Kd))
            rows, cols = int(rng.integers(1, M - m0 + 1)), int(rng.integers(1, Kd - k0 + 1))
            csr = conv.window_regs(geo, pl["X"]["addr"] + g * geo["Cg"] * eb, pl["Z"]["addr"], m0, k0, rows, cols,
                                   eb)
            assert csr["WIN_MERGE"] == int(geo["Cg"] == d["C"] and s.dilation == (1, 1))
            assert ("WIN_DH" in csr) == (s.dilation != (1, 1))       # an undilated layer leaves them at reset
            got = gather(img, csr, eb)
            np.testing.assert_array_equal(got, want[m0:m0 + rows, k0:k0 + cols], err_msg=f"{s} g={g} m0={m0} "
                                          f"k0={k0} {rows}x{cols}")
            # every segment reads inside the layer's regions: X, or the zero region for padding
            for segs in window_segments(csr, eb):
                for a, n in segs:
                    inx = pl["X"]["addr"] <= a and a + n * eb <= pl["X"]["addr"] + pl["X"]["bytes"]
                    assert inx or (a == pl["Z"]["addr"] and n * eb <= pl["Z"]["bytes"]), (a, n)


def test_window_tile_crossing_everything():
    """One fixed case: a tile that starts mid-(r, s), mid-row, and runs over an output row and an image."""
    s = LayerSpec("l", "conv2d", {"N": 2, "C": 4, "H": 4, "W": 3, "K": 2, "R": 3, "S": 2}, (2, 1), (1, 0, 2, 1), 2)
    geo = conv.geometry(s)
    assert (geo["Ho"], geo["Wo"], geo["Cg"]) == (3, 3, 2)
    eb = 1
    pl = conv.placement(s, eb, 8, 0)
    x = np.arange(2 * 4 * 3 * 4).reshape(2, 4, 3, 4) % 120 + 1
    img = np.zeros(pl["end"], np.uint8)
    img[:x.size] = x.reshape(-1)
    csr = conv.window_regs(geo, pl["X"]["addr"] + geo["Cg"], pl["Z"]["addr"], 7, 3, 5, 8, eb)
    assert (csr["WIN_OH0"], csr["WIN_OW0"], csr["WIN_R0"], csr["WIN_S0"], csr["WIN_C0"]) == (2, 1, 0, 1, 1)
    np.testing.assert_array_equal(gather(img, csr, eb), im2col_rsc(x, s, 1)[7:12, 3:11])


def test_dilated_tile_by_hand():
    """One channel, a 5x6 image of 1..30, a 2x2 kernel at dilation (2, 3), stride 1, no padding: output (0, 0)
    reads pixels (0, 0) (0, 3) (2, 0) (2, 3); the tile from im2col column 1 of rows 1-2 (written out here)."""
    s = LayerSpec("l", "conv2d", {"N": 1, "C": 1, "H": 5, "W": 6, "K": 1, "R": 2, "S": 2}, (1, 1), (0,) * 4, 1,
                  (2, 3))
    geo = conv.geometry(s)
    assert (geo["Ho"], geo["Wo"]) == (3, 3)
    x = np.arange(1, 31).reshape(1, 5, 6, 1)
    img = np.zeros(8192, np.uint8)
    img[:30] = x.ravel()
    csr = conv.window_regs(geo, 0, 4096, 1, 1, 2, 3, 1)
    assert (csr["WIN_DH"], csr["WIN_DW"], csr["WIN_RD0"], csr["WIN_SD0"], csr["WIN_PIX"], csr["WIN_WPIX"]) == \
        (2, 3, 0, 3, 3, 12)
    # row 1 = output (0, 1): taps (0,1) (0,4) (2,1) (2,4) -> 2, 5, 14, 17; row 2 = output (0, 2): 3, 6, 15, 18
    np.testing.assert_array_equal(gather(img, csr, 1), [[5, 14, 17], [6, 15, 18]])


@pytest.mark.parametrize("seed", range(20))
def test_unwritten_dilation_registers_walk_undilated(seed):
    """WIN_DH = WIN_DW = 0 (reset: a program that never writes them) walks exactly as dilation 1 written out, with
    WIN_RD0 / WIN_SD0 ignored (the first tap's offsets are WIN_R0 / WIN_S0)."""
    rng = np.random.default_rng(3000 + seed)
    s = random_layer(rng, "conv2d")
    geo = conv.geometry(s)
    M, Kd = s.dims["N"] * geo["Ho"] * geo["Wo"], s.dims["R"] * s.dims["S"] * geo["Cg"]
    m0, k0 = int(rng.integers(0, M)), int(rng.integers(0, Kd))
    csr = conv.window_regs(geo, PAGE, 0, m0, k0, int(rng.integers(1, M - m0 + 1)), int(rng.integers(1, Kd - k0 + 1)),
                           1)
    assert "WIN_DH" not in csr
    junk = {"WIN_RD0": int(rng.integers(1, 9)), "WIN_SD0": int(rng.integers(1, 9))}
    one = {"WIN_DH": 1, "WIN_DW": 1, "WIN_RD0": csr["WIN_R0"], "WIN_SD0": csr["WIN_S0"]}
    assert window_segments({**csr, **junk}, 1) == window_segments({**csr, **one}, 1)


def plain_as_window(addr: int, rows: int, cols: int, stride: int) -> dict:
    """A plain LOAD's registers as a windowed LOAD: WIN_CG = cols (one segment a row), the pixel step the row
    stride, every pixel inside."""
    return {"LD_ADDR": addr, "LD_ROWS": rows, "LD_COLS": cols, "WIN_CG": cols, "WIN_S": 1, "WIN_H": 1, "WIN_W": 1,
            "WIN_SH": 0, "WIN_SW": 0, "WIN_HO": 1, "WIN_WO": 1 << 15, "WIN_DOW": stride}


@pytest.mark.parametrize("seed", range(60))
def test_plain_load_as_window_takes_load_cycles(seed):
    rng = np.random.default_rng(seed)
    eb = int(rng.choice([1, 2]))
    bb = int(rng.choice([8, 16, 32]))
    E = bb // eb
    lanes = int(rng.choice([p for p in (1, 2, 4, 8, 16, 32) if E % p == 0]))
    N, D, L = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(0, 30))
    rows, cols = int(rng.integers(1, 40)), int(rng.integers(1, 300))
    stride = cols * eb + int(rng.integers(0, 3)) * int(rng.choice([1, eb, bb, 4096]))
    addr = int(rng.integers(0, 3 * PAGE))
    csr = plain_as_window(addr, rows, cols, stride)
    segs = window_segments(csr, eb)
    assert [[(a, n)] for a, n in ((addr + r * stride, cols) for r in range(rows))] == segs
    want = load_cycles(addr, rows, cols, stride, eb, bb, L, lanes, N, D)
    assert window_load_cycles(segs, eb, bb, L, lanes, N, D) == want
    assert window_cycles(csr, eb, bb, L, lanes, N, D) == want


def brute_force_cycles(segments, eb: int, bb: int, L: int, P: int, N: int, D: int) -> int:
    """Beat by beat, from the rules (docs/programmable.md, ``_row_load_n``): every segment's INCR bursts in
    order (first from the next element, aligned down to the bus, at most 256 beats, never across 4 KiB);
    burst k's ARVALID at v_k = max(v_{k-1} + 1, rlast_{k-N}) (v_1 = 0, the dispatch edge); a beat is captured
    no earlier than the previous capture + max(its lane groups, D), a burst's first beat also no earlier than
    v_k + 3 + L; the load is busy until the last beat's last lane group (last capture + its groups)."""
    E = bb // eb
    bursts = []
    for segs in segments:
        for addr, n in segs:
            cur, left = addr, n
            while left:
                off = (cur % bb) // eb
                to4k = (PAGE - (cur % PAGE) // bb * bb) // bb
                beats = min(-(-(off + left) // E), to4k, 256)
                lanes = []
                for i in range(beats):
                    v = min(E - (off if i == 0 else 0), left)
                    lanes.append(v)
                    left -= v
                bursts.append(lanes)
                cur = cur // bb * bb + beats * bb
    v_prev, rlast, last_c, last_g = -1, [], None, 0
    for k, beats in enumerate(bursts):
        v = max(v_prev + 1, rlast[k - N] if k - N >= 0 else -1)
        for i, lanes in enumerate(beats):
            c = 1 if last_c is None else last_c + max(last_g, D)
            if i == 0:
                c = max(c, v + 3 + L)
            last_c, last_g = c, -(-lanes // P)
        rlast.append(last_c)
        v_prev = v
    return last_c + last_g


@pytest.mark.parametrize("seed", range(60))
def test_window_cycles_against_a_burst_by_burst_simulation(seed):
    rng = np.random.default_rng(1000 + seed)
    s = random_layer(rng, "conv2d", dilate=bool(seed % 2))
    eb = int(rng.choice([1, 2]))
    bb = int(rng.choice([8, 16, 32]))
    E = bb // eb
    lanes = int(rng.choice([p for p in (1, 2, 4, 8) if E % p == 0]))
    N, D, L = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(0, 25))
    geo = conv.geometry(s)
    pl = conv.placement(s, eb, bb, PAGE * int(rng.integers(0, 2)))
    M, Kd = s.dims["N"] * geo["Ho"] * geo["Wo"], s.dims["R"] * s.dims["S"] * geo["Cg"]
    m0, k0 = int(rng.integers(0, M)), int(rng.integers(0, Kd))
    csr = conv.window_regs(geo, pl["X"]["addr"] + int(rng.integers(0, 200)), pl["Z"]["addr"], m0, k0,
                           int(rng.integers(1, M - m0 + 1)), int(rng.integers(1, Kd - k0 + 1)), eb)
    segs = window_segments(csr, eb)
    want = brute_force_cycles(segs, eb, bb, L, lanes, N, D)
    assert window_load_cycles(segs, eb, bb, L, lanes, N, D) == want
    assert window_cycles(csr, eb, bb, L, lanes, N, D) == want
    # the Timeline of a windowed LOAD command: this duration, dispatched at edge 0
    prog = {"bits": 8 * eb, "dram_bits": 8 * bb, "dataflows": ["ws"], "counters": {"ws": []}, "drain": {"ws": 0},
            "ld_lanes": {"X": {"ws": lanes}}, "dram_outstanding": N, "dram_beat_cycles": D}
    tl = Timeline(prog, L)
    tl.csr.update(csr)
    tl.step({"op": "LOAD", "tensor": "X", "buf": 0, "mode": 0, "window": 1})
    assert tl.fall["ld"] == want


def test_brute_force_agrees_with_plain_loads():
    """The test's simulation itself against load_cycles on plain loads (so it checks something)."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        eb, bb = 1, int(rng.choice([8, 16]))
        rows, cols = int(rng.integers(1, 12)), int(rng.integers(1, 600))
        stride, addr = cols + int(rng.integers(0, 50)), int(rng.integers(0, 9000))
        N, D, L, P = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(0, 9)), 1
        segs = [[(addr + r * stride, cols)] for r in range(rows)]
        assert brute_force_cycles(segs, eb, bb, L, P, N, D) == load_cycles(addr, rows, cols, stride, eb, bb, L, P,
                                                                           N, D)


def test_placement_regions():
    s = LayerSpec("l", "conv2d", {"N": 2, "C": 6, "H": 5, "W": 7, "K": 9, "R": 3, "S": 2}, (1, 2), (1, 1, 0, 2), 3)
    pl = conv.placement(s, 2, 32, 8192)
    ho, wo = conv_out(s)
    assert pl["X"] == {"addr": 8192, "shape": [2, 5, 7, 6], "bytes": 2 * 5 * 7 * 6 * 2}
    assert pl["Z"]["addr"] == 8192 + PAGE and pl["Z"]["bytes"] == 32
    assert pl["W"]["shape"] == [3, 3, 2, 2, 3] and pl["W"]["group_bytes"] == 3 * 2 * 2 * 3 * 2
    assert pl["Y"]["shape"] == [2, ho, wo, 9] and pl["Y"]["stride"] == 36
    assert all(pl[t]["addr"] % PAGE == 0 for t in "XZWY") and pl["end"] % PAGE == 0

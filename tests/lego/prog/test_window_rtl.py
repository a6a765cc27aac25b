"""The convolution-window address generator (lego/prog/window.py) of an im2col design, on Icarus and Verilator,
driven by hand-written command streams (no compiler): windowed X LOADs whose tiles start at any im2col row and
column (crossing kernel taps, output rows and images), with padding on every side, an unaligned input base and
random geometry, with a kernel row's inside taps read as one merged run (WIN_MERGE) and tap by tap, and dilated
tiles (WIN_DH / WIN_DW 1-3 per axis) between undilated ones (the first with the dilation registers never written,
a later one after they are written back to 0 with WIN_RD0 / WIN_SD0 left stale). Each tile is multiplied by a
random W tile and stored; the stored Y must equal numpy's product of an independent NHWC gather (index arithmetic
written here, not spec.window_segments), and the RTL's cycles (bench edges and its ``cycles`` register) must equal
lego.prog.timing's prediction for the stream.
"""
import numpy as np
import pytest

from lego.emit.directory import read_manifest
from lego.prog.conv import window_regs
from lego.prog.generate import generate_prog
from lego.prog.spec import CSR, enc_compute, enc_end, enc_load, enc_set, enc_store
from lego.prog.timing import program_cycles
from simulator.program import run_rtl

LAT = 7


def gather(x, geo, m0, k0, rows, cols):
    """Rows m0.. x columns k0.. of the im2col matrix of NHWC ``x`` (column order (r, s, c)), zero padding, tap
    (r, s) at input pixel offset (r·dh, s·dw)."""
    n_, h, w, c = x.shape
    sh, sw, pt, pl, r_, s_, ho, wo = (geo[k] for k in ("sh", "sw", "pt", "pl", "R", "S", "Ho", "Wo"))
    dh, dw = geo["dh"], geo["dw"]
    out = np.zeros((rows, cols), np.int64)
    for i in range(rows):
        n, rem = divmod(m0 + i, ho * wo)
        oh, ow = divmod(rem, wo)
        for j in range(cols):
            r, rem2 = divmod(k0 + j, s_ * c)
            s, ch = divmod(rem2, c)
            ih, iw = oh * sh - pt + r * dh, ow * sw - pl + s * dw
            if 0 <= ih < h and 0 <= iw < w:
                out[i, j] = x[n, ih, iw, ch]
    return out


def win_csrs(xa, za, shape, geo, m0, k0, rows, cols, merge, eb=1):
    """The compiler's registers of the tile (``conv.window_regs``: the registers are the stimulus, the gather
    above the oracle), runs merged or tap by tap as ``merge`` says."""
    n_, h, w, c = shape
    return {**window_regs({**geo, "C": c, "Cg": c, "H": h, "W": w}, xa, za, m0, k0, rows, cols, eb),
            "WIN_MERGE": merge}


def random_geometry(rng, dilate: bool = False):
    """NHWC shape and conv geometry; ``dilate``: a dilation 1-3 per axis, not both 1 (the output size from the
    effective kernel (R - 1)·dh + 1, written here)."""
    while True:
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 6))
        h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        r, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        pt, pl, pb, pr = (int(v) for v in rng.integers(0, 3, 4))
        dh, dw = (int(v) for v in rng.integers(1, 4, 2)) if dilate else (1, 1)
        if dilate and (r - 1) * (dh - 1) + (s - 1) * (dw - 1) == 0:      # the dilation must move a tap
            continue
        er, es = (r - 1) * dh + 1, (s - 1) * dw + 1
        ho, wo = (h + pt + pb - er) // sh + 1, (w + pl + pr - es) // sw + 1
        if ho >= 1 and wo >= 1 and h + pt + pb >= er and w + pl + pr >= es:
            return (n, h, w, c), {"sh": sh, "sw": sw, "pt": pt, "pl": pl, "R": r, "S": s, "Ho": ho, "Wo": wo,
                                  "dh": dh, "dw": dw}


DESIGNS = {  # (dataflow, DRAM bits, read bursts outstanding)
    "ws-64b-o4": ("ws", 64, 4), "os-128b-o1": ("os", 128, 1), "is-256b-o2": ("is", 256, 2)}


@pytest.fixture(scope="module", params=sorted(DESIGNS))
def design(request, tmp_path_factory):
    df, bits, no = DESIGNS[request.param]
    out = tmp_path_factory.mktemp("win") / request.param
    generate_prog("conv2d", "2x4", (df,), 8, 4, 8, bits, True, out, outstanding=no)
    return out, df


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_window_rtl_equals_gather_and_timing(design, engine):
    out, df = design
    man = read_manifest(out)
    prog = man["prog"]
    assert prog["im2col"] is True
    box = prog["box"]
    rng = np.random.default_rng(sum(map(ord, str(out.name) + engine)))
    img = np.zeros(1 << 16, np.uint8)
    words, cmds, csr, want = [], [], {}, []

    def put(w, c):
        words.append(w)
        cmds.append(c)

    def setr(k, v):
        if csr.get(k) != v:
            csr[k] = v
            put(enc_set(CSR[k], v), {"op": "SET", "reg": k, "value": v})
    for q in range(4):
        # q 0: tap by tap, the dilation registers never written; 1, 3: dilated; 2: merged, after WIN_DH / WIN_DW
        # are written back to 0 (WIN_RD0 / WIN_SD0 stale from tile 1)
        dilate, merge = q % 2 == 1, int(q == 2)
        shape, geo = random_geometry(rng, dilate)
        x = rng.integers(-128, 128, shape)
        xa = 4096 * (q + 1) + int(rng.integers(0, 64))          # unaligned input base
        za = 32768 + 4096 * q                                    # a zero region (the image is zero there)
        img[xa:xa + x.size] = x.astype(np.int8).view(np.uint8).ravel()
        m_all, k_all = shape[0] * geo["Ho"] * geo["Wo"], geo["R"] * geo["S"] * shape[3]
        m0, k0 = int(rng.integers(0, m_all)), int(rng.integers(0, k_all))
        rows = int(rng.integers(1, min(box["M"], m_all - m0) + 1))
        cols = int(rng.integers(1, min(box["K"], k_all - k0) + 1))
        nn = int(rng.integers(1, min(box["N"], 6) + 1))
        regs = win_csrs(xa, za, shape, geo, m0, k0, rows, cols, merge)
        assert ("WIN_DH" in regs) == dilate
        if q == 2:
            regs.update(WIN_DH=0, WIN_DW=0)
        for k, v in regs.items():
            setr(k, v)
        put(enc_load(0, q % 2, 0, 1), {"op": "LOAD", "tensor": "X", "buf": q % 2, "mode": 0, "window": 1})
        wt = rng.integers(-128, 128, (cols, nn))
        wa = 49152 + 1024 * q
        img[wa:wa + wt.size] = wt.astype(np.int8).view(np.uint8).ravel()
        for k, v in (("LD_ADDR", wa), ("LD_ROWS", cols), ("LD_COLS", nn), ("LD_STRIDE", nn)):
            setr(k, v)
        put(enc_load(1, q % 2, 0), {"op": "LOAD", "tensor": "W", "buf": q % 2, "mode": 0})
        t = {"i": rows, "j": nn, "k": cols}
        for k, v in (("TILE_I", rows), ("TILE_J", nn), ("TILE_K", cols)):
            setr(k, v)
        for j, (it, div) in enumerate(prog["counters"][df]):
            setr(f"EXT{j}", -(-t[it] // div))
        put(enc_compute(0, q % 2, q % 2, q % 2, 0), {"op": "COMPUTE", "mode": 0, "xbuf": q % 2, "wbuf": q % 2,
                                                      "ybuf": q % 2, "acc": 0})
        ya = 57344 + 2048 * q
        for k, v in (("ST_ADDR", ya), ("ST_ROWS", rows), ("ST_COLS", nn), ("ST_STRIDE", 4 * nn)):
            setr(k, v)
        put(enc_store(q % 2, 0), {"op": "STORE", "buf": q % 2, "mode": 0})
        want.append((ya, gather(x, geo, m0, k0, rows, cols) @ wt))
    put(enc_end(), {"op": "END"})
    pred = program_cycles(prog, cmds, LAT).cycles
    res = run_rtl(out, engine, man, {"dram": {"Y": {"addr": 57344, "bytes": 8192}}}, words, cmds, img, LAT, pred)
    assert not res.get("error"), res.get("error")
    got = np.frombuffer(bytes.fromhex(res["reads"][0]), np.uint8)
    for ya, y in want:
        off = ya - 57344
        assert np.array_equal(got[off:off + 4 * y.size].view("<i4").reshape(y.shape), y)
    assert int(res["cycles"]) == int(res["cycles_reg"]) == pred

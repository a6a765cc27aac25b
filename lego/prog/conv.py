"""Hardware im2col: a conv2d / dwconv2d layer on a design generated for conv (``prog.im2col``) as ``G`` GEMMs
whose X tiles are *windowed LOADs* (LOAD bit [56]: the load DMA's convolution-window address generator reads
a tile of the implicit im2col matrix straight from the NHWC input; ``lego.prog.spec.window_segments``).

GEMM ``g`` (one per group): ``M = N·Ho·Wo`` (rows ``(n, oh, ow)``), ``K = R·S·Cg`` (columns ``(r, s, c)``,
``c`` fastest: NOT ``lower.im2col``'s host order ``(c, r, s)``), ``N = Kg``. DRAM placement from ``base``,
each region 4 KiB aligned:

* X: the input NHWC ``[N, H, W, C]`` (the design's input dtype);
* Z: a zero region of ``Cg·eb`` bytes rounded up to the bus (the host keeps it zero): padding segments read it;
* W: ``[G, R, S, Cg, Kg]`` (row ``(r, s, c)`` of group g's GEMM is ``Kg`` contiguous elements);
* Y: int32 NHWC ``[N, Ho, Wo, K]``: group g's columns at ``g·Kg``, its STOREs at ``+ g·Kg·4``, row stride ``K·4``.

Per X tile (first row ``m0``, first column ``k0``) the WIN_* registers come from ``n0, oh0, ow0`` (divmods
of ``m0`` over ``(Ho·Wo, Wo)``) and ``r0, s0, c0`` (divmods of ``k0`` over ``(S·Cg, Cg)``; a dilated layer's
tap ``(r, s)`` reads pixel ``(ih + r·dh, iw + s·dw)``: WIN_DH, WIN_DW, WIN_RD0, WIN_SD0); LD_ADDR is the
address of the row's pixel origin ``(n0, oh0·sh - pt, ow0·sw - pl)`` plus group g's channel offset
``g·Cg·eb`` (modulo 2**32: the origin lies in the padding where ``pt``/``pl`` > 0). The mode and the tile are
chosen by the windowed stream's own exact cycles (``choose``: every candidate of ``window_candidates`` on
the lowered GEMM dims built as this stream into a ``timing.Timeline``, which times every windowed LOAD by its
segments; pruned only by lower bounds valid for windowed loads: ``window_floor``).
"""
from __future__ import annotations

from ..errors import LegoError
from .compiler import PAGE, _Emitter, _candidates, busy_floor, candidates, emit_gemm, fastest
from .lower import LayerSpec, conv_out
from .spec import DIM_BITS, enc_end, enc_load
from .timing import Timeline

CONV_OPS = ("conv2d", "dwconv2d")
# the step registers of a dilated layer (0 at reset: dilation 1; WIN_RD0 / WIN_SD0 are read only where they are not 0)
DILATION_REGS = ("WIN_DH", "WIN_DW")
M32 = (1 << 32) - 1


def _align(x: int, to: int = PAGE) -> int:
    return -(-x // to) * to


IM2COL = ("auto", "hardware", "host")


def uses_windows(prog: dict, s: LayerSpec) -> bool:
    """Whether layer ``s`` can run through the window generator on the design of ``prog`` (else host im2col):
    every conv2d / dwconv2d layer, dilated ones included (WIN_DH / WIN_DW)."""
    return bool(prog.get("im2col")) and s.op in CONV_OPS


def fits_windows(s: LayerSpec) -> bool:
    """Whether the window registers hold layer ``s``'s geometry (``check_geometry`` would pass)."""
    try:
        check_geometry(s, "")
    except LegoError:
        return False
    return True


def check_policy(prog: dict, policy: str) -> None:
    """``--im2col``: auto (each conv layer the faster of the two, by exact cycles), hardware (windowed LOADs,
    a design generated for conv) or host (the host writes the im2col'd input)."""
    if policy not in IM2COL:
        raise LegoError(f"--im2col: '{policy}' is not one of {', '.join(IM2COL)}")
    if policy == "hardware" and not prog.get("im2col"):
        raise LegoError("--im2col: hardware needs a design generated for conv (lego gen --workload conv2d|dwconv2d "
                        "--scratchpad-kib N); this one has no window address generator")


def geometry(s: LayerSpec) -> dict:
    """The conv layer's sizes the lowering and the WIN_* registers need."""
    d, g = s.dims, s.groups
    ho, wo = conv_out(s)
    (sh, sw), (pt, pl, _, _), (dh, dw) = s.stride, s.pads, s.dilation
    return {"N": d["N"], "C": d["C"], "H": d["H"], "W": d["W"], "K": d["K"], "R": d["R"], "S": d["S"], "G": g,
            "Cg": d["C"] // g, "Kg": d["K"] // g, "Ho": ho, "Wo": wo, "sh": sh, "sw": sw, "pt": pt, "pl": pl,
            "dh": dh, "dw": dw, "Rd": (d["R"] - 1) * dh, "Sd": (d["S"] - 1) * dw}


# sizes that go into the DIM_BITS-wide window registers: (name in the layer, register)
_DIM_REGS = (("Cg", "WIN_CG"), ("S", "WIN_S"), ("R", "WIN_R0"), ("H", "WIN_H"), ("W", "WIN_W"),
             ("sh", "WIN_SH"), ("sw", "WIN_SW"), ("Ho", "WIN_HO"), ("Wo", "WIN_WO"), ("dh", "WIN_DH"),
             ("dw", "WIN_DW"), ("Rd", "WIN_RD0"), ("Sd", "WIN_SD0"))


def check_geometry(s: LayerSpec, field: str) -> None:
    """The layer's window sizes fit the DIM_BITS-bit window registers."""
    geo = geometry(s)
    for k, reg in _DIM_REGS:
        if geo[k] >= 1 << DIM_BITS:
            raise LegoError(f"{field}: layer '{s.name}': {k}={geo[k]} overflows the {DIM_BITS}-bit window "
                            f"register {reg}")


def placement(s: LayerSpec, eb: int, bb: int, base: int) -> dict:
    """X (NHWC input), Z (zero region), W ``[G, R, S, Cg, Kg]``, Y (int32 NHWC output) from ``base``, each
    4 KiB aligned; ``end``: the next free page."""
    geo = geometry(s)
    N, H, W, C, R, S, G = (geo[k] for k in ("N", "H", "W", "C", "R", "S", "G"))
    cg, kg, ho, wo = geo["Cg"], geo["Kg"], geo["Ho"], geo["Wo"]
    regions = (("X", [N, H, W, C], eb), ("Z", [_align(cg * eb, bb)], 1), ("W", [G, R, S, cg, kg], eb),
               ("Y", [N, ho, wo, G * kg], 4))
    out, at = {}, base
    for t, shape, size in regions:
        n = size
        for v in shape:
            n *= v
        out[t] = {"addr": at, "shape": shape, "bytes": n}
        at = _align(at + n)
    out["W"]["group_bytes"] = R * S * cg * kg * eb
    out["W"]["stride"] = kg * eb
    out["Y"]["stride"] = G * kg * 4
    out["end"] = at
    return out


def _group(pl: dict, geo: dict, g: int) -> dict:
    """emit_gemm's W and Y places of group g."""
    return {"W": {"addr": pl["W"]["addr"] + g * pl["W"]["group_bytes"], "stride": pl["W"]["stride"]},
            "Y": {"addr": pl["Y"]["addr"] + g * geo["Kg"] * 4, "stride": pl["Y"]["stride"]}}


def window_regs(geo: dict, x_addr: int, zero: int, m0: int, k0: int, rows: int, cols: int, eb: int) -> dict:
    """LD_* and WIN_* values of the windowed LOAD of X tile rows ``m0..m0+rows``, columns ``k0..k0+cols`` of
    one group's im2col matrix; ``x_addr``: the input's address plus the group's channel offset. A dilated layer
    (``geo`` dh, dw; 1 where absent) steps its taps by whole dilations (WIN_PIX ``dw·PIX``, WIN_WPIX
    ``dh·W·PIX``), writes WIN_DH, WIN_DW and the first tap's pixel offsets WIN_RD0, WIN_SD0, and never merges
    taps; an undilated layer leaves those four at their reset 0 (dilation 1)."""
    C, H, W, S, cg = geo["C"], geo["H"], geo["W"], geo["S"], geo["Cg"]
    ho, wo, sh, sw, pt, pl = geo["Ho"], geo["Wo"], geo["sh"], geo["sw"], geo["pt"], geo["pl"]
    dh, dw = geo.get("dh", 1), geo.get("dw", 1)
    n0, rem = divmod(m0, ho * wo)
    oh0, ow0 = divmod(rem, wo)
    r0, rem = divmod(k0, S * cg)
    s0, c0 = divmod(rem, cg)
    ih0, iw0 = oh0 * sh - pt, ow0 * sw - pl
    px = C * eb                                                     # bytes of one input pixel
    regs = {
        "LD_ADDR": (x_addr + ((n0 * H + ih0) * W + iw0) * px) & M32, "LD_ROWS": rows, "LD_COLS": cols,
        "WIN_CG": cg, "WIN_S": S, "WIN_H": H, "WIN_W": W, "WIN_SH": sh, "WIN_SW": sw, "WIN_HO": ho, "WIN_WO": wo,
        "WIN_OH0": oh0, "WIN_OW0": ow0, "WIN_IH0": ih0 & M32, "WIN_IW0": iw0 & M32, "WIN_PT": pt, "WIN_PL": pl,
        "WIN_R0": r0, "WIN_S0": s0, "WIN_C0": c0,
        "WIN_PIX": dw * px, "WIN_WPIX": (dh * W * px) & M32, "WIN_DOW": sw * px,
        "WIN_DOH": ((sh * W - (wo - 1) * sw) * px) & M32,
        "WIN_DN": ((H * W - (ho - 1) * sh * W - (wo - 1) * sw) * px) & M32,
        "WIN_OFF0": ((r0 * dh * W + s0 * dw) * px) & M32, "WIN_ZERO": zero,
        "WIN_ROFF0": (r0 * dh * W * px) & M32, "WIN_SPIX": S * px, "WIN_WL0": ((W - iw0) * px) & M32,
        "WIN_WLR": ((W + pl) * px) & M32,
        # a pixel's channels are all of this group's (no groups) and no dilation: the taps of a kernel row are
        # contiguous
        "WIN_MERGE": int(cg == C and (dh, dw) == (1, 1)),
    }
    if (dh, dw) != (1, 1):
        regs.update(WIN_DH=dh, WIN_DW=dw, WIN_RD0=r0 * dh, WIN_SD0=s0 * dw)
    return regs


def window_loader(geo: dict, pl: dict, g: int, eb: int):
    """emit_gemm's X loader for group g: one windowed LOAD per X tile."""
    x_addr = pl["X"]["addr"] + g * geo["Cg"] * eb

    def load(e: _Emitter, mi: int, buf: int, m0: int, k0: int, rows: int, cols: int) -> None:
        for reg, v in window_regs(geo, x_addr, pl["Z"]["addr"], m0, k0, rows, cols, eb).items():
            e.set(reg, v)
        e.put(enc_load(0, buf, mi, 1), {"op": "LOAD", "tensor": "X", "buf": buf, "mode": mi, "window": 1})
    return load


def conv_stream(prog: dict, s: LayerSpec, mode: str, tile: dict, pl: dict, tl: Timeline | None = None,
                keep: bool = True) -> tuple[list[int], list[dict]]:
    """The commands of conv layer ``s`` at placement ``pl`` (its G GEMMs with windowed X loads, then END),
    timed into ``tl`` as they are written (``keep=False``: timed only)."""
    geo = geometry(s)
    eb = prog["bits"] // 8
    dims = gemm_dims(s)
    e = _Emitter(tl, keep)
    for g in range(geo["G"]):
        emit_gemm(e, prog, dims, mode, tile, _group(pl, geo, g), load_x=window_loader(geo, pl, g, eb))
    for reg in DILATION_REGS:       # a dilated layer hands the next layer the reset dilation (an undilated layer's
        if e.shadow.get(reg, 0):    # stream never writes it)
            e.set(reg, 0)
    e.put(enc_end(), {"op": "END"})
    return e.words, e.cmds


def stream_key(s: LayerSpec) -> tuple:
    """What a conv layer's stream depends on (its name does not)."""
    return ("window", s.op, tuple(sorted(s.dims.items())), tuple(s.stride), tuple(s.pads), s.groups,
            tuple(s.dilation))


def gemm_dims(s: LayerSpec) -> dict:
    """The dims of one of conv layer ``s``'s G GEMMs (``lower``'s: M = N·Ho·Wo, N = Kg, K = R·S·Cg)."""
    geo = geometry(s)
    return {"M": geo["N"] * geo["Ho"] * geo["Wo"], "N": geo["Kg"], "K": geo["R"] * geo["S"] * geo["Cg"]}


def window_floor(prog: dict, s: LayerSpec, mode: str, tile: dict, latency: int) -> int:
    """A lower bound on ``conv_stream(s, mode, tile)``'s cycles: G times ``compiler.busy_floor`` of one GEMM.
    Its COMPUTEs are the plain stream's (the compute busy time is exact), its W LOADs are plain LOADs
    (``load_floor`` holds at any address) and a windowed X LOAD of ``rows x cols`` takes at least
    ``load_floor(rows, cols)``: ``window_load_cycles`` walks a row's segments as one plain row's bursts (the
    same start state, the burst state carried from segment to segment), so a row still has at least
    ``ceil(cols / E)`` beats (``sum ceil(n_i / E) >= ceil(sum n_i / E)``), captured at least ``D`` edges apart
    (the read bandwidth state is carried across segments), at least ``ceil(cols / P)`` scatter cycles, and its
    first capture after the previous row's last write. Each unit runs one command at a time, so either unit's
    busy sum bounds the cycles (checked on random layers: tests/lego/prog/test_window_choice.py)."""
    return geometry(s)["G"] * busy_floor(prog, gemm_dims(s), mode, tile, latency)


def window_tiles(box: dict, s: LayerSpec) -> list[dict]:
    """The tiles a windowed layer's search times: ``compiler._candidates``' four first (M and N at the box or
    half of it together, K at the box or half of it), then every K of: the box, half of it, the largest multiple
    of a kernel row ``S·Cg`` in it, of a tap ``Cg``, a third and a quarter of the box, each with M and N at the
    box or half of it independently (at most 24). A windowed X row is a run of segments, so where K ends moves
    the segments and bursts of every row; the plain search's two K sizes miss the best (on ResNet-50's 16x16
    design most 1x1 layers load fastest at a third of the box's K: docs/programmable.md)."""
    dims, geo = gemm_dims(s), geometry(s)
    out = list(_candidates(box, dims))
    row, tap = geo["S"] * geo["Cg"], geo["Cg"]
    ks = [box["K"], box["K"] // 2, box["K"] // row * row, box["K"] // tap * tap, box["K"] // 3, box["K"] // 4]
    for k in ks:
        for fm in (1, 2):
            for fn in (1, 2):
                t = {"M": min(dims["M"], box["M"] // fm or 1), "N": min(dims["N"], box["N"] // fn or 1),
                     "K": min(dims["K"], k)}
                if t["K"] >= 1 and t not in out:
                    out.append(t)
    return out


def window_candidates(prog: dict, s: LayerSpec, mode: str | None, tile: dict | None) -> list[tuple[str, dict]]:
    """The (mode, tile) candidates of windowed layer ``s``: ``mode`` or every mode in design order, ``tile`` or
    ``window_tiles``."""
    return candidates(prog, gemm_dims(s), mode, tile, None if tile else window_tiles(prog["box"], s))


def choose(prog: dict, s: LayerSpec, mode: str | None, tile: dict | None, latency: int, keep: bool = True):
    """-> (cycles, mode, tile, words, cmds, timeline) of conv layer ``s``'s fastest windowed stream at
    ``placement(s, .., 0)`` (cycles depend on addresses only modulo 4 KiB): each (mode, tile) of
    ``window_candidates`` (``mode``/``tile`` given: only those) timed by building its
    windowed stream (``conv_stream``) into a ``Timeline``; ties to the first candidate. Candidates are timed in
    order of ``window_floor``, skipped where it exceeds the best so far and abandoned once their timeline passes
    it (``Overrun``): the exhaustive choice (``compiler.fastest``). ``keep=False``: no words or commands."""
    cands = window_candidates(prog, s, mode, tile)
    pl = placement(s, prog["bits"] // 8, prog["dram_bits"] // 8, 0)

    def exact(i: int, bound: int | None) -> Timeline:
        tl = Timeline(prog, latency, bound=bound)
        conv_stream(prog, s, *cands[i], pl, tl, keep=False)
        return tl
    cyc, tl, i = fastest(len(cands), lambda i: window_floor(prog, s, *cands[i], latency), exact)
    name, t = cands[i]
    words, cmds = conv_stream(prog, s, name, t, pl) if keep else ([], [])
    return cyc, name, t, words, cmds, tl

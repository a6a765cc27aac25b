"""The programmable array's contract: command words, CSRs, buffers, bursts (docs/programmable.md).

A command is one 64-bit word, bits [63:60] the opcode:

=========  ==  ===========================================================================================
SET         1  [59:52] CSR index, [31:0] value: writes a shadow CSR (the units latch them at dispatch)
LOAD        2  [58] tensor (0 X, 1 W), [57] buffer, [56] window, [55:54] mode: DRAM tile -> scratchpad
               buffer, laid out as that mode's banks; CSRs LD_ADDR, LD_ROWS, LD_COLS, LD_STRIDE (bytes).
               With [56] set (X only, designs with ``prog.im2col``): the tile is read through the
               convolution-window address generator, CSRs LD_ADDR, LD_ROWS, LD_COLS and WIN_*
               (``window_segments``; LD_STRIDE unused)
COMPUTE     3  [55:54] mode, [53] X buffer, [52] W buffer, [51] Y buffer, [50] accumulate: one tile on the
               array; CSRs TILE_<iterator> (bounds) and EXT<k> (step-counter extents of the mode)
STORE       4  [57] buffer, [55:54] mode: accumulator buffer -> DRAM; CSRs ST_ADDR, ST_ROWS, ST_COLS,
               ST_STRIDE (bytes)
END        15  waits until every unit is idle, then raises ``done``
=========  ==  ===========================================================================================

Every other bit must be 0 (a program with set reserved bits is refused as corrupt).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

OP = {"SET": 1, "LOAD": 2, "COMPUTE": 3, "STORE": 4, "END": 15}
OP_NAME = {v: k for k, v in OP.items()}
CSR = {"LD_ADDR": 0, "LD_ROWS": 1, "LD_COLS": 2, "LD_STRIDE": 3,
       "ST_ADDR": 4, "ST_ROWS": 5, "ST_COLS": 6, "ST_STRIDE": 7,
       "TILE_I": 8, "TILE_J": 9, "TILE_K": 10,
       "EXT0": 12, "EXT1": 13, "EXT2": 14, "EXT3": 15}
# the convolution-window address generator of a windowed LOAD (``window_segments``): designs generated for
# conv2d / dwconv2d (manifest ``prog.im2col``). Geometry registers hold DIM_BITS-bit values, WIN_IH0/WIN_IW0
# and WIN_PT/WIN_PL signed (two's complement in 32 bits), the byte steps 32-bit values added modulo 2**32.
WIN_CSR = ("WIN_CG", "WIN_S", "WIN_H", "WIN_W", "WIN_SH", "WIN_SW", "WIN_HO", "WIN_WO",
           "WIN_OH0", "WIN_OW0", "WIN_IH0", "WIN_IW0", "WIN_PT", "WIN_PL", "WIN_R0", "WIN_S0", "WIN_C0",
           "WIN_PIX", "WIN_WPIX", "WIN_DOW", "WIN_DOH", "WIN_DN", "WIN_OFF0", "WIN_ZERO",
           "WIN_ROFF0", "WIN_SPIX", "WIN_WL0", "WIN_WLR", "WIN_MERGE",
           # dilation (appended: the indices above are unchanged): the tap steps in input pixels, 0 meaning 1
           # (reset), and the first tap's pixel offsets WIN_R0·WIN_DH, WIN_S0·WIN_DW (read where WIN_DH / WIN_DW
           # is not 0)
           "WIN_DH", "WIN_DW", "WIN_RD0", "WIN_SD0")
CSR.update({n: 16 + i for i, n in enumerate(WIN_CSR)})
CSR_NAME = {v: k for k, v in CSR.items()}
ITERS = ("i", "j", "k")             # gemm: Y[i,j] += X[i,k] * W[k,j]
TENSORS = ("X", "W")                # LOAD's tensor field
ADDR_BITS = 32                      # DRAM byte addresses (AXI araddr/awaddr)
DIM_BITS = 16                       # rows, cols, tile bounds, counter extents
BURST_MAX = 256                     # AXI4 INCR: at most 256 beats, never across a 4 KiB boundary
PAGE = 4096
# buffer mask bits of the dispatcher's scoreboard
BUF_BIT = {("X", 0): 0, ("X", 1): 1, ("W", 0): 2, ("W", 1): 3, ("Y", 0): 4, ("Y", 1): 5}


class CommandError(ValueError):
    """A command word that is not a valid command (the message names the field)."""


def enc_set(reg: int, value: int) -> int:
    return (OP["SET"] << 60) | ((reg & 0xFF) << 52) | (value & 0xFFFFFFFF)


def enc_load(tensor: int, buf: int, mode: int, window: int = 0) -> int:
    return (OP["LOAD"] << 60) | (tensor << 58) | (buf << 57) | (window << 56) | (mode << 54)


def enc_compute(mode: int, xbuf: int, wbuf: int, ybuf: int, acc: int) -> int:
    return (OP["COMPUTE"] << 60) | (mode << 54) | (xbuf << 53) | (wbuf << 52) | (ybuf << 51) | (acc << 50)


def enc_store(buf: int, mode: int) -> int:
    return (OP["STORE"] << 60) | (buf << 57) | (mode << 54)


def enc_end() -> int:
    return OP["END"] << 60


def _bits(w: int, hi: int, lo: int) -> int:
    return (w >> lo) & ((1 << (hi - lo + 1)) - 1)


def decode(w: int, nmodes: int = 4) -> dict:
    """One command word -> its fields; raises CommandError for anything the hardware does not define."""
    if not 0 <= w < 1 << 64:
        raise CommandError(f"word {w:#x} is not 64 bits")
    op = w >> 60
    name = OP_NAME.get(op)
    if name is None:
        raise CommandError(f"opcode {op} is not one of {', '.join(f'{k}={v}' for k, v in OP.items())}")
    if name == "SET":
        reg = _bits(w, 59, 52)
        if reg not in CSR_NAME:
            raise CommandError(f"SET: CSR index {reg} is not defined (allowed: {sorted(CSR_NAME)})")
        used = (0xFF << 52) | 0xFFFFFFFF
        d = {"op": name, "reg": CSR_NAME[reg], "value": _bits(w, 31, 0)}
    elif name == "LOAD":
        used = (1 << 58) | (1 << 57) | (1 << 56) | (3 << 54)
        d = {"op": name, "tensor": TENSORS[_bits(w, 58, 58)], "buf": _bits(w, 57, 57), "mode": _bits(w, 55, 54)}
        if _bits(w, 56, 56):
            if d["tensor"] != "X":
                raise CommandError("LOAD: the window bit [56] is set on a W load (windows read X only)")
            d["window"] = 1
    elif name == "COMPUTE":
        used = (3 << 54) | (0xF << 50)
        d = {"op": name, "mode": _bits(w, 55, 54), "xbuf": _bits(w, 53, 53), "wbuf": _bits(w, 52, 52),
             "ybuf": _bits(w, 51, 51), "acc": _bits(w, 50, 50)}
    elif name == "STORE":
        used = (1 << 57) | (3 << 54)
        d = {"op": name, "buf": _bits(w, 57, 57), "mode": _bits(w, 55, 54)}
    else:
        used = 0
        d = {"op": name}
    if w & ~((0xF << 60) | used) & ((1 << 64) - 1):
        raise CommandError(f"{name}: reserved bits set in {w:#018x}")
    if "mode" in d and d["mode"] >= nmodes:
        raise CommandError(f"{name}: mode {d['mode']} is not a mode of this design (0..{nmodes - 1})")
    return d


def encode(d: dict) -> int:
    op = d["op"]
    if op == "SET":
        return enc_set(CSR[d["reg"]], d["value"])
    if op == "LOAD":
        return enc_load(TENSORS.index(d["tensor"]), d["buf"], d["mode"], d.get("window", 0))
    if op == "COMPUTE":
        return enc_compute(d["mode"], d["xbuf"], d["wbuf"], d["ybuf"], d["acc"])
    if op == "STORE":
        return enc_store(d["buf"], d["mode"])
    if op == "END":
        return enc_end()
    raise CommandError(f"op: '{op}' is not a command ({', '.join(OP)})")


@dataclass(frozen=True)
class Burst:
    addr: int          # aligned byte address (araddr/awaddr)
    beats: int
    off: int           # first lane of the first beat
    elems: int         # elements carried


def bursts(addr: int, rows: int, cols: int, stride: int, eb: int, bb: int) -> list[list[Burst]]:
    """Per row, the INCR bursts that move ``cols`` elements of ``eb`` bytes from ``addr + r*stride``
    over a bus of ``bb`` bytes: each burst starts at the next element still to move (aligned down to the
    bus; the first lane skips the offset), carries at most 256 beats and stops at a 4 KiB boundary. The
    hardware (lego/prog/rtl.py) splits rows the same way."""
    E = bb // eb
    out = []
    for r in range(rows):
        cur, left, row = addr + r * stride, cols, []
        while left:
            off = (cur % bb) // eb
            need = -(-(off + left) // E)
            to4k = (PAGE - (cur & (PAGE - 1) & ~(bb - 1))) // bb
            beats = min(need, to4k, BURST_MAX)
            elems = min(left, beats * E - off)
            row.append(Burst(cur & ~(bb - 1), beats, off, elems))
            left -= elems
            cur = (cur & ~(bb - 1)) + beats * bb
        out.append(row)
    return out


def _signed(v: int, bits: int = 32) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def window_segments(csr: dict, eb: int) -> list[list[tuple[int, int]]]:
    """Per row of a windowed LOAD, its segments ``(byte address, elements)`` in the order the load DMA reads
    them (each segment then split into INCR bursts by ``bursts(addr, 1, elements, 0, eb, bb)``, exactly
    as a plain row). The contract of the hardware's window address generator (lego/prog/window.py):

    The input is NHWC in DRAM; the tile is rows ``LD_ROWS`` x columns ``LD_COLS`` of the im2col matrix whose
    row ``(n, oh, ow)`` holds, in column order ``(r, s, c)`` (``c`` fastest, ``c < WIN_CG``), the input pixel
    ``(oh·WIN_SH - pt + r·dh, ow·WIN_SW - pl + s·dw)``'s channels, ``(dh, dw)`` the dilation (below). Row 0
    is output pixel ``(WIN_OH0, WIN_OW0)`` of the image at LD_ADDR; row ``i + 1`` is the next pixel in
    row-major order (``ow`` wraps at WIN_WO, ``oh`` at WIN_HO, then the next image). Column 0 is ``(WIN_R0, WIN_S0,
    WIN_C0)``; ``c`` wraps at WIN_CG into the next ``s``, ``s`` at WIN_S into the next ``r``.

    Dilation. The taps step ``dh = WIN_DH`` input rows and ``dw = WIN_DW`` input columns, a 0 (the reset value)
    meaning 1. The walk keeps the tap's pixel offsets ``(rd, sd) = (r·dh, s·dw)`` beside ``(r, s)``: a row
    starts at ``rd = WIN_RD0``, ``sd = WIN_SD0`` (the compiler's ``WIN_R0·dh``, ``WIN_S0·dw``; where WIN_DH is
    0 ``rd`` starts at WIN_R0 instead, where WIN_DW is 0 ``sd`` at WIN_S0, so a program that never writes the
    four registers walks exactly as an undilated one), the next tap of a kernel row adds ``dw`` to ``sd``, the
    next kernel row adds ``dh`` to ``rd`` and sets ``sd = 0``. The byte steps below are the compiler's for the
    dilated taps (WIN_PIX ``dw·PIX``, WIN_WPIX ``dh·W·PIX``, WIN_OFF0 ``(R0·dh·W + S0·dw)·PIX``, WIN_ROFF0
    ``R0·dh·W·PIX``); WIN_MERGE is 0 on a dilated layer (its taps are not contiguous; the checker refuses
    WIN_MERGE=1 with a dilation other than 1).

    Segments. A tap ``(r, s)`` whose pixel ``(ih + rd, iw + sd)`` lies outside ``[0, WIN_H) x [0, WIN_W)`` is
    one segment of ``min(WIN_CG - c, columns left)`` elements read from WIN_ZERO (a zero region the host
    keeps). An inside tap is one segment of ``min(WIN_CG - c, left)`` elements at its pixel's channel ``c``
    too, unless WIN_MERGE is 1 (the compiler sets it where a pixel's WIN_CG channels are all of it,
    ``WIN_PIX = WIN_CG·eb``, so the taps of one kernel row are contiguous in DRAM): then the segment runs on
    over the following taps of the same kernel row up to the kernel's right edge or the image's, whichever
    comes first, ``min(left, (min(wl, WIN_SPIX) + rs0 - rs) / eb - c)`` elements, and the next segment starts
    at tap ``(r + 1, 0)`` where it reached the kernel's edge (``WIN_SPIX <= wl``), else at the first tap
    past the image, ``(r, W - iw)`` (``sd = W - iw`` too).

    Registers (the compiler's ``lego.prog.conv``; every address modulo 2**32, ``wl`` signed):
    ``ih`` / ``iw`` of a row's pixel origin start at WIN_IH0 / WIN_IW0 (= OH0·SH - pt, OW0·SW - pl) and
    step by WIN_SH / WIN_SW; where ``ow`` wraps ``iw`` restarts at ``-WIN_PL``, where ``oh`` wraps ``ih`` at
    ``-WIN_PT``. The row's pixel address ``pix`` starts at LD_ADDR and adds WIN_DOW for the next ``ow``,
    WIN_DOH where ``ow`` wraps, WIN_DN where ``oh`` wraps; ``wl`` (bytes from the origin to the image's right
    edge, ``(W - iw)·PIX``) starts at WIN_WL0, subtracts WIN_DOW for the next ``ow`` and restarts at WIN_WLR
    (``(W + pl)·PIX``) where ``ow`` wraps. A row starts at tap offset ``rs = WIN_OFF0`` (``(R0·W + S0)·PIX``)
    in kernel row offset ``rs0 = WIN_ROFF0`` (``R0·W·PIX``), its first segment at ``pix + rs + WIN_C0·eb``,
    later ones at ``pix + rs``; the next tap of a kernel row adds WIN_PIX to ``rs``, the next kernel row adds
    WIN_WPIX (``W·PIX``) to ``rs0`` and sets ``rs = rs0``; WIN_SPIX is ``S·PIX``."""
    return [list(row) for row in _window_segments(tuple(csr.get(k, 0) for k in _WIN_REGS), eb)]


# the registers window_segments reads; an X tile is loaded again for every output column tile, and the checker,
# the engine's data path and the timing each walk it: one walk per distinct register set
_WIN_REGS = ("LD_ADDR", "LD_ROWS", "LD_COLS") + WIN_CSR


@lru_cache(maxsize=1 << 12)
def _window_segments(key: tuple, eb: int) -> tuple:
    g = dict(zip(_WIN_REGS, key))
    M32 = (1 << 32) - 1
    oh, ow = g["WIN_OH0"], g["WIN_OW0"]
    ih, iw = _signed(g["WIN_IH0"]), _signed(g["WIN_IW0"])
    pt, pl = _signed(g["WIN_PT"]), _signed(g["WIN_PL"])
    wl, spix = _signed(g["WIN_WL0"]), g["WIN_SPIX"]
    pix = g["LD_ADDR"]
    dh, dw = g["WIN_DH"] or 1, g["WIN_DW"] or 1
    rd0 = g["WIN_RD0"] if g["WIN_DH"] else g["WIN_R0"]
    sd0 = g["WIN_SD0"] if g["WIN_DW"] else g["WIN_S0"]
    out = []
    for _ in range(g["LD_ROWS"]):
        s, c, left = g["WIN_S0"], g["WIN_C0"], g["LD_COLS"]
        rd, sd = rd0, sd0
        rs, rs0 = g["WIN_OFF0"], g["WIN_ROFF0"]
        row = []
        while left:
            inside = 0 <= ih + rd < g["WIN_H"] and 0 <= iw + sd < g["WIN_W"]
            merged = inside and g["WIN_MERGE"]
            if merged:
                n = min(left, (((min(wl, spix) + rs0 - rs) & M32) >> log2i(eb)) - c)
            else:
                n = min(g["WIN_CG"] - c, left)
            row.append(((pix + rs + c * eb) & M32 if inside else g["WIN_ZERO"], n))
            left -= n
            c = 0
            if merged and spix > wl:
                s = sd = g["WIN_W"] - iw            # the first tap past the image's right edge
            elif not merged and s + 1 < g["WIN_S"]:
                s, sd, rs = s + 1, sd + dw, rs + g["WIN_PIX"]
            else:
                s, sd, rd, rs0 = 0, 0, rd + dh, rs0 + g["WIN_WPIX"]
                rs = rs0
        out.append(tuple(row))
        if ow + 1 < g["WIN_WO"]:
            ow, iw, pix, wl = ow + 1, iw + g["WIN_SW"], pix + g["WIN_DOW"], wl - g["WIN_DOW"]
        elif oh + 1 < g["WIN_HO"]:
            ow, oh, iw, ih, pix = 0, oh + 1, -pl, ih + g["WIN_SH"], pix + g["WIN_DOH"]
            wl = _signed(g["WIN_WLR"])
        else:
            ow, oh, iw, ih, pix = 0, 0, -pl, -pt, pix + g["WIN_DN"]
            wl = _signed(g["WIN_WLR"])
        pix &= M32
    return tuple(out)


def log2i(x: int) -> int:
    assert x > 0 and x & (x - 1) == 0, x
    return int(math.log2(x))


def load_lanes(layouts, E: int) -> int:
    """P, the elements the DMA load unit writes per cycle into one tensor's banks (a fixed power of two,
    1 <= P <= E, E the elements of one bus beat): the largest P such that, in every mode's layout of the
    tensor (``layouts``: its 2-D, non-replicated cyclic layouts), any P consecutive columns of one row lie in
    P distinct physical banks. With ``bank = (⌊r/g0⌋ mod B0, ⌊c/g1⌋ mod B1)`` that holds for P > 1 exactly
    when ``g1 == 1`` and ``P <= B1`` (consecutive columns then have consecutive digits mod B1), and every
    cyclic id of the layout is a physical bank (``bank_ids`` lists all B0·B1 ids, so distinct ids are
    distinct banks). Any layout that does not allow it makes P = 1 (one element per cycle)."""
    p = E
    for lay in layouts:
        g, B = lay.g, lay.B
        full = sorted(lay.bank_ids) == list(range(B[0] * B[1]))
        cap = B[1] if (len(g) == 2 and g[1] == 1 and full and not lay.replicated) else 1
        p = min(p, cap)
    q = 1
    while 2 * q <= p:
        q *= 2
    return q

"""The convolution-window address generator of an im2col design's load DMA (``ProgTop(im2col=True)``).

A windowed LOAD (``spec``: LOAD bit [56], X only) reads a tile of the implicit im2col matrix of an NHWC input: each
row of the tile is a run of *segments*, one per kernel tap ``(r, s)``, each segment ``min(WIN_CG - c, columns
left)`` contiguous channels of one input pixel, or, where that pixel lies in the padding, the same number of
elements from the zero region at WIN_ZERO. ``spec.window_segments`` is the contract; this module walks it in
hardware with adders and comparators only (the compiler precomputes every byte step, so there is no multiplier).

The load DMA's address side issues a segment's bursts exactly as a plain row's (``spec.bursts``): the generator only
decides where each segment starts and how long it is. ``Window.start`` gives a row's first segment, ``Window.step``
the next segment of the same row, ``Window.next_row`` the first segment of the next row; the data side of the DMA
is unchanged (a row still has ``LD_COLS`` columns, written in order).

Dilation: the inside test reads the tap's pixel offsets ``(rd, sd)``, registers that start at WIN_RD0 / WIN_SD0
(WIN_R0 / WIN_S0 where WIN_DH / WIN_DW is 0) and step by WIN_DH / WIN_DW (0 taken as 1) beside the kernel row and
column; the tap's byte offset is the compiler's byte steps as before.
"""
from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed

from .spec import DIM_BITS, log2i

SW = DIM_BITS + 4          # signed width of the input-pixel coordinates (a pixel origin may sit in the padding)
# width of a tap's pixel offsets (rd, sd) = (r·dh, s·dw): a checked program's offsets stay below
# WIN_RD0 + WIN_DH·LD_COLS < 2**32 (every term below 2**DIM_BITS), so they never wrap
TW = 32
WLW = 34                   # signed width of ``wl``, the bytes from a row's origin to the image's right edge


class Window:
    """The generator's registers (latched from the WIN_* CSRs at a windowed LOAD's dispatch and advanced at each
    segment's last AR handshake) and the comb expressions of its three transitions."""

    def __init__(self, csr: dict, eb: int):
        def reg(n, w=DIM_BITS, s=False):
            return Signal(signed(w) if s else w, name=f"ld_win_{n}")
        self.csr, self.lg = csr, log2i(eb)
        self.on = reg("on", 1)                     # the LOAD in progress is windowed
        self.pix, self.rs, self.rs0 = reg("pix", 32), reg("rs", 32), reg("rs0", 32)
        self.ih, self.iw = reg("ih", SW, True), reg("iw", SW, True)
        self.wl = reg("wl", WLW, True)
        self.oh, self.ow, self.s = reg("oh"), reg("ow"), reg("s")
        self.rd, self.sd = reg("rd", TW), reg("sd", TW)   # the tap's pixel offsets (r·dh, s·dw)
        self.rleft = reg("rleft")                  # columns of the row after the current segment

    def u(self, n):
        return self.csr[n][:DIM_BITS]

    def sg(self, n, w=SW):
        return self.csr[n][:w].as_signed() if w < 32 else self.csr[n].as_signed()

    def inside(self, ih, iw):
        return (ih >= 0) & (ih < self.u("WIN_H")) & (iw >= 0) & (iw < self.u("WIN_W"))

    def step_of(self, n):
        """WIN_DH / WIN_DW with 0 taken as 1 (the reset value: an undilated program never writes them)."""
        return Mux(self.u(n) == 0, 1, self.u(n))

    def first_offsets(self):
        """A row's first (rd, sd): WIN_RD0 / WIN_SD0, or WIN_R0 / WIN_S0 where WIN_DH / WIN_DW is 0."""
        return (Mux(self.u("WIN_DH") == 0, self.u("WIN_R0"), self.u("WIN_RD0")),
                Mux(self.u("WIN_DW") == 0, self.u("WIN_S0"), self.u("WIN_SD0")))

    def _length(self, name, merged, wl, rs0, rs, c, left, cg_left):
        """Elements of a segment: a merged run to the kernel's or the image's right edge, else one tap's
        channels from ``c`` (``cg_left``), at most the columns ``left`` in the row."""
        spix = self.csr["WIN_SPIX"]
        run = Signal(32, name=f"ld_win_{name}_run")
        n = Signal(DIM_BITS, name=f"ld_win_{name}_n")
        edge = Mux(wl < spix, wl, spix)
        exprs = [run.eq(((edge + rs0 - rs)[:32] >> self.lg) - c),
                 n.eq(Mux(merged, Mux(run < left, run, left), Mux(cg_left < left, cg_left, left)))]
        return exprs, n

    def _first(self, name, ih, iw, pix, wl, cols):
        """(comb assignments, elements, byte address) of a row's first segment: tap (WIN_R0, WIN_S0), channel
        WIN_C0, tap offset WIN_OFF0 in kernel row offset WIN_ROFF0."""
        c = self.csr
        rd0, sd0 = self.first_offsets()
        inside = self.inside(ih + rd0, iw + sd0)
        exprs, n = self._length(name, c["WIN_MERGE"][0] & inside, wl, c["WIN_ROFF0"], c["WIN_OFF0"],
                                self.u("WIN_C0"), cols, self.u("WIN_CG") - self.u("WIN_C0"))
        at = (pix + c["WIN_OFF0"] + (self.u("WIN_C0") << self.lg))[:32]
        return exprs, n, Mux(inside, at, c["WIN_ZERO"])

    def start(self, cols):
        """At a windowed LOAD's dispatch: (register updates, comb assignments, first segment's elements, its
        address), everything from the CSRs."""
        c = self.csr
        ih, iw, wl = self.sg("WIN_IH0"), self.sg("WIN_IW0"), self.sg("WIN_WL0", 32)
        exprs, n, addr = self._first("start", ih, iw, c["LD_ADDR"], wl, cols)
        upd = [self.pix.eq(c["LD_ADDR"]), self.ih.eq(ih), self.iw.eq(iw), self.wl.eq(wl),
               self.oh.eq(self.u("WIN_OH0")), self.ow.eq(self.u("WIN_OW0")), self.s.eq(self.u("WIN_S0")),
               self.rs.eq(c["WIN_OFF0"]), self.rs0.eq(c["WIN_ROFF0"]), self.rleft.eq(cols - n)]
        return upd + self._first_taps(), exprs, n, addr

    def _first_taps(self):
        rd0, sd0 = self.first_offsets()
        return [self.rd.eq(rd0), self.sd.eq(sd0)]

    def step(self):
        """The next segment of the same row: (register updates, comb assignments, elements, address)."""
        c = self.csr
        merged = c["WIN_MERGE"][0] & self.inside(self.ih + self.rd, self.iw + self.sd)
        edge = merged & (c["WIN_SPIX"] > self.wl)          # the run stopped at the image's right edge
        same = ~merged & (self.s + 1 != self.u("WIN_S"))   # the next tap of the kernel row
        s_n = Signal(DIM_BITS, name="ld_win_s_next")
        rd_n, sd_n = Signal(TW, name="ld_win_rd_next"), Signal(TW, name="ld_win_sd_next")
        rs_n, rs0_n = Signal(32, name="ld_win_rs_next"), Signal(32, name="ld_win_rs0_next")
        past = (self.u("WIN_W") - self.iw)                  # the first tap past the image's right edge
        exprs = [s_n.eq(Mux(edge, past[:DIM_BITS], Mux(same, self.s + 1, 0))),
                 sd_n.eq(Mux(edge, past[:TW], Mux(same, self.sd + self.step_of("WIN_DW"), 0))),
                 rd_n.eq(Mux(edge | same, self.rd, self.rd + self.step_of("WIN_DH"))),
                 rs0_n.eq(Mux(edge | same, self.rs0, self.rs0 + c["WIN_WPIX"])),
                 rs_n.eq(Mux(edge, self.rs, Mux(same, self.rs + c["WIN_PIX"], self.rs0 + c["WIN_WPIX"])))]
        inside = self.inside(self.ih + rd_n, self.iw + sd_n)
        more, n = self._length("step", c["WIN_MERGE"][0] & inside, self.wl, rs0_n, rs_n, 0, self.rleft,
                               self.u("WIN_CG"))
        upd = [self.s.eq(s_n), self.rd.eq(rd_n), self.sd.eq(sd_n), self.rs.eq(rs_n), self.rs0.eq(rs0_n),
               self.rleft.eq(self.rleft - n)]
        return upd, exprs + more, n, Mux(inside, (self.pix + rs_n)[:32], c["WIN_ZERO"])

    def next_row(self, cols):
        """The first segment of the next row (output pixel order: ``ow``, then ``oh``, then the image):
        (register updates, comb assignments, elements, address)."""
        c = self.csr
        ow_wrap = self.ow + 1 == self.u("WIN_WO")
        oh_wrap = self.oh + 1 == self.u("WIN_HO")
        pix = Signal(32, name="ld_win_pix_next")
        ih, iw = Signal(signed(SW), name="ld_win_ih_next"), Signal(signed(SW), name="ld_win_iw_next")
        wl = Signal(signed(WLW), name="ld_win_wl_next")
        exprs = [pix.eq(self.pix + Mux(ow_wrap, Mux(oh_wrap, c["WIN_DN"], c["WIN_DOH"]), c["WIN_DOW"])),
                 iw.eq(Mux(ow_wrap, -self.sg("WIN_PL"), self.iw + self.u("WIN_SW"))),
                 ih.eq(Mux(ow_wrap, Mux(oh_wrap, -self.sg("WIN_PT"), self.ih + self.u("WIN_SH")), self.ih)),
                 wl.eq(Mux(ow_wrap, self.sg("WIN_WLR", 32), self.wl - c["WIN_DOW"]))]
        more, n, addr = self._first("row", ih, iw, pix, wl, cols)
        upd = [self.pix.eq(pix), self.ih.eq(ih), self.iw.eq(iw), self.wl.eq(wl),
               self.ow.eq(Mux(ow_wrap, 0, self.ow + 1)),
               self.oh.eq(Mux(ow_wrap, Mux(oh_wrap, 0, self.oh + 1), self.oh)),
               self.s.eq(self.u("WIN_S0")), self.rs.eq(c["WIN_OFF0"]),
               self.rs0.eq(c["WIN_ROFF0"]), self.rleft.eq(cols - n)] + self._first_taps()
        return upd, exprs + more, n, addr

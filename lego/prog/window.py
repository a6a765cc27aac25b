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
"""
from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed

from .spec import DIM_BITS, log2i

SW = DIM_BITS + 4          # signed width of the input-pixel coordinates (a pixel origin may sit in the padding)


class Window:
    """The generator's registers (latched from the WIN_* CSRs at a windowed LOAD's dispatch and advanced at each
    segment's last AR handshake) and the comb expressions of its three transitions."""

    def __init__(self, csr: dict, eb: int):
        def reg(n, w=DIM_BITS, s=False):
            return Signal(signed(w) if s else w, name=f"ld_win_{n}")
        self.csr, self.lg = csr, log2i(eb)
        self.on = reg("on", 1)                     # the LOAD in progress is windowed
        self.pix, self.rs = reg("pix", 32), reg("rs", 32)
        self.ih, self.iw = reg("ih", SW, True), reg("iw", SW, True)
        self.oh, self.ow, self.r, self.s = reg("oh"), reg("ow"), reg("r"), reg("s")
        self.rleft = reg("rleft")                  # columns of the row after the current segment

    def u(self, n):
        return self.csr[n][:DIM_BITS]

    def sg(self, n):
        return self.csr[n][:SW].as_signed()

    def inside(self, ih, iw):
        return (ih >= 0) & (ih < self.u("WIN_H")) & (iw >= 0) & (iw < self.u("WIN_W"))

    def _first(self, ih, iw, pix, cols):
        """(elements, byte address) of a row's first segment: tap (WIN_R0, WIN_S0), channel WIN_C0."""
        room = self.u("WIN_CG") - self.u("WIN_C0")
        n = Mux(cols < room, cols, room)
        at = (pix + self.csr["WIN_OFF0"] + (self.u("WIN_C0") << self.lg))[:32]
        addr = Mux(self.inside(ih + self.u("WIN_R0"), iw + self.u("WIN_S0")), at, self.csr["WIN_ZERO"])
        return n, addr

    def start(self, cols):
        """At a windowed LOAD's dispatch: (register updates, first segment's elements, its address, columns of
        the row after it), everything from the CSRs."""
        c = self.csr
        ih, iw = self.sg("WIN_IH0"), self.sg("WIN_IW0")
        n, addr = self._first(ih, iw, c["LD_ADDR"], cols)
        upd = [self.pix.eq(c["LD_ADDR"]), self.ih.eq(ih), self.iw.eq(iw), self.oh.eq(self.u("WIN_OH0")),
               self.ow.eq(self.u("WIN_OW0")), self.r.eq(self.u("WIN_R0")), self.s.eq(self.u("WIN_S0")),
               self.rs.eq(c["WIN_OFF0"]), self.rleft.eq(cols - n)]
        return upd, n, addr

    def step(self):
        """The next segment of the same row: (register updates, elements, address)."""
        c = self.csr
        wrap = self.s + 1 == self.u("WIN_S")
        s_n = Mux(wrap, 0, self.s + 1)
        r_n = Mux(wrap, self.r + 1, self.r)
        rs_n = Signal(32, name="ld_win_rs_next")
        n = Signal(DIM_BITS, name="ld_win_step_n")
        upd = [self.s.eq(s_n), self.r.eq(r_n), self.rs.eq(rs_n), self.rleft.eq(self.rleft - n)]
        exprs = [rs_n.eq(self.rs + Mux(wrap, c["WIN_DR"], c["WIN_PIX"])),
                 n.eq(Mux(self.rleft < self.u("WIN_CG"), self.rleft, self.u("WIN_CG")))]
        addr = Mux(self.inside(self.ih + r_n, self.iw + s_n), (self.pix + rs_n)[:32], c["WIN_ZERO"])
        return upd, exprs, n, addr

    def next_row(self, cols):
        """The first segment of the next row (output pixel order: ``ow``, then ``oh``, then the image):
        (register updates, comb assignments, elements, address)."""
        c = self.csr
        ow_wrap = self.ow + 1 == self.u("WIN_WO")
        oh_wrap = self.oh + 1 == self.u("WIN_HO")
        pix = Signal(32, name="ld_win_pix_next")
        ih, iw = Signal(signed(SW), name="ld_win_ih_next"), Signal(signed(SW), name="ld_win_iw_next")
        exprs = [pix.eq(self.pix + Mux(ow_wrap, Mux(oh_wrap, c["WIN_DN"], c["WIN_DOH"]), c["WIN_DOW"])),
                 iw.eq(Mux(ow_wrap, -self.sg("WIN_PL"), self.iw + self.u("WIN_SW"))),
                 ih.eq(Mux(ow_wrap, Mux(oh_wrap, -self.sg("WIN_PT"), self.ih + self.u("WIN_SH")), self.ih))]
        n, addr = self._first(ih, iw, pix, cols)
        upd = [self.pix.eq(pix), self.ih.eq(ih), self.iw.eq(iw),
               self.ow.eq(Mux(ow_wrap, 0, self.ow + 1)),
               self.oh.eq(Mux(ow_wrap, Mux(oh_wrap, 0, self.oh + 1), self.oh)),
               self.r.eq(self.u("WIN_R0")), self.s.eq(self.u("WIN_S0")), self.rs.eq(c["WIN_OFF0"]),
               self.rleft.eq(cols - n)]
        return upd, exprs, n, addr

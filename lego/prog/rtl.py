"""The programmable array in Amaranth: the generated array core (``ProgCore`` in ``lego.prog.core``, the same
ArrayCore the fixed-shape designs use, with its step-counter extents, bounds and buffer bases read from registers;
emitted by ``lego.prog.hier``), a
command dispatcher with a buffer scoreboard, CSRs, a DMA load unit and a DMA store unit on one AXI4 master
port. The timing of every unit is written down in docs/programmable.md and mirrored, cycle for cycle, by
``lego.prog.timing`` (which the cycle engine and the compiler use).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal

from ..prim.lower import bits_for
from .banks import _buf_addr, hi_bits, lo_bits
from .hier import ProgHierCore
from .spec import ADDR_BITS, BUF_BIT, CSR, DIM_BITS, OP, PAGE, WIN_CSR, load_lanes, log2i
from .window import Window



def _group_slot(m, pl, lay, lb: int, lanes: int, n, name: str):
    """Logical bank ``lb`` of layout ``lay`` in a lane group of ``n`` consecutive columns of one row from the
    running place ``pl`` (``_Place`` of ``lanes`` elements a step): (this bank holds one of them, its slot ``j``
    in the group or None where ``lanes == 1``, its word address). Column c + j lies in the bank of cyclic
    digit (c + j) mod B1 (distinct for j < lanes, ``spec.load_lanes``), one word further where the digit
    wrapped."""
    rd, cd = divmod(lay.bank_ids[lb], lay.B[1])
    if lanes == 1:
        return (pl.row.digit == rd) & (pl.col.digit == cd), None, pl.addr
    jj, wrap = _lane_slot(m, pl.col.cb, lay.B[1], cd, n, name)
    return (pl.row.digit == rd) & (jj < n), jj, pl.addr + wrap


def _advance(m, row_end, col, row, n, places) -> None:
    """A DMA's position after a lane group of ``n`` elements: the next row at ``row_end``, else ``n`` columns
    on; every running bank place (``_Place``) steps with it."""
    with m.If(row_end):
        m.d.sync += [col.eq(0), row.eq(row + 1)]
    with m.Else():
        m.d.sync += col.eq(col + n)
    for pl in places.values():
        pl.step(m, row_end, n)


def _lane_slot(m, cb, B1: int, cd: int, n, name: str):
    """(slot ``jj``, wrapped) of column digit ``cd`` in a lane group that starts at digit ``cb``:
    ``cb + jj == cd (mod B1)``, wrapped where ``cb > cd`` (the column lies one row of banks further)."""
    if cd == B1 - 1:                  # cb <= cd always: no wrap
        return cd - cb, 0
    if B1 & (B1 - 1) == 0:            # (cd - cb) mod B1 (cb < B1): the low bits
        jj = Signal(len(n), name=f"{name}_j")
        m.d.comb += jj.eq((cd - cb)[:log2i(B1)])
        return jj, cb > cd
    return Mux(cb <= cd, cd - cb, B1 - (cb - cd)), cb > cd     # (cd + B1 - cb where cb > cd)


class _Cyc:
    """The cyclic-banking digits of a running index d = 0, 1, 2, ...: ``digit = (d // g) mod B`` and
    ``local = (d // (g·B))·g + d mod g``, kept by counters (no division in hardware)."""

    def __init__(self, g: int, B: int, extent: int, name: str, step: int = 1):
        """``step``: the most elements one ``add`` advances by (the digit register is as wide as that)."""
        self.g, self.B = g, B
        self.cg = Signal(range(max(2, g)), name=f"{name}_g")
        self.cb = Signal(range(max(2, B, step + 1)), name=f"{name}_b")
        self.ch = Signal(range(max(2, extent // (g * B) + 2)), name=f"{name}_h")

    def reset(self):
        return [self.cg.eq(0), self.cb.eq(0), self.ch.eq(0)]

    def inc(self, m):
        def bump_b():
            if self.B > 1:
                with m.If(self.cb == self.B - 1):
                    m.d.sync += [self.cb.eq(0), self.ch.eq(self.ch + 1)]
                with m.Else():
                    m.d.sync += self.cb.eq(self.cb + 1)
            else:
                m.d.sync += self.ch.eq(self.ch + 1)
        if self.g > 1:
            with m.If(self.cg == self.g - 1):
                m.d.sync += self.cg.eq(0)
                bump_b()
            with m.Else():
                m.d.sync += self.cg.eq(self.cg + 1)
        else:
            bump_b()

    def add(self, m, n):
        """Advance by ``n`` (1 <= n <= B; only for g == 1, B > 1): the digit wraps at most once."""
        assert self.g == 1 and self.B > 1
        s = self.cb + n[:len(self.cb)]          # n <= B fits the digit's width (step)
        with m.If(s >= self.B):
            m.d.sync += [self.cb.eq(s - self.B), self.ch.eq(self.ch + 1)]
        with m.Else():
            m.d.sync += self.cb.eq(s)

    @property
    def digit(self):
        return self.cb if self.B > 1 else Const(0, 1)

    @property
    def local(self):
        return self.ch * self.g + (self.cg if self.g > 1 else 0)


class _Place:
    """(physical bank, address) of the running element (row, col) of a 2-D tensor in one mode's layout."""

    def __init__(self, m, layout, name: str, lanes: int = 1, with_bank: bool = True):
        g, B, E = layout.g, layout.B, layout.E
        assert len(g) == 2 and not layout.replicated
        self.layout, self.lanes = layout, lanes
        assert lanes == 1 or (g[1] == 1 and lanes <= B[1]), (layout, lanes)
        self.row = _Cyc(g[0], B[0], layout.shape[0], f"{name}_r")
        self.col = _Cyc(g[1], B[1], layout.shape[1], f"{name}_c", step=lanes)
        self.bank = Signal(range(max(2, layout.nbanks)), name=f"{name}_bank")
        self.addr = Signal(range(max(2, layout.depth)), name=f"{name}_addr")
        m.d.comb += self.addr.eq(self.row.local * E[1] + self.col.local)
        if with_bank:                 # bank id row_digit * B1 + col_digit, matched as the pair of digits
            digits = [d for d, b in ((self.col.digit, B[1]), (self.row.digit, B[0])) if b > 1]
            cw = len(self.col.digit) if B[1] > 1 else 0
            with m.Switch(Cat(*digits) if digits else Const(0, 1)):
                for phys, i in enumerate(layout.bank_ids):
                    rd, cd = divmod(i, B[1])
                    with m.Case((rd << cw) | cd):
                        m.d.comb += self.bank.eq(phys)

    def reset(self):
        return self.row.reset() + self.col.reset()

    def step(self, m, row_end, n=None):
        """Advance to the next element (by ``n`` elements of the row, 1 <= n <= lanes, where lanes > 1);
        ``row_end``: the current element (group) ends its row."""
        with m.If(row_end):
            m.d.sync += self.col.reset()
            self.row.inc(m)
        with m.Else():
            if self.lanes > 1 and n is not None:
                self.col.add(m, n)
            else:
                self.col.inc(m)


def _mux_tree(sel, items: list):
    """``items[sel]`` for ``len(items) == 2**len(sel)``, as a tree of two-way multiplexers (one level per bit
    of ``sel``)."""
    assert len(items) == 1 << len(sel), (len(items), len(sel))
    for b in range(len(sel)):
        items = [Mux(sel[b], hi, lo) for lo, hi in zip(items[::2], items[1::2])]
    return items[0]


def _bank_word(m, data, bank, buf, ybank) -> None:
    """``data`` = the read word of accumulator bank ``bank``, buffer ``buf`` (the store's gather): a mux tree
    where the banks fill ``bank``'s range, else a case over the banks."""
    words = [Mux(buf, rps[1].data, rps[0].data) for _, rps, _ in ybank]
    if len(words) == 1 << len(bank):
        m.d.comb += data.eq(_mux_tree(bank, words))
        return
    with m.Switch(bank):
        for b, w in enumerate(words):
            with m.Case(b):
                m.d.comb += data.eq(w)


def _burst(m, addr, left, eb: int, bb: int, name: str):
    """Comb: the INCR burst that starts at byte ``addr`` with ``left`` elements still to move in the row
    (``spec.bursts``): (aligned address, beats, first lane, elements)."""
    E, lbb = bb // eb, log2i(bb)
    off = Signal(range(max(2, E)), name=f"{name}_off")
    need = Signal(DIM_BITS + 2, name=f"{name}_need")
    to4k = Signal(range(max(PAGE // bb, 256) + 1), name=f"{name}_to4k")    # (as wide as 256)
    beats = Signal(range(257), name=f"{name}_beats")
    elems = Signal(DIM_BITS, name=f"{name}_elems")
    # (the 4 KiB page boundary: 2**k - a == ~a + 1 for a k-bit a)
    m.d.comb += [off.eq(addr[log2i(eb):lbb] if E > 1 else 0),
                 need.eq((left + (off + (E - 1))) >> log2i(E)),
                 to4k.eq(~addr[lbb:12] + 1)]
    lim = Mux(to4k < 256, to4k, 256)
    m.d.comb += beats.eq(Mux(need < lim, need, lim))
    # beats * E - off, as Cat(E - 1 - off, beats) - (E - 1) (off < E: the low bits of beats * E are zero)
    room = Cat(~off, beats) - (E - 1) if E > 1 else beats
    m.d.comb += elems.eq(Mux(left < room, left, room))
    aligned = Cat(Const(0, lbb), addr[lbb:])
    return aligned, beats, off, elems


class ProgTop(Elaboratable):
    """Ports (``clk``; ``rst`` synchronous, active high): the command port ``cmd_valid``/``cmd_ready``/
    ``cmd_data`` (64), ``busy``, ``done``, ``cycles`` (32), and the AXI4 master ``m_axi_*`` (one ID, INCR
    bursts). docs/programmable.md."""

    def __init__(self, arch, pg, dram_bits: int, outstanding: int = 1, name: str = "lego_gemm_prog",
                 im2col: bool = False):
        self.core = ProgHierCore(arch, pg, name)   # one module per FU type; fused designs flat
        self.arch = arch
        # the convolution-window address generator of windowed X LOADs (spec.window_segments; manifest
        # prog.im2col): designs generated for conv2d / dwconv2d; the WIN_* CSRs exist only there
        self.im2col = im2col
        self.csr_names = [n for n in CSR if im2col or n not in WIN_CSR]
        # read bursts the load DMA keeps in flight, and write bursts the store DMA keeps unacknowledged
        # (manifest prog.dram_outstanding)
        self.outstanding = outstanding
        w = arch.workload
        self.db, self.bb = dram_bits, dram_bits // 8
        X, W = w.inputs
        self.eb = X.bits // 8
        E = self.bb // self.eb
        # elements per cycle of the DMA load's scatter, per input tensor and mode (the LOAD names both):
        # spec.load_lanes of that mode's layout; manifest prog.ld_lanes
        self.ld_lanes = {t.name: {md.df.name: load_lanes([md.nets[t.name].layout], E) for md in arch.modes}
                         for t in (X, W)}
        # accumulator elements the store's gather reads per cycle, per mode (the same rule on the Y layout,
        # E = the int32 of one beat: a full beat a cycle where P = E); manifest prog.st_lanes
        self.st_lanes = {md.df.name: load_lanes([md.nets[w.output.name].layout], self.bb // 4) for md in arch.modes}
        self.cmd_valid = Signal()
        self.cmd_ready = Signal()
        self.cmd_data = Signal(64)
        self.busy = Signal()
        self.done = Signal()
        self.cycles = Signal(32)
        p = "m_axi_"
        S = lambda n, b=1: Signal(b, name=p + n)   # noqa: E731
        self.arid, self.araddr, self.arlen, self.arsize, self.arburst = S("arid"), S("araddr", ADDR_BITS), S("arlen", 8), S("arsize", 3), S("arburst", 2)
        self.arvalid, self.arready = S("arvalid"), S("arready")
        self.rid, self.rdata, self.rresp, self.rlast, self.rvalid, self.rready = S("rid"), S("rdata", self.db), S("rresp", 2), S("rlast"), S("rvalid"), S("rready")
        self.awid, self.awaddr, self.awlen, self.awsize, self.awburst = S("awid"), S("awaddr", ADDR_BITS), S("awlen", 8), S("awsize", 3), S("awburst", 2)
        self.awvalid, self.awready = S("awvalid"), S("awready")
        self.wdata, self.wstrb, self.wlast, self.wvalid, self.wready = S("wdata", self.db), S("wstrb", self.bb), S("wlast"), S("wvalid"), S("wready")
        self.bid, self.bresp, self.bvalid, self.bready = S("bid"), S("bresp", 2), S("bvalid"), S("bready")

    def ports(self):
        return [self.cmd_valid, self.cmd_ready, self.cmd_data, self.busy, self.done, self.cycles,
                self.arid, self.araddr, self.arlen, self.arsize, self.arburst, self.arvalid, self.arready,
                self.rid, self.rdata, self.rresp, self.rlast, self.rvalid, self.rready,
                self.awid, self.awaddr, self.awlen, self.awsize, self.awburst, self.awvalid, self.awready,
                self.wdata, self.wstrb, self.wlast, self.wvalid, self.wready,
                self.bid, self.bresp, self.bvalid, self.bready]

    def modules(self):
        """[(name, ports, fragment)] of the FU-type modules, known once the top is elaborated."""
        return self.core.modules

    def text_modules(self):
        """[(name, Verilog)] of modules written as text (the FU array's instance level, lego.prog.array_text)."""
        return self.core.text_modules

    INPUTS = ("cmd_valid", "cmd_data", "m_axi_arready", "m_axi_rid", "m_axi_rdata", "m_axi_rresp", "m_axi_rlast",
              "m_axi_rvalid", "m_axi_awready", "m_axi_wready", "m_axi_bid", "m_axi_bresp", "m_axi_bvalid")

    def elaborate(self, platform):
        m = Module()
        c = self.core
        c.elaborate_into(m)
        w = self.arch.workload
        csr = {n: Signal(32, name=f"csr_{n.lower()}") for n in self.csr_names}
        d = self.cmd_data
        op = d[60:64]
        f_tensor, f_buf, f_mode = d[58], d[57], d[54:56]
        f_xbuf, f_wbuf, f_ybuf, f_acc = d[53], d[52], d[51], d[50]
        self.ld_busy, self.st_busy = Signal(name="ld_busy"), Signal(name="st_busy")
        ld_mask, cp_mask, st_mask = (Signal(6, name=f"{n}_mask") for n in ("ld", "cp", "st"))
        inflight = Mux(self.ld_busy, ld_mask, 0) | Mux(c.busy, cp_mask, 0) | Mux(self.st_busy, st_mask, 0)
        need_ld = Signal(6, name="need_ld")
        m.d.comb += need_ld.eq(Const(1, 6) << Cat(f_buf, f_tensor))
        need_cp = Signal(6, name="need_cp")
        m.d.comb += need_cp.eq((Const(1, 6) << f_xbuf) | (Const(4, 6) << f_wbuf) | (Const(16, 6) << f_ybuf))
        need_st = Signal(6, name="need_st")
        m.d.comb += need_st.eq(Const(16, 6) << f_buf)
        ok = Signal(name="dispatch_ok")
        with m.Switch(op):
            with m.Case(OP["SET"]):
                m.d.comb += ok.eq(1)
            with m.Case(OP["LOAD"]):
                m.d.comb += ok.eq(~self.ld_busy & ((need_ld & inflight) == 0))
            with m.Case(OP["COMPUTE"]):
                m.d.comb += ok.eq(~c.busy & ((need_cp & inflight) == 0))
            with m.Case(OP["STORE"]):
                m.d.comb += ok.eq(~self.st_busy & ((need_st & inflight) == 0))
            with m.Case(OP["END"]):
                m.d.comb += ok.eq(~self.ld_busy & ~c.busy & ~self.st_busy)
            with m.Default():
                m.d.comb += ok.eq(1)
        m.d.comb += self.cmd_ready.eq(ok)
        acc = self.cmd_valid & ok
        go_ld, go_cp, go_st = (Signal(name=f"go_{n}") for n in ("ld", "cp", "st"))
        m.d.comb += [go_ld.eq(acc & (op == OP["LOAD"])), go_cp.eq(acc & (op == OP["COMPUTE"])),
                     go_st.eq(acc & (op == OP["STORE"]))]
        with m.If(acc & (op == OP["SET"])):
            with m.Switch(d[52:60]):
                for n in self.csr_names:
                    i = CSR[n]
                    with m.Case(i):
                        m.d.sync += csr[n].eq(d[:32])
        with m.If(go_ld):
            m.d.sync += ld_mask.eq(need_ld)
        with m.If(go_cp):
            m.d.sync += cp_mask.eq(need_cp)
        with m.If(go_st):
            m.d.sync += st_mask.eq(need_st)
        # run state and the cycle counter: edges from the first accepted command (exclusive) to END (inclusive)
        cyc = Signal(32, name="run_cyc")
        with m.If(acc):
            with m.If(~self.busy):
                m.d.sync += [self.busy.eq(1), self.done.eq(0), cyc.eq(0)]
                with m.If(op == OP["END"]):
                    m.d.sync += [self.busy.eq(0), self.done.eq(1), self.cycles.eq(0)]
            with m.Else():
                m.d.sync += cyc.eq(cyc + 1)
                with m.If(op == OP["END"]):
                    m.d.sync += [self.busy.eq(0), self.done.eq(1), self.cycles.eq(cyc + 1)]
        with m.Elif(self.busy):
            m.d.sync += cyc.eq(cyc + 1)
        # the compute core
        m.d.comb += [c.go.eq(go_cp), c.mode.eq(f_mode), c.c_xbuf.eq(f_xbuf), c.c_wbuf.eq(f_wbuf),
                     c.c_ybuf.eq(f_ybuf), c.c_acc.eq(f_acc)]
        m.d.comb += [s.eq(csr[f"EXT{k}"]) for k, s in enumerate(c.c_ext)]
        m.d.comb += [c.c_lim[it].eq(csr[f"TILE_{it.upper()}"]) for it in w.iterators]
        m.d.comb += [self.arid.eq(0), self.awid.eq(0), self.arburst.eq(1), self.awburst.eq(1),
                     self.arsize.eq(log2i(self.bb)), self.awsize.eq(log2i(self.bb))]
        self._load(m, go_ld, csr, f_tensor, f_buf, f_mode)
        self._store(m, go_st, csr, f_buf, f_mode)
        return m

    # ------------------------------------------------------------------ DMA load
    def _load(self, m, go, csr, f_tensor, f_buf, f_mode):
        """One beat register; per cycle the lane group [lane, lane + n) of the captured beat is written into
        the banks, n = min(P, lanes left in the beat) with P = ``ld_lanes`` of the tensor in the LOAD's mode
        (the beat's lanes belong to one burst, so to one row: a group never crosses a row end). Column c + j
        of the group goes to the bank of cyclic digit (c + j) mod B1 (distinct for j < P, ``spec.load_lanes``);
        each bank takes at most one element per cycle on its one write port. The next beat is captured with
        the last group of the current one."""
        c, arch = self.core, self.arch
        eb, bb = self.eb, self.bb
        E = bb // eb
        busy = self.ld_busy
        X, W = arch.workload.inputs
        lanes = [{md.index: self.ld_lanes[t.name][md.df.name] for md in arch.modes} for t in (X, W)]
        pmax = max(max(lt.values()) for lt in lanes)
        tsel, bsel = Signal(name="ld_tensor"), Signal(name="ld_buf")
        msel = self.ld_msel = Signal(range(max(2, len(arch.modes))), name="ld_mode")
        rows, cols, stride = Signal(DIM_BITS, name="ld_rows"), Signal(DIM_BITS, name="ld_cols"), Signal(32, name="ld_stride")
        ar_addr, ar_row_addr = Signal(ADDR_BITS, name="ld_ar_addr"), Signal(ADDR_BITS, name="ld_ar_row_addr")
        ar_left, ar_row, ar_done = Signal(DIM_BITS, name="ld_ar_left"), Signal(DIM_BITS, name="ld_ar_row"), Signal(name="ld_ar_done")
        aligned, beats, off, elems = _burst(m, ar_addr, ar_left, eb, bb, "ld")
        m.d.comb += [self.araddr.eq(aligned), self.arlen.eq(beats - 1)]
        rb_off, rb_left, rb_first = Signal(range(max(2, E)), name="ld_rb_off"), Signal(DIM_BITS, name="ld_rb_left"), Signal(name="ld_rb_first")
        have, lane, hi = Signal(name="ld_have"), Signal(range(max(2, E)), name="ld_lane"), Signal(range(max(2, E)), name="ld_hi")
        bdata = Signal(self.db, name="ld_beat")
        wr_r, wr_c = Signal(DIM_BITS, name="ld_wr_r"), Signal(DIM_BITS, name="ld_wr_c")
        # the lane group of this cycle: n elements from ``lane``; the last group of the beat frees the register
        # (rem and psel at one width; n as wide as the counters it advances)
        rw = max(len(lane), bits_for(pmax))
        psel = Signal(rw, name="ld_p")
        rem = Signal(rw, name="ld_rem")
        last_grp = Signal(name="ld_last_grp")
        n = Signal(DIM_BITS, name="ld_n")
        for ti in range(2):
            for mi, p in lanes[ti].items():
                with m.If((tsel == ti) & (msel == mi)):
                    m.d.comb += psel.eq(p)
        m.d.comb += [rem.eq(hi - lane), last_grp.eq(rem < psel),
                     n.eq(Mux(last_grp, rem + 1, psel))]
        m.d.comb += self.rready.eq(busy & (~have | last_grp))
        cap = self.rvalid & self.rready
        NO = self.outstanding
        lo_now = Signal(range(max(2, E)), name="ld_lo")
        if NO == 1:
            m.d.comb += lo_now.eq(Mux(rb_first, rb_off, 0))
            hi_sum = Mux(rb_first, rb_off, 0) + rb_left - 1          # lo_now + rb_left - 1
        else:
            # the bursts in flight, in order: (first lane, elements) pushed at the AR handshake, popped at RLAST
            q_off = Array(Signal(range(max(2, E)), name=f"ld_q{k}_off") for k in range(NO))
            q_el = Array(Signal(DIM_BITS, name=f"ld_q{k}_elems") for k in range(NO))
            q_wp, q_rp = Signal(range(NO), name="ld_q_wp"), Signal(range(NO), name="ld_q_rp")
            q_n = Signal(range(NO + 1), name="ld_q_n")            # ARs raised or in flight, RLAST not captured
            left_now = Signal(DIM_BITS, name="ld_left_now")
            m.d.comb += [lo_now.eq(Mux(rb_first, q_off[q_rp], 0)), left_now.eq(Mux(rb_first, q_el[q_rp], rb_left))]
            room = Signal(name="ld_q_room")       # fewer than NO bursts raised once this edge's RLAST is counted
            head_off = Signal(range(max(2, E)), name="ld_head_off")
            m.d.comb += head_off.eq(q_off[q_rp])
            hi_sum = Mux(rb_first, head_off, 0) + left_now - 1
        hi_now = Signal(range(max(2, E)), name="ld_hi_now")
        m.d.comb += hi_now.eq(Mux(hi_sum < E - 1, hi_sum, E - 1))
        row_end = Signal(name="ld_row_end")
        m.d.comb += row_end.eq(cols - wr_c == n)                  # wr_c + n == cols
        # an im2col design's window address generator (lego.prog.window); seg_more: the segment whose bursts the
        # AR side issues is not its row's last (only a windowed LOAD has several segments a row)
        win = Window(csr, eb) if self.im2col else None
        seg_more = Signal(name="ld_win_more")
        if win is not None:
            m.d.comb += seg_more.eq(win.on & (win.rleft != 0))
            w_upd, w_exprs, w_n, w_addr = win.step()
            r_upd, r_exprs, r_n, r_addr = win.next_row(cols)
            m.d.comb += w_exprs + r_exprs
        places = {}
        for ti, t in enumerate((X, W)):
            for md in arch.modes:
                places[(ti, md.index)] = _Place(m, md.nets[t.name].layout, f"ld_{t.name}_m{md.index}",
                                                lanes=lanes[ti][md.index], with_bank=False)
        with m.If(go):
            m.d.sync += [busy.eq(1), tsel.eq(f_tensor), bsel.eq(f_buf), msel.eq(f_mode),
                         rows.eq(csr["LD_ROWS"]), cols.eq(csr["LD_COLS"]), stride.eq(csr["LD_STRIDE"]),
                         ar_addr.eq(csr["LD_ADDR"]), ar_row_addr.eq(csr["LD_ADDR"]), ar_left.eq(csr["LD_COLS"]),
                         ar_row.eq(0), ar_done.eq(0), self.arvalid.eq(1), have.eq(0), wr_r.eq(0), wr_c.eq(0)]
            if NO > 1:
                m.d.sync += [q_wp.eq(0), q_rp.eq(0), q_n.eq(1), rb_first.eq(1)]
            for pl in places.values():
                m.d.sync += pl.reset()
            if win is not None:
                f_window = self.cmd_data[56]
                m.d.sync += win.on.eq(f_window)
                upd, exprs, n0, a0 = win.start(csr["LD_COLS"][:DIM_BITS])
                m.d.comb += exprs
                with m.If(f_window):
                    m.d.sync += upd + [ar_addr.eq(a0), ar_left.eq(n0)]
        with m.Elif(busy):
            if NO > 1:
                ar_hs, rl = self.arvalid & self.arready, cap & self.rlast
                last_ar = (ar_left == elems) & (rows - ar_row == 1)
                if win is not None:
                    last_ar = last_ar & ~seg_more
                m.d.comb += room.eq((q_n != NO) | rl)
                # the next ARVALID: at once while fewer than NO bursts are raised and not ended by RLAST
                with m.If(ar_hs):
                    m.d.sync += [q_off[q_wp].eq(off), q_el[q_wp].eq(elems),
                                 q_wp.eq(Mux(q_wp == NO - 1, 0, q_wp + 1))]
                    m.d.sync += self.arvalid.eq(~last_ar & room)
                    with m.If(~last_ar & room):
                        m.d.sync += q_n.eq(q_n + 1 - rl)
                    with m.Elif(rl):
                        m.d.sync += q_n.eq(q_n - 1)
                with m.Elif(~self.arvalid & ~ar_done & room):
                    m.d.sync += [self.arvalid.eq(1), q_n.eq(q_n + 1 - rl)]
                with m.Elif(rl):
                    m.d.sync += q_n.eq(q_n - 1)
            with m.If(self.arvalid & self.arready):
                if NO == 1:
                    m.d.sync += [self.arvalid.eq(0), rb_off.eq(off), rb_left.eq(elems), rb_first.eq(1)]
                with m.If((ar_left == elems) & ~seg_more if win is not None else ar_left == elems):
                    m.d.sync += [ar_row.eq(ar_row + 1), ar_row_addr.eq(ar_row_addr + stride),
                                 ar_addr.eq(ar_row_addr + stride), ar_left.eq(cols)]
                    with m.If(rows - ar_row == 1):
                        m.d.sync += ar_done.eq(1)
                    if win is not None:
                        with m.If(win.on):
                            m.d.sync += r_upd + [ar_addr.eq(r_addr), ar_left.eq(r_n)]
                if win is not None:
                    with m.Elif(ar_left == elems):          # (seg_more) the row's next segment
                        m.d.sync += w_upd + [ar_addr.eq(w_addr), ar_left.eq(w_n)]
                with m.Else():
                    m.d.sync += [ar_addr.eq(aligned + (beats << log2i(bb))), ar_left.eq(ar_left - elems)]
            with m.If(have):
                m.d.sync += lane.eq(lane + n[:len(lane)])
                with m.If(last_grp):
                    m.d.sync += have.eq(0)
                _advance(m, row_end, wr_c, wr_r, n, places)
                with m.If(row_end & (rows - wr_r == 1)):
                    m.d.sync += busy.eq(0)
            with m.If(cap):
                if NO == 1:
                    m.d.sync += [bdata.eq(self.rdata), have.eq(1), lane.eq(lo_now), hi.eq(hi_now),
                                 rb_left.eq(rb_left - (hi_now - lo_now + 1)), rb_first.eq(0)]
                    with m.If(self.rlast & ~ar_done):
                        m.d.sync += self.arvalid.eq(1)
                else:
                    m.d.sync += [bdata.eq(self.rdata), have.eq(1), lane.eq(lo_now), hi.eq(hi_now),
                                 rb_left.eq(left_now - (hi_now - lo_now + 1)), rb_first.eq(self.rlast)]
                    with m.If(self.rlast):
                        m.d.sync += q_rp.eq(Mux(q_rp == NO - 1, 0, q_rp + 1))
        # the element writes: slot j of the group is lane ``lane + j`` of the beat
        ew = 8 * eb
        shifted = Signal(pmax * ew, name="ld_shifted")           # the lanes a group takes
        m.d.comb += shifted.eq(bdata >> (lane * ew))
        slots = [shifted[j * ew:(j + 1) * ew] for j in range(pmax)]
        for ti, t in enumerate((X, W)):
            nb, depth = c.in_banks[t.name]
            P = max(lanes[ti].values())
            col = {}       # (mode, column digit) -> (column enable, slot, logical address): shared by the banks
            row = {}       # (mode, row digit) -> row enable
            words = {}     # the banks' column digits over the modes -> (slot, address, data, buffer address)
            wr_on = Signal(name=f"ld_{t.name}_wr")
            m.d.comb += wr_on.eq(busy & have & (tsel == ti))
            if t.name in c.fu_wp:
                self._ld_fu_banks(m, c.fu_wp[t.name], t, ti, wr_on, places[(ti, 0)], lanes[ti][0], n, slots, bsel)
                continue
            for b, wp in enumerate(c.in_wr[t.name]):
                en = Signal(name=f"ld_{t.name}_{b}_en")
                cds = []
                for md in arch.modes:
                    lay = md.nets[t.name].layout
                    g = c.fb[t.name].groups[md.index]
                    lb = b // g
                    cds.append(None if lb >= lay.nbanks else (divmod(lay.bank_ids[lb], lay.B[1])[1],
                                                              b % g if g > 1 else None))
                shared = words.get(tuple(cds))
                fresh = shared is None
                if fresh:
                    shared = (Signal(range(max(2, P)), name=f"ld_{t.name}_{b}_slot"),
                              Signal(range(max(2, depth)), name=f"ld_{t.name}_{b}_addr"),
                              Signal(ew, name=f"ld_{t.name}_{b}_data"))
                    shared += (Signal(len(c.in_wr[t.name][0].addr), name=f"ld_{t.name}_{b}_baddr"),)
                    m.d.comb += shared[3].eq(_buf_addr(shared[1], bsel, depth))
                    words[tuple(cds)] = shared
                j, addr, data, baddr = shared
                for md in arch.modes:
                    lay = md.nets[t.name].layout
                    # (grouped banks, lego.prog.banks: physical bank b is word a mod g of logical bank b div g)
                    g = c.fb[t.name].groups[md.index]
                    lb, lg = b // g, log2i(g)
                    if lb >= lay.nbanks:
                        continue                  # this mode leaves the bank unused
                    pl = places[(ti, md.index)]
                    rd, cd = divmod(lay.bank_ids[lb], lay.B[1])
                    if (md.index, cd) not in col:
                        aw = len(addr) if g == 1 else bits_for(max(1, lay.depth - 1))
                        with m.If(msel == md.index):
                            col[(md.index, cd)] = self._ld_column(m, pl, lay, cd, lanes[ti][md.index], n, aw,
                                                                  f"ld_{t.name}_m{md.index}_c{cd}")
                    if (md.index, rd) not in row:
                        row[(md.index, rd)] = Signal(name=f"ld_{t.name}_m{md.index}_r{rd}")
                        m.d.comb += row[(md.index, rd)].eq(pl.row.digit == rd)
                    cen, jj, a_l = col[(md.index, cd)]
                    with m.If(msel == md.index):
                        if g == 1:
                            m.d.comb += en.eq(row[(md.index, rd)] & cen)
                            if fresh:
                                m.d.comb += [j.eq(jj), addr.eq(a_l)]
                        else:
                            m.d.comb += en.eq(row[(md.index, rd)] & cen & (lo_bits(a_l, lg) == b % g))
                            if fresh:
                                m.d.comb += [j.eq(jj), addr.eq(hi_bits(a_l, lg))]
                if fresh:
                    if P == 1:
                        m.d.comb += data.eq(slots[0])
                    else:                                 # (j stays 0 in a mode of one lane; j < P = 2**len(j))
                        m.d.comb += data.eq(_mux_tree(j, slots[:P]))
                m.d.comb += [wp.addr.eq(baddr), wp.data.eq(data), wp.en.eq(wr_on & en)]

    def _ld_fu_banks(self, m, fw, t, ti, wr_on, pl, lanes, n, slots, bsel):
        """The write signals of per-FU banks (lego.prog.hier; a single-dataflow design): bank (rd, cd) writes
        where ``on``, its row ``row[rd]`` and its column ``col[cd].en`` hold (the AND is in the FU module), at
        its column's address and data: what the per-bank loop of ``_load`` computes, per row and column."""
        lay = self.arch.modes[0].nets[t.name].layout
        depth = self.core.in_banks[t.name][1]
        m.d.comb += fw.on.eq(wr_on)
        for rd, sig in fw.row.items():
            m.d.comb += sig.eq(pl.row.digit == rd)
        for cd, col in fw.col.items():
            addr = Signal(range(max(2, depth)), name=f"ld_{t.name}_c{cd}_addr")
            j = Signal(range(max(2, lanes)), name=f"ld_{t.name}_c{cd}_slot")
            with m.If(self.ld_msel == 0):
                cen, jj, a_l = self._ld_column(m, pl, lay, cd, lanes, n, len(addr), f"ld_{t.name}_m0_c{cd}")
                m.d.comb += [col.en.eq(cen), j.eq(jj), addr.eq(a_l)]
            m.d.comb += [col.addr.eq(_buf_addr(addr, bsel, depth)),
                         col.data.eq(slots[0] if lanes == 1 else _mux_tree(j, slots[:lanes]))]

    @staticmethod
    def _ld_column(m, pl, lay, cd, lanes, n, aw, name):
        """(enable, slot, logical address of ``aw`` bits) of the banks of column digit ``cd`` in one mode's
        layout (its signals driven under that mode's ``If``): the group's slot ``j`` with
        ``cb + j == cd (mod B1)`` is written (``j < n``) at the running address, or at the next row of banks'
        address where the digit wrapped."""
        if lanes == 1:
            return pl.col.digit == cd, Const(0, 1), pl.addr
        jj, wrap = _lane_slot(m, pl.col.cb, lay.B[1], cd, n, name)
        la = Signal(aw, name=f"{name}_laddr")
        m.d.comb += la.eq(pl.addr + wrap)
        return jj < n, jj, la

    # ------------------------------------------------------------------ DMA store
    def _store(self, m, go, csr, f_buf, f_mode):
        """Per cycle the gather reads a lane group of n = min(P, lanes left in the beat) consecutive elements
        of one beat, P = ``st_lanes`` of the STORE's mode (a group never crosses a row end: a beat belongs to
        one burst, so to one row); column c + j of the group comes from the bank of cyclic digit
        (c + j) mod B1 (distinct for j < P), each bank's read port at its own address. The data come one
        cycle later, slot j into lane ``p_lane + j`` of the beat."""
        c, arch = self.core, self.arch
        bb = self.bb
        E = bb // 4
        busy = self.st_busy
        bsel = Signal(name="st_buf")
        msel = Signal(range(max(2, len(arch.modes))), name="st_mode")
        rows, cols, stride = Signal(DIM_BITS, name="st_rows"), Signal(DIM_BITS, name="st_cols"), Signal(32, name="st_stride")
        aw_addr, aw_row_addr = Signal(ADDR_BITS, name="st_aw_addr"), Signal(ADDR_BITS, name="st_aw_row_addr")
        aw_left, aw_row = Signal(DIM_BITS, name="st_aw_left"), Signal(DIM_BITS, name="st_aw_row")
        aligned, beats, off, elems = _burst(m, aw_addr, aw_left, 4, bb, "st")
        m.d.comb += [self.awaddr.eq(aligned), self.awlen.eq(beats - 1)]
        GATHER, WAITW, WAITB = 0, 1, 2
        state = Signal(2, name="st_state")
        consumed = Signal(DIM_BITS, name="st_consumed")      # elements of the burst already gathered
        g_beat = Signal(range(257), name="st_beat")
        g_first, g_lane = Signal(name="st_first"), Signal(range(max(2, E)), name="st_lane")
        p_valid, p_lane, p_last = Signal(name="st_p_valid"), Signal(range(max(2, E)), name="st_p_lane"), Signal(name="st_p_last")
        nb, depth = c.out_banks
        Y = arch.workload.output
        lanes = {md.index: self.st_lanes[md.df.name] for md in arch.modes}
        pmax = max(lanes.values())
        p_n = Signal(range(pmax + 1), name="st_p_n")
        p_idx = [Signal(range(max(2, nb)), name=f"st_p_idx{j}") for j in range(pmax)]
        st_r, st_c = Signal(DIM_BITS, name="st_r"), Signal(DIM_BITS, name="st_c")
        wbeat = Signal(self.db, name="st_wbeat")
        wstrb = Signal(bb, name="st_wstrb")
        lo_c = Signal(range(max(2, E)), name="st_lo")
        m.d.comb += lo_c.eq(Mux(g_beat == 0, off, 0))
        lane_now = Signal(range(max(2, E)), name="st_lane_now")
        m.d.comb += lane_now.eq(Mux(g_first, lo_c, g_lane))
        rem = elems - consumed
        hi_sum = lo_c + rem - 1
        hi_c = Signal(range(max(2, E)), name="st_hi")
        m.d.comb += hi_c.eq(Mux(hi_sum < E - 1, hi_sum, E - 1))
        # the lane group of this cycle: n elements from lane_now; the beat's last group ends at hi_c
        rw = max(bits_for(E - 1), bits_for(pmax))
        psel = Signal(rw, name="st_psel")
        for mi, p in lanes.items():
            with m.If(msel == mi):
                m.d.comb += psel.eq(p)
        span = Signal(rw, name="st_span")
        grp_last = Signal(name="st_grp_last")
        n = Signal(DIM_BITS, name="st_n")
        m.d.comb += [span.eq(hi_c - lane_now), grp_last.eq(span < psel), n.eq(Mux(grp_last, span + 1, psel))]
        row_end = cols - st_c == n
        places = {md.index: _Place(m, md.nets[Y.name].layout, f"st_m{md.index}", lanes=lanes[md.index],
                                   with_bank=False) for md in arch.modes}
        # per physical bank: does the group read it, in which slot, at which address (grouped banks,
        # lego.prog.banks: physical bank b is word a mod g of logical bank b div g)
        hits = []
        for b in range(nb):
            en = Signal(name=f"st_{b}_en")
            addr = Signal(range(max(2, depth)), name=f"st_{b}_addr")
            j = Signal(range(max(2, pmax)), name=f"st_{b}_slot")
            for md in arch.modes:
                lay = md.nets[Y.name].layout
                g = c.fb[Y.name].groups[md.index]
                lb, lg = b // g, log2i(g)
                if lb >= lay.nbanks:
                    continue
                with m.If(msel == md.index):      # (the slot's signals driven under the mode: regs, as the load's)
                    en_l, jj, a_l = _group_slot(m, places[md.index], lay, lb, lanes[md.index], n,
                                                f"st_{b}_m{md.index}")
                    jsel = [] if jj is None else [j.eq(jj)]
                    if g == 1:
                        m.d.comb += [en.eq(en_l), *jsel, addr.eq(a_l)]
                    else:
                        la = Signal(range(max(2, lay.depth)), name=f"st_{b}_m{md.index}_laddr")
                        m.d.comb += [la.eq(a_l), en.eq(en_l & (lo_bits(la, lg) == b % g)), *jsel,
                                     addr.eq(hi_bits(la, lg))]
            m.d.comb += c.st_addr[b].eq(addr)
            hits.append((en, j))
        # slot j's bank: the one bank of the group in slot j (an OR of the hitting banks' indices)
        idx = []
        for jj in range(pmax):
            ix = Signal(range(max(2, nb)), name=f"st_idx{jj}")
            acc = Const(0, len(ix))
            for b, (en, j) in enumerate(hits):
                if b:
                    acc = acc | Mux(en & (j == Const(jj, len(j))), b, 0)
            m.d.comb += ix.eq(acc)
            idx.append(ix)
        issue = busy & (state == GATHER)
        NO = self.outstanding
        last_burst = (aw_left == elems) & (rows - aw_row == 1)

        def advance():
            with m.If(aw_left == elems):
                m.d.sync += [aw_row.eq(aw_row + 1), aw_row_addr.eq(aw_row_addr + stride),
                             aw_addr.eq(aw_row_addr + stride), aw_left.eq(cols)]
            with m.Else():
                m.d.sync += [aw_addr.eq(aligned + (beats << log2i(bb))), aw_left.eq(aw_left - elems)]
        if NO == 1:
            m.d.comb += [self.wdata.eq(wbeat), self.wstrb.eq(wstrb), self.bready.eq(busy & (state == WAITB))]
        else:
            # up to NO bursts unacknowledged, and the gather streams: one element per cycle across beats and
            # bursts. The next burst starts (AWVALID, gather) in the edge that issues the previous burst's last
            # element while fewer than NO are unacknowledged once this edge's write response is counted, else
            # with the response that makes room (WAITB); busy ends with the last burst's response. A beat's
            # elements are assembled in ``st_asm`` and the whole beat moves to the W register (``st_wbeat``)
            # with its last element's data; a beat reserves one of two slots (assembly, W) when its first
            # element is read and frees it at its W handshake, so the gather stalls only while WREADY is low.
            q_n = Signal(range(NO + 1), name="st_q_n")            # bursts started, write response not captured
            w_done = Signal(name="st_w_done")                     # the last burst's elements are read
            b_hs = Signal(name="st_b_hs")
            w_hs = Signal(name="st_w_hs")
            room = Signal(name="st_room")
            aw_ok = Signal(name="st_aw_ok")
            slots = Signal(range(3), name="st_slots")
            asm, asm_strb = Signal(self.db, name="st_asm"), Signal(bb, name="st_asm_strb")
            asm_full, asm_wlast = Signal(name="st_asm_full"), Signal(name="st_asm_wlast")
            p_wlast = Signal(name="st_p_wlast")
            # the current burst's write address is taken (or now): the address may move on to the next burst
            # (AWADDR never changes under AWVALID); a burst's last read waits for it
            m.d.comb += [self.wdata.eq(wbeat), self.wstrb.eq(wstrb), self.bready.eq(busy),
                         b_hs.eq(self.bvalid & self.bready), w_hs.eq(self.wvalid & self.wready),
                         aw_ok.eq(~self.awvalid | self.awready), room.eq(((q_n != NO) | b_hs) & aw_ok)]
            issue = (busy & (state == GATHER) & (~g_first | (slots != 2) | w_hs)
                     & (aw_ok | ~grp_last | (rem != hi_c - lo_c + 1)))

            def start_next():
                m.d.sync += [self.awvalid.eq(1), state.eq(GATHER), consumed.eq(0), g_beat.eq(0), g_first.eq(1),
                             q_n.eq(q_n + 1 - b_hs)]
        with m.If(go):
            m.d.sync += [busy.eq(1), bsel.eq(f_buf), msel.eq(f_mode), rows.eq(csr["ST_ROWS"]),
                         cols.eq(csr["ST_COLS"]), stride.eq(csr["ST_STRIDE"]), aw_addr.eq(csr["ST_ADDR"]),
                         aw_row_addr.eq(csr["ST_ADDR"]), aw_left.eq(csr["ST_COLS"]), aw_row.eq(0),
                         self.awvalid.eq(1), state.eq(GATHER), consumed.eq(0), g_beat.eq(0), g_first.eq(1),
                         p_valid.eq(0), wstrb.eq(0), st_r.eq(0), st_c.eq(0)]
            if NO > 1:
                m.d.sync += [q_n.eq(1), w_done.eq(0), slots.eq(0), asm_full.eq(0), asm_strb.eq(0)]
            for pl in places.values():
                m.d.sync += pl.reset()
        with m.Elif(busy):
            with m.If(self.awvalid & self.awready):
                m.d.sync += self.awvalid.eq(0)
            if NO > 1:                    # (before start_next, which counts this edge's response itself)
                with m.If(b_hs):
                    m.d.sync += q_n.eq(q_n - 1)
                    with m.If(w_done & (q_n == 1)):
                        m.d.sync += busy.eq(0)
            # gather: one lane group of accumulator reads per cycle
            m.d.sync += p_valid.eq(issue)
            with m.If(issue):
                m.d.sync += [g_lane.eq(lane_now + n[:len(lane_now)]), g_first.eq(0), p_lane.eq(lane_now), p_n.eq(n),
                             p_last.eq(grp_last)]
                m.d.sync += [pi.eq(ix) for pi, ix in zip(p_idx, idx)]
                _advance(m, row_end, st_c, st_r, n, places)
                if NO == 1:
                    with m.If(grp_last):
                        m.d.sync += [state.eq(WAITW), consumed.eq(consumed + (hi_c - lo_c + 1)),
                                     self.wlast.eq(rem == hi_c - lo_c + 1)]
                else:
                    burst_end = rem == hi_c - lo_c + 1
                    m.d.sync += p_wlast.eq(grp_last & burst_end)
                    with m.If(grp_last):
                        m.d.sync += [consumed.eq(consumed + (hi_c - lo_c + 1)), g_beat.eq(g_beat + 1),
                                     g_first.eq(1)]
                        with m.If(burst_end):
                            m.d.sync += state.eq(WAITB)
                            with m.If(last_burst):
                                m.d.sync += w_done.eq(1)
                            with m.Else():
                                advance()
                                with m.If(room):
                                    start_next()
            datas = []
            for jj in range(pmax):
                data = Signal(32, name=f"st_rdata{jj}")
                _bank_word(m, data, p_idx[jj], bsel, c.ybank)
                datas.append(data)
            # lane k of the beat takes slot k - p_lane of the group read a cycle ago
            into = [[(p_lane == k - jj) & (p_n > Const(jj, len(p_n))) for jj in range(min(pmax, k + 1))]
                    for k in range(E)]
            if NO == 1:
                with m.If(p_valid):
                    for k in range(E):
                        for jj, hit in enumerate(into[k]):
                            with m.If(hit):
                                m.d.sync += [wbeat.word_select(k, 32).eq(datas[jj]), wstrb[4 * k:4 * k + 4].eq(0xF)]
                    with m.If(p_last):
                        m.d.sync += self.wvalid.eq(1)
                with m.If(self.wvalid & self.wready):
                    m.d.sync += [self.wvalid.eq(0), wstrb.eq(0)]
                    with m.If(self.wlast):
                        m.d.sync += state.eq(WAITB)
                    with m.Else():
                        m.d.sync += [g_beat.eq(g_beat + 1), g_first.eq(1), state.eq(GATHER)]
                with m.If(self.bvalid & self.bready):
                    with m.If(last_burst):
                        m.d.sync += busy.eq(0)
                    with m.Else():
                        m.d.sync += [self.awvalid.eq(1), state.eq(GATHER), consumed.eq(0), g_beat.eq(0),
                                     g_first.eq(1)]
                        advance()
            else:
                # the assembled beat with this cycle's lane group in its lanes
                mbeat, mstrb = Signal(self.db, name="st_mbeat"), Signal(bb, name="st_mstrb")
                m.d.comb += [mbeat.eq(asm), mstrb.eq(asm_strb)]
                for k in range(E):
                    for jj, hit in enumerate(into[k]):
                        with m.If(p_valid & hit):
                            m.d.comb += [mbeat.word_select(k, 32).eq(datas[jj]), mstrb[4 * k:4 * k + 4].eq(0xF)]
                out_free = ~self.wvalid | self.wready
                m.d.sync += slots.eq(slots + (issue & g_first) - w_hs)
                with m.If(w_hs):
                    m.d.sync += self.wvalid.eq(0)
                with m.If(p_valid):
                    with m.If(p_last & out_free):         # (the assembly is free: its beat holds a slot)
                        m.d.sync += [wbeat.eq(mbeat), wstrb.eq(mstrb), self.wvalid.eq(1), self.wlast.eq(p_wlast),
                                     asm_strb.eq(0)]
                    with m.Elif(p_last):
                        m.d.sync += [asm.eq(mbeat), asm_strb.eq(mstrb), asm_full.eq(1), asm_wlast.eq(p_wlast)]
                    with m.Else():
                        m.d.sync += [asm.eq(mbeat), asm_strb.eq(mstrb)]
                with m.Elif(asm_full & out_free):
                    m.d.sync += [wbeat.eq(asm), wstrb.eq(asm_strb), self.wvalid.eq(1), self.wlast.eq(asm_wlast),
                                 asm_full.eq(0), asm_strb.eq(0)]
                with m.If((state == WAITB) & ~w_done & room):
                    start_next()


__all__ = ["ProgCore", "ProgTop", "BUF_BIT"]

"""PointAcc memory management unit: gather / scatter of feature rows by a map through a cache.

Feature rows live in DRAM at row addresses (``addr_bits`` wide); a row is ``lanes`` lanes of
``lane_bits`` bits (lane 0 in the low bits). The MMU streams a map (one row address per entry,
e.g. the input or output index of each kernel-map pair plus a base) and, per entry:

- ``OP_GATHER`` (1): outputs the row (``out_data``) with the entry's ``m_tag``, in map order;
- ``OP_SCATTER`` (2): writes ``m_data`` over the row;
- ``OP_SCATTER_ADD`` (3): adds ``m_data`` lane-wise (wrapping at ``lane_bits``) to the row;
- ``OP_FLUSH`` (4): writes every dirty block back and invalidates the cache (no map);
- other opcodes: nothing, done after one cycle.

Parameters: lanes, lane_bits, block_rows, sets, ways, addr_bits as below; ``mshrs`` (1..64, misses in
flight, 1 = blocking) and ``queue`` (a power of two in 2..256, >= mshrs: return-queue entries).

Cache (policy exactly as ``accelerators.pointacc.cache_model.CacheModel``): blocks of
``block_rows`` rows, ``sets`` sets (a power of two) of ``ways`` ways, true-LRU replacement (the
victim is the lowest invalid way, else the oldest), write-allocate, write-back. Tags, valid/dirty
bits and LRU ages are registers; the data store is one memory of sets*ways*block_rows rows with a
read port transparent to its write port (a scatter-add read-modify-write followed by an access to
the same row reads the new value).

Ports (clk/rst: sync domain)
----------------------------
    start, op (3), count (24)   start an op while busy is low: count map entries follow
    m_valid, m_row (AW), m_tag (16), m_data (RW)   map entry stream (hold until m_ready)
    m_ready      Out  the entry is accepted in this cycle (combinational: a hit in the cache state)
    out_valid, out_data (RW), out_tag (16)   gather results, two cycles after acceptance (non-blocking:
                 two cycles after leaving the return queue)
    dram_req_valid, dram_req_write, dram_req_addr (AW), dram_req_data (RW)   Out: DRAM requests.
                 A read request (write = 0) asks for the block_rows rows from a block-aligned
                 address; a write request writes one row (a write-back is block_rows consecutive
                 write requests). Requests are always accepted.
    dram_resp_valid, dram_resp_data (RW)   In: the rows of a read, one per cycle, in order. The DRAM
                 is assumed to answer a read issued in cycle t with beats in cycles t+LAT .. t+LAT+
                 block_rows-1 (fixed latency LAT >= 1); the MMU waits for the beats, so any latency
                 works, and the cycle model is exact for a fixed LAT.
    busy, done, cycles (32)     as the mapping unit (host protocol)
    hits, misses, writebacks (32)   counters of the last op (a miss's retried access is not a hit)

Non-blocking MMU (``mshrs`` >= 2; ``mshrs`` = 1 elaborates none of this): in a gather, scatter or
scatter-add, a hit or a miss is accepted into an in-order queue of ``queue`` entries (row, tag, m_data;
the tags, valid, dirty bits and LRU ages are updated at acceptance, so hits, misses and write-backs are
the cache model's; a scatter marks the line dirty then); the miss issues its block read in the same cycle
and its line waits in a fill FIFO of ``mshrs`` entries. A miss is accepted only with a free queue entry,
a free MSHR, B cycles after the previous read (B + 1 after a miss with a dirty victim), and no queued
entry on the line it evicts (a CAM over the queue). A dirty victim is written back beside the queue: its
rows are read through a second read port of the data store in cycles a .. a+B-1 and written to DRAM in
a+1 .. a+B (the request port's cycles; the new block's beats reach row r only in a+LAT+r). Hazards on a
block with a fill in flight: a later entry to it is a hit (its tag is already set) and waits in the queue
behind the miss, so it is served after the fill, in map order (no merging). The queue's head leaves when
it is a hit or its fill is complete (DRAM beats are taken in request order): a gather reads its row (out
two cycles later, so out_* follow the map order); a scatter writes m_data over the row in that cycle; a
scatter-add reads it and writes the sum in the next cycle. These writes use a second write port of the
data store (the fills keep the first); both read ports are transparent to it, so the next entry on the
same row, or a write-back in the next cycle, sees the new value. Exact timing (all three ops):
``dram.nb_gather_cycles``. m_ready then means: accepted into the queue.

Schedule of the blocking MMU (``cycles.mmu_cycles``; ``mshrs`` = 1): per entry, a hit takes 1 cycle; a miss takes
LAT + block_rows + 2 cycles, plus block_rows + 1 when the victim is dirty (detect 1, write-back
block_rows + 1, read request 1, wait LAT + block_rows - 1 for the last beat, retried hit 1). A
gather/scatter op takes 1 + sum of its entries (the last cycle drains the pipeline); a flush takes
sets*ways + (block_rows + 1) * dirty blocks + 1.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lego.units.sorter import quiet_refusal

__all__ = ["MMU", "OP_GATHER", "OP_SCATTER", "OP_SCATTER_ADD", "OP_FLUSH", "TAG_BITS", "COUNT_BITS"]

OP_GATHER, OP_SCATTER, OP_SCATTER_ADD, OP_FLUSH = 1, 2, 3, 4
TAG_BITS = 16
COUNT_BITS = 24


def _pow2(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v & (v - 1) == 0


class MMU(wiring.Component):
    """Gather/scatter through a set-associative LRU write-back cache; see the module docstring."""

    @quiet_refusal
    def __init__(self, lanes: int = 4, lane_bits: int = 8, block_rows: int = 4, sets: int = 8, ways: int = 2,
                 addr_bits: int = 20, mshrs: int = 1, queue: int = 8):
        for v, name in ((lanes, "feature_row_bytes"), (lane_bits, "lane_bits"), (ways, "cache_ways")):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be a positive int, got {v!r}")
        if not _pow2(block_rows):
            raise ValueError(f"cache_block_rows: must be a power of two, got {block_rows!r}")
        if not _pow2(sets):
            raise ValueError(f"cache_sets: must be a power of two, got {sets!r}")
        self.lbr, self.ls = block_rows.bit_length() - 1, sets.bit_length() - 1
        if not isinstance(addr_bits, int) or addr_bits <= self.lbr + self.ls or addr_bits > 40:
            raise ValueError(f"addr_bits: must exceed log2(block_rows * sets) = {self.lbr + self.ls} "
                             f"and be <= 40, got {addr_bits!r}")
        if isinstance(mshrs, bool) or not isinstance(mshrs, int) or not 1 <= mshrs <= 64:
            raise ValueError(f"mmu_mshrs: must be in 1..64, got {mshrs!r}")
        if not _pow2(queue) or queue < 2 or queue > 256 or mshrs > queue:
            raise ValueError(f"mmu_queue: must be a power of two in 2..256 and >= mmu_mshrs, got {queue!r}")
        self.mshrs, self.queue = mshrs, queue
        self.lanes, self.lane_bits, self.br, self.sets, self.ways, self.aw = lanes, lane_bits, block_rows, sets, \
            ways, addr_bits
        self.rw = lanes * lane_bits
        self.tw = addr_bits - self.lbr - self.ls
        super().__init__({
            "start": In(1), "op": In(3), "count": In(COUNT_BITS),
            "m_valid": In(1), "m_row": In(addr_bits), "m_tag": In(TAG_BITS), "m_data": In(self.rw),
            "m_ready": Out(1),
            "out_valid": Out(1), "out_data": Out(self.rw), "out_tag": Out(TAG_BITS),
            "dram_req_valid": Out(1), "dram_req_write": Out(1), "dram_req_addr": Out(addr_bits),
            "dram_req_data": Out(self.rw),
            "dram_resp_valid": In(1), "dram_resp_data": In(self.rw),
            "busy": Out(1), "done": Out(1), "cycles": Out(32),
            "hits": Out(32), "misses": Out(32), "writebacks": Out(32),
        })

    def elaborate(self, platform) -> Module:  # noqa: C901
        m = Module()
        BR, NS, NW, AW, TW, RW = self.br, self.sets, self.ways, self.aw, self.tw, self.rw
        LBR, LS = self.lbr, self.ls
        WB_ = max(1, (NW - 1).bit_length())          # way index / age bits
        LINES = NS * NW
        LA = max(1, (LINES * BR - 1).bit_length())    # data store address bits
        OFFB = max(1, LBR)

        NB = self.mshrs > 1
        m.submodules.data = dmem = Memory(shape=unsigned(RW), depth=max(2, LINES * BR), init=[])
        dw = dmem.write_port()
        if NB:      # a second write port: the queue's scatter writes, beside the fills of port dw
            dw2 = dmem.write_port()
            dr = dmem.read_port(transparent_for=(dw, dw2))
            dr2 = dmem.read_port(transparent_for=(dw2,))     # the dirty victims' write-backs
        else:
            dw2 = dw
            dr = dmem.read_port(transparent_for=(dw,))

        valid = [[Signal(name=f"v_{s}_{w}") for w in range(NW)] for s in range(NS)]
        dirty = [[Signal(name=f"d_{s}_{w}") for w in range(NW)] for s in range(NS)]
        tag = [[Signal(TW, name=f"t_{s}_{w}") for w in range(NW)] for s in range(NS)]
        age = [[Signal(WB_, name=f"a_{s}_{w}", init=w) for w in range(NW)] for s in range(NS)]

        op = Signal(3)
        count = Signal(COUNT_BITS)
        nacc = Signal(COUNT_BITS)
        busy, done = Signal(), Signal()
        cyc, hits, misses, wbs = Signal(32), Signal(32), Signal(32), Signal(32)
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.cycles.eq(cyc), self.hits.eq(hits),
                     self.misses.eq(misses), self.writebacks.eq(wbs)]
        with m.If(busy):
            m.d.sync += cyc.eq(cyc + 1)

        # ---- lookup of the offered entry
        off_in = self.m_row[:LBR] if LBR else Const(0, 1)
        set_in = self.m_row[LBR:LBR + LS] if LS else Const(0, 1)
        tag_in = self.m_row[LBR + LS:]

        def at(grid, s_idx):
            """Per way, grid[set][way] selected by the set index."""
            if NS == 1:
                return [grid[0][w] for w in range(NW)]
            return [Array([grid[s][w] for s in range(NS)])[s_idx] for w in range(NW)]

        v_in, d_in, t_in, a_in = at(valid, set_in), at(dirty, set_in), at(tag, set_in), at(age, set_in)
        hitw = [Signal(name=f"hitw{w}") for w in range(NW)]
        for w in range(NW):
            m.d.comb += hitw[w].eq(v_in[w] & (t_in[w] == tag_in))
        hit = Signal()
        m.d.comb += hit.eq(Cat(*hitw).any())
        hit_way = Signal(WB_)
        hw = Const(0, WB_)
        for w in reversed(range(NW)):
            hw = Mux(hitw[w], Const(w, WB_), hw)
        m.d.comb += hit_way.eq(hw)
        # victim: lowest invalid way, else the oldest
        vic = Signal(WB_)
        old = Const(0, WB_)
        for w in reversed(range(NW)):
            old = Mux(a_in[w] == Const(NW - 1, WB_), Const(w, WB_), old)
        vw = old
        for w in reversed(range(NW)):
            vw = Mux(~v_in[w], Const(w, WB_), vw)
        m.d.comb += vic.eq(vw)

        nd = [0]

        def line(s_idx, w_idx):
            """Data-store line number s*ways + w."""
            if NW == 1:
                return s_idx
            if NW & (NW - 1) == 0:
                return Cat(w_idx[:WB_], s_idx)
            nd[0] += 1
            lw = LS + WB_ + 1
            prod = Signal(lw, name=f"sxw_{nd[0]}")
            wz = Signal(lw, name=f"wz_{nd[0]}")
            m.d.comb += [prod.eq((s_idx * Const(NW, unsigned(WB_ + 1)))[:lw]), wz[:WB_].eq(w_idx), wz[WB_:].eq(0)]
            return (prod + wz)[:LS + WB_]

        def daddr(s_idx, w_idx, off):
            ln = line(s_idx, w_idx)
            full = Cat(off[:LBR], ln) if LBR else ln
            nd[0] += 1
            sig = Signal(LA, name=f"daddr_{nd[0]}")
            m.d.comb += sig.eq(full[:LA])
            return sig

        def touch(s_idx, w_idx):
            """LRU update of set s_idx on an access to way w_idx."""
            stmts = []
            for s in range(NS):
                aw_ = Array(age[s])[w_idx] if NW > 1 else age[s][0]
                upd = []
                for w in range(NW):
                    upd.append(age[s][w].eq(Mux(w_idx == w, 0, Mux(age[s][w] < aw_, (age[s][w] + 1)[:WB_],
                                                                                age[s][w]))))
                stmts.append((s, upd))
            return stmts

        # ---- miss / write-back registers
        v_set = Signal(max(1, LS))
        v_way = Signal(WB_)
        v_tag = Signal(TW)
        n_tag = Signal(TW)          # tag of the block being filled
        retry = Signal()
        bcnt = Signal(LBR + 1)
        flushing = Signal()
        f_set = Signal(max(1, LS))
        f_way = Signal(WB_)

        # ---- stage 2 (gather output, scatter-add write)
        v2, g2, a2 = Signal(name="v2"), Signal(name="g2"), Signal(name="a2")
        tag2 = Signal(TAG_BITS)
        add2 = Signal(RW)
        addr2 = Signal(LA)
        m.d.sync += [v2.eq(0), self.out_valid.eq(0)]
        with m.If(v2 & g2):
            m.d.sync += [self.out_valid.eq(1), self.out_data.eq(dr.data), self.out_tag.eq(tag2)]
        summed = Cat(*[(dr.data[i * self.lane_bits:(i + 1) * self.lane_bits]
                        + add2[i * self.lane_bits:(i + 1) * self.lane_bits])[:self.lane_bits]
                       for i in range(self.lanes)])
        with m.If(v2 & a2):
            m.d.comb += [dw2.en.eq(1), dw2.addr.eq(addr2), dw2.data.eq(summed)]

        def set_grid(grid, s_idx, w_idx, value):
            with m.Switch(s_idx if NS > 1 else Const(0, 1)):
                for s in range(NS):
                    with m.Case(s):
                        with m.Switch(w_idx if NW > 1 else Const(0, 1)):
                            for w in range(NW):
                                with m.Case(w):
                                    m.d.sync += grid[s][w].eq(value)

        def finish():
            m.d.sync += [busy.eq(0), done.eq(1)]

        def fl_advance():
            """Next (set, way) of a flush, or the final cycle after the last."""
            last_w = f_way == NW - 1 if NW > 1 else Const(1, 1)
            last_s = f_set == NS - 1 if NS > 1 else Const(1, 1)
            with m.If(last_w & last_s):
                m.next = "FL_DONE"
            with m.Else():
                m.next = "FL_CHECK"
                with m.If(last_w):
                    m.d.sync += [f_way.eq(0), f_set.eq((f_set + 1)[:len(f_set)])]
                with m.Else():
                    m.d.sync += f_way.eq((f_way + 1)[:WB_])

        acc_addr = daddr(set_in, hit_way, off_in)
        m.d.comb += dr.addr.eq(acc_addr)
        wb_addr = daddr(v_set, v_way, bcnt[:OFFB])
        fill_addr = daddr(v_set, v_way, bcnt[:OFFB])
        # ---- non-blocking MMU (mshrs >= 2): in-order queue, fill FIFO of the misses in flight
        if NB:
            Q, M = self.queue, self.mshrs
            LQ = max(1, (Q - 1).bit_length())
            q_addr = [Signal(LA, name=f"q_addr{j}") for j in range(Q)]
            q_tag = [Signal(TAG_BITS, name=f"q_tag{j}") for j in range(Q)]
            q_miss = [Signal(name=f"q_miss{j}") for j in range(Q)]
            q_data = [Signal(RW, name=f"q_data{j}") for j in range(Q)]       # a scatter's m_data
            q_occ = [Signal(name=f"q_occ{j}") for j in range(Q)]
            wp, rp = Signal(LQ), Signal(LQ)
            qn = Signal(range(Q + 1))
            f_base = [Signal(LA, name=f"f_base{j}") for j in range(M)]
            fwp, frp = Signal(range(M)), Signal(range(M))
            fn = Signal(range(M + 1))           # fills in flight
            rdy = Signal(range(M + 1))          # completed fills whose miss entries are still queued
            fb = Signal(LBR + 1)                # beat of the oldest fill
            gap = Signal(range(max(2, BR + 1)))  # cycles until the next read may be issued
            wb_on = Signal()                    # a dirty victim's write-back is running
            wbc = Signal(LBR + 1)               # its next row to write (1..B: row wbc - 1)
            wb_base = Signal(LA)                # its line's first data-store row
            wb_hi = Signal(max(1, AW - LBR))    # its block address (set, tag)
            wb_start = Signal()
            push, pop, issue, fdone = Signal(), Signal(), Signal(), Signal()
            push_addr, push_miss = Signal(LA), Signal()
            zero_off = Const(0, OFFB)
            vic_base = daddr(set_in, vic, zero_off)
            miss_addr = daddr(set_in, vic, off_in)
            cam = Signal()
            m.d.comb += cam.eq(Cat(*[q_occ[j] & (q_addr[j][LBR:] == vic_base[LBR:]) for j in range(Q)]).any())
            qfree = Signal()
            m.d.comb += qfree.eq(qn != Q)

            def wrap(x, n):
                return Mux(x == n - 1, 0, x + 1)[:len(x)]

            def nb_front():
                """ACC of a gather / scatter / scatter-add: accept hits and misses into the queue (a scatter
                marks the line dirty at acceptance); a miss with a dirty victim also starts the victim's
                write-back (second read port, B write requests in the next B cycles)."""
                vd = Array(d_in)[vic] if NW > 1 else d_in[0]
                vv = Array(v_in)[vic] if NW > 1 else v_in[0]
                vt = Array(t_in)[vic] if NW > 1 else t_in[0]
                miss_ok = Signal(name="miss_ok")
                m.d.comb += miss_ok.eq(~hit & qfree & (fn != M) & (gap == 0) & ~cam)
                m.d.comb += self.m_ready.eq((hit & qfree) | miss_ok)
                with m.If(self.m_valid & ((hit & qfree) | miss_ok)):
                    m.d.sync += [nacc.eq((nacc + 1)[:COUNT_BITS]), retry.eq(0)]
                    m.d.comb += push.eq(1)
                    with m.If(nacc == (count - 1)[:COUNT_BITS]):
                        m.next = "NB_TAIL"
                with m.If(self.m_valid & hit & qfree):
                    with m.If(~retry):
                        m.d.sync += hits.eq(hits + 1)
                    with m.Switch(set_in if NS > 1 else Const(0, 1)):
                        for s_, upd in touch(set_in, hit_way):
                            with m.Case(s_):
                                m.d.sync += upd
                    m.d.comb += [push_addr.eq(acc_addr), push_miss.eq(0)]
                    with m.If(op != OP_GATHER):
                        set_grid(dirty, set_in, hit_way, 1)
                with m.Elif(self.m_valid & miss_ok):
                    m.d.sync += misses.eq(misses + 1)
                    with m.Switch(set_in if NS > 1 else Const(0, 1)):
                        for s_, upd in touch(set_in, vic):
                            with m.Case(s_):
                                m.d.sync += upd
                    set_grid(valid, set_in, vic, 1)
                    set_grid(dirty, set_in, vic, op != OP_GATHER)
                    set_grid(tag, set_in, vic, tag_in)
                    base_row = Cat(Const(0, LBR), self.m_row[LBR:]) if LBR else self.m_row
                    m.d.comb += [push_addr.eq(miss_addr), push_miss.eq(1), issue.eq(1),
                                 self.dram_req_valid.eq(1), self.dram_req_write.eq(0),
                                 self.dram_req_addr.eq(base_row[:AW])]
                    with m.Switch(fwp):
                        for j in range(M):
                            with m.Case(j):
                                m.d.sync += f_base[j].eq(vic_base)
                    m.d.sync += fwp.eq(wrap(fwp, M))
                    with m.If(vv & vd):
                        m.d.comb += wb_start.eq(1)
                        hi = Cat(set_in[:LS], vt) if LS else vt
                        m.d.sync += [wbs.eq(wbs + 1), wb_on.eq(1), wbc.eq(1), wb_base.eq(vic_base),
                                     wb_hi.eq(hi[:len(wb_hi)])]

        def blocking_acc():
            """ACC of the blocking MMU: a hit is taken, a miss writes back a dirty victim, then fills."""
            m.d.comb += self.m_ready.eq(hit)
            with m.If(self.m_valid & hit):
                m.d.sync += [nacc.eq((nacc + 1)[:COUNT_BITS]), retry.eq(0)]
                with m.If(~retry):
                    m.d.sync += hits.eq(hits + 1)
                with m.Switch(set_in if NS > 1 else Const(0, 1)):
                    for s, upd in touch(set_in, hit_way):
                        with m.Case(s):
                            m.d.sync += upd
                m.d.sync += [v2.eq(1), g2.eq(op == OP_GATHER), a2.eq(op == OP_SCATTER_ADD),
                             tag2.eq(self.m_tag), add2.eq(self.m_data), addr2.eq(acc_addr)]
                with m.If(op != OP_GATHER):
                    set_grid(dirty, set_in, hit_way, 1)
                with m.If(op == OP_SCATTER):
                    m.d.comb += [dw.en.eq(1), dw.addr.eq(acc_addr), dw.data.eq(self.m_data)]
                with m.If(nacc == (count - 1)[:COUNT_BITS]):
                    m.next = "DRAIN"
            with m.Elif(self.m_valid):
                # miss: choose the victim; write it back if dirty, then fill
                vd = Array(d_in)[vic] if NW > 1 else d_in[0]
                vv = Array(v_in)[vic] if NW > 1 else v_in[0]
                vt = Array(t_in)[vic] if NW > 1 else t_in[0]
                m.d.sync += [misses.eq(misses + 1), v_set.eq(set_in), v_way.eq(vic), v_tag.eq(vt),
                             n_tag.eq(tag_in), bcnt.eq(0)]
                with m.If(vv & vd):
                    m.d.sync += wbs.eq(wbs + 1)
                    m.next = "WB"
                with m.Else():
                    m.next = "FILL"

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [op.eq(self.op), count.eq(self.count), nacc.eq(0), busy.eq(1), done.eq(0),
                                 cyc.eq(0), hits.eq(0), misses.eq(0), wbs.eq(0), retry.eq(0), flushing.eq(0),
                                 f_set.eq(0), f_way.eq(0)]
                    with m.If((self.op == OP_GATHER) | (self.op == OP_SCATTER) | (self.op == OP_SCATTER_ADD)):
                        with m.If(self.count.any()):
                            m.next = "ACC"
                        with m.Else():
                            m.next = "DRAIN"
                    with m.Elif(self.op == OP_FLUSH):
                        m.next = "FL_CHECK"
                    with m.Else():
                        m.next = "DRAIN"
            with m.State("ACC"):
                if NB:
                    nb_front()
                else:
                    blocking_acc()
            with m.State("WB"):
                # cycle r < BR: read row r of the victim; cycle r >= 1: write row r-1 to DRAM
                m.d.comb += dr.addr.eq(wb_addr)
                prev = Signal(OFFB, name="wb_prev")
                m.d.sync += prev.eq(bcnt[:OFFB])
                with m.If(bcnt != 0):
                    row_addr = Cat(prev[:LBR], v_set[:LS], v_tag) if LBR else Cat(v_set[:LS], v_tag)
                    m.d.comb += [self.dram_req_valid.eq(1), self.dram_req_write.eq(1),
                                 self.dram_req_addr.eq(row_addr[:AW]), self.dram_req_data.eq(dr.data)]
                m.d.sync += bcnt.eq((bcnt + 1)[:LBR + 1])
                with m.If(bcnt == BR):
                    m.d.sync += bcnt.eq(0)
                    with m.If(flushing):
                        fl_advance()
                    with m.Else():
                        m.next = "FILL"
            with m.State("FILL"):
                base = Cat(Const(0, LBR), v_set[:LS], n_tag) if LBR else Cat(v_set[:LS], n_tag)
                m.d.comb += [self.dram_req_valid.eq(1), self.dram_req_write.eq(0), self.dram_req_addr.eq(base[:AW])]
                m.next = "FILL_WAIT"
            with m.State("FILL_WAIT"):
                with m.If(self.dram_resp_valid):
                    m.d.comb += [dw.en.eq(1), dw.addr.eq(fill_addr), dw.data.eq(self.dram_resp_data)]
                    m.d.sync += bcnt.eq((bcnt + 1)[:LBR + 1])
                    with m.If(bcnt == BR - 1):
                        set_grid(valid, v_set, v_way, 1)
                        set_grid(dirty, v_set, v_way, 0)
                        set_grid(tag, v_set, v_way, n_tag)
                        m.d.sync += [retry.eq(1), bcnt.eq(0)]
                        m.next = "ACC"
            if NB:
                with m.State("NB_TAIL"):
                    with m.If(pop & (qn == 1)):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                finish()
                m.next = "IDLE"
            with m.State("FL_CHECK"):
                fv = Array([valid[s][w] for s in range(NS) for w in range(NW)])[line(f_set, f_way)] \
                    if LINES > 1 else valid[0][0]
                fd = Array([dirty[s][w] for s in range(NS) for w in range(NW)])[line(f_set, f_way)] \
                    if LINES > 1 else dirty[0][0]
                ft = Array([tag[s][w] for s in range(NS) for w in range(NW)])[line(f_set, f_way)] \
                    if LINES > 1 else tag[0][0]
                set_grid(valid, f_set, f_way, 0)
                set_grid(dirty, f_set, f_way, 0)
                with m.If(fv & fd):
                    m.d.sync += [wbs.eq(wbs + 1), flushing.eq(1), v_set.eq(f_set), v_way.eq(f_way), v_tag.eq(ft),
                                 bcnt.eq(0)]
                    m.next = "WB"
                with m.Else():
                    fl_advance()
            with m.State("FL_DONE"):
                finish()
                m.next = "IDLE"
        if NB:
            # ---- back end: the head leaves the queue when its line is in the store (a miss: its fill done).
            # A gather reads its row (out two cycles later); a scatter writes m_data over it (port dw2, in the
            # pop cycle); a scatter-add reads it and writes the sum in the next cycle (stage 2, port dw2); the
            # read port is transparent to both write ports, so the next entry on the same row sees the write.
            head_miss = Array(q_miss)[rp]
            head_addr, head_data = Array(q_addr)[rp], Array(q_data)[rp]
            m.d.comb += pop.eq((qn != 0) & (~head_miss | (rdy != 0)))
            with m.If(pop):
                m.d.comb += dr.addr.eq(head_addr)
                m.d.sync += [v2.eq(1), g2.eq(op == OP_GATHER), a2.eq(op == OP_SCATTER_ADD),
                             tag2.eq(Array(q_tag)[rp]), add2.eq(head_data), addr2.eq(head_addr),
                             rp.eq((rp + 1)[:LQ])]
                with m.If(op == OP_SCATTER):
                    m.d.comb += [dw2.en.eq(1), dw2.addr.eq(head_addr), dw2.data.eq(head_data)]
                with m.Switch(rp):
                    for j in range(Q):
                        with m.Case(j):
                            m.d.sync += q_occ[j].eq(0)
            with m.If(push):
                m.d.sync += wp.eq((wp + 1)[:LQ])
                with m.Switch(wp):
                    for j in range(Q):
                        with m.Case(j):
                            m.d.sync += [q_addr[j].eq(push_addr), q_tag[j].eq(self.m_tag), q_miss[j].eq(push_miss),
                                         q_data[j].eq(self.m_data), q_occ[j].eq(1)]
            with m.If(push & ~pop):
                m.d.sync += qn.eq(qn + 1)
            with m.Elif(pop & ~push):
                m.d.sync += qn.eq(qn - 1)
            # fills: the beats of the oldest read go to its line
            with m.If((fn != 0) & self.dram_resp_valid):
                m.d.comb += [dw.en.eq(1), dw.addr.eq(Cat(fb[:LBR], Array(f_base)[frp][LBR:]) if LBR else Array(f_base)[frp]), dw.data.eq(self.dram_resp_data)]
                m.d.sync += fb.eq((fb + 1)[:LBR + 1])
                with m.If(fb == BR - 1):
                    m.d.comb += fdone.eq(1)
                    m.d.sync += [fb.eq(0), frp.eq(wrap(frp, M))]
            with m.If(issue & ~fdone):
                m.d.sync += fn.eq(fn + 1)
            with m.Elif(fdone & ~issue):
                m.d.sync += fn.eq(fn - 1)
            pop_miss = pop & head_miss
            with m.If(fdone & ~pop_miss):
                m.d.sync += rdy.eq(rdy + 1)
            with m.Elif(pop_miss & ~fdone):
                m.d.sync += rdy.eq(rdy - 1)
            with m.If(issue):
                m.d.sync += gap.eq(Mux(wb_start, BR, BR - 1))     # the write-back holds the port B cycles
            with m.Elif(gap != 0):
                m.d.sync += gap.eq(gap - 1)
            # write-back of a dirty victim accepted in cycle a: row r read (dr2) in cycle a + r, written to
            # DRAM in a + 1 + r; the new block's beats overwrite row r from a + LAT + r > a + r
            m.d.comb += dr2.addr.eq(Mux(wb_on, Cat(wbc[:LBR], wb_base[LBR:]) if LBR else wb_base, vic_base))
            with m.If(wb_on):
                wrow = Cat((wbc - 1)[:LBR], wb_hi) if LBR else wb_hi
                m.d.comb += [self.dram_req_valid.eq(1), self.dram_req_write.eq(1), self.dram_req_addr.eq(wrow[:AW]),
                             self.dram_req_data.eq(dr2.data)]
                m.d.sync += wbc.eq((wbc + 1)[:LBR + 1])
                with m.If(wbc == BR):
                    m.d.sync += wb_on.eq(0)
        return m

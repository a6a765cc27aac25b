"""Streaming elaboration of one scheduled PrimGraph: the array without banks, for datapaths embedded in a
larger pipeline (SpAtten's Q·K and P·V).

The dataflow has one temporal loop, the *stream*: each ``in_valid`` beat is one step ``t``. Memory banks
become lanes: at every beat, input lane ``b`` of tensor T carries the element that bank ``b``'s port
would read at that step (``lane_index``), and output lane ``b`` carries what bank ``b``'s port would
write. ``in_first``/``in_last`` delimit a stream (they replace the step counter's first/last flags), so
its length is set at run time. The beat is presented all at once: per-lane skew (the control delay
``c·s`` of the lane's FU plus the port's LP stage) is inserted here, and outputs are deskewed and
registered (holding the last result), so ``out_valid`` follows the beat that produced it by exactly ``latency`` cycles. There is
no stall: bubbles (``in_valid`` low) travel down the pipeline with the control word.

A tensor whose index does not depend on the stream loop is *stationary*: its lanes are sampled on the
``in_first`` beat only (e.g. Q in Q·K, held by each FU), the others on every beat.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal

from ..arch.flags import same_tables
from ..arch.graph import ArchGraph
from ..errors import LegoError
from ..prim.graph import PrimGraph
from ..prim.lower import shared_alpha
from .array import ArrayCore, _san


class StreamCore(ArrayCore):
    def __init__(self, arch: ArchGraph, pg: PrimGraph, prefix: str = ""):
        if len(arch.modes) != 1:
            raise LegoError("stream: a streaming datapath has one dataflow (no fusion)")
        md = arch.modes[0]
        if len(md.df.T) != 1:
            raise LegoError(f"stream: the dataflow must have exactly one temporal loop (the stream), "
                            f"got {len(md.df.T)}")
        w = arch.workload
        if any(t.pad for t in w.inputs):
            raise LegoError("stream: zero-padded inputs are not supported in a streaming datapath")
        super().__init__(arch, pg, prefix)
        self.md = md
        p = prefix
        self.in_valid = Signal(name=f"{p}in_valid")
        self.in_first = Signal(name=f"{p}in_first")
        self.in_last = Signal(name=f"{p}in_last")
        self.inputs = {t.name: Signal(self.in_banks[t.name][0] * t.bits, name=f"{p}in_{t.name}")
                       for t in w.inputs}
        Y = w.output
        self.out_valid = Signal(name=f"{p}out_valid")
        self.output = Signal(self.out_banks[0] * Y.bits, name=f"{p}out_{Y.name}")
        self.stationary = {t.name: same_tables(md.df, md.nets[t.name].M)[0] for t in w.tensors}
        assert not pg.rmw, "a stream writes every output once (its one loop is the stream)"
        wr = [n for n in pg.nodes.values() if n.kind == "wr"]
        self.arrive = {n.id: self.fd(0, n.fu[0]) + pg.sigma[n.id] for n in wr}
        self.latency = max(self.arrive.values()) + 1      # + the output register

    # -------------------------------------------------------------- the lane map (documentation + tests)
    def lanes(self, tensor: str) -> int:
        w = self.arch.workload
        return self.out_banks[0] if tensor == w.output.name else self.in_banks[tensor][0]

    def lane_index(self, tensor: str, lane: int, t: int = 0) -> tuple[int, ...] | None:
        """The tensor element on ``lane`` at stream step ``t`` (None: the lane is unused)."""
        net = self.md.nets[tensor]
        for port in net.ports:
            if port.bank == lane:
                d = net.M @ np.array([t], dtype=np.int64) + np.array(port.k, dtype=np.int64)
                return tuple(int(x) for x in d)
        return None

    # -------------------------------------------------------------- controller: the beat is the step
    def _controller(self, m):
        arch, p = self.arch, self.prefix
        self.mode_r = Const(0, 1)
        first, last = self.in_first, self.in_last
        parts = {"v": self.in_valid, "m0_t0": Const(0, 1)}
        Y = arch.workload.output.name
        for t in arch.workload.inputs:
            parts[f"m0_chg_{t.name}"] = first if self.stationary[t.name] else Const(1, 1)
        parts["m0_first"] = first if self.stationary[Y] else Const(1, 1)
        parts["m0_last"] = last if self.stationary[Y] else Const(1, 1)
        for t in arch.workload.tensors:
            if shared_alpha(self.md.nets[t.name]) is not None:
                parts[f"m0_base_{t.name}"] = Const(0, 1)
        sized = []
        for n, b in self.fields:
            f = Signal(b, name=f"{p}f_{n}")
            m.d.comb += f.eq(parts[n])
            sized.append(f)
        cw = Signal(sum(b for _, b in self.fields), name=f"{p}cw")
        m.d.comb += cw.eq(Cat(*sized))
        return cw

    def _delay(self, m, sig, depth: int, name: str):
        for k in range(depth):
            r = Signal.like(sig, name=f"{self.prefix}{name}_d{k + 1}")
            m.d.sync += r.eq(sig)
            sig = r
        return sig

    # -------------------------------------------------------------- elaboration
    def elaborate_into(self, m: Module):
        arch, pg, p = self.arch, self.pg, self.prefix
        w = arch.workload
        cw, ins = self._begin(m)
        for nid, n in pg.nodes.items():
            self.val[nid] = cw if n.kind == "ctl" else self._value(nid, p + _san(nid))
        self._writes = {}
        for nid in sorted(pg.nodes, key=lambda x: pg.sigma[x]):
            n = pg.nodes[nid]
            if n.kind == "rd":
                self._stream_rd(m, nid, n, ins[nid])
            elif n.kind == "wr":
                self._stream_wr(m, nid, n, ins[nid])
            else:
                self._node(m, nid, n, ins[nid], {})
        # deskew to the last lane, then one output register
        Y = w.output
        lanes = [Const(0, Y.bits)] * self.out_banks[0]
        valids = []
        last = max(self.arrive.values())
        for nid, (bank, val, en) in sorted(self._writes.items()):
            k = last - self.arrive[nid]
            lanes[bank] = self._delay(m, val, k, f"{_san(nid)}_val")
            valids.append(self._delay(m, en, k, f"{_san(nid)}_en"))
        any_valid = Cat(*valids).any()
        m.d.sync += self.out_valid.eq(any_valid)
        with m.If(any_valid):                      # the output holds the last result
            m.d.sync += self.output.eq(Cat(*[_extend(x, Y.bits) for x in lanes]))
        return m

    def _flag(self, m, e):
        """The enable bit (the MSB) of an address-generator edge. A stream has no addresses (the lane is
        the bank), so only that bit is delayed, never the address below it."""
        w = self.pg.nodes[e.src].width
        (mi,) = e.delta
        key = e.src if self.pg.shared else (e.src, e.dst, e.slot)
        return self._chain(m, (key, "en"), self.val[e.src][w - 1:w], self.pg.rho(e, mi))

    def _stream_rd(self, m, nid, n, in_edges):
        t = self.arch.workload.tensor(n.attrs["tensor"])
        bank = n.attrs["bank"]
        en = self._flag(m, in_edges[0])
        raw = self.inputs[t.name][bank * t.bits:(bank + 1) * t.bits]
        lane = raw.as_signed() if t.signed else raw
        port = n.attrs["ports"][0]
        lane_d = self._delay(m, lane, self.fd(0, port.fu) + self.pg.sigma[nid] - 1, f"{_san(nid)}_lane")
        hold = Signal.like(self.val[nid], name=f"{self.prefix}{_san(nid)}_hold")
        with m.If(en):
            m.d.sync += hold.eq(lane_d)
        m.d.comb += self.val[nid].eq(hold)

    def _stream_wr(self, m, nid, n, in_edges):
        by_slot = {e.slot: e for e in in_edges}
        vals = [self._input(m, e) for e in in_edges if e.slot != "a"]
        m.d.comb += self.val[nid].eq(vals[0])
        en = Signal(name=f"{self.prefix}{_san(nid)}_en")
        m.d.comb += en.eq(self._flag(m, by_slot["a"]))
        self._writes[nid] = (n.attrs["bank"], self.val[nid], en)


def _extend(x, n: int):
    """The low ``n`` bits of ``x`` sign-extended to ``n`` (a lane narrower than the output word)."""
    if len(x) >= n:
        return x[:n]
    return Cat(x, x[-1].replicate(n - len(x)))

"""Amaranth elaboration of one PrimGraph: controller, banks, address generators, datapath, taps.

Every value crosses an edge through a tap of its driver's shift register: shared (one tapped chain per
driver, the LP's fan-out sharing) or private (one chain per edge, ``--no-opt``). The control word's chain is
kept field by field, so that a register holds only the fields that are read at its depth or later.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from ..arch.flags import same_tables
from ..arch.graph import ArchGraph
from ..prim.graph import PrimGraph
from ..prim.lower import bits_for, control_fields, frame_delay, shared_alpha



def add_bases(parts: dict, arch, md, t: list) -> None:
    """The control word's shared base address of each tensor of mode ``md`` (where its ports share one
    affine map): ``sum alpha_k * t_k`` over the step counters ``t``."""
    for tn in arch.workload.tensors:
        alpha = shared_alpha(md.nets[tn.name])
        if alpha is not None:
            base = Const(0, 1)
            for k, a in enumerate(alpha):
                if a:
                    base = base + t[k] * int(a)
            parts[f"m{md.index}_base_{tn.name}"] = base


def pack_fields(m, cw, fields, parts: dict, prefix: str = "") -> None:
    """``cw`` = the concatenation of ``parts[name]``, each at exactly its declared width (``fields``)."""
    sized = []
    for n, b in fields:
        f = Signal(b, name=f"{prefix}f_{n}")
        m.d.comb += f.eq(parts[n])
        sized.append(f)
    m.d.comb += cw.eq(Cat(*sized))


def step_counters(m, name: str, T, maxima, restart, run) -> tuple[list, Signal, Signal]:
    """One mode's step counters ``t[k]`` (position 0 innermost) as an odometer: ``kn`` is the innermost
    position not at its maximum (``maxima[k]``: an int, a run-time value, or a function of the counter that
    tells it is at its maximum; ``nT`` when every one is), the position the next step increments; ``kp``
    the one the previous step incremented (``nT``: no previous step). ``restart`` clears them; each cycle
    with ``run`` advances one step."""
    nT = len(T)
    t = [Signal(bits_for(e - 1), name=f"{name}_t{k}") for k, e in enumerate(T)]
    kp = Signal(range(nT + 1), name=f"{name}_kp", init=nT)
    at_max = [maxima[k](t[k]) if callable(maxima[k]) else t[k] == maxima[k] for k in range(nT)]
    kn = Signal(range(nT + 1), name=f"{name}_kn")
    m.d.comb += kn.eq(nT)
    for k in range(nT):
        with m.If(~at_max[k]):
            m.d.comb += kn.eq(k)
    with m.If(restart):
        m.d.sync += [x.eq(0) for x in t] + [kp.eq(nT)]
    with m.Elif(run):
        m.d.sync += kp.eq(kn)
        for k in range(nT):
            with m.If(kn == k):
                m.d.sync += t[k].eq(t[k] + 1)
            if k > 0:            # kn < 0 cannot hold
                with m.Elif(kn < k):
                    m.d.sync += t[k].eq(0)
    return t, kp, kn

class ArrayCore:
    """Builds the array into an existing Module. Host-facing signals are attributes."""

    def __init__(self, arch: ArchGraph, pg: PrimGraph, prefix: str = "", host_read: str = "sync"):
        self.arch, self.pg, self.prefix, self.host_read = arch, pg, prefix, host_read
        w = arch.workload
        self.nmodes = len(arch.modes)
        self.fields = control_fields(arch, pg.rmw)
        self.field_names = {n for n, _ in self.fields}
        self.fd = frame_delay(arch)
        self.in_banks = {t.name: arch.banks(t.name) for t in w.inputs}
        self.out_banks = arch.banks(w.output.name)
        self.acc_bits = pg.acc_bits
        self.abits = max(bits_for(d - 1) for _, d in list(self.in_banks.values()) + [self.out_banks])
        self.cycles = [m.df.steps + pg.drain(m.index, self.fd) for m in arch.modes]
        self.rmw = pg.rmw       # read-modify-write ports where an output element is revisited within a run
        # host-facing
        self.start = Signal(name=f"{prefix}start")
        self.mode = Signal(range(max(2, self.nmodes)), name=f"{prefix}mode")
        self.busy = Signal(name=f"{prefix}busy")
        self.done = Signal(name=f"{prefix}done")
        self.cycles_out = Signal(32, name=f"{prefix}cycles")
        self.in_wr = {}      # tensor -> list of write ports per bank
        self.out_rd = []     # host read ports per output bank (``_output_bank``)
        self.out_raddr = []  # their host address signals

    # ------------------------------------------------------------------ helpers
    def _field(self, word, name):
        """Field ``name`` of a tapped control word (a ``_Word`` from ``_tap``)."""
        return self._ctl_field(word.m, name, word.depth, word.key)

    def _cw_field(self, name):
        """Field ``name`` of the undelayed control word."""
        off = 0
        for n, b in self.fields:
            if n == name:
                return self.val["ctl"][off:off + b]
            off += b
        raise KeyError(name)

    def _ctl_field(self, m, name: str, depth: int, key=None):
        """Field ``name`` of the control word delayed by ``depth``: each field has a tapped chain of its own
        (shared, or private per edge with ``key``), so that a register holds only bits that are read."""
        key = ("ctl", name) if self.pg.shared else (key, name)
        if key not in self.chains:
            self.chains[key] = [self._cw_field(name)]
            self._stems[key] = f"{self.prefix}r_{name}" if self.pg.shared else \
                f"{self.prefix}r_{len(self._stems)}_{name}"
        chain = self.chains[key]
        while len(chain) <= depth:
            r = Signal(len(chain[-1]), name=f"{self._stems[key]}_{len(chain)}")
            m.d.sync += r.eq(chain[-1])
            chain.append(r)
            self.emitted_bits += len(r)
        return chain[depth]

    def _tap(self, m, driver: str, depth: int, key=None):
        """``driver``'s value delayed by ``depth`` (a tapped chain: shared, or private per edge with ``key``)."""
        if driver == "ctl":          # read field by field (_field)
            return _Word(m, depth, key)
        key = driver if self.pg.shared else key
        return self._chain(m, key, self.val[driver], depth)

    def _chain(self, m, key, base, depth: int):
        """Tap ``depth`` of the shift register ``key`` that starts at ``base``."""
        chain = self.chains.setdefault(key, [base])
        while len(chain) <= depth:
            prev = chain[-1]
            r = Signal.like(prev, name=f"{self.prefix}r_{len(self.chains)}_{len(chain)}")
            m.d.sync += r.eq(prev)
            chain.append(r)
            self.emitted_bits += len(r)
        return chain[depth]

    def _input(self, m, e, early: int = 0):
        """Value of edge e at its consumer (``early`` cycles before it is due), muxed by mode where the
        register count differs."""
        taps = {mi: self._tap(m, e.src, self.pg.rho(e, mi) - early, key=(e.src, e.dst, e.slot)) for mi in e.delta}
        vals = list(taps.items())
        out = vals[-1][1]
        for mi, t in reversed(vals[:-1]):
            out = Mux(self.mode_r == mi, t, out)
        return out

    def _live(self, e):
        if len(e.delta) == self.nmodes:
            return Const(1, 1)
        c = Const(0, 1)
        for mi in e.delta:
            c = c | (self.mode_r == mi)
        return c

    def _mode_mux(self, per_mode: dict, default):
        if self.nmodes == 1 and 0 in per_mode:   # single-dataflow design: no mode logic at all
            return per_mode[0]
        out = default
        for mi, v in per_mode.items():
            out = Mux(self.mode_r == mi, v, out)
        return out

    # ------------------------------------------------------------------ controller
    def _controller(self, m):
        arch, p = self.arch, self.prefix
        self.mode_r = Signal.like(self.mode, name=f"{p}mode_r")
        cyc = Signal(32, name=f"{p}cyc")
        cw = Signal(sum(b for _, b in self.fields), name=f"{p}cw")
        N = [md.df.steps for md in arch.modes]
        issuing = Signal(name=f"{p}issuing")
        nsteps = self._mode_mux({i: Const(n, 32) for i, n in enumerate(N)}, Const(N[0], 32))
        total = self._mode_mux({i: Const(c, 32) for i, c in enumerate(self.cycles)}, Const(self.cycles[0], 32))
        last = self._mode_mux({i: Const(c - 1, 32) for i, c in enumerate(self.cycles)},
                              Const(self.cycles[0] - 1, 32))
        m.d.comb += issuing.eq(self.busy & (cyc < nsteps))
        with m.If(self.start & ~self.busy):
            m.d.sync += [self.busy.eq(1), self.done.eq(0), cyc.eq(0), self.mode_r.eq(self.mode)]
        with m.Elif(self.busy):
            m.d.sync += cyc.eq(cyc + 1)
            with m.If(cyc == last):
                m.d.sync += [self.busy.eq(0), self.done.eq(1), self.cycles_out.eq(total)]
        parts = {"v": issuing}
        Y = arch.workload.output.name
        for md in arch.modes:
            df, i = md.df, md.index
            nT = len(df.T)
            t, kp, kn = step_counters(m, f"{p}m{i}", df.T, [e - 1 for e in df.T], self.start & ~self.busy,
                                      issuing & (self.mode_r == i))
            first_step = kp == nT
            last_step = kn == nT

            def flag(same, pos, base):
                f = base
                for k, sm in enumerate(same):
                    if not sm:
                        f = f | (pos == k)
                return f
            for k in range(nT):
                parts[f"m{i}_t{k}"] = t[k]
            for tn in arch.workload.inputs:
                parts[f"m{i}_chg_{tn.name}"] = flag(same_tables(df, md.nets[tn.name].M), kp, first_step)
            sy = same_tables(df, md.nets[Y].M)
            parts[f"m{i}_first"] = flag(sy, kp, first_step)
            parts[f"m{i}_last"] = flag(sy, kn, last_step)
            if self.rmw:                 # the flush is the element's first write of this run
                fresh = Const(1, 1)
                for k in self.pg.fresh[i]:
                    fresh = fresh & (t[k] == 0)
                parts[f"m{i}_fresh"] = fresh
            add_bases(parts, arch, md, t)
        pack_fields(m, cw, self.fields, parts, p)
        return cw

    # ------------------------------------------------------------------ nodes
    def _const(self, value: int):
        """A per-FU constant of an address or bounds expression (a port of an FU module, emit/hier.py)."""
        return Const(value)

    def _fu_bounds(self, word, mi, coef_rows, consts):
        """An FU's iteration is inside the workload's extents (a programmable core: the run-time bounds)."""
        return self._bounds(word, mi, coef_rows, consts, self.arch.workload.extents)

    def _bounds(self, word, mi, coef_rows, consts, limits):
        """AND of 0 <= coef·t + const < limit over rows that can leave the range; of each row, only the
        bounds that can fail (over the step counters' ranges) are compared."""
        df = self.arch.modes[mi].df
        ok = Const(1, 1)
        tmax = np.array(df.T) - 1
        for row, k, lim in zip(coef_rows, consts, limits):
            row = np.asarray(row)
            lo = k + np.minimum(row, 0) @ tmax
            hi = k + np.maximum(row, 0) @ tmax
            if lo >= 0 and hi < lim:
                continue
            c = self._const(int(k))
            expr = self._linear(c, [self._field(word, f"m{mi}_t{j}").as_unsigned() * int(a)
                                    for j, a in enumerate(row) if a])
            if lo < 0:
                ok = ok & (expr >= 0)
            if hi >= lim:
                ok = ok & (expr < int(lim))
        return ok

    def _affine(self, word, mi, alpha, beta, width, tensor=None):
        c = self._const(int(beta))
        out = Signal(width, name=f"{self.prefix}aff")
        if tensor is not None and f"m{mi}_base_{tensor}" in self.field_names:
            base = self._field(word, f"m{mi}_base_{tensor}")
            return out, (_add_const(base, int(beta), width) if isinstance(c, Const) else c + base)
        return out, self._linear(c, [self._field(word, f"m{mi}_t{j}").as_unsigned() * int(a)
                                     for j, a in enumerate(alpha) if a])

    @staticmethod
    def _linear(c, terms):
        """c + the sum of terms, exact. A negative constant (not a port) is subtracted: ``-6 + x`` would
        zero-extend an unsigned x by two bits (sign and carry), ``x - 6`` by the carry only."""
        if isinstance(c, Const) and c.value < 0 and terms:
            expr = terms[0]
            for x in terms[1:]:
                expr = expr + x
            return expr - Const(-c.value)
        expr = c
        for x in terms:
            expr = expr + x
        return expr

    def _begin(self, m):
        """Fresh elaboration state and the controller: (control word, in-edges per node)."""
        self.val, self.chains, self._stems, self._rmw = {}, {}, {}, {}
        self.emitted_bits = 0      # delay-register bits actually elaborated (taps; control fields one by one)
        cw = self._controller(m)
        ins = {v: [] for v in self.pg.nodes}
        for e in self.pg.edges:
            ins[e.dst].append(e)
        return cw, ins

    def elaborate_into(self, m: Module):
        arch, pg, p = self.arch, self.pg, self.prefix
        cw, ins = self._begin(m)
        for nid, n in pg.nodes.items():
            self.val[nid] = cw if n.kind == "ctl" else self._value(nid, p + _san(nid))
        mems = self._input_banks(m)
        self.out_mems, self.out_raddr = [], []
        for b in range(self.out_banks[0]):
            mem, rp, raddr = self._output_bank(m, self.busy)
            m.submodules[f"{p}mem_{arch.workload.output.name}_{b}"] = mem
            self.out_mems.append(mem)
            self.out_raddr.append(raddr)
            self.out_rd.append(rp)
        for nid in sorted(pg.nodes, key=lambda x: pg.sigma[x]):
            self._node(m, nid, pg.nodes[nid], ins[nid], mems)
        return m

    def _value(self, nid: str, name: str) -> Signal:
        return Signal(self._value_shape(nid), name=name)

    def _value_shape(self, nid: str):
        n = self.pg.nodes[nid]
        return unsigned(n.width) if n.kind in ("ag", "wag") else signed(n.width)

    def _memory_depth(self, depth: int) -> int:
        """Words of one input bank memory holding ``depth`` words of a tensor (at least 2 for Amaranth)."""
        return max(2, depth)

    def _input_banks(self, m) -> dict:
        """The input banks (host- or DMA-written), as {(tensor, bank): Memory}; their write ports in ``in_wr``."""
        mems = {}
        for t in self.arch.workload.inputs:
            nb, depth = self.in_banks[t.name]
            self.in_wr[t.name] = []
            for b in range(nb):
                mem = Memory(shape=signed(t.bits) if t.signed else unsigned(t.bits), depth=self._memory_depth(depth),
                             init=[])
                m.submodules[f"{self.prefix}mem_{t.name}_{b}"] = mem
                mems[(t.name, b)] = mem
                self.in_wr[t.name].append(mem.write_port())
        return mems

    def _output_bank(self, m, busy):
        """One output bank of ``acc_bits``-wide words and its write port (the datapath's). Every run writes
        every element of the output (the dataflow covers it); the first write of an element stores, later
        ones add, so no state of an earlier run, a reset or another mode is ever read.

        ``host_read == "sync"``: one synchronous read port, shared by the datapath's read-modify-write
        (while ``busy``) and the host (otherwise), the form Yosys maps to block RAM. ``"comb"`` (units that
        stream the output on, e.g. attention's softmax feed): a combinational host port, plus a synchronous
        one for the read-modify-write. Returns (memory, host read port, host address); the ``wr`` node
        drives the datapath's address (``self._rmw``)."""
        mem = Memory(shape=signed(self.acc_bits), depth=max(2, self.out_banks[1]), init=[])
        k = len(self._rmw)
        sync = self.host_read == "sync"
        rp = mem.read_port(domain="sync" if sync else "comb")
        host = Signal.like(rp.addr, name=f"{self.prefix}host_addr_{k}")
        dp = Signal.like(rp.addr, name=f"{self.prefix}rmw_addr_{k}") if self.rmw else None
        dport = (rp if sync else mem.read_port(domain="sync")) if self.rmw else None
        self._rmw[id(mem)] = (dp, dport)
        if self.rmw and sync:
            m.d.comb += rp.addr.eq(Mux(busy, dp, host))
        else:
            m.d.comb += rp.addr.eq(host)
            if self.rmw:
                m.d.comb += dport.addr.eq(dp)
        return mem, rp, host

    def read_word(self, word):
        """The output value in a bank word (``_output_bank``), sign-extended by the reader's ``eq``."""
        return word.as_signed()

    def _node(self, m, nid, n, in_edges, mems):
        pg, arch, v = self.pg, self.arch, self.val[nid]
        w = arch.workload
        by_slot = {e.slot: e for e in in_edges}
        if n.kind == "ctl":
            return
        if n.kind in ("ag", "wag"):
            t = w.tensor(n.attrs["tensor"])
            e = by_slot["ctl"]
            abits = n.width - (2 if n.kind == "ag" else 1 + self.rmw)
            outs = {}
            for mi, port in n.attrs["ports"].items():
                word = self._tap(m, "ctl", pg.rho(e, mi), key=(e.src, e.dst, e.slot, mi))
                net = arch.modes[mi].nets[t.name]
                addr, expr = self._affine(word, mi, port.alpha, port.beta, abits, t.name)
                m.d.comb += addr.eq(expr)
                vfield = self._field(word, "v")
                if n.kind == "ag":
                    valid = vfield & (self._bounds(word, mi, net.M, port.k, t.shape) if t.pad else 1)
                    en = vfield & self._field(word, f"m{mi}_chg_{t.name}")
                    outs[mi] = Cat(Mux(valid, addr, 0), valid, en)
                else:
                    ok = self._bounds(word, mi, net.M, port.k, t.shape)
                    en = vfield & self._field(word, f"m{mi}_last") & ok
                    outs[mi] = Cat(addr, en, self._field(word, f"m{mi}_fresh")) if self.rmw else Cat(addr, en)
            m.d.comb += v.eq(self._mode_mux(outs, Const(0, n.width)))
        elif n.kind == "rd":
            t = n.attrs["tensor"]
            a = self._input(m, by_slot["a"])
            rp = mems[(t, n.attrs["bank"])].read_port(domain="sync")
            abits = len(rp.addr)
            aw = pg.nodes[by_slot["a"].src].width - 2
            valid, en = a[aw], a[aw + 1]
            vreg = Signal(name=f"{self.prefix}{_san(nid)}_v")
            m.d.comb += [rp.addr.eq(a[:min(abits, aw)]), rp.en.eq(en)]
            with m.If(en):
                m.d.sync += vreg.eq(valid)
            m.d.comb += v.eq(Mux(vreg, rp.data, 0))
        elif n.kind == "op":
            m.d.comb += v.eq(self._mode_mux({mi: self._input(m, e) for e in in_edges for mi in e.delta},
                                            Const(0, n.width)) if len(in_edges) > 1 else self._input(m, in_edges[0]))
        elif n.kind == "mul":
            a, b = self._input(m, by_slot["a"]), self._input(m, by_slot["b"])
            ec = by_slot["ctl"]
            s = n.attrs["fu"]
            oks = {}
            for mi in ec.delta:
                word = self._tap(m, "ctl", pg.rho(ec, mi), key=(ec.src, ec.dst, ec.slot, mi))
                df = arch.modes[mi].df
                k = df.AS @ np.array(s) + df.bvec
                oks[mi] = self._field(word, "v") & self._fu_bounds(word, mi, df.AT, k)
            ok = self._mode_mux(oks, Const(0, 1))
            m.d.comb += v.eq(Mux(ok, a * b, 0))
        elif n.kind == "add":
            terms = [self._input(m, e) if len(e.delta) == self.nmodes else Mux(self._live(e), self._input(m, e), 0)
                     for e in sorted(in_edges, key=lambda e: e.slot)]
            acc = terms[0]
            for x in terms[1:]:
                acc = acc + x
            m.d.comb += v.eq(acc)
        elif n.kind == "acc":
            x = self._input(m, by_slot["in"])
            ec = by_slot["ctl"]
            firsts, vs = {}, {}
            for mi in ec.delta:
                word = self._tap(m, "ctl", pg.rho(ec, mi), key=(ec.src, ec.dst, ec.slot, mi))
                firsts[mi] = self._field(word, f"m{mi}_first")
                vs[mi] = self._field(word, "v")
            first = self._mode_mux(firsts, Const(0, 1))
            step = self._mode_mux(vs, Const(0, 1))
            r = Signal.like(v, name=f"{self.prefix}{_san(nid)}_r")
            m.d.comb += v.eq(Mux(first, 0, r) + x)
            with m.If(step):
                m.d.sync += r.eq(v)
        elif n.kind == "wr":
            yb = self.acc_bits
            a = self._input(m, by_slot["a"])
            vals = {mi: self._input(m, e) for e in in_edges if e.slot != "a" for mi in e.delta}
            val = self._mode_mux(vals, Const(0, yb))
            mem = self.out_mems[n.attrs["bank"]]
            wp = mem.write_port()
            aw = pg.nodes[by_slot["a"].src].width - 1 - self.rmw
            if not self.rmw:
                m.d.comb += [wp.addr.eq(a[:aw]), wp.en.eq(a[aw]), v.eq(val), wp.data.eq(v)]
                return
            # the old word was read one cycle early (the (wag, wr) timing row guarantees the tap exists);
            # a revisit of the element is at least two steps after its previous write, so it is settled
            dp, rp = self._rmw[id(mem)]
            ahead = self._input(m, by_slot["a"], early=1)
            old = Signal(signed(yb), name=f"{self.prefix}{_san(nid)}_old")
            new = Signal(signed(yb), name=f"{self.prefix}{_san(nid)}_new")
            m.d.comb += [dp.eq(ahead[:aw]), wp.addr.eq(a[:aw]), wp.en.eq(a[aw]),
                         old.eq(Mux(a[aw + 1], 0, self.read_word(rp.data))),
                         new.eq(old + val), wp.data.eq(new), v.eq(val)]
        else:  # pragma: no cover
            raise AssertionError(n.kind)


def _add_const(x, k: int, width: int):
    """x + k for an unsigned x, exact in the low ``width`` bits (the only ones used). Amaranth prints x at its
    own width next to a wider constant, which verilator -Wall flags for a named x; so k (mod 2**width) is
    split at x's width: its low part is added at x's width, its high part concatenated or added after."""
    wx = len(x)
    if k < 0 and (-k).bit_length() <= wx:
        return x - (-k)
    k %= 1 << width
    lo, hi = k & ((1 << wx) - 1), k >> wx
    if not hi:
        return x + lo if lo else x
    if not lo:
        return Cat(x, Const(hi))
    return (x + lo) + (hi << wx)


class _Word:
    """The control word delayed by ``depth`` (tap ``key`` of a private chain), read by ``ArrayCore._field``."""

    def __init__(self, m, depth: int, key=None):
        self.m, self.depth, self.key = m, depth, key


def _san(nid: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in nid).strip("_")

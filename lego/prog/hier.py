"""The programmable core, hierarchical: one Verilog module per FU *type*, and the FU instances as text.

Amaranth's conversion cost is per netlist object, and a 128x128 array repeats nine FU types, so a
single-dataflow core (``ProgHierCore``) is emitted as FU-type modules, each elaborated and converted once,
and one structural module ``<top>_fu_array`` (``array_text``) that instantiates every FU:

* Placement: every primitive of FU s (``op``/``mul``/``add``/``acc``, and the ``ag``/``rd`` of a per-FU input
  bank, such as ws's W bank, with that bank's memory) goes into s's module. The controller, the DMA, the
  banks shared by a row or column (X, Y) with their address generators and ports, the control word's field
  chains and the first compare of each bound check (``ProgCore._row_ok``) stay in the top.
* Ports: a value from outside arrives on an input port: a tap of another FU (a wire of the array module), of a
  top driver, a control field at depth d, a bound check at depth d (the array module pipelines each check from
  its shallowest depth, one 1-bit register a stage, as ``_row_ok`` does), the buffer select, and the bank's DMA
  write signals (``on`` and the bank's row and column enables, ANDed in the FU; the column's address and
  data). Taps wanted outside leave on outputs. Constants (address offsets) stay constants: part of the type.
* Types: ``fu_key`` is a structural key of the FU's primitives computed *before* elaborating (kinds, widths,
  address maps, internal edges and their register counts, the sharing pattern of its inputs, the control
  depths relative to each other, the taps it exports). One representative per key is elaborated; it records
  each input port as a descriptor relative to the FU (``("tap", consumer, slot, offset)``, ...), which
  ``_resolve`` translates for every other FU of the key. tests/lego/prog/test_prog_hier.py elaborates every FU
  of small arrays and checks that the key partition equals the partition by elaborated module
  (``emit.hier._signature``) and that the translated ports equal the FU's own: sharing never changes hardware.

Fused designs (several dataflows) stay flat (``ProgCore``).
"""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numpy as np
from amaranth.hdl import ClockSignal, Const, Fragment, Instance, ResetSignal, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from ..emit.array import ArrayCore, _Word, _san
from ..emit.hier import _FU
from .array_text import fu_array_verilog
from .core import ProgCore


def _base(n) -> str:
    t = n.attrs.get("tensor")
    return f"{n.kind}_{t}" if t is not None else n.kind


class ProgHierCore(ProgCore):
    """``ProgCore`` whose array is one module per FU type (single-dataflow designs; see the module doc)."""

    def __init__(self, arch, pg, module_name: str):
        super().__init__(arch, pg)
        self.module_name = module_name
        self.modules = []                  # [(name, ports, fragment)], one per FU type (lego.generate.to_verilog)
        self.text_modules = []             # [(name, Verilog text)]: the instance level (``_array``)
        self.hier = len(arch.modes) == 1 and pg.shared
        self.fu_banks, self.fu_wp = set(), {}     # per-FU input banks, their DMA write signals (_input_banks)
        self._ctx, self._home = None, {}

    # ------------------------------------------------------------------ structure, before elaborating
    def _plan(self):
        pg, w = self.pg, self.arch.workload
        nfu = len(self.arch.fus)
        # input tensors with one bank per FU (ws's W): bank, address generator and read port go into the FU
        self.fu_banks = {t.name for t in w.inputs
                         if not self.fb[t.name].grouped and self.in_banks[t.name][0] == nfu}
        home = {}
        for nid, n in pg.nodes.items():
            inside = (n.kind in ("op", "mul", "add", "acc")
                      or (n.kind in ("ag", "rd") and n.attrs["tensor"] in self.fu_banks))
            home[nid] = n.fu[0] if inside else None
        self._home = home
        # an edge by (consumer, slot); a slot named after its source (an ``op``'s value, ``add``'s partial sum)
        # by its rank among those of the consumer ("<0", "<1", ...), in the order _node takes them (by slot)
        self.by_slot, self.cslot, self._ins = {}, {}, defaultdict(list)
        for e in pg.edges:
            self._ins[e.dst].append(e)
        for v, es in self._ins.items():
            named = sorted((e for e in es if e.slot == e.src), key=lambda e: e.slot)
            for e in es:
                c = f"<{named.index(e)}" if e.slot == e.src else e.slot
                self.cslot[(e.src, e.dst, e.slot)] = c
                self.by_slot[(v, c)] = e
        self._exports = defaultdict(set)   # driver -> taps wanted outside its module
        for e in pg.edges:
            if home[e.src] is not None and home[e.src] != home[e.dst]:
                self._exports[e.src].add(pg.rho(e, 0))
        groups = defaultdict(list)
        for nid in pg.nodes:
            if home[nid] is not None:
                groups[home[nid]].append(nid)
        self.groups, self._byname = {}, {}
        for fu, nids in groups.items():     # canonical order: by local name (then bank), the same in every FU
            nids.sort(key=lambda x: (_base(pg.nodes[x]), pg.nodes[x].attrs.get("bank", -1)))
            used, local = defaultdict(int), {}
            for nid in nids:
                b = _base(pg.nodes[nid])
                local[nid] = b + (f"_{used[b]}" if used[b] else "")
                used[b] += 1
            self.groups[fu] = (nids, local)
            self._byname[fu] = {v: k for k, v in local.items()}

    def fu_key(self, fu) -> tuple:
        """Everything the FU module's elaboration depends on, up to what its ports carry."""
        pg, (nids, local) = self.pg, self.groups[fu]
        ctl = [pg.rho(e, 0) for nid in nids for e in self._ins[nid] if e.src == "ctl"]
        c0 = min(ctl, default=0)
        ext, srcs = {}, {}
        key = []
        for nid in nids:
            n = pg.nodes[nid]
            ports = None
            if n.kind == "ag":
                t = self.arch.workload.tensor(n.attrs["tensor"])
                ports = tuple((mi, p.alpha, p.beta, p.k if t.pad else None) for mi, p in n.attrs["ports"].items())
            es = []
            for e in sorted(self._ins[nid], key=lambda e: e.slot):     # (the order _node sums them in)
                r, slot = pg.rho(e, 0), self.cslot[(e.src, e.dst, e.slot)]
                if e.src == "ctl":
                    es.append((slot, "ctl", r - c0))
                elif self._home[e.src] == fu:
                    es.append((slot, local[e.src], r))
                else:
                    es.append((slot, "ext", ext.setdefault((e.src, r), len(ext)), srcs.setdefault(e.src, len(srcs))))
            key.append((local[nid], n.kind, n.width, n.attrs.get("tensor"), ports, tuple(es),
                        tuple(sorted(self._exports.get(nid, ())))))
        return tuple(key)

    # ------------------------------------------------------------------ ports of an FU module
    def _rel(self, key, depth):
        """(consumer's local name, slot, offset) of a request at ``depth`` through edge ``key``'s endpoints."""
        dst, slot = key[1], self.cslot[key[:3]]
        return self._ctx.local[dst], slot, depth - self.pg.rho(self.by_slot[(dst, slot)], 0)

    def _port(self, desc, shape, name, share=None):
        """The input port for ``desc`` (relative to the FU; ``share``: the absolute key that ports are shared
        by, default ``desc``)."""
        ctx, share = self._ctx, share or desc
        if share not in ctx.taps:
            ctx.taps[share] = ctx.port_in(shape, f"i{len(ctx.taps)}_{name}", desc)
        return ctx.taps[share]

    def _tap(self, m, driver, depth, key=None):
        if self._ctx is None and self._home.get(driver) is not None:
            return self._export(driver, depth)
        if driver == "ctl" or self._ctx is None or self._home.get(driver) == self._ctx.fu:
            return super()._tap(m, driver, depth, key)
        return self._port(("tap",) + self._rel(key, depth), self._value_shape(driver), "x")

    def _ctl_field(self, m, name, depth, key=None):
        if self._ctx is None:
            return super()._ctl_field(m, name, depth, key)
        # shared by (field, depth): the key's relative control depths make the sharing the same per type
        return self._port(("ctl", name) + self._rel(key, depth), dict(self.fields)[name], name,
                          share=("ctl", name, depth))

    def _bounds_rt(self, word, mi, rows, consts, lims):
        if self._ctx is None:
            return super()._bounds_rt(word, mi, rows, consts, lims)
        assert self._ctx.kind == "mul", self._ctx.kind     # _resolve re-derives the constants of a mul
        df = self.arch.modes[mi].df
        assert list(consts) == list(df.AS @ np.array(self._ctx.fu) + df.bvec), consts
        ok = Const(1, 1)
        for idx, (row, k, lim) in enumerate(zip(rows, consts, lims)):
            ok = ok & self._port(("ok", idx) + self._rel(word.key, word.depth), 1, f"ok{idx}")
        return ok

    def _resolve(self, desc, fu):
        """The top-level value that drives an FU's input port, from the representative's descriptor."""
        pg, kind, byname = self.pg, desc[0], self._byname[fu]
        if kind in ("sig", "wp"):
            return self._top_sig(desc, fu)
        head = 2 if kind in ("ctl", "ok") else 1
        dst, slot, off = desc[head:head + 3]
        e = self.by_slot[(byname[dst], slot)]
        depth = pg.rho(e, 0) + off
        if kind == "tap":
            return ("tap", e.src, depth)
        if kind == "ctl":
            return ("ctl", desc[1], depth)
        df = self.arch.modes[0].df
        idx = desc[1]
        k = (df.AS @ np.array(pg.nodes[byname[dst]].attrs["fu"]) + df.bvec)[idx]
        return ("ok", tuple(int(a) for a in df.AT[idx]), int(k), self.arch.workload.iterators[idx], depth)

    def _top_sig(self, desc, fu):
        if desc[0] == "sig":
            return ("sig", desc[1])
        n = self.pg.nodes[self._byname[fu][desc[1]]]
        return ("wp", n.attrs["tensor"], n.attrs["bank"], desc[2])

    def _drive(self, m, res):
        kind = res[0]
        if kind == "tap":
            return self._tap(m, res[1], res[2])
        if kind == "ctl":
            return ArrayCore._ctl_field(self, m, res[1], res[2])
        if kind == "ok":
            _, row, k, it, depth = res
            return self._row_ok(_Word(m, depth), 0, np.array(row), k, self.lim_r[it])
        if kind == "sig":
            return self.buf_of[res[1]]
        fw = self.fu_wp[res[1]]
        rd, cd = fw.digits[res[2]]
        f = res[3]
        return fw.on if f == "on" else fw.row[rd] if f == "row" else getattr(fw.col[cd], "en" if f == "col" else f)

    def _export(self, driver, depth):
        """Top-level wire carrying ``driver`` (of an FU module) delayed by ``depth``: an output of the array."""
        assert depth in self._exports[driver], (driver, depth)
        if (driver, depth) not in self._wires:
            self._wires[(driver, depth)] = Signal(self._value_shape(driver), name=f"{_san(driver)}_d{depth}")
        return self._wires[(driver, depth)]

    # ------------------------------------------------------------------ elaboration
    def elaborate_into(self, m):
        if not self.hier:
            return super().elaborate_into(m)
        pg = self.pg
        self._okc = {}
        self._plan()
        self._wires, self._types = {}, {}
        cw, ins = self._begin(m)
        top = [nid for nid in pg.nodes if self._home[nid] is None]
        for nid in top:
            self.val[nid] = cw if nid == "ctl" else self._value(nid, "n_" + _san(nid))
        mems = self._input_banks(m)
        self._y_banks(m)
        for nid in sorted(top, key=lambda x: pg.sigma[x]):
            self._node(m, nid, pg.nodes[nid], ins[nid], mems)
        self._array(m)
        self._connect_grouped(m, mems)         # (no grouped banks in a single-dataflow design)
        return m

    def _input_banks(self, m) -> dict:
        """The top's input banks; a per-FU bank lives in its FU's module, its DMA write port is three wires."""
        if not self.hier:
            return super()._input_banks(m)
        mems = {}
        for t in self.arch.workload.inputs:
            nb, depth = self.in_banks[t.name]
            shape, words = _bank_shape(t), self._memory_depth(depth)
            if t.name in self.fu_banks:       # the DMA drives these per row / column of banks (ProgTop._load)
                lay = self.arch.modes[0].nets[t.name].layout
                digits = {b: divmod(lay.bank_ids[b], lay.B[1]) for b in range(nb)}
                self.fu_wp[t.name] = SimpleNamespace(
                    on=Signal(name=f"ld_{t.name}_on"), digits=digits,
                    row={rd: Signal(name=f"ld_{t.name}_r{rd}") for rd, _ in digits.values()},
                    col={cd: SimpleNamespace(en=Signal(name=f"ld_{t.name}_c{cd}_en"),
                                             addr=Signal(range(words), name=f"ld_{t.name}_c{cd}_baddr"),
                                             data=Signal(shape, name=f"ld_{t.name}_c{cd}_data"))
                         for _, cd in digits.values()})
                self.in_wr[t.name] = []
                continue
            self.in_wr[t.name] = []
            for b in range(nb):
                mem = Memory(shape=shape, depth=words, init=[])
                m.submodules[f"mem_{t.name}_{b}"] = mem
                mems[(t.name, b)] = mem
                self.in_wr[t.name].append(mem.write_port())
        return mems

    def _instance(self, fu):
        """Find (or elaborate) the module of ``fu``'s type: (module, [(port, width, driver)], [(port, width,
        (driver node, depth))]) of its instance, each driver as ``_resolve`` gives it."""
        key = self.fu_key(fu)
        if key not in self._types:
            bits0 = self.emitted_bits
            ctx = self._build(fu)
            name = f"{self.module_name}_fu{len(self._types)}"
            self.modules.append((name, ctx.ports(), Fragment.get(ctx.m, None)))
            self._types[key] = (name, ctx, self.emitted_bits - bits0)
            self.emitted_bits = bits0
        name, ctx, bits = self._types[key]
        self.emitted_bits += bits                # the FU's registers, as the flat core counts them
        byname = self._byname[fu]
        ins = [(p.name, len(p), self._resolve(d, fu)) for p, d in ctx.inputs]
        outs = [(p.name, len(p), (byname[d[1]], d[2])) for p, d in ctx.outputs]
        return name, ins, outs

    def _array(self, m):
        """Every FU instance, the wires between them and the bound checks' pipelines, as the structural
        Verilog module ``<top>_fu_array`` (``array_text``), instantiated in the top with what it reads."""
        plan = {fu: self._instance(fu) for fu in sorted(self.groups)}
        inputs, ok_keys, insts, wires, used = {}, {}, [], {}, set()
        for fu, (mod, ins, outs) in plan.items():
            conns = []
            for port, width, res in ins:
                if res[0] == "tap" and self._home.get(res[1]) is not None:
                    net = _wire(res[1], res[2])
                    used.add(net)
                elif res[0] == "ok":
                    k = ok_keys.setdefault(res[1:4], (len(ok_keys), set()))
                    k[1].add(res[4])
                    net = f"ok{k[0]}_d{res[4]}"
                else:
                    c = _canon(res, self.fu_wp)
                    net = inputs.setdefault(c, (_input_net(c), width, res))[0]
                conns.append((port, net))
            for port, width, (driver, d) in outs:
                wires[_wire(driver, d)] = (width, (driver, d))
                conns.append((port, _wire(driver, d)))
            insts.append((mod, "fu_" + "_".join(str(x) for x in fu), conns))
        chains = []
        for (row, k, it), (idx, depths) in ok_keys.items():
            d0 = min(depths)
            inputs[("ok", row, k, it, d0)] = (f"ok{idx}_d{d0}", 1, ("ok", row, k, it, d0))
            chains.append((f"ok{idx}_d{d0}", [f"ok{idx}_d{d}" for d in range(d0 + 1, max(depths) + 1)]))
        # taps of FU drivers that the top reads (or that nobody reads: an output left to the top) leave the array
        outs = {net: v for net, v in wires.items() if v[1] in self._wires or net not in used}
        name = f"{self.module_name}_fu_array"
        self.text_modules.append((name, fu_array_verilog(
            name, [(n, w) for n, w, _ in inputs.values()], [(n, w) for n, (w, _) in outs.items()],
            [(n, w) for n, (w, _) in wires.items() if n not in outs], chains, insts)))
        args = [("i", net, self._drive(m, res)) for net, _, res in inputs.values()]
        args += [("o", net, self._export(*key)) for net, (_, key) in outs.items()]
        args += [("i", "clk", ClockSignal("sync")), ("i", "rst", ResetSignal("sync"))]
        m.submodules["fu_array"] = Instance(name, *args)

    def _build(self, fu) -> _FU:
        """Elaborate FU ``fu``'s module: the top's state is swapped for the module's while it runs."""
        pg = self.pg
        nids, local = self.groups[fu]
        ctx = _FU(fu)
        ctx.local = local
        saved = (self.val, self.chains, self.buf_of)
        self._ctx = ctx
        self.val, self.chains = ctx.val, ctx.chains
        self.buf_of = _Lazy(lambda t: self._port(("sig", t), 1, f"buf_{t}"))
        try:
            mems = {}
            for nid in nids:
                ctx.val[nid] = self._value(nid, local[nid])
                n = pg.nodes[nid]
                if n.kind == "rd":             # a per-FU bank: its memory and the DMA's write port
                    t = self.arch.workload.tensor(n.attrs["tensor"])
                    mem = Memory(shape=_bank_shape(t), depth=self._memory_depth(self.in_banks[t.name][1]), init=[])
                    ctx.m.submodules[f"mem_{local[nid]}"] = mem
                    mems[(t.name, n.attrs["bank"])] = ctx.mems[nid] = mem
                    wp = mem.write_port()
                    on, row, col, addr, data = (self._port(("wp", local[nid], f), w, f"w{f}") for f, w in (
                        ("on", 1), ("row", 1), ("col", 1), ("addr", len(wp.addr)), ("data", len(wp.data))))
                    ctx.m.d.comb += [wp.en.eq(on & row & col), wp.addr.eq(addr), wp.data.eq(data)]
            for nid in nids:
                ctx.kind = pg.nodes[nid].kind
                self._node(ctx.m, nid, pg.nodes[nid], self._ins[nid], mems)
            for nid in nids:                   # taps wanted outside: this driver's chain, here
                for d in sorted(self._exports.get(nid, ())):
                    sig = ArrayCore._tap(self, ctx.m, nid, d)
                    port = Signal.like(sig, name=f"o{len(ctx.outputs)}_{local[nid]}_d{d}")
                    ctx.m.d.comb += port.eq(sig)
                    ctx.outputs.append((port, ("out", local[nid], d)))
        finally:
            self._ctx = None
            self.val, self.chains, self.buf_of = saved
        return ctx


def _wire(driver: str, depth: int) -> str:
    return f"w_{_san(driver)}_d{depth}"


def _canon(res, fu_wp):
    """One array input per value: the write signals of a per-FU bank by its row or column of banks."""
    if res[0] != "wp":
        return res
    _, t, b, f = res
    rd, cd = fu_wp[t].digits[b]
    return ("wp", t, f, None if f == "on" else rd if f == "row" else cd)


def _input_net(res) -> str:
    kind = res[0]
    if kind == "ctl":
        return f"c_{res[1]}_{res[2]}"
    if kind == "tap":
        return f"t_{_san(res[1])}_d{res[2]}"
    if kind == "sig":
        return f"s_buf_{res[1]}"
    _, t, f, digit = res
    return f"wp_{t}_{f}" + ("" if digit is None else f"_{digit}")


class _Lazy(dict):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, k):
        return self.make(k)


def _bank_shape(t):
    return signed(t.bits) if t.signed else unsigned(t.bits)

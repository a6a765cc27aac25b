"""Hierarchical elaboration of an ArrayCore: one Verilog module per distinct FU type, instantiated per FU.

Amaranth's conversion time grows with the flat netlist, while an array repeats a handful of FU types, so
each FU's primitives are built into a module of their own and equal modules are emitted once.

* Placement: ``op``/``mul``/``add``/``acc`` of FU s, and the ``wag``/``wr`` pair whose port sits at s in
  every mode with its output bank (and that bank's host read port), go into s's module. The controller,
  the input banks (host-written) with their address generators and read ports, and anything whose FU
  differs between fused modes stay in the top.
* Registers: the tapped shift register of a driver lives with the driver, so fan-out sharing and every
  register are exactly those of the flat design; a consumer elsewhere receives its tap through a port (a
  field of the control word, which the top delays field by field, through a port of its own).
* Constants that depend on the FU's position (bounds and address offsets, ``_const``) arrive on ports
  driven by constants, so that FUs differing only in them share a module (synthesis folds them).
* Types: two FUs share a module when their elaborated statements, ports and memories are equal up to a
  renaming of signals (``_signature``), so sharing can never change the hardware.

The caller converts the extra modules (``modules``; ``lego.generate.to_verilog``). Only the fan-out-shared
(LP) schedule is split; ``--no-opt`` designs (private per-edge chains) are emitted flat.
"""
from __future__ import annotations

import re
from collections import defaultdict
from types import SimpleNamespace

from amaranth.hdl import ClockDomain, ClockSignal, Const, Fragment, Instance, Module, ResetSignal, Signal, signed

from .array import ArrayCore, _san

FU_KINDS = ("op", "mul", "add", "acc", "wag", "wr")
CONST_SHAPE = signed(32)                         # ports that carry an FU's position-dependent constants
_UNNAMED = re.compile(r"\(sig (?!s\d+:)")        # a signal that _signature did not rename


def home_fu(n):
    """The FU whose module holds node n, or None for the top."""
    if n.kind not in FU_KINDS:
        return None
    fus = set(n.fu.values())
    return next(iter(fus)) if len(fus) == 1 else None


class _FU:
    """One FU's module while it is built. Ports are kept as (port, outside): the top-level value an input
    is driven by (a signal, a constant, or ("tap", driver, depth)), or the top-level wire an output drives."""

    def __init__(self, fu):
        self.fu = fu
        self.m = Module()
        self.cd = ClockDomain("sync")          # explicit, so that every FU module has clk and rst ports
        self.m.domains.sync = self.cd
        self.val, self.chains, self.mems = {}, {}, {}
        self.inputs, self.outputs = [], []
        self.taps = {}                         # (driver, depth) -> input port
        self.consts = 0

    def port_in(self, shape, name, outside):
        port = Signal(shape, name=name)
        self.inputs.append((port, outside))
        return port

    def ports(self):
        return [p for p, _ in self.inputs] + [p for p, _ in self.outputs] + [self.cd.clk, self.cd.rst]


class HierArrayCore(ArrayCore):
    def __init__(self, arch, pg, module_name: str, prefix: str = ""):
        super().__init__(arch, pg, prefix)
        self.module_name = module_name
        self.modules = []          # [(name, ports, fragment)]: one per FU type, filled by elaborate_into
        self._home, self._ctx = {}, None

    # ------------------------------------------------------------------ values across module boundaries
    def _tap(self, m, driver, depth, key=None):
        if driver == "ctl":                    # read field by field: _ctl_field
            return super()._tap(m, driver, depth, key)
        here = self._ctx.fu if self._ctx is not None else None
        if self._home.get(driver) == here:
            return super()._tap(m, driver, depth, key)
        if self._ctx is None:
            return self._export(driver, depth)
        ctx = self._ctx
        if (driver, depth) not in ctx.taps:
            ctx.taps[(driver, depth)] = ctx.port_in(self._value_shape(driver), f"i{len(ctx.taps)}",
                                                    ("tap", driver, depth))
        return ctx.taps[(driver, depth)]

    def _ctl_field(self, m, name, depth, key=None):
        """In an FU module, a control-word field arrives on a port of its own, driven by the top's chain."""
        if self._ctx is None:
            return super()._ctl_field(m, name, depth, key)
        ctx = self._ctx
        if ("ctl", name, depth) not in ctx.taps:
            ctx.taps[("ctl", name, depth)] = ctx.port_in(dict(self.fields)[name], f"i{len(ctx.taps)}_{name}",
                                                          ("ctl", name, depth))
        return ctx.taps[("ctl", name, depth)]

    def _export(self, driver, depth):
        """Top-level wire carrying ``driver`` delayed by ``depth`` (an output of the driver's module)."""
        assert depth in self._exports[driver], (driver, depth)
        if (driver, depth) not in self._wires:
            self._wires[(driver, depth)] = Signal(self._value_shape(driver),
                                                  name=f"{self.prefix}{_san(driver)}_d{depth}")
        return self._wires[(driver, depth)]

    def _const(self, value: int):
        if self._ctx is None:
            return super()._const(value)
        assert -2 ** 31 <= value < 2 ** 31, value
        self._ctx.consts += 1
        return self._ctx.port_in(CONST_SHAPE, f"k{self._ctx.consts - 1}", Const(value, CONST_SHAPE))

    # ------------------------------------------------------------------ elaboration
    def elaborate_into(self, m: Module):
        if not self.pg.shared:
            return super().elaborate_into(m)
        pg, p = self.pg, self.prefix
        self._home = {nid: home_fu(n) for nid, n in pg.nodes.items()}
        self._exports, self._wires, self._types = defaultdict(set), {}, {}
        for e in pg.edges:                     # taps each driver must offer outside its module
            if self._home[e.src] is not None and self._home[e.src] != self._home[e.dst]:
                self._exports[e.src].update(pg.rho(e, mi) for mi in e.delta)
        cw, ins = self._begin(m)
        top, groups = [], defaultdict(list)
        for nid in sorted(pg.nodes, key=lambda x: pg.sigma[x]):
            h = self._home[nid]
            (top if h is None else groups[h]).append(nid)
        for nid in top:
            self.val[nid] = cw if nid == "ctl" else self._value(nid, p + _san(nid))
        mems = self._input_banks(m)
        self.out_mems, self.out_rd, self.out_raddr = {}, [None] * self.out_banks[0], [None] * self.out_banks[0]
        for nid in top:                        # output banks written from the top
            if pg.nodes[nid].kind == "wr":
                b = pg.nodes[nid].attrs["bank"]
                mem, self.out_rd[b], self.out_raddr[b] = self._output_bank(m, self.busy)
                self.out_mems[b] = mem
                m.submodules[f"{p}mem_{self.arch.workload.output.name}_{b}"] = mem
        for nid in top:
            self._node(m, nid, pg.nodes[nid], ins[nid], mems)
        for fu in sorted(groups):
            ctx = _FU(fu)
            self._fu(ctx, groups[fu], ins)
            self._instance(m, ctx)
        assert None not in self.out_rd
        return m

    def _fu(self, ctx: _FU, nids: list[str], ins: dict):
        """Build FU ``ctx.fu``'s module: the state of the top is swapped for the module's while it runs."""
        pg, Y = self.pg, self.arch.workload.output
        saved = (self.val, self.chains, self.out_mems, self.mode_r, self.prefix)
        top_mode, top_busy, p = self.mode_r, self.busy, self.prefix
        self._ctx = ctx
        self.val, self.chains, self.out_mems, self.prefix = ctx.val, ctx.chains, ctx.mems, ""
        try:
            if self.nmodes > 1:
                self.mode_r = ctx.port_in(top_mode.shape(), "mode_r", top_mode)
            local, used = {}, defaultdict(int)
            for nid in nids:
                name = _local_name(nid, pg.nodes[nid], ctx.fu)
                local[nid] = name + (f"_{used[name]}" if used[name] else "")
                used[name] += 1
                ctx.val[nid] = ctx.val[local[nid]] = self._value(nid, local[nid])
            wrs = [nid for nid in nids if pg.nodes[nid].kind == "wr"]
            busy = ctx.port_in(1, "busy", top_busy) if wrs and self.rmw else None
            for k, nid in enumerate(wrs):      # the bank this FU writes, and the host's read port of it
                b, sfx = pg.nodes[nid].attrs["bank"], (f"_{k}" if k else "")
                mem, rp, addr = self._output_bank(ctx.m, busy)
                ctx.mems[b] = mem
                ctx.m.submodules[f"mem_{Y.name}{sfx}"] = mem
                host = self.out_rd[b] = SimpleNamespace(addr=Signal.like(rp.addr, name=f"{p}rd_addr_{b}"),
                                                        data=Signal.like(rp.data, name=f"{p}rd_data_{b}"))
                self.out_raddr[b] = host.addr
                data = Signal.like(rp.data, name=f"rd_data{sfx}")
                ctx.m.d.comb += [addr.eq(ctx.port_in(rp.addr.shape(), f"rd_addr{sfx}", host.addr)),
                                 data.eq(rp.data)]
                ctx.outputs.append((data, host.data))
            for nid in nids:
                self._node(ctx.m, local[nid], pg.nodes[nid], ins[nid], {})
            for nid in nids:                   # taps wanted outside: this driver's chain, here
                for d in sorted(self._exports.get(nid, ())):
                    sig = ArrayCore._tap(self, ctx.m, nid, d)
                    port = Signal.like(sig, name=f"o{len(ctx.outputs)}_{local[nid]}_d{d}")
                    ctx.m.d.comb += port.eq(sig)
                    ctx.outputs.append((port, ("tap", nid, d)))
        finally:
            self._ctx = None
            self.val, self.chains, self.out_mems, self.mode_r, self.prefix = saved

    def _instance(self, m, ctx: _FU):
        """Find (or define) the module type of ``ctx`` and instantiate it, wired by port position."""
        frag = Fragment.get(ctx.m, None)
        ports = ctx.ports()
        key = _signature(frag, ports, len(ctx.inputs), list(ctx.mems.values()))
        if key not in self._types:
            self._types[key] = (f"{self.module_name}_fu{len(self._types)}", ports)
            self.modules.append((*self._types[key], frag))
        name, tports = self._types[key]

        def outside(x):
            if not isinstance(x, tuple):
                return x
            return self._tap(m, x[1], x[2]) if x[0] == "tap" else self._ctl_field(m, x[1], x[2])
        dirs = ["i"] * len(ctx.inputs) + ["o"] * len(ctx.outputs)
        args = [(d, tp.name, outside(x)) for d, (_, x), tp in zip(dirs, ctx.inputs + ctx.outputs, tports)]
        args += [("i", "clk", ClockSignal("sync")), ("i", "rst", ResetSignal("sync"))]
        m.submodules[f"{self.prefix}fu_" + "_".join(str(x) for x in ctx.fu)] = Instance(name, *args)


def _local_name(nid: str, n, fu) -> str:
    """FU-independent name of a node inside its FU module: op_X, mul, add, add_t3, acc, wag_Y, wr_Y."""
    if n.kind in ("wag", "wr"):
        return f"{n.kind}_{n.attrs['tensor']}"
    return _san(nid.replace(str(fu), ""))


def _signature(frag, ports, n_inputs, memories) -> str:
    """The module up to signal names: statements, port order and direction, signal shapes and initial
    values, memories and their ports (every signal is renamed to its order of first appearance). A
    signal left out of the renaming makes the module unique rather than wrongly shared."""
    order, seen, driven = [], set(), {id(s) for s in ports[:n_inputs] + ports[-2:]}

    def add(sigs):
        for s in sigs:
            if id(s) not in seen:
                seen.add(id(s))
                order.append(s)
    add(ports)
    stmts = [(d, frag.statements[d]) for d in sorted(frag.statements)]
    for _, ss in stmts:
        for st in ss:
            lhs = st._lhs_signals()
            driven.update(id(s) for s in lhs)
            add(lhs)
            add(st._rhs_signals())
    for mem in memories:
        driven.update(id(x.data) for x in mem.read_ports)
        driven.update(id(x.en) for x in mem.read_ports if isinstance(x.en, Signal))   # its own, init 1
        for port in mem.read_ports + mem.write_ports:
            add([port.addr, port.data] + ([port.en] if isinstance(port.en, Signal) else []))
    # every value the module reads is a port or its own: a stray reference to a signal of the top would
    # otherwise be converted as an undriven wire
    assert all(id(s) in driven for s in order), [s.name for s in order if id(s) not in driven]
    names = [s.name for s in order]
    try:
        for k, s in enumerate(order):
            s.name = f"s{k}:{s.shape()!r}:{s.init}:{int(s.reset_less)}"
        parts = [repr(stmts), repr((n_inputs, [s.name for s in ports]))]
        for mem in memories:
            parts.append(repr((mem.shape, mem.depth, list(mem.init))))
            parts += [repr(("r", x.domain, x.addr, x.data, x.en, [mem.write_ports.index(y) for y in x.transparent_for]))
                      for x in mem.read_ports]
            parts += [repr(("w", x.domain, x.addr, x.data, x.en)) for x in mem.write_ports]
        text = "\n".join(parts)
        return text if _UNNAMED.search(text) is None else f"unique {id(frag)}"
    finally:
        for s, name in zip(order, names):
            s.name = name

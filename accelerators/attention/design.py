"""The attention accelerator's RTL: two lego-generated arrays (S = Q·Kᵀ and O = P·V, from their affine nests, same dataflow
set) joined by the bit-exact fixed-point SoftmaxUnit, sequenced by a small FSM.

Phases: QK array → for each row i: stream S[i,:] out of the QK output banks (LayoutWalker) into the
softmax, write P[i,:] into the PV input banks (LayoutWalker) → PV array.  Cycle count is a fixed
function of the two arrays' graph-derived cycles and ``softmax_cycles(L)`` (see ``cycles``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Elaboratable, Module, Mux, Signal, signed

from lego.affine.library import attention_stages
from lego.design import ArrayDesign, build_array
from lego.emit import design_file
from lego.emit import files as F
from lego.emit.array import ArrayCore
from lego.emit.walker import LayoutWalker
from lego.errors import LegoError
from lego.units.softmax import SoftmaxUnit, softmax_cycles
from sw_reference.attention import PB, SCALES, attention_mult

from ..base import Build

TOP = "lego_attention"


@dataclass
class AttentionDesign:
    L: int
    D: int
    qk: ArrayDesign
    pv: ArrayDesign
    mult: int

    def cycles(self, mode: int) -> int:
        """start → done: QK array, one cycle to hand over, L back-to-back softmax rows (the unit's
        fixed row period), one cycle to hand over, PV array."""
        return self.qk.cycles[mode] + 1 + self.L * softmax_cycles(self.L) + 1 + self.pv.cycles[mode]


def build_design(cfg) -> AttentionDesign:
    """The two arrays of ``cfg`` (AttentionConfig), through lego's front end and back end."""
    sh = {"L": cfg.L, "D": cfg.D}
    qk, pv = attention_stages(sh, cfg.bits)
    d1 = build_array(qk, tuple(cfg.array), tuple(cfg.dataflows), cfg.opt)
    d2 = build_array(pv, tuple(cfg.array), tuple(cfg.dataflows), cfg.opt)
    return AttentionDesign(cfg.L, cfg.D, d1, d2, attention_mult(cfg.D))


class AttentionTop(Elaboratable):
    """Host ports as ArrayTop: ``ld_tensor`` 0 = Q, 1 = K (QK array banks), 2 = V (PV array banks);
    ``rd_*`` reads O from the PV array's output banks."""

    def __init__(self, ad: AttentionDesign):
        self.ad = ad
        self.c1 = ArrayCore(ad.qk.arch, ad.qk.pg, prefix="qk_", host_read="comb")
        self.c2 = ArrayCore(ad.pv.arch, ad.pv.pg, prefix="pv_", host_read="comb")
        self.sm = SoftmaxUnit(ad.L, ad.mult, pb=PB, in_bits=self.c1.acc_bits)   # S at its inferred width
        self.nmodes = len(ad.qk.arch.modes)
        self.start = Signal()
        self.mode = Signal(range(max(2, self.nmodes)))
        self.busy = Signal()
        self.done = Signal()
        self.cycles = Signal(32)
        nb = max([n for n, _ in self.c1.in_banks.values()] + [n for n, _ in self.c2.in_banks.values()] +
                 [self.c2.out_banks[0]])
        ab = max(self.c1.abits, self.c2.abits)
        self.ld_en = Signal()
        self.ld_tensor = Signal(2)
        self.ld_bank = Signal(range(max(2, nb)))
        self.ld_addr = Signal(ab)
        self.ld_data = Signal(signed(8))
        self.rd_bank = Signal(range(max(2, self.c2.out_banks[0])))
        self.rd_addr = Signal(self.c2.abits)
        self.rd_data = Signal(signed(32))

    def ports(self):
        return [self.start, self.mode, self.busy, self.done, self.cycles, self.ld_en, self.ld_tensor,
                self.ld_bank, self.ld_addr, self.ld_data, self.rd_bank, self.rd_addr, self.rd_data]

    def elaborate(self, platform):
        m = Module()
        c1, c2, sm, ad = self.c1, self.c2, self.sm, self.ad
        c1.elaborate_into(m)
        c2.elaborate_into(m)
        m.submodules.softmax = sm
        L = ad.L
        # host loads: Q, K -> c1; V -> c2
        for ti, (core, name) in enumerate([(c1, "Q"), (c1, "K"), (c2, "V")]):
            for b, wp in enumerate(core.in_wr[name]):
                m.d.comb += [wp.addr.eq(self.ld_addr), wp.data.eq(self.ld_data),
                             wp.en.eq(self.ld_en & (self.ld_tensor == ti) & (self.ld_bank == b))]
        oword = Signal(c2.acc_bits)
        for b, rp in enumerate(c2.out_rd):
            m.d.comb += c2.out_raddr[b].eq(self.rd_addr)
            with m.If(self.rd_bank == b):
                m.d.comb += oword.eq(rp.data)
        m.d.comb += self.rd_data.eq(c2.read_word(oword))
        # walkers per mode over S (QK output layout) and P (PV input layout)
        sw = [LayoutWalker(md.nets["S"].layout, f"sw{md.index}") for md in ad.qk.arch.modes]
        pw = [LayoutWalker(md.nets["P"].layout, f"pw{md.index}") for md in ad.pv.arch.modes]
        for wk in sw + pw:
            m.d.comb += wk.comb()
        mode_r = Signal.like(self.mode)
        s_word = Signal(signed(c1.acc_bits))
        s_raw = Signal(c1.acc_bits)
        for i, wk in enumerate(sw):
            with m.If(mode_r == i):
                for b, rp in enumerate(c1.out_rd):
                    with m.If(wk.bank == b):
                        m.d.comb += [c1.out_raddr[b].eq(wk.addr), s_raw.eq(rp.data)]
        m.d.comb += s_word.eq(c1.read_word(s_raw))
        # P writes: every bank of the P layout for a replicated layout, else the walker's bank
        pwr = c2.in_wr["P"]
        for i, wk in enumerate(pw):
            with m.If(mode_r == i):
                for b, wp in enumerate(pwr):
                    sel = 1 if wk.lay.replicated else (wk.bank == b)
                    m.d.comb += [wp.addr.eq(wk.addr), wp.data.eq(sm.out_data),
                                 wp.en.eq(sm.out_valid & sel & (b < wk.lay.nbanks))]
        cyc = Signal(32)
        row = Signal(range(L + 1))
        col = Signal(range(L + 1))
        m.d.comb += [c1.mode.eq(Mux(self.busy, mode_r, self.mode)), c2.mode.eq(mode_r)]
        with m.If(self.busy):
            m.d.sync += cyc.eq(cyc + 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), self.done.eq(0), cyc.eq(0), mode_r.eq(self.mode),
                                 row.eq(0), col.eq(0)]
                    for wk in sw + pw:
                        m.d.sync += wk.reset()
                    m.d.comb += c1.start.eq(1)
                    m.next = "QK"
            with m.State("QK"):
                with m.If(c1.done & ~c1.busy):
                    m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [sm.in_valid.eq(1), sm.in_data.eq(s_word)]
                with m.If(sm.in_ready):
                    for i, wk in enumerate(sw):
                        with m.If(mode_r == i):
                            wk.advance(m)
                    m.d.sync += col.eq(col + 1)
                    with m.If(col == L - 1):
                        m.d.sync += col.eq(0)
                        m.next = "SOFT"
            with m.State("SOFT"):
                with m.If(sm.out_valid):
                    for i, wk in enumerate(pw):
                        with m.If(mode_r == i):
                            wk.advance(m)
                    with m.If(sm.out_index == L - 1):
                        m.d.sync += row.eq(row + 1)
                        with m.If(row == L - 1):
                            m.d.comb += c2.start.eq(1)
                            m.next = "PV"
                        with m.Else():
                            m.next = "FEED"
            with m.State("PV"):
                with m.If(c2.done & ~c2.busy):
                    m.d.sync += [self.busy.eq(0), self.done.eq(1), self.cycles.eq(cyc + 1)]
                    m.next = "IDLE"
        return m


def design_doc(ad: AttentionDesign) -> dict:
    """DIR/design.json of an attention design: both arrays after every pass (lego.emit.design_file)."""
    return {"schema": design_file.DESIGN_SCHEMA, "kind": "attention", "L": ad.L, "D": ad.D, "mult": ad.mult,
            "qk": design_file.dump(ad.qk), "pv": design_file.dump(ad.pv)}


def read_design(design_dir: Path) -> AttentionDesign:
    """The design of a generated directory, as written: no front end, no LP."""
    p = Path(design_dir) / design_file.FILE
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        raise LegoError(f"'{design_dir}' has no readable {design_file.FILE} (regenerate it)") from None
    if doc.get("kind") != "attention" or doc.get("schema") != design_file.DESIGN_SCHEMA:
        raise LegoError(f"{p}: not an attention design of schema {design_file.DESIGN_SCHEMA} (regenerate it)")
    return AttentionDesign(int(doc["L"]), int(doc["D"]), design_file.load(doc["qk"]), design_file.load(doc["pv"]),
                           int(doc["mult"]))


def build_files(cfg) -> Build:
    """Verilog, manifest, report and tb/ of ``cfg`` for the shared directory writer."""
    from lego.generate import to_verilog

    ad = build_design(cfg)
    top = AttentionTop(ad)
    verilog = to_verilog(top, TOP)
    modes = {md.df.name: md.index for md in ad.qk.arch.modes}
    man = {
        "workload": "attention", "shape": {"L": ad.L, "D": ad.D}, "dataflows": list(modes),
        "array": list(cfg.array), "bits": cfg.bits, "opt": cfg.opt, "ports": F.port_list(top),
        "tensors": {"Q": {"shape": [ad.L, ad.D], "dtype": "int8", "role": "input", "bits": 8, "scale": SCALES["Q"]},
                    "K": {"shape": [ad.L, ad.D], "dtype": "int8", "role": "input", "bits": 8, "scale": SCALES["K"]},
                    "V": {"shape": [ad.L, ad.D], "dtype": "int8", "role": "input", "bits": 8, "scale": SCALES["V"]},
                    "O": {"shape": [ad.L, ad.D], "dtype": "int32", "role": "output", "bits": 32,
                          "scale": SCALES["V"] / 2 ** PB}},
        "modes": modes,
        "softmax": {"mult": ad.mult, "shift": 16, "pb": PB, "score_scale": "sq*sk/sqrt(D)"},
        "layouts": {"qk": F.layout_doc(ad.qk.arch), "pv": F.layout_doc(ad.pv.arch)},
        "cycles_predicted": {md.df.name: ad.cycles(md.index) for md in ad.qk.arch.modes},
        "ld_tensor": {"Q": 0, "K": 1, "V": 2},
        "host": {"reset": {"polarity": "high", "synchronous": True, "min_cycles": 1}, "rd_latency": 0,
                 "ld_latency": 1},
        "config": cfg.to_dict(),
    }
    r1, r2 = F.report(ad.qk, top.c1.emitted_bits), F.report(ad.pv, top.c2.emitted_bits)
    rep = {"stages": {"qk": r1, "pv": r2}, "softmax": {"cycles_per_row": softmax_cycles(ad.L)},
           "registers": {k: r1["registers"][k] + r2["registers"][k] for k in r1["registers"]},
           "links": {k: r1["links"][k] + r2["links"][k] for k in r1["links"]},
           "memory": {"banks": {**r1["memory"]["banks"], **r2["memory"]["banks"]}},
           "mux_inputs": r1["mux_inputs"] + r2["mux_inputs"],
           "lp": {k: (r1["lp"][k] or 0) + (r2["lp"][k] or 0) for k in ("variables", "constraints", "solve_seconds")},
           "cycles": {"predicted": man["cycles_predicted"]}, "fus": r1["fus"] + r2["fus"]}
    return Build(top=TOP, sources={f"{TOP}.v": verilog}, manifest=man, report=rep, tb=F.tb_files(),
                 extra={design_file.FILE: json.dumps(design_doc(ad), separators=(",", ":")) + "\n",
                        "config.yaml": cfg.to_yaml_text()},
                 summary=f"top {TOP}, 2 arrays of {r1['fus']} FUs + softmax, cycles {man['cycles_predicted']}")

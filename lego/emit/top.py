"""Top level of a single-array design: the host load/read ports around an ArrayCore."""
from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Mux, Signal, signed

from .array import ArrayCore
from .hier import HierArrayCore


class ArrayTop(Elaboratable):
    """Ports (all synchronous to ``clk``; ``rst`` is synchronous, active high):

    * ``start`` (in): pulse for one cycle to run the loaded workload in dataflow ``mode``.
    * ``mode`` (in): dataflow select of a fused design (``manifest.modes``).
    * ``busy``/``done`` (out): ``done`` rises when the last output is written, stays high until ``start``.
    * ``cycles`` (out, 32): cycles from ``start`` to ``done`` of the last run.
    * ``ld_en, ld_tensor, ld_bank, ld_addr, ld_data`` (in): host write of one input-bank word per cycle.
    * ``rd_bank, rd_addr`` (in) → ``rd_data`` (out): host read of the output banks while not ``busy``;
      ``rd_data`` holds the word addressed before the last rising edge (synchronous, one cycle).
    """

    def __init__(self, arch, pg, name: str | None = None):
        # with a module name, each FU type becomes a module of its own (``modules()``, see emit/hier.py)
        self.core = HierArrayCore(arch, pg, name) if name else ArrayCore(arch, pg)
        c = self.core
        w = arch.workload
        self.nin = len(w.inputs)
        self.ld_en = Signal()
        self.ld_tensor = Signal(range(max(2, self.nin)))
        nbmax = max([nb for nb, _ in c.in_banks.values()] + [c.out_banks[0]])
        self.ld_bank = Signal(range(max(2, nbmax)))
        self.ld_addr = Signal(c.abits)
        # the widest bank word: an input's own bits (two's complement or plain binary), never its value range
        self.ld_data = Signal(max(t.bits for t in w.inputs))
        self.rd_bank = Signal(range(max(2, c.out_banks[0])))
        self.rd_addr = Signal(c.abits)
        self.rd_data = Signal(signed(w.output.bits))

    def ports(self):
        c = self.core
        return [c.start, c.mode, c.busy, c.done, c.cycles_out, self.ld_en, self.ld_tensor, self.ld_bank,
                self.ld_addr, self.ld_data, self.rd_bank, self.rd_addr, self.rd_data]

    def modules(self):
        """[(name, ports, fragment)] of the FU modules, known once the top is elaborated."""
        return getattr(self.core, "modules", [])

    def elaborate(self, platform):
        m = Module()
        c = self.core
        c.elaborate_into(m)
        for ti, t in enumerate(c.arch.workload.inputs):
            for b, wp in enumerate(c.in_wr[t.name]):
                m.d.comb += [wp.addr.eq(self.ld_addr), wp.data.eq(self.ld_data),
                             wp.en.eq(self.ld_en & (self.ld_tensor == ti) & (self.ld_bank == b))]
        word = Signal(c.acc_bits)
        bank_r = Signal.like(self.rd_bank)                  # the bank of the word the read ports hold
        m.d.sync += bank_r.eq(self.rd_bank)
        m.d.comb += [a.eq(self.rd_addr) for a in c.out_raddr]
        with m.Switch(bank_r):
            for b, rp in enumerate(c.out_rd):
                with m.Case(b):
                    m.d.comb += word.eq(rp.data)
        m.d.comb += self.rd_data.eq(c.read_word(word))     # sign-extended to the output width
        return m

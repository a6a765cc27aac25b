"""lego/units/wrapper.py: units' ports come out as top-level ports (named with or without the unit prefix),
wired straight through, in io() order; the Verilog has exactly those ports."""
import os

import pytest
from amaranth import Elaboratable, Module, Signal, signed
from amaranth.back import verilog
from amaranth.sim import Simulator

from lego.units.wrapper import Wrapper


class Acc(Elaboratable):
    """acc += a on every en (a registered accumulator)."""

    def __init__(self, w=8):
        self.en, self.a, self.acc = Signal(name="en"), Signal(signed(w), name="a"), Signal(signed(w + 2), name="acc")

    def io(self):
        return [(self.en, "i"), (self.a, "i"), (self.acc, "o")]

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.acc.eq(self.acc + self.a)
        return m


def test_prefixed_ports_and_doc():
    w = Wrapper({"x": Acc(), "y": Acc(4)})
    assert [s.name for s in w.ports()] == ["x_en", "x_a", "x_acc", "y_en", "y_a", "y_acc"]
    doc = w.port_doc()
    assert doc[:2] == [{"name": "clk", "direction": "in", "width": 1, "signed": False},
                       {"name": "rst", "direction": "in", "width": 1, "signed": False}]
    assert doc[2:5] == [{"name": "x_en", "direction": "in", "width": 1, "signed": False},
                        {"name": "x_a", "direction": "in", "width": 8, "signed": True},
                        {"name": "x_acc", "direction": "out", "width": 10, "signed": True}]
    assert doc[-1] == {"name": "y_acc", "direction": "out", "width": 6, "signed": True}
    for u in (w, *w.units.values()):   # never elaborated: no UnusedElaboratable warning
        u._MustUse__silence = True


def test_unprefixed_and_duplicates():
    w = Wrapper({"x": Acc()}, prefix=False)
    assert [s.name for s in w.ports()] == ["en", "a", "acc"]
    w._MustUse__silence = w.units["x"]._MustUse__silence = True
    units = {"x": Acc(), "y": Acc()}
    with pytest.raises(ValueError, match="'en' appears twice"):
        Wrapper(units, prefix=False)
    for u in units.values():           # never elaborated: no UnusedElaboratable warning
        u._MustUse__silence = True


def test_verilog_ports():
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    w = Wrapper({"x": Acc()}, prefix=False)
    text = verilog.convert(w, name="wrapped", ports=w.ports(), emit_src=False)
    head = text[text.index("module wrapped("):].split(";", 1)[0]
    assert sorted(p.strip() for p in head[len("module wrapped("):].rstrip(")").split(",")) == \
        ["a", "acc", "clk", "en", "rst"]
    assert "input [7:0] a;" in text and "output [9:0] acc;" in text and "input en;" in text


def test_wired_through():
    w = Wrapper({"x": Acc()})
    en, a, acc = w.ports()
    sim = Simulator(w)
    sim.add_clock(1e-6)

    async def bench(ctx):
        total = 0
        for v in (3, -5, 7, 0, -1):
            ctx.set(en, 1)
            ctx.set(a, v)
            await ctx.tick()
            total += v
            assert ctx.get(acc) == total
        ctx.set(en, 0)
        await ctx.tick()
        assert ctx.get(acc) == total

    sim.add_testbench(bench)
    sim.run()

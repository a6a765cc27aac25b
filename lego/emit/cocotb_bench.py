"""cocotb bench for a lego design (copied into DIR/tb/). Data-driven by a JSON plan:

``{"mode": int, "loads": [[tensor, bank, addr, value], ...], "reads": [[bank, addr], ...],
   "expected": [...] | null, "expected_cycles": int | null, "timeout": int}``

Env: ``LEGO_PLAN`` (plan path), ``LEGO_RESULT`` (result JSON written here).
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


@cocotb.test()
async def run_plan(dut):
    with open(os.environ["LEGO_PLAN"]) as f:
        plan = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in ("start", "ld_en", "ld_tensor", "ld_bank", "ld_addr", "ld_data", "rd_bank", "rd_addr", "mode"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    for t, b, a, v in plan["loads"]:
        dut.ld_en.value = 1
        dut.ld_tensor.value = t
        dut.ld_bank.value = b
        dut.ld_addr.value = a
        dut.ld_data.value = v
        await FallingEdge(dut.clk)
    dut.ld_en.value = 0
    dut.mode.value = plan["mode"]
    dut.start.value = 1
    await RisingEdge(dut.clk)          # the start edge (E0)
    await FallingEdge(dut.clk)
    dut.start.value = 0
    counted = 0
    limit = plan.get("timeout", 1_000_000)
    while True:
        await RisingEdge(dut.clk)
        counted += 1
        await ReadOnly()
        if int(dut.done.value) == 1:
            break
        assert counted < limit, f"no done after {limit} cycles"
    cycles_reg = int(dut.cycles.value)
    await FallingEdge(dut.clk)
    outs = []
    for b, a in plan["reads"]:
        dut.rd_bank.value = b
        dut.rd_addr.value = a
        await ReadOnly()
        outs.append(dut.rd_data.value.to_signed())
        await FallingEdge(dut.clk)
    res = {"cycles": counted, "cycles_reg": cycles_reg, "outputs": outs}
    if os.environ.get("LEGO_RESULT"):
        with open(os.environ["LEGO_RESULT"], "w") as f:
            json.dump(res, f)
    if plan.get("expected") is not None:
        bad = [i for i, (x, y) in enumerate(zip(outs, plan["expected"])) if x != y]
        assert not bad, f"{len(bad)} output mismatches, first at flat index {bad[0]}: rtl {outs[bad[0]]} != ref {plan['expected'][bad[0]]}"
    if plan.get("expected_cycles") is not None:
        assert counted == plan["expected_cycles"] == cycles_reg, \
            f"cycles: counted {counted}, register {cycles_reg}, predicted {plan['expected_cycles']}"

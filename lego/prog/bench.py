"""cocotb bench of a programmable lego array (copied into DIR/tb/prog_bench.py): cocotbext-axi's AxiRam is
the DRAM on the design's AXI4 master port, with ``latency`` extra cycles before each read burst's data and
each write response; the command stream is fed on cmd_valid/cmd_ready, the next command presented in the
cycle after the previous one was accepted. A watchdog fails a run where no command is accepted for
``watchdog`` cycles and names the last accepted command and the one it waits on.

Plan (``LEGO_PLAN``, JSON): {"commands": [int...], "names": [str...], "dram_size": int,
"dram_file": path (bytes loaded at address 0), "latency": int, "watchdog": int, "reads": [[addr, n]...]}.
Result (``LEGO_RESULT``): {"cycles": int, "cycles_reg": int, "accepted": int, "reads": [hex...],
"error": str | null}.
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam


def add_latency(ram, clk, latency):
    """``latency`` rising edges between accepting a read address and sending its data, and between the last
    write beat and the write response (docs/programmable.md, DRAM model)."""
    if not latency:
        return
    rd, wr = ram.read_if, ram.write_if
    recv, send = rd.ar_channel.recv, wr.b_channel.send

    async def delayed_recv():
        ar = await recv()
        await ClockCycles(clk, latency)
        return ar

    async def delayed_send(b):
        await ClockCycles(clk, latency)
        await send(b)
    rd.ar_channel.recv = delayed_recv
    wr.b_channel.send = delayed_send


@cocotb.test()
async def run_program(dut):
    with open(os.environ["LEGO_PLAN"]) as f:
        plan = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.cmd_valid.value = 0
    dut.cmd_data.value = 0
    dut.rst.value = 1
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=plan["dram_size"])
    add_latency(ram, dut.clk, plan["latency"])
    with open(plan["dram_file"], "rb") as f:
        ram.write(0, f.read())
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    cmds, names = plan["commands"], plan["names"]
    n, counted, started, idle, error = 0, 0, False, 0, None
    while True:
        if n < len(cmds):
            dut.cmd_valid.value = 1
            dut.cmd_data.value = cmds[n]
        else:
            dut.cmd_valid.value = 0
        await ReadOnly()
        accept = n < len(cmds) and int(dut.cmd_ready.value) == 1
        await RisingEdge(dut.clk)
        if started:
            counted += 1
        if accept:
            started = True
            n += 1
            idle = 0
        else:
            idle += 1
        await ReadOnly()
        if n == len(cmds) and int(dut.done.value) == 1:
            break
        if idle > plan["watchdog"]:
            last = f"#{n - 1} {names[n - 1]}" if n else "none"
            wait = f"#{n} {names[n]}" if n < len(cmds) else "done"
            units = []
            for u in ("ld_busy", "cp_busy", "st_busy"):
                try:
                    units.append(f"{u}={int(getattr(dut, u).value)}")
                except (AttributeError, ValueError):
                    pass
            error = (f"watchdog: no command accepted for {plan['watchdog']} cycles; last accepted command {last}, "
                     f"waiting on {wait} ({', '.join(units)})")
            break
        await FallingEdge(dut.clk)
    cycles_reg = int(dut.cycles.value)
    reads = [ram.read(a, k).hex() for a, k in plan["reads"]] if error is None else []
    if os.environ.get("LEGO_RESULT"):
        with open(os.environ["LEGO_RESULT"], "w") as f:
            json.dump({"cycles": counted, "cycles_reg": cycles_reg, "accepted": n, "reads": reads, "error": error}, f)
    assert error is None, error

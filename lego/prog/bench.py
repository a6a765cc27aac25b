"""cocotb bench of a programmable lego array (copied into DIR/tb/prog_bench.py): the DRAM on the design's AXI4
master port is cocotbext-axi's AxiRamWrite (``latency`` extra cycles before each write response) and
``PipelinedRead`` (every read address accepted at once, its data ``latency`` extra cycles later, in order); the command stream is fed on cmd_valid/cmd_ready, the next command presented in the
cycle after the previous one was accepted. A watchdog fails a run where no command is accepted for
``watchdog`` cycles and names the last accepted command and the one it waits on.

Plan (``LEGO_PLAN``, JSON): {"commands": [int...], "names": [str...], "dram_size": int,
"dram_file": path (bytes loaded at address 0), "latency": int, "watchdog": int, "reads": [[addr, n]...],
"beat_cycles": int (optional, default 1: the read bandwidth, a beat at most every ``beat_cycles`` cycles)}.
Result (``LEGO_RESULT``): {"cycles": int, "cycles_reg": int, "accepted": int, "reads": [hex...],
"error": str | null}.
"""
import json
import os
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRamWrite


def add_latency(ram, clk, latency):
    """``latency`` rising edges between the last write beat and the write response (docs/programmable.md,
    DRAM model)."""
    if not latency:
        return
    wr = ram
    send = wr.b_channel.send

    async def delayed_send(b):
        await ClockCycles(clk, latency)
        await send(b)
    wr.b_channel.send = delayed_send


class PipelinedRead:
    """The DRAM's read side, with pipelined latency: ARREADY stays high (up to ``depth`` bursts queued), so
    every read address is accepted at the edge after ARVALID rises; the first beat of a burst accepted at
    edge ``a`` can be captured at edge ``a + 2 + latency`` at the earliest and after the previous burst's
    last beat; beats go in order (single ID), one per cycle while RREADY is high, RVALID stays high through
    a burst once its first beat is shown. With ``beat_cycles`` D > 1 (a read bandwidth of bus words / D
    64-bit words per cycle, ``--dram-bw``) no beat is shown before D edges after the previous beat's capture
    (RVALID low in between, within a burst too); once shown, RVALID stays high until the beat is captured.
    ``mem``: bytes at address 0 (``read(addr, n)``)."""

    def __init__(self, dut, clk, mem, latency: int, depth: int = 256, prefix: str = "m_axi", beat_cycles: int = 1):
        self.dut, self.clk, self.mem, self.latency, self.depth = dut, clk, mem, latency, depth
        self.beat_cycles = beat_cycles
        self.s = {n: getattr(dut, f"{prefix}_{n}") for n in ("arvalid", "arready", "araddr", "arlen", "rvalid",
                                                                "rready", "rdata", "rlast", "rid", "rresp")}
        self.bb = len(self.s["rdata"]) // 8

    async def run(self):
        s, bb = self.s, self.bb
        s["arready"].value = 1
        s["rvalid"].value = 0
        s["rlast"].value = 0
        s["rdata"].value = 0
        s["rid"].value = 0
        s["rresp"].value = 0
        q = deque()                     # [edge the first beat may be captured, next beat address, beats left]
        t = 0
        last = -self.beat_cycles        # edge of the last beat's capture
        while True:
            await ReadOnly()
            try:
                ar = int(s["arvalid"].value) == 1 and int(s["arready"].value) == 1
                r = int(s["rvalid"].value) == 1 and int(s["rready"].value) == 1
                req = (int(s["araddr"].value), int(s["arlen"].value) + 1) if ar else None
            except ValueError:          # X/Z during reset
                ar = r = False
            await RisingEdge(self.clk)
            t += 1
            if ar:
                q.append([t + 2 + self.latency, req[0], req[1]])
            if r:
                last = t
                q[0][1] += bb
                q[0][2] -= 1
                if not q[0][2]:
                    q.popleft()
            if q and q[0][0] <= t + 1 and t + 1 >= last + self.beat_cycles:
                s["rvalid"].value = 1
                s["rdata"].value = int.from_bytes(self.mem.read(q[0][1], bb), "little")
                s["rlast"].value = int(q[0][2] == 1)
            else:
                s["rvalid"].value = 0
                s["rlast"].value = 0
            s["arready"].value = int(len(q) < self.depth)


@cocotb.test()
async def run_program(dut):
    with open(os.environ["LEGO_PLAN"]) as f:
        plan = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.cmd_valid.value = 0
    dut.cmd_data.value = 0
    dut.rst.value = 1
    ram = AxiRamWrite(AxiBus.from_prefix(dut, "m_axi").write, dut.clk, dut.rst, size=plan["dram_size"])
    add_latency(ram, dut.clk, plan["latency"])
    with open(plan["dram_file"], "rb") as f:
        ram.write(0, f.read())
    cocotb.start_soon(PipelinedRead(dut, dut.clk, ram, plan["latency"], beat_cycles=plan.get("beat_cycles", 1)).run())
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

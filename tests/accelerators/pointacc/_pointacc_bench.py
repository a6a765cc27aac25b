"""Shared cocotb side of the PointAcc unit benches (mapping_bench.py, mmu_bench.py): several units of one
generated top (ports ``<prefix>_*``) run concurrently from a JSON stimulus (``$<NAME>_STIM``), each
unit's records written to a JSON result (``$<NAME>_RESULT``)."""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


async def run_units(dut, name: str, zeroed, run_unit, release_at_falling_edge: bool = True) -> None:
    """Start the 10 ns clock, drive each unit's ports ``zeroed`` to 0, hold rst for 3 rising edges
    (released at the next falling edge, or at once where not ``release_at_falling_edge``), then run
    ``run_unit(dut, unit, records)`` for every unit concurrently and write ``{"units": records}``."""
    with open(os.environ[f"{name}_STIM"]) as fh:
        stim = json.load(fh)
    Clock(dut.clk, 10, unit="ns").start()
    for u in stim["units"]:
        for port in zeroed:
            getattr(dut, f"{u['prefix']}_{port}").value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    if release_at_falling_edge:
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    results = [[] for _ in stim["units"]]
    tasks = [cocotb.start_soon(run_unit(dut, u, results[i])) for i, u in enumerate(stim["units"])]
    for t in tasks:
        await t
    with open(os.environ[f"{name}_RESULT"], "w") as fh:
        json.dump({"units": results}, fh)

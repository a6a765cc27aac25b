"""cocotb bench for tests/units/test_softmax_rtl.py: drives several SoftmaxUnit instances (ports
prefixed ``u<k>_``) concurrently from a JSON stimulus file and records what they did in a JSON result
file. The checks against sw_reference.softmax_fx are made by the pytest side; this bench only fails on
protocol errors it cannot record (a timeout).

Timing convention: cycle k runs from rising edge k to rising edge k+1. Outputs are sampled and inputs
driven at the falling edge inside the cycle; a score driven in cycle k is accepted when in_ready is
high in cycle k (in_ready depends on the unit's state only).
"""
from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


def _sig(dut, k, name):
    return getattr(dut, f"u{k}_{name}")


@cocotb.test()
async def softmax_rows(dut):
    with open(os.environ["SOFTMAX_STIM"]) as fh:
        stim = json.load(fh)
    units = stim["units"]
    Clock(dut.clk, 10, unit="ns").start()
    for k in range(len(units)):
        _sig(dut, k, "in_valid").value = 0
        _sig(dut, k, "in_data").value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    rng = random.Random(stim["seed"])
    state = []
    for u in units:
        state.append({"row": 0, "pos": 0, "rows": [
            {"first_accept": None, "last_accept": None, "outs": [], "out_cycles": []}
            for _ in u["rows"]], "orow": 0, "busy_trace": []})
    total_out = sum(len(u["rows"]) * u["L"] for u in units)
    seen = 0
    cycle = 0
    max_cycles = stim["max_cycles"]
    while seen < total_out:
        if cycle >= max_cycles:
            raise AssertionError(f"timeout after {cycle} cycles ({seen}/{total_out} outputs)")
        await FallingEdge(dut.clk)
        for k, u in enumerate(units):
            st = state[k]
            # ---- sample this cycle's outputs ----
            if int(_sig(dut, k, "out_valid").value):
                r = st["rows"][st["orow"]]
                r["outs"].append([int(_sig(dut, k, "out_index").value), int(_sig(dut, k, "out_data").value)])
                r["out_cycles"].append(cycle)
                seen += 1
                if len(r["outs"]) == u["L"]:
                    st["orow"] += 1
            st["busy_trace"].append(int(_sig(dut, k, "busy").value))
            # ---- drive this cycle's input ----
            ready = int(_sig(dut, k, "in_ready").value)
            valid = 0
            if st["row"] < len(u["rows"]):
                gap = u["gappy"][st["row"]] and rng.random() < 0.35
                if not gap:
                    valid = 1
                    _sig(dut, k, "in_data").value = u["rows"][st["row"]][st["pos"]]
                    if ready:
                        r = st["rows"][st["row"]]
                        if r["first_accept"] is None:
                            r["first_accept"] = cycle
                        r["last_accept"] = cycle
                        st["pos"] += 1
                        if st["pos"] == u["L"]:
                            st["row"], st["pos"] = st["row"] + 1, 0
            _sig(dut, k, "in_valid").value = valid
        cycle += 1
    for _ in range(4):          # a few idle cycles: no stray out_valid
        await FallingEdge(dut.clk)
        for k in range(len(units)):
            state[k]["busy_trace"].append(int(_sig(dut, k, "busy").value))
            assert not int(_sig(dut, k, "out_valid").value), f"u{k}: stray out_valid"
    result = {"cycles": cycle, "units": [{"rows": st["rows"], "busy_trace": st["busy_trace"]}
                                         for st in state]}
    with open(os.environ["SOFTMAX_RESULT"], "w") as fh:
        json.dump(result, fh)

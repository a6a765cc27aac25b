"""Shared cocotb side of the unit benches (``*_bench.py`` here): the JSON stimulus/result files, clock and
reset, and the row streamer of the row units (LayerNormUnit, SoftmaxUnit).

A bench ``<name>_bench.py`` reads its stimulus from ``$<NAME>_STIM`` and writes its result to
``$<NAME>_RESULT`` (``_harness.run_bench`` sets both). Units of one generated top have ports ``u<k>_*``.

Timing convention of the row streamer: cycle k runs from rising edge k to rising edge k+1. Outputs are
sampled and inputs driven at the falling edge inside the cycle; an element driven in cycle k is
accepted when in_ready is high in cycle k (in_ready depends on the unit's state only).
"""
from __future__ import annotations

import json
import os
import random

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from lego.emit.cocotb_bench import reset


def sig(dut, k, name):
    """Port ``u<k>_<name>`` of the top."""
    return getattr(dut, f"u{k}_{name}")


def load_stim(name: str) -> dict:
    with open(os.environ[f"{name.upper()}_STIM"]) as fh:
        return json.load(fh)


def save_result(name: str, result: dict) -> None:
    with open(os.environ[f"{name.upper()}_RESULT"], "w") as fh:
        json.dump(result, fh)


async def clock_and_reset(dut, zeroed) -> None:
    """Start the 10 ns clock, drive the ports ``zeroed`` (names on the top) to 0 and hold rst for 3 cycles;
    returns at the falling edge where rst drops."""
    Clock(dut.clk, 10, unit="ns").start()
    for name in zeroed:
        getattr(dut, name).value = 0
    await reset(dut, cycles=3)


async def stream_rows(dut, stim: dict, length: str, inputs: dict[str, str], signed_out: bool) -> dict:
    """Drive every unit's rows (``stim["units"][k]["rows"]``, rows of ``u[length]`` elements) into its
    ``in_*`` ports, with random in_valid bubbles in the rows marked ``gappy``; record each row's first and
    last accept, its ``[out_index, out_data]`` outputs with their cycles, and the busy trace. ``inputs``:
    port -> stimulus key (``{"in_data": "rows"}`` at least). Fails on a timeout or a stray out_valid."""
    units = stim["units"]
    await clock_and_reset(dut, [f"u{k}_{p}" for k in range(len(units)) for p in ("in_valid", *inputs)])
    rng = random.Random(stim["seed"])
    state = []
    for u in units:
        state.append({"row": 0, "pos": 0, "rows": [
            {"first_accept": None, "last_accept": None, "outs": [], "out_cycles": []}
            for _ in u["rows"]], "orow": 0, "busy_trace": []})
    total_out = sum(len(u["rows"]) * u[length] for u in units)
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
            if int(sig(dut, k, "out_valid").value):
                r = st["rows"][st["orow"]]
                data = sig(dut, k, "out_data").value
                r["outs"].append([int(sig(dut, k, "out_index").value), data.to_signed() if signed_out else int(data)])
                r["out_cycles"].append(cycle)
                seen += 1
                if len(r["outs"]) == u[length]:
                    st["orow"] += 1
            st["busy_trace"].append(int(sig(dut, k, "busy").value))
            # ---- drive this cycle's input ----
            ready = int(sig(dut, k, "in_ready").value)
            valid = 0
            if st["row"] < len(u["rows"]):
                gap = u["gappy"][st["row"]] and rng.random() < 0.35
                if not gap:
                    valid = 1
                    for port, key in inputs.items():
                        sig(dut, k, port).value = u[key][st["row"]][st["pos"]]
                    if ready:
                        r = st["rows"][st["row"]]
                        if r["first_accept"] is None:
                            r["first_accept"] = cycle
                        r["last_accept"] = cycle
                        st["pos"] += 1
                        if st["pos"] == u[length]:
                            st["row"], st["pos"] = st["row"] + 1, 0
            sig(dut, k, "in_valid").value = valid
        cycle += 1
    for _ in range(4):          # a few idle cycles: no stray out_valid
        await FallingEdge(dut.clk)
        for k in range(len(units)):
            state[k]["busy_trace"].append(int(sig(dut, k, "busy").value))
            assert not int(sig(dut, k, "out_valid").value), f"u{k}: stray out_valid"
    return {"cycles": cycle, "units": [{"rows": st["rows"], "busy_trace": st["busy_trace"]} for st in state]}

"""cocotb bench for tests/units/test_gelu_rtl.py: drives several GeluUnit instances (ports prefixed
``u<k>_``, data ports flat: lane j in bits [j*w, (j+1)*w)) concurrently from a JSON stimulus file and
records every transfer in a JSON result file. The checks against sw_reference.gelu_fx are made on the
pytest side; this bench only fails on a timeout.

Timing convention: cycle k runs from rising edge k to rising edge k+1. Inputs (in_valid, in_data,
out_ready) are driven at the falling edge inside cycle k; 1 ns later the outputs of cycle k (in_ready,
which depends combinationally on out_ready, out_valid, out_data) are sampled. A beat moves on a port at
the rising edge that ends cycle k when its valid and ready are both high in cycle k.
"""
from __future__ import annotations

import random

import cocotb
from _bench import clock_and_reset, load_stim, save_result, sig as _sig
from cocotb.triggers import FallingEdge, Timer


def pack(vals, w):
    return sum((int(v) & ((1 << w) - 1)) << (i * w) for i, v in enumerate(vals))


def unpack(word, w, n):
    out = []
    for i in range(n):
        v = (word >> (i * w)) & ((1 << w) - 1)
        out.append(v - (1 << w) if v >> (w - 1) else v)
    return out


@cocotb.test()
async def gelu_stream(dut):
    stim = load_stim("gelu")
    units = stim["units"]
    await clock_and_reset(dut, [f"u{k}_{p}" for k in range(len(units))
                                for p in ("in_valid", "in_data", "out_ready")])

    rng = random.Random(stim["seed"])
    st = [{"pos": 0, "accepts": [], "outs": [], "out_cycles": [], "ready_errors": 0, "hold_errors": 0,
           "held": None} for _ in units]
    cycle = 0
    while any(len(s["outs"]) < len(u["beats"]) for s, u in zip(st, units)):
        if cycle >= stim["max_cycles"]:
            raise AssertionError(f"timeout after {cycle} cycles")
        await FallingEdge(dut.clk)
        drive = []
        for k, u in enumerate(units):
            s = st[k]
            ordy = int(rng.random() >= u["stall_p"])
            valid = int(s["pos"] < len(u["beats"]) and rng.random() >= u["gap_p"])
            _sig(dut, k, "out_ready").value = ordy
            _sig(dut, k, "in_valid").value = valid
            if valid:
                _sig(dut, k, "in_data").value = pack(u["beats"][s["pos"]], u["in_bits"])
            drive.append((ordy, valid))
        await Timer(1, unit="ns")
        for k, u in enumerate(units):
            s = st[k]
            ordy, valid = drive[k]
            irdy = int(_sig(dut, k, "in_ready").value)
            ovalid = int(_sig(dut, k, "out_valid").value)
            word = int(_sig(dut, k, "out_data").value)
            if irdy != int((not ovalid) or ordy):
                s["ready_errors"] += 1
            if s["held"] is not None and (not ovalid or word != s["held"]):
                s["hold_errors"] += 1                   # a stalled result changed or vanished
            s["held"] = word if (ovalid and not ordy) else None
            if ovalid and ordy:
                s["outs"].append(unpack(word, u["out_bits"], u["lanes"]))
                s["out_cycles"].append(cycle)
            if valid and irdy:
                s["accepts"].append(cycle)
                s["pos"] += 1
        cycle += 1
    for k in range(len(units)):                          # drain: no stray results
        _sig(dut, k, "in_valid").value = 0
        _sig(dut, k, "out_ready").value = 1
    for _ in range(5):
        await FallingEdge(dut.clk)
        await Timer(1, unit="ns")
        for k in range(len(units)):
            assert not int(_sig(dut, k, "out_valid").value), f"u{k}: stray out_valid"
    keys = ("accepts", "outs", "out_cycles", "ready_errors", "hold_errors")
    save_result("gelu", {"cycles": cycle, "units": [{k2: s[k2] for k2 in keys} for s in st]})

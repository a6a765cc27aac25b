"""cocotb bench for test_pointacc_mapping.py: runs job lists on the MappingUnit instances (ports
``<prefix>_*``) of one generated top, one coroutine per unit, and records per job the output beats,
the ``cycles`` port and the measured cycles. pytest compares them with sw_reference.pointacc and
accelerators.pointacc.cycles.

Timing: inputs are driven and outputs sampled at the falling edge inside a cycle. A job: load the
points (one ld_* write per cycle) unless the job reuses the previous cloud, hold ``start`` for one
cycle (cycle s), then every cycle offer the next query with q_valid high (accepted when q_ready is
high in that cycle) and sample the beats, until ``done`` is seen (cycle d). Measured cycles = d - s - 1
(the rising edges after the start edge, ending with the one at which done rose). ``busy`` must stay high and
``done`` low in between.
"""
from __future__ import annotations

import cocotb
from _pointacc_bench import run_units
from cocotb.triggers import FallingEdge

PARAMS = ("op", "n", "m", "k", "r2", "shift", "ksize", "tstride")


async def run_unit(dut, unit, out):
    pre = unit["prefix"]

    def s(name):
        return getattr(dut, f"{pre}_{name}")

    start, ld_en, ld_addr, ld_data = s("start"), s("ld_en"), s("ld_addr"), s("ld_data")
    q_valid, q_data, q_ready = s("q_valid"), s("q_data"), s("q_ready")
    out_valid, done, busy, cycles = s("out_valid"), s("done"), s("busy"), s("cycles")
    o_idx, o_val, o_off, o_coord, o_flag = s("out_idx"), s("out_val"), s("out_off"), s("out_coord"), s("out_flag")
    limit = unit["max_cycles_per_job"]
    for job in unit["jobs"]:
        rec = {"beats": [], "stray": 0}
        if job["points"] is not None:
            for a, w in enumerate(job["points"]):
                ld_en.value = 1
                ld_addr.value = a
                ld_data.value = w
                await FallingEdge(dut.clk)
            ld_en.value = 0
        for name in PARAMS:
            s(name).value = job["ports"][name]
        start.value = 1
        await FallingEdge(dut.clk)
        start.value = 0
        queries = job["queries"]
        qi = 0
        c = 1                                   # this is cycle s + c
        while True:
            if c > 1:
                await FallingEdge(dut.clk)
            if int(out_valid.value):
                rec["beats"].append([int(o_idx.value), int(o_val.value), int(o_off.value), int(o_coord.value),
                                     int(o_flag.value)])
            if int(done.value):
                assert not int(busy.value), f"{pre}: busy high with done"
                break
            assert int(busy.value), f"{pre}: busy low before done (cycle {c})"
            if qi < len(queries):
                q_valid.value = 1
                q_data.value = queries[qi]
                if int(q_ready.value):
                    qi += 1
            else:
                q_valid.value = 0
            if c > limit:
                raise AssertionError(f"{pre}: job {job['ports']} timed out after {c} cycles")
            c += 1
        q_valid.value = 0
        rec["measured"] = c - 1
        rec["cycles_port"] = int(cycles.value)
        rec["queries_taken"] = qi
        # two idle cycles: no stray beat, done stays high
        for _ in range(2):
            await FallingEdge(dut.clk)
            rec["stray"] += int(out_valid.value)
            assert int(done.value) and not int(busy.value)
        out.append(rec)


@cocotb.test()
async def mapping_jobs(dut):
    await run_units(dut, "MAP", ("start", "ld_en", "q_valid", *PARAMS), run_unit)

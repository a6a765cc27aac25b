"""cocotb bench for test_pointacc_featknn.py: feature kNN (OP_KNNF) jobs on the MappingUnit instances
(ports ``<prefix>_*``) of one generated top. Same timing as mapping_bench.py: a job writes its
feature rows through fld_* (one per cycle, unless it reuses the previous features), holds ``start``
for one cycle (cycle s), offers the next query index every cycle with q_valid high, samples the beats
until ``done`` (cycle d); measured cycles = d - s - 1."""
from __future__ import annotations

import cocotb
from _pointacc_bench import run_units
from cocotb.triggers import FallingEdge

PARAMS = ("op", "n", "m", "k")


async def run_unit(dut, unit, out):
    pre = unit["prefix"]

    def s(name):
        return getattr(dut, f"{pre}_{name}")

    start, fld_en, fld_addr, fld_data = s("start"), s("fld_en"), s("fld_addr"), s("fld_data")
    q_valid, q_data, q_ready = s("q_valid"), s("q_data"), s("q_ready")
    out_valid, done, busy, cycles = s("out_valid"), s("done"), s("busy"), s("cycles")
    o_idx, o_val = s("out_idx"), s("out_val")
    limit = unit["max_cycles_per_job"]
    for job in unit["jobs"]:
        rec = {"beats": [], "stray": 0}
        if job["rows"] is not None:
            for a, w in enumerate(job["rows"]):
                fld_en.value = 1
                fld_addr.value = a
                fld_data.value = w
                await FallingEdge(dut.clk)
            fld_en.value = 0
        for name in PARAMS:
            s(name).value = job["ports"][name]
        start.value = 1
        await FallingEdge(dut.clk)
        start.value = 0
        queries = job["queries"]
        qi = 0
        c = 1
        while True:
            if c > 1:
                await FallingEdge(dut.clk)
            if int(out_valid.value):
                rec["beats"].append([int(o_idx.value), int(o_val.value)])
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
        for _ in range(2):
            await FallingEdge(dut.clk)
            rec["stray"] += int(out_valid.value)
            assert int(done.value) and not int(busy.value)
        out.append(rec)


@cocotb.test()
async def featknn_jobs(dut):
    await run_units(dut, "FKNN", ("start", "ld_en", "fld_en", "q_valid", *PARAMS), run_unit)

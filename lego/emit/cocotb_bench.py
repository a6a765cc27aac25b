"""cocotb bench for a lego design (copied into DIR/tb/): a driver that runs a sequence of jobs back to
back, as a host does. Data-driven by a JSON plan (``docs/host_protocol.md``)::

    {"timeout": int, "rd_latency": 0 | 1,         # manifest.host.rd_latency
     "jobs": [{"reset": bool,                      # pulse rst (2 cycles) before this job
               "mode": int,                        # manifest.modes value
               "loads": [[tensor, bank, addr, value], ...],   # may be empty: the banks keep their words
               "reads": [[bank, addr], ...],
               "expected": [...] | null, "expected_cycles": int | null}, ...]}

Every job is checked on its own (outputs and cycles, where the plan gives them); the result JSON has
one entry per job. Env: ``LEGO_PLAN`` (plan path), ``LEGO_RESULT`` (result JSON written here).
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

INPUTS = ("start", "ld_en", "ld_tensor", "ld_bank", "ld_addr", "ld_data", "rd_bank", "rd_addr", "mode")


async def reset(dut, cycles=2):
    """rst is synchronous, active high: held for ``cycles`` rising edges, released after a falling one."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


async def run_job(dut, job, limit, latency):
    for t, b, a, v in job["loads"]:
        dut.ld_en.value = 1
        dut.ld_tensor.value = t
        dut.ld_bank.value = b
        dut.ld_addr.value = a
        dut.ld_data.value = v
        await FallingEdge(dut.clk)
    dut.ld_en.value = 0
    dut.mode.value = job["mode"]
    dut.start.value = 1
    await RisingEdge(dut.clk)          # the start edge (E0)
    await FallingEdge(dut.clk)
    dut.start.value = 0
    counted = 0
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
    for b, a in job["reads"]:
        dut.rd_bank.value = b
        dut.rd_addr.value = a
        if latency:                    # rd_data holds the word addressed before the rising edge
            await RisingEdge(dut.clk)
        await ReadOnly()
        outs.append(dut.rd_data.value.to_signed())
        await FallingEdge(dut.clk)
    return {"cycles": counted, "cycles_reg": cycles_reg, "outputs": outs}


def jobs_of(plan):
    """The plan's jobs; a plan without ``jobs`` is one job (the single-run form)."""
    if "jobs" in plan:
        return plan["jobs"]
    return [{k: plan.get(k) for k in ("mode", "loads", "reads", "expected", "expected_cycles")}]


@cocotb.test()
async def run_plan(dut):
    with open(os.environ["LEGO_PLAN"]) as f:
        plan = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in INPUTS:
        getattr(dut, name).value = 0
    await reset(dut)
    limit = plan.get("timeout", 1_000_000)
    results, errors = [], []
    for k, job in enumerate(jobs_of(plan)):
        if job.get("reset"):
            await reset(dut)
        res = await run_job(dut, job, limit, plan.get("rd_latency", 1))
        results.append(res)
        if job.get("expected") is not None:
            bad = [i for i, (x, y) in enumerate(zip(res["outputs"], job["expected"])) if x != y]
            if bad:
                errors.append(f"job {k}: {len(bad)} of {len(job['expected'])} outputs wrong, first at "
                              f"flat index {bad[0]}: rtl {res['outputs'][bad[0]]} != ref {job['expected'][bad[0]]}")
        if job.get("expected_cycles") is not None and \
                not res["cycles"] == job["expected_cycles"] == res["cycles_reg"]:
            errors.append(f"job {k}: cycles counted {res['cycles']}, register {res['cycles_reg']}, "
                          f"expected {job['expected_cycles']}")
    if os.environ.get("LEGO_RESULT"):
        with open(os.environ["LEGO_RESULT"], "w") as f:
            json.dump({"jobs": results, "errors": errors}, f)
    assert not errors, "; ".join(errors)

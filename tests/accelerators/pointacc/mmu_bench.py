"""cocotb bench for test_mmu.py: runs job lists on the MMU instances (ports ``<prefix>_*``) of one
generated top, one coroutine per unit, each with its own fixed-latency DRAM model, and records per
job the gather beats, the counters, the ``cycles`` port, the measured cycles and the DRAM requests;
at the end, the DRAM image. pytest compares them with cache_model / cycles.mmu_cycles and with the
logical memory contents.

DRAM model (``accelerators.pointacc.dram.FixedLatencyDram``, the cycle model's): rows hold
``dram_init(row, seed, bits)`` until written. A read request seen in cycle t is answered with the
block's rows in cycles t+LAT .. t+LAT+B-1 (resp_valid high, one row each); a write request writes its
row at once.

Timing: inputs are driven at the falling edge, then (ReadOnly) the combinational answers of the
same cycle are sampled: m_ready (accept), out_*, dram_req_*. ``start`` is held for one cycle s;
``done`` seen in cycle d gives measured cycles d - s - 1.
"""
from __future__ import annotations

import cocotb
from _pointacc_bench import run_units
from cocotb.triggers import FallingEdge, ReadOnly

from accelerators.pointacc.dram import FixedLatencyDram


def dram_init(row: int, seed: int, bits: int) -> int:
    """Initial content of a DRAM row (a fixed pseudo-random function of the row)."""
    x = (int(row) * 0x9E3779B97F4A7C15 + int(seed) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    x ^= x >> 29
    x = (x * 0x94D049BB133111EB) & ((1 << 64) - 1)
    x ^= x >> 32
    v = 0
    for i in range(0, bits, 64):
        v |= ((x * (i // 64 + 1)) & ((1 << 64) - 1)) << i
    return v & ((1 << bits) - 1)


async def run_unit(dut, unit, out):
    pre = unit["prefix"]

    def s(name):
        return getattr(dut, f"{pre}_{name}")

    lat, br, rw, seed = unit["latency"], unit["block_rows"], unit["row_bits"], unit["seed"]
    dram = FixedLatencyDram(lat, br, lambda a: dram_init(a, seed, rw))
    cycle = 0
    sig = {n: s(n) for n in ("start", "op", "count", "m_valid", "m_row", "m_tag", "m_data", "m_ready",
                             "out_valid", "out_data", "out_tag", "dram_req_valid", "dram_req_write",
                             "dram_req_addr", "dram_req_data", "dram_resp_valid", "dram_resp_data", "busy",
                             "done", "cycles", "hits", "misses", "writebacks")}

    async def step(entry):
        """Drive this cycle's DRAM beat and offered entry, then sample the cycle's answers."""
        beat = dram.beat(cycle)
        sig["dram_resp_valid"].value = 1 if beat is not None else 0
        if beat is not None:
            sig["dram_resp_data"].value = beat
        if entry is not None:
            sig["m_valid"].value = 1
            sig["m_row"].value, sig["m_tag"].value, sig["m_data"].value = entry
        else:
            sig["m_valid"].value = 0
        await ReadOnly()
        smp = {"ready": int(sig["m_ready"].value), "done": int(sig["done"].value), "busy": int(sig["busy"].value)}
        if int(sig["out_valid"].value):
            smp["beat"] = [int(sig["out_data"].value), int(sig["out_tag"].value)]
        if int(sig["dram_req_valid"].value):
            a = int(sig["dram_req_addr"].value)
            if int(sig["dram_req_write"].value):
                dram.write(a, int(sig["dram_req_data"].value))
                smp["req"] = ["w", a]
            else:
                dram.read(cycle, a)
                smp["req"] = ["r", a]
        return smp

    for job in unit["jobs"]:
        rec = {"beats": [], "reqs": []}
        await FallingEdge(dut.clk)
        cycle += 1
        sig["start"].value = 1
        sig["op"].value = job["op"]
        sig["count"].value = len(job["entries"])
        sig["m_valid"].value = 0
        sig["dram_resp_valid"].value = 0
        s_cycle = cycle
        await FallingEdge(dut.clk)
        cycle += 1
        sig["start"].value = 0
        i = 0
        while True:
            smp = await step(job["entries"][i] if i < len(job["entries"]) else None)
            if "beat" in smp:
                rec["beats"].append(smp["beat"])
            if "req" in smp:
                rec["reqs"].append(smp["req"])
            if smp["done"]:
                assert not smp["busy"]
                break
            assert smp["busy"], f"{pre}: busy low before done"
            if i < len(job["entries"]) and smp["ready"]:
                i += 1
            if cycle - s_cycle > unit["max_cycles_per_job"]:
                raise AssertionError(f"{pre}: job timed out")
            await FallingEdge(dut.clk)
            cycle += 1
        assert not dram.pending, f"{pre}: DRAM beats left after done"
        rec["measured"] = cycle - s_cycle - 1
        rec["accepted"] = i
        for name in ("cycles", "hits", "misses", "writebacks"):
            rec[name] = int(sig[name].value)
        out.append(rec)
    unit_mem = {str(a): v for a, v in dram.mem.items()}
    out.append({"dram": unit_mem})


@cocotb.test()
async def mmu_jobs(dut):
    await run_units(dut, "MMU", ("start", "op", "count", "m_valid", "dram_resp_valid"), run_unit,
                    release_at_falling_edge=False)

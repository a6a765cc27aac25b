"""cocotb bench of pointacc_top (the design's `lego sim DIR` under Icarus and Verilator).

Reads the stimulus JSON named by PA_STIM (written by accelerators.pointacc.bench) and writes what it
measured to PA_RESULT; the host side (bench.py) decodes the beats and compares them with
sw_reference.pointacc and the cycle model. Two phases on one clock:

1. Mapping-unit jobs (ports map_*): load the points (one ld_* write per cycle) unless the job reuses
   the previous cloud, hold start for one cycle s, offer the queries (q_valid/q_data, taken when
   q_ready), sample the result beats until done (cycle d). Measured cycles = d - s - 1, which must
   equal the cycles port.
2. Sparse-convolution offsets (mmu_*, mxu_*): write the offset's weight tile (mxu_w_*, one row per
   cycle, the first in cycle s), then start an MMU gather of the offset's input rows with
   mxu_src = 1 and offer one map entry per cycle (m_row = input row, m_tag = output index); a DRAM
   model answers the MMU's block reads (rows of int8 features, fixed latency LAT: the beats of a read
   seen in cycle t arrive in cycles t+LAT .. t+LAT+B-1). The matrix unit's results (mxu_y, mxu_out_tag)
   are sampled every cycle until all have arrived (cycle d). Measured cycles = d - s + 1.
3. Feature kNN steps (with the feature kNN path, DGCNN's EdgeConv): set map_fld_src = 1, start an MMU
   gather (cycle s) of one map entry per feature-buffer row (m_row = DRAM row, m_tag = buffer row); every
   gathered row (mmu_out_valid) is written into the feature buffer; at the MMU's done (cycle g, with the
   last row), map_fld_src = 0 and, in cycle g + 1, an OP_KNNF job as in 1. (no point load). Measured
   cycles = (g - s + 1) + (the OP_KNNF's measured cycles) + 2: from s to the kNN's done, inclusive.

The stimulus's ``steps`` give the order (("map", i), ("conv", i), ("feat", i), ("reset",): rst high for
three cycles, every input low); without ``steps``: the mapping jobs, then the offsets.

Inputs are driven at the falling edge; the combinational answers of a cycle (m_ready, DRAM requests)
are sampled in its ReadOnly phase.
"""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

MAP_PARAMS = ("op", "n", "m", "k", "r2", "shift", "ksize", "tstride")
OP_GATHER = 1


def _sig(dut, name):
    return getattr(dut, name)


async def mapping_job(dut, job, limit):
    s = lambda n: _sig(dut, f"map_{n}")   # noqa: E731
    rec = {"beats": [], "stray": 0}
    if job["points"] is not None:
        for a, w in enumerate(job["points"]):
            s("ld_en").value = 1
            s("ld_addr").value = a
            s("ld_data").value = w
            await FallingEdge(dut.clk)
        s("ld_en").value = 0
    for name in MAP_PARAMS:
        s(name).value = job["ports"][name]
    s("start").value = 1
    await FallingEdge(dut.clk)
    s("start").value = 0
    queries, qi, c = job["queries"], 0, 1
    while True:
        if c > 1:
            await FallingEdge(dut.clk)
        if int(s("out_valid").value):
            rec["beats"].append([int(s(x).value) for x in ("out_idx", "out_val", "out_off", "out_coord",
                                                           "out_flag")])
        if int(s("done").value):
            assert not int(s("busy").value), "map: busy high with done"
            break
        assert int(s("busy").value), f"map: busy low before done (cycle {c})"
        if qi < len(queries):
            s("q_valid").value = 1
            s("q_data").value = queries[qi]
            if int(s("q_ready").value):
                qi += 1
        else:
            s("q_valid").value = 0
        if c > limit:
            raise AssertionError(f"map: job {job['ports']} timed out after {c} cycles")
        c += 1
    s("q_valid").value = 0
    rec["measured"] = c - 1
    rec["cycles_port"] = int(s("cycles").value)
    for _ in range(2):                      # two idle cycles: no stray beat, done stays high
        await FallingEdge(dut.clk)
        rec["stray"] += int(s("out_valid").value)
        assert int(s("done").value) and not int(s("busy").value)
    return rec


class Dram:
    """Fixed-latency DRAM of feature rows (reads only in this bench; a write is recorded)."""

    def __init__(self, rows: dict, latency: int, block_rows: int):
        self.mem = {int(a): int(v) for a, v in rows.items()}
        self.lat, self.br = latency, block_rows
        self.pending: dict[int, int] = {}
        self.writes = 0


async def mmu_gather(dut, entries, dram: Dram, limit: int, clock: list, s_cycle: int, what: str, collect,
                     writes: bool) -> tuple[int, dict]:
    """Start an MMU gather of ``entries`` ((row, tag) pairs) in this cycle and run it to the end: offer the entries
    on m_valid/m_row/m_tag, answer the MMU's DRAM reads ``dram.lat`` cycles later (and its writes at once, where
    ``writes``), call ``collect()`` in every cycle after ReadOnly (it records the cycle's outputs and returns how
    many there are so far). Ends when the MMU's ``done`` has come and ``collect()`` has all the entries' outputs;
    -> (entries accepted, {"mmu_cycles_port", "hits", "misses", "writebacks"})."""
    mmu = lambda n: _sig(dut, f"mmu_{n}")   # noqa: E731
    mmu("start").value = 1
    mmu("op").value = OP_GATHER
    mmu("count").value = len(entries)
    mmu("m_valid").value = 0
    await FallingEdge(dut.clk)
    clock[0] += 1
    mmu("start").value = 0
    i, ports = 0, None
    while True:
        beat = dram.pending.pop(clock[0], None)
        mmu("dram_resp_valid").value = 1 if beat is not None else 0
        if beat is not None:
            mmu("dram_resp_data").value = dram.mem.get(beat, 0)
        if i < len(entries):
            mmu("m_valid").value = 1
            mmu("m_row").value, mmu("m_tag").value = entries[i]
        else:
            mmu("m_valid").value = 0
        await ReadOnly()
        ready = int(mmu("m_ready").value)
        got = collect()
        if int(mmu("dram_req_valid").value):
            a = int(mmu("dram_req_addr").value)
            if int(mmu("dram_req_write").value):
                assert writes, f"{what}: a DRAM write"
                dram.mem[a] = int(mmu("dram_req_data").value)
                dram.writes += 1
            else:
                for b in range(dram.br):
                    assert clock[0] + dram.lat + b not in dram.pending, "overlapping DRAM reads"
                    dram.pending[clock[0] + dram.lat + b] = a + b
        if ports is None and int(mmu("done").value):
            ports = {"mmu_cycles_port": int(mmu("cycles").value),
                     **{x: int(mmu(x).value) for x in ("hits", "misses", "writebacks")}}
        if ports is not None and got >= len(entries):
            break
        if i < len(entries) and ready and ports is None:
            i += 1
        if clock[0] - s_cycle > limit:
            raise AssertionError(f"{what} timed out")
        await FallingEdge(dut.clk)
        clock[0] += 1
    assert not dram.pending, "DRAM beats left after the gather"
    return i, ports


async def conv_offset(dut, off, dram: Dram, rows_w: int, limit: int, clock: list):
    """One offset: weight tile, gather -> matrix unit; returns the measured record."""
    mxu = lambda n: _sig(dut, f"mxu_{n}")   # noqa: E731
    rec = {"y": [], "tags": []}
    s_cycle = clock[0]
    for r, word in enumerate(off["weights"]):
        mxu("w_en").value = 1
        mxu("w_row").value = r
        mxu("w_data").value = word
        await FallingEdge(dut.clk)
        clock[0] += 1
    mxu("w_en").value = 0
    mxu("src").value = 1
    last = [None]

    def collect():
        if int(mxu("out_valid").value):
            rec["y"].append(int(mxu("y").value))
            rec["tags"].append(int(mxu("out_tag").value))
            last[0] = clock[0]
        return len(rec["y"])
    i, ports = await mmu_gather(dut, off["entries"], dram, limit, clock, s_cycle, f"conv: offset {off['offset']}",
                                collect, writes=True)
    rec.update(ports)
    last = last[0]
    rec["measured"] = last - s_cycle + 1
    rec["accepted"] = i
    await FallingEdge(dut.clk)                  # one idle cycle: no stray result
    clock[0] += 1
    rec["stray"] = int(mxu("out_valid").value)
    mxu("src").value = 0
    return rec


async def feature_step(dut, step, dram: Dram, limit: int, clock: list):
    """One feature kNN: the MMU gather into the feature buffer (map_fld_src = 1), then OP_KNNF."""
    mmu = lambda n: _sig(dut, f"mmu_{n}")   # noqa: E731
    rec = {"tags": []}
    s_cycle = clock[0]
    dut.map_fld_src.value = 1

    def collect():
        if int(mmu("out_valid").value):
            rec["tags"].append(int(mmu("out_tag").value))
        return len(rec["tags"])
    _, ports = await mmu_gather(dut, step["entries"], dram, limit, clock, s_cycle,
                                f"feature gather {step['name']}", collect, writes=False)
    rec.update(ports)
    span = clock[0] - s_cycle + 1
    await FallingEdge(dut.clk)
    clock[0] += 1
    dut.map_fld_src.value = 0
    mmu("m_valid").value = 0
    mmu("dram_resp_valid").value = 0
    knn = await mapping_job(dut, step["job"], limit)
    rec.update(beats=knn["beats"], stray=knn["stray"], cycles_port=knn["cycles_port"], gather_span=span,
               knnf_measured=knn["measured"], measured=span + knn["measured"] + 2)
    return rec


async def reset(dut):
    """rst high for three rising edges with every input low; released at a falling edge."""
    for name in ("start", "ld_en", "q_valid", *MAP_PARAMS):
        _sig(dut, f"map_{name}").value = 0
    if hasattr(dut, "map_fld_en"):                   # the feature kNN path: host loads off, buffer from the host
        dut.map_fld_en.value = 0
        dut.map_fld_src.value = 0
    for name in ("start", "op", "count", "m_valid", "m_row", "m_tag", "m_data", "dram_resp_valid",
                 "dram_resp_data"):
        _sig(dut, f"mmu_{name}").value = 0
    for name in ("src", "w_en", "w_row", "w_data", "in_valid", "x", "tag"):
        _sig(dut, f"mxu_{name}").value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


@cocotb.test()
async def pointacc(dut):
    with open(os.environ["PA_STIM"]) as fh:
        stim = json.load(fh)
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut)
    out = {"map": [None] * len(stim["map_jobs"]), "conv": [None] * len(stim["conv"]),
           "feat": [None] * len(stim.get("feat", []))}              # records by job index, whatever the order
    dram = Dram(stim["dram"], stim["dram_latency"], stim["block_rows"])
    clock = [0]
    steps = stim.get("steps") or ([["map", i] for i in range(len(stim["map_jobs"]))]
                                  + [["conv", i] for i in range(len(stim["conv"]))])
    limit = stim["max_cycles_per_job"]
    for step in steps:
        if step[0] == "map":
            out["map"][step[1]] = await mapping_job(dut, stim["map_jobs"][step[1]], limit)
        elif step[0] == "conv":
            out["conv"][step[1]] = await conv_offset(dut, stim["conv"][step[1]], dram, stim["mxu_rows"], limit, clock)
        elif step[0] == "feat":
            out["feat"][step[1]] = await feature_step(dut, stim["feat"][step[1]], dram, limit, clock)
        else:
            await reset(dut)
    out["dram_writes"] = dram.writes
    with open(os.environ["PA_RESULT"], "w") as fh:
        json.dump(out, fh)

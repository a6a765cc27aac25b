"""cocotb bench of pointacc_top (the design's `lego sim DIR` under Icarus and Verilator).

Reads the stimulus JSON named by PA_STIM (written by accelerators.pointacc.bench) and writes what it
measured to PA_RESULT; the host side (bench.py) decodes the beats and compares them with
sw_reference.pointacc and the cycle model. Two phases on one clock:

1. Mapping-unit jobs (ports map_*): load the points (one ld_* write per cycle) unless the job reuses
   the previous cloud, hold start for one cycle s, offer the queries (q_valid/q_data, taken when
   q_ready), sample the result beats until done (cycle d). Measured cycles = d - s - 1, which must
   equal the cycles port.
2. Gather-GEMMs (sparse-convolution offsets and the set-abstraction layer; mmu_*, mxu_*): the host writes the
   weights into the matrix unit's DRAM (the bytes behind mxu_m_axi_*: lego's pipelined AXI DRAM model,
   ``prog_bench.py``, latency LAT); in cycle s it starts an MMU gather of the map's rows with mxu_stage = 1 and
   offers one map entry per cycle (m_row = input row, m_tag = the row's place in X); a DRAM model answers
   the MMU's block reads (rows of int8 features, fixed latency LAT: the beats of a read seen in cycle t arrive
   in cycles t+LAT .. t+LAT+B-1); every staged row (mxu_stg_valid) is written into the matrix unit's DRAM.
   At the MMU's done (cycle g) the next cycle presents the GEMM program's first command on mxu_cmd_* (the next
   command in the cycle after one is accepted) until mxu_done; then Y is read from that DRAM. Measured cycles
   = (g - s + 1) + 1 + the program's cycles (edges from its first acceptance, exclusive, to END's, inclusive).
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
from prog_bench import Dram as ByteDram
from prog_bench import PipelinedRead, PipelinedWrite, run_commands

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


async def gather_gemm(dut, off, dram: Dram, ram, limit: int, clock: list):
    """One gather-GEMM (an offset, or the set-abstraction layer): the weights into the array's DRAM, the MMU
    gather staged into X (mxu_stage = 1), then the GEMM program on mxu_cmd_*; returns the measured record."""
    mxu = lambda n: _sig(dut, f"mxu_{n}")   # noqa: E731
    rec = {"rows": 0}
    ram.write(off["w"][0], bytes.fromhex(off["w"][1]))
    s_cycle = clock[0]
    mxu("stage").value = 1
    mxu("stage_base").value = off["stage_base"]
    row_bytes = len(mxu("stg_data").value) // 8

    def collect():
        if int(mxu("stg_valid").value):
            ram.write(int(mxu("stg_addr").value), int(mxu("stg_data").value).to_bytes(row_bytes, "little"))
            rec["rows"] += 1
        return rec["rows"]
    i, ports = await mmu_gather(dut, off["entries"], dram, limit, clock, s_cycle, f"conv: offset {off['offset']}",
                                collect, writes=True)
    rec.update(ports)
    gather = clock[0] - s_cycle + 1
    await FallingEdge(dut.clk)                  # the cycle after the MMU's done: the program's first command
    clock[0] += 1
    mxu("stage").value = 0
    _sig(dut, "mmu_m_valid").value = 0
    _sig(dut, "mmu_dram_resp_valid").value = 0
    counted, n, error = await run_commands(dut, off["program"], off["names"], off["watchdog"], prefix="mxu_")
    assert error is None, f"conv: offset {off['offset']}: {error}"
    clock[0] += counted
    rec["prog_cycles"] = counted
    rec["prog_cycles_port"] = int(mxu("cycles").value)
    rec["measured"] = gather + 1 + counted
    rec["accepted"] = i
    rec["y"] = ram.read(*off["y"]).hex()
    await FallingEdge(dut.clk)
    clock[0] += 1
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
    for name in ("stage", "stage_base", "cmd_valid", "cmd_data"):
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
    ram = ByteDram(stim["mxu_dram_bytes"])
    cocotb.start_soon(PipelinedRead(dut, dut.clk, ram, stim["dram_latency"], prefix="mxu_m_axi").run())
    cocotb.start_soon(PipelinedWrite(dut, dut.clk, ram, stim["dram_latency"], prefix="mxu_m_axi").run())
    clock = [0]
    steps = stim.get("steps") or ([["map", i] for i in range(len(stim["map_jobs"]))]
                                  + [["conv", i] for i in range(len(stim["conv"]))])
    limit = stim["max_cycles_per_job"]
    for step in steps:
        if step[0] == "map":
            out["map"][step[1]] = await mapping_job(dut, stim["map_jobs"][step[1]], limit)
        elif step[0] == "conv":
            out["conv"][step[1]] = await gather_gemm(dut, stim["conv"][step[1]], dram, ram, limit, clock)
        elif step[0] == "feat":
            out["feat"][step[1]] = await feature_step(dut, stim["feat"][step[1]], dram, limit, clock)
        else:
            await reset(dut)
    out["dram_writes"] = dram.writes
    with open(os.environ["PA_RESULT"], "w") as fh:
        json.dump(out, fh)

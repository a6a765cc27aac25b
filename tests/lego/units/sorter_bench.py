"""cocotb bench for tests/lego/units/test_sorter.py: drives the BitonicSorter instances (ports
``s<k>_*``) and RunMerger instances (``m<k>_*``) of one generated top concurrently from a JSON
stimulus and records every output with its cycle in a JSON result; pytest makes the checks.

Timing: cycle c runs from rising edge c to rising edge c+1; inputs are driven at the falling edge
inside the cycle, and outputs (and the combinational ``*_ready``/``can_start`` answers to this
cycle's inputs) are sampled after them. Cycle 0 is the first cycle after reset.

Sorters: block j is offered in cycle ``in_cycles[j]``.
Mergers: ``start`` for job j is raised as soon as job j-1 has started (so that it is taken in the
cycle of job j-1's last step, where the merger allows that), or, for a job with ``wait``, only
after job j-1's last output. While a job runs, its runs are offered as block streams; with
``gaps`` each stream's valid drops in about 30 % of the cycles (seeded).
"""
from __future__ import annotations

import random

import cocotb
from _bench import clock_and_reset, load_stim, save_result
from cocotb.triggers import FallingEdge, ReadOnly


def _split(v: int, n: int, w: int) -> list[int]:
    return [(v >> (i * w)) & ((1 << w) - 1) for i in range(n)]


def _join(vals, w: int) -> int:
    out = 0
    for i, v in enumerate(vals):
        out |= int(v) << (i * w)
    return out


def _block(dut, pre, w, kb, ib):
    return [_split(int(getattr(dut, f"{pre}_key").value), w, kb),
            _split(int(getattr(dut, f"{pre}_idx").value), w, ib),
            _split(int(getattr(dut, f"{pre}_live").value), w, 1)]


def _drive(dut, pre, blk, kb, ib):
    key, idx, live = blk
    getattr(dut, f"{pre}_key").value = _join(key, kb)
    getattr(dut, f"{pre}_idx").value = _join(idx, ib)
    getattr(dut, f"{pre}_live").value = _join(live, 1)


@cocotb.test()
async def sorter_units(dut):
    stim = load_stim("sorter")
    sorters, mergers = stim["sorters"], stim["mergers"]
    await clock_and_reset(dut, [f"s{k}_in_valid" for k, _ in enumerate(sorters)] +
                          [f"m{k}_{s}" for k, _ in enumerate(mergers)
                           for s in ("start", "a_valid", "b_valid", "keep_low", "len_a", "len_b")])
    rng = random.Random(stim["seed"])

    s_st = [{"next": 0, "outs": [], "out_cycles": []} for _ in sorters]
    # per merger: next job to start, the running job (cur) with its stream positions, results
    m_st = [{"pend": 0, "cur": None, "pa": 0, "pb": 0, "last_out": -1,
             "jobs": [{"start": None, "steps": [], "outs": [], "out_cycles": []} for _ in mg["jobs"]]}
            for mg in mergers]
    cycle = 0
    idle = 0
    while idle < 8:
        await FallingEdge(dut.clk)
        # ---- sample registered outputs of this cycle ----
        for k, s in enumerate(sorters):
            st = s_st[k]
            if int(getattr(dut, f"s{k}_out_valid").value):
                st["outs"].append(_block(dut, f"s{k}_out", s["w"], s["kb"], s["ib"]))
                st["out_cycles"].append(cycle)
        for k, mg in enumerate(mergers):
            st = m_st[k]
            if int(getattr(dut, f"m{k}_out_valid").value):
                # outputs belong to the oldest job that still expects some
                for j in st["jobs"]:
                    if j["start"] is not None and len(j["outs"]) < j["expect"]:
                        j["outs"].append(_block(dut, f"m{k}_out", mg["w"], mg["kb"], mg["ib"]))
                        j["out_cycles"].append(cycle)
                        break
                else:
                    raise AssertionError(f"m{k}: unexpected out_valid in cycle {cycle}")
        # ---- drive inputs ----
        active = False
        for k, s in enumerate(sorters):
            st = s_st[k]
            v = 0
            if st["next"] < len(s["blocks"]) and s["in_cycles"][st["next"]] == cycle:
                _drive(dut, f"s{k}_in", s["blocks"][st["next"]], s["kb"], s["ib"])
                v = 1
                st["next"] += 1
            getattr(dut, f"s{k}_in_valid").value = v
            active |= st["next"] < len(s["blocks"]) or len(st["outs"]) < len(s["blocks"])
        starting = []
        for k, mg in enumerate(mergers):
            st = m_st[k]
            jobs = mg["jobs"]
            start = 0
            if st["pend"] < len(jobs):
                active = True
                job = jobs[st["pend"]]
                prev_done = st["pend"] == 0 or (st["cur"] is None and all(
                    len(j["outs"]) == j["expect"] for j in st["jobs"][:st["pend"]]))
                if not job["wait"] or prev_done:
                    start = 1
                    getattr(dut, f"m{k}_len_a").value = len(job["a"])
                    getattr(dut, f"m{k}_len_b").value = len(job["b"])
                    getattr(dut, f"m{k}_keep_low").value = job["keep_low"]
                    starting.append(k)
            getattr(dut, f"m{k}_start").value = start
            av = bv = 0
            if st["cur"] is not None:
                active = True
                job = jobs[st["cur"]]
                if st["pa"] < len(job["a"]) and not (job["gaps"] and rng.random() < 0.3):
                    _drive(dut, f"m{k}_a", job["a"][st["pa"]], mg["kb"], mg["ib"])
                    av = 1
                if not job["keep_low"] and st["pb"] < len(job["b"]) and not (job["gaps"] and rng.random() < 0.3):
                    _drive(dut, f"m{k}_b", job["b"][st["pb"]], mg["kb"], mg["ib"])
                    bv = 1
            getattr(dut, f"m{k}_a_valid").value = av
            getattr(dut, f"m{k}_b_valid").value = bv
            if any(len(j["outs"]) < j.get("expect", 0) for j in st["jobs"]):
                active = True
        # ---- combinational answers to this cycle's inputs ----
        await ReadOnly()
        for k, mg in enumerate(mergers):
            st = m_st[k]
            if st["cur"] is not None:
                job = mg["jobs"][st["cur"]]
                ta, tb = int(getattr(dut, f"m{k}_a_ready").value), int(getattr(dut, f"m{k}_b_ready").value)
                st["pa"] += ta
                st["pb"] += tb
                if ta or tb:
                    st["jobs"][st["cur"]]["steps"].append(cycle)
                if st["pa"] == len(job["a"]) and (job["keep_low"] or st["pb"] == len(job["b"])):
                    st["cur"] = None
            if k in starting and int(getattr(dut, f"m{k}_can_start").value):
                job = mg["jobs"][st["pend"]]
                rec = st["jobs"][st["pend"]]
                rec["start"] = cycle
                rec["expect"] = 1 if job["keep_low"] else len(job["a"]) + len(job["b"])
                empty = not job["a"] and (job["keep_low"] or not job["b"])
                if not empty:
                    assert st["cur"] is None, f"m{k}: job {st['pend']} started while job {st['cur']} runs"
                    st["cur"], st["pa"], st["pb"] = st["pend"], 0, 0
                st["pend"] += 1
        cycle += 1
        idle = 0 if active else idle + 1
        if cycle > stim["max_cycles"]:
            raise AssertionError(f"timeout after {cycle} cycles")
    save_result("sorter", {"cycles": cycle,
                           "sorters": [{"outs": s["outs"], "out_cycles": s["out_cycles"]} for s in s_st],
                           "mergers": [st["jobs"] for st in m_st]})

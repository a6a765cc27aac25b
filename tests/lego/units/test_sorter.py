"""BitonicSorter and RunMerger RTL (lego.units.sorter): exact outputs, latency/cycle formulas and
protocol under Icarus and Verilator (cocotb bench: sorter_bench.py), verilator -Wall lint.

Several parameterizations sit side by side in one generated top, built once per simulator.
"""
from __future__ import annotations

import json
import random

import pytest
from _harness import assert_lint_clean, run_bench

from lego.units.harness import SideBySide, emit
from lego.units.sorter import (BitonicSorter, RunMerger, check_width, merge_cycles, merge_reference,
                               sort_reference, sorter_latency, sorter_stages)


# (W, key_bits, idx_bits, stages_per_cycle, blocks)
SORTERS = [(2, 8, 3, 1, 40), (4, 3, 4, 1, 60), (8, 12, 5, 2, 60), (16, 20, 6, 1, 50), (32, 10, 6, 4, 24)]
# (W, key_bits, idx_bits)
MERGERS = [(2, 8, 5), (4, 3, 6), (8, 12, 7), (16, 10, 8)]
MERGE_JOBS = [  # (len_a, len_b, keep_low, gaps, wait)
    (1, 1, 0, 0, 0), (2, 3, 0, 0, 0), (0, 2, 0, 0, 0), (3, 0, 0, 0, 0), (4, 4, 0, 0, 0), (0, 0, 0, 0, 1),
    (5, 2, 0, 1, 1), (1, 6, 0, 0, 1), (4, 0, 1, 0, 1), (1, 0, 1, 0, 1), (0, 0, 1, 0, 1), (6, 0, 1, 1, 1),
    (3, 3, 0, 0, 1), (2, 2, 0, 0, 0), (7, 5, 0, 1, 1), (2, 0, 1, 0, 1), (3, 2, 0, 0, 0),
    (3, 0, 1, 0, 0), (2, 0, 1, 0, 0), (1, 2, 0, 0, 0),
]


def entry(rng, kb, ib, live_p=0.9):
    if rng.random() < live_p:
        return [rng.randrange(1 << kb), rng.randrange(1 << ib), 1]
    return [0, 0, 0]


def rank(e):
    return (not e[2], e[0], e[1])


def as_block(entries):
    return [[e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries]]


def run_blocks(rng, w, kb, ib, nblocks):
    """A sorted run of nblocks blocks (the last one may end with dead padding)."""
    n = nblocks * w - (rng.randrange(w) if nblocks else 0)
    ents = sorted((entry(rng, kb, ib, 1.0) for _ in range(n)), key=rank)
    ents += [[0, 0, 0]] * (nblocks * w - n)
    return [as_block(ents[i * w:(i + 1) * w]) for i in range(nblocks)]


def make_stim(seed=5):
    rng = random.Random(seed)
    sorters = []
    for w, kb, ib, spc, nb in SORTERS:
        blocks, cycles, c = [], [], 0
        for j in range(nb):
            live_p = [1.0, 0.9, 0.5, 0.0][j % 4]
            blocks.append(as_block([entry(rng, kb, ib, live_p) for _ in range(w)]))
            cycles.append(c)
            c += 1 if j % 7 else 3           # mostly back to back, a few gaps
        sorters.append({"w": w, "kb": kb, "ib": ib, "spc": spc, "blocks": blocks, "in_cycles": cycles})
    mergers = []
    for w, kb, ib in MERGERS:
        jobs = []
        for la, lb, keep, gaps, wait in MERGE_JOBS:
            if keep:
                a = [as_block(sorted((entry(rng, kb, ib, 0.8) for _ in range(w)), key=rank)) for _ in range(la)]
                b = []
            else:
                a, b = run_blocks(rng, w, kb, ib, la), run_blocks(rng, w, kb, ib, lb)
            jobs.append({"a": a, "b": b, "keep_low": keep, "gaps": gaps, "wait": wait})
        mergers.append({"w": w, "kb": kb, "ib": ib, "jobs": jobs})
    return {"seed": seed, "sorters": sorters, "mergers": mergers, "max_cycles": 5000}


def block_entries(blk):
    return [list(e) for e in zip(*blk)]


def expected_merge(job, w):
    if job["keep_low"]:
        ents = [e for blk in job["a"] for e in block_entries(blk)] + [[0, 0, 0]] * w
        return [as_block(sorted(ents, key=rank)[:w])]
    a = [block_entries(b) for b in job["a"]]
    b = [block_entries(b) for b in job["b"]]
    if not a and not b:
        return []
    return [as_block(blk) for blk in merge_reference(a, b)]


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    d = tmp_path_factory.mktemp("sorter_rtl")
    units = [(f"s{k}", BitonicSorter(w, kb, ib, spc)) for k, (w, kb, ib, spc, _) in enumerate(SORTERS)]
    units += [(f"m{k}", RunMerger(w, kb, ib, len_bits=4)) for k, (w, kb, ib) in enumerate(MERGERS)]
    top = SideBySide(units)
    src = emit(d / "sorter_top.v", top, "sorter_top")
    stim = make_stim()
    (d / "stim.json").write_text(json.dumps(stim))
    return {"dir": d, "src": src, "stim": stim}


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def sim(request, design):
    return run_bench("sorter", request.param, design["src"], design["dir"] / "stim.json", design["dir"])


def test_formulas_and_errors():
    assert [sorter_stages(w) for w in (2, 4, 8, 16, 32, 64)] == [1, 3, 6, 10, 15, 21]
    assert sorter_latency(16) == 10 and sorter_latency(16, 3) == 4 and sorter_latency(2, 5) == 1
    assert merge_cycles(3, 4) == 9 and merge_cycles(1, 0) == 3
    for bad in (0, 1, 3, 6, 12, 2.0, True, "8"):
        with pytest.raises(ValueError, match="^sorter_width: must be a power of two"):
            check_width(bad)
        with pytest.raises(ValueError, match="^sorter_width"):
            BitonicSorter(bad, 8, 4)
    with pytest.raises(ValueError, match="^sorter_width"):
        RunMerger(24, 8, 4)
    with pytest.raises(ValueError, match="^key_bits"):
        BitonicSorter(4, 0, 4)
    with pytest.raises(ValueError, match="^stages_per_cycle"):
        BitonicSorter(4, 8, 4, 0)
    s = BitonicSorter(8, 12, 5)
    assert [len(getattr(s, n)) for n in ("in_key", "in_idx", "in_live", "out_key")] == [96, 40, 8, 96]
    assert s.latency == 6
    # the references: ties by index, dead entries last
    assert sort_reference([5, 3, 5, 0], [2, 9, 1, 0], [1, 1, 1, 0]) == ([3, 5, 5, 0], [9, 1, 2, 0], [1, 1, 1, 0])


def test_sorter_exact_and_latency(sim, design):
    for k, (s, got) in enumerate(zip(design["stim"]["sorters"], sim["sorters"])):
        lat = sorter_latency(s["w"], s["spc"])
        assert len(got["outs"]) == len(s["blocks"]), f"s{k}"
        for j, (blk, out) in enumerate(zip(s["blocks"], got["outs"])):
            exp = sort_reference(*blk)
            assert out == [list(v) for v in exp], f"s{k} block {j}: {blk}"
        assert got["out_cycles"] == [c + lat for c in s["in_cycles"]], f"s{k}: latency != {lat}"


def test_merger_exact_and_cycles(sim, design):
    for k, (mg, jobs) in enumerate(zip(design["stim"]["mergers"], sim["mergers"])):
        for j, (job, got) in enumerate(zip(mg["jobs"], jobs)):
            assert got["start"] is not None, f"m{k} job {j} never started"
            assert got["outs"] == expected_merge(job, mg["w"]), f"m{k} job {j}"
            la, lb = len(job["a"]), len(job["b"])
            nsteps = la + (0 if job["keep_low"] else lb)
            assert len(got["steps"]) == nsteps
            if job["keep_low"]:
                assert got["out_cycles"] == [(got["steps"][-1] if nsteps else got["start"]) + 2]
            elif nsteps:
                exp = [c + 1 for c in got["steps"][1:]] + [got["steps"][-1] + 2]
                assert got["out_cycles"] == exp, f"m{k} job {j}: one output per step after the first, then H"
            if not job["gaps"] and nsteps:
                assert got["steps"] == list(range(got["start"] + 1, got["start"] + 1 + nsteps)), f"m{k} job {j}"
                assert got["out_cycles"][-1] - got["start"] == merge_cycles(la, 0 if job["keep_low"] else lb)
            if j and not job["wait"] and jobs[j - 1]["steps"] and (nsteps or not job["keep_low"]):
                # back to back: started in the cycle of the previous job's last step
                assert got["start"] == jobs[j - 1]["steps"][-1], f"m{k} job {j}: not overlapped"


@pytest.mark.parametrize("cfg", [("sorter", (16, 63, 13, 1)), ("sorter", (4, 44, 12, 2)),
                                 ("merger", (16, 63, 13)), ("merger", (2, 8, 3))])
def test_verilator_lint(tmp_path, cfg):
    kind, args = cfg
    comp = BitonicSorter(*args) if kind == "sorter" else RunMerger(*args)
    src = emit(tmp_path / "unit.v", comp, "unit")
    assert_lint_clean(src, "unit", tmp_path)

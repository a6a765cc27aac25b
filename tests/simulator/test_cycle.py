"""The cycle engine: cycles, SRAM traffic and energy of small designs against values derived by hand here
(not from the design's own prediction), and the shared Report serializers.

Cycles. The controller issues step t of the dataflow in cycle t; the address generators (sigma 0) drive
the synchronous bank read, whose word arrives one cycle later (sigma 1), where the multiply and the
accumulate are combinational; the accumulated word is written into the output bank one cycle after that
(sigma 2). FU s runs each step c.s cycles after FU 0 (control vector c). With no pipeline register added
by the LP (8-bit data, adder chains that fit the clock), the run's last write lands
    cycles = steps + c0*(R-1) + c1*(C-1) + 2
rising edges after the start edge (the ``cycles`` register counts from the start edge exclusive to the
edge at which done rises inclusive, docs/host_protocol.md). Steps are the product of the tiled temporal
loops: ceil(e_rows/R) * ceil(e_cols/C) * the other extents (the preset table of docs/simulator.md §1).

Traffic. A tensor's ports are re-read at every step where an iterator it depends on changes; an input
has one port per physical row if it depends on the row iterator, times one per column if on the column
iterator. Output writes are the in-range words the array writes (every flush of a partial sum).
"""
import csv
import json
import math

import numpy as np
import pytest

from lego.generate import generate
from simulator.cycle import increment_positions
from simulator.energy import energy_pj, sram_access_pj
from simulator.engine import get_engine

# id -> (shape, array, dataflow, hand-derived figures). The first two are test_engine's matrix designs
# gemm-1x1 and gemm-2x2-ws (the same Verilog, so an RTL build made for one serves the other).
DESIGNS = {
    # gemm Y[i,j] += X[i,k] W[k,j], M=3 N=2 K=4 on 1x1, os (rows i, cols j, inner k):
    # steps = 3*2*4 = 24; c.(P-1) = 0; cycles = 24 + 2 = 26.
    # X[i,k], W[k,j] both depend on the innermost k: read every step, one port each -> 24, 24.
    # Y is output-stationary: each of the 3*2 words written once -> 6 writes, no read-modify-write.
    "gemm-1x1-os": ("M=3,N=2,K=4", "1x1", "os",
                    {"steps": 24, "cycles": 26, "reads": {"X": 24, "W": 24}, "writes": {"Y": 6}, "rmw": False}),
    # M=5 N=3 K=6 on 2x2, ws (rows k, cols j, inner i): loops (t_k, t_j, i) = (3, 2, 5), steps 30;
    # c = (1, 1): 1 + 1 + 2 -> cycles 34.
    # W[k,j] changes with t_k, t_j only (6 times) on 2*2 ports -> 24 reads; X[i,k] changes every step
    # (inner i) on 2 ports (one per row, passed along the row) -> 60.
    # Y[i,j]: every step each column flushes a partial sum: in-range columns per j tile are 2 and 1,
    # so 3 (t_k) * (2 + 1) * 5 (i) = 45 writes, each a read-modify-write (partial sums over t_k).
    "gemm-2x2-ws": ("M=5,N=3,K=6", "2x2", "ws",
                    {"steps": 30, "cycles": 34, "reads": {"X": 60, "W": 24}, "writes": {"Y": 45}, "rmw": True}),
    # M=5 N=3 K=4 on 2x2, os (rows i, cols j, inner k): loops (3, 2, 4), steps 24; cycles 24 + 1 + 1 + 2 = 28.
    # X[i,k]: every step on 2 row ports -> 48; W[k,j]: every step on 2 column ports -> 48; Y once per
    # word -> 15.
    "gemm-2x2-os": ("M=5,N=3,K=4", "2x2", "os",
                    {"steps": 24, "cycles": 28, "reads": {"X": 48, "W": 48}, "writes": {"Y": 15}, "rmw": False}),
    # M=5 N=3 K=4 on 2x3, is-bcast (rows i, cols k, inner j; c = (0, 0)): loops (3, 2, 3), steps 18;
    # broadcast: cycles 18 + 2 = 20.
    # X[i,k] changes with t_i, t_k only (6 times) on 2*3 ports -> 36; W[k,j] every step on 3 column
    # ports -> 54; Y[i,j]: each row flushes one sum per step (the columns' products reduced by a
    # tree): in-range rows per i tile 2, 2, 1 -> (2+2+1) * 2 (t_k) * 3 (j) = 30, read-modify-write.
    "gemm-2x3-is-bcast": ("M=5,N=3,K=4", "2x3", "is-bcast",
                          {"steps": 18, "cycles": 20, "reads": {"X": 36, "W": 54}, "writes": {"Y": 30},
                           "rmw": True}),
    # conv2d N=1 C=3 K=5 H=7 W=6 R=3 S=2 STRIDE=2 PAD=1 on 3x4, os (rows k, cols w, inner s): output
    # H' = (7+2-3)//2+1 = 4, W' = (6+2-2)//2+1 = 4; loops ceil(5/3)=2, ceil(4/4)=1, then n c h r s =
    # 1*3*4*3*2 -> steps 144; cycles 144 + 2 + 3 + 2 = 151.
    # X[n,c,2h+r-1,2w+s-1] depends on s (inner): every step on 4 column ports -> 576; W[k,c,r,s]:
    # every step on 3 row ports -> 432. Y[n,k,h,w]: the loop order is (t_k, t_w, n, c, h, r, s), so the
    # reduction over c sits outside h: each of the 5*4*4 = 80 in-range words is flushed once per c,
    # 3 * 80 = 240 writes, read-modify-write.
    "conv2d-3x4-os": ("N=1,C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1", "3x4", "os",
                      {"steps": 144, "cycles": 151, "reads": {"X": 576, "W": 432}, "writes": {"Y": 240},
                       "rmw": True}),
}
WORKLOAD = {"conv2d-3x4-os": "conv2d"}
# RTL runs: Verilator on the two designs shared with test_engine (a Verilator build costs ~25 s)
RTL = [("icarus", k) for k in DESIGNS] + [("verilator", "gemm-1x1-os"), ("verilator", "gemm-2x2-ws")]


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cyc")
    out = {}
    for k, (shape, arr, df, _) in DESIGNS.items():
        generate(WORKLOAD.get(k, "gemm"), shape, arr, (df,), 8, True, root / k)
        out[k] = root / k
    return out


def test_increment_positions():
    assert increment_positions((2, 3)).tolist() == [2, 1, 1, 0, 1, 1]


@pytest.mark.parametrize("key", DESIGNS)
def test_cycles_traffic_by_hand(designs, key):
    want = DESIGNS[key][3]
    rep = get_engine("cycle").run(designs[key], seed=3)
    assert rep.match
    assert rep.extra["steps"] == want["steps"]
    assert rep.cycles == want["cycles"]
    assert rep.sram_reads == want["reads"]
    assert rep.sram_writes == want["writes"]


@pytest.mark.rtl
@pytest.mark.parametrize("engine,key", RTL, ids=[f"{e}-{k}" for e, k in RTL])
def test_rtl_cycles_by_hand(designs, engine, key):
    want = DESIGNS[key][3]
    rep = get_engine(engine).run(designs[key], seed=4)
    assert rep.match
    assert rep.cycles == rep.extra["cycles_register"] == want["cycles"]


@pytest.mark.parametrize("key", DESIGNS)
def test_energy_by_hand(designs, key):
    """Energy per component: the per-operation table entries (simulator/energy.py, 28 nm) times the
    counts derived by hand above; the register term uses the LP's register bits (report.json)."""
    want = DESIGNS[key][3]
    d = designs[key]
    rpt = json.loads((d / "report.json").read_text())
    man = json.loads((d / "manifest.json").read_text())
    rep = get_engine("cycle").run(d, seed=3)
    macs = math.prod(man["loop_nest"]["extents"])
    acc = rpt["widths"]["acc_bits"]
    exp = {"mul": macs * energy_pj("mul8") * (8 * 8 / 64),                   # 8x8-bit products
           "add": 2 * macs * energy_pj("add32") * (32 / 32),                  # int32 output
           "registers": rpt["registers"]["lp_bits"] * want["cycles"] * energy_pj("reg_bit")}
    for t in ("X", "W"):
        cap = rpt["memory"]["depth"][t] * 8 // 8
        exp[f"sram_{t}"] = sram_access_pj(cap, 8) * want["reads"][t]
    cap = rpt["memory"]["depth"]["Y"] * acc // 8
    exp["sram_Y"] = sram_access_pj(cap, acc) * want["writes"]["Y"] * (2 if want["rmw"] else 1)
    assert rep.energy_pj.keys() == exp.keys()
    for k, v in exp.items():
        assert rep.energy_pj[k] == pytest.approx(v, rel=1e-12), k


def test_report_serializers_and_trace_rows(designs, tmp_path):
    d = designs["gemm-2x2-ws"]
    tr = tmp_path / "t.csv"
    rep = get_engine("cycle").run(d, seed=2, trace=tr, window=(0, 10_000))
    rows = list(csv.DictReader(open(tr)))
    assert len(rows) == rep.cycles == 34
    assert [int(r["cycle"]) for r in rows] == list(range(34))
    js = json.loads(rep.to_json())
    assert js["cycles"] == 34 and js["sram_reads"] == {"X": 60, "W": 24}
    assert js["energy_pj_total"] == pytest.approx(sum(rep.energy_pj.values()))
    assert js["outputs"]["Y"] == np.asarray(rep.outputs["Y"]).tolist()
    head, row = rep.to_csv().splitlines()
    cols = dict(zip(head.split(","), row.split(",")))
    assert cols["engine"] == "cycle" and int(cols["cycles"]) == 34
    assert int(cols["sram_reads_X"]) == 60 and int(cols["sram_writes_Y"]) == 45


def test_execute_exact_past_float_range():
    """execute() sums through float64 bincount only while no partial sum can reach 2**53; with operands of
    2**31 it must take the exact integer path: compare with Python's own integers."""
    import numpy as np

    from lego.design import build_array, load_workload
    from simulator.cycle import execute

    w = load_workload("gemm", "M=3,N=4,K=5", 16)
    d = build_array(w, (2, 2), ("ws",))
    rng = np.random.default_rng(7)
    X = rng.integers(-2 ** 31, 2 ** 31, (3, 5))
    W = rng.integers(-2 ** 31, 2 ** 31, (5, 4))
    got = execute(d.arch, 0, {"X": X, "W": W})
    bits = w.output.bits
    for i in range(3):
        for j in range(4):
            s = sum(int(X[i, k]) * int(W[k, j]) for k in range(5))
            s = ((s + 2 ** (bits - 1)) % 2 ** bits) - 2 ** (bits - 1)
            assert int(got[i, j]) == s

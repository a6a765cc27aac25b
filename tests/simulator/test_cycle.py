"""The cycle engine: exact cycles/outputs (the RTL comparison is in tests/rtl), traffic, energy, area,
per-cycle trace, and the shared Report serializers."""
import csv
import json

import numpy as np

from lego.generate import generate
from simulator.cycle import increment_positions
from simulator.engine import get_engine


def test_increment_positions():
    assert increment_positions((2, 3)).tolist() == [2, 1, 1, 0, 1, 1]


def test_report_energy_area_trace(tmp_path):
    d = tmp_path / "d"
    generate("gemm", "M=6,N=5,K=7", "2x3", ("ws",), 8, True, d)
    tr = tmp_path / "t.csv"
    rep = get_engine("cycle").run(d, seed=2, trace=tr, window=(0, 10_000))
    man = json.loads((d / "manifest.json").read_text())
    assert rep.match and rep.cycles == man["cycles_predicted"]["ws"]
    assert rep.total_energy_pj > 0 and rep.total_area_um2 > 0
    assert set(rep.sram_reads) == {"X", "W"} and rep.sram_writes["Y"] > 0
    # W is stationary in ws: read once per change, never more than once per step per port
    assert rep.sram_reads["W"] < rep.extra["steps"] * 6
    rows = list(csv.DictReader(open(tr)))
    assert len(rows) == rep.cycles
    # flushes include the masked ones of FUs past the tensor edge
    assert sum(int(r["flushes_landing"]) for r in rows) >= rep.sram_writes["Y"] > 0
    js = json.loads(rep.to_json())
    assert js["cycles"] == rep.cycles and "energy_pj_total" in js
    assert rep.to_csv().splitlines()[0].startswith("engine,cycles")


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

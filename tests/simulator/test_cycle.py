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

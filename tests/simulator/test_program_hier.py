"""Single-dataflow programmable designs are emitted hierarchically (lego/prog/hier.py: FU-type modules, the
instance level as text). The default matrix (test_program_matrix.py) runs 2x2 ws and 2x4 os; here non-square ws
arrays (3x5, and 8x16 with 128 FUs: two tiles along N, K beyond one tile, partial tiles on every side) and an is
array (whose per-FU bank is X), on Icarus and Verilator: cycles equal the cycle engine's and the cycle register,
outputs bit-exact (the cycle engine's outputs match sw_reference)."""
import json

import numpy as np
import pytest

from lego.prog import program as P
from lego.prog.compiler import compile_gemm
from lego.prog.generate import generate_prog
from simulator.program import simulate_program

# array, dataflow, (M, N, K), scratchpad KiB, accumulator KiB, AXI bits, DRAM latency, tile box (None: any)
CASES = [("4x3", "is", (30, 26, 21), 2, 4, 128, 7, None),
         ("3x5", "ws", (31, 23, 40), 2, 4, 128, 7, None),
         ("8x16", "ws", (5, 21, 19), 1, 2, 64, 2, {"M": 16, "N": 16, "K": 16})]


@pytest.mark.rtl
@pytest.mark.parametrize("arr, df, dims, spad, acc, bits, lat, box", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_hier_rtl_equals_cycle_engine(arr, df, dims, spad, acc, bits, lat, box, tmp_path):
    d = tmp_path / "d"
    generate_prog("gemm", arr, (df,), 8, spad, acc, bits, True, d)
    man = json.loads((d / "manifest.json").read_text())
    assert man["array"] == [int(x) for x in arr.split("x")]
    assert box is None or man["prog"]["box"] == box
    assert "_fu_array(" in (d / "lego_gemm_prog.v").read_text()      # emitted hierarchically
    header, words, cmds = compile_gemm(man, dict(M=dims[0], N=dims[1], K=dims[2]), df, None, lat)
    P.write(tmp_path / "p.prog", header, words, cmds)
    cyc = simulate_program(d, tmp_path / "p.prog", "cycle", seed=3, latency=lat)
    assert cyc.match
    for eng in ("icarus", "verilator"):
        r = simulate_program(d, tmp_path / "p.prog", eng, seed=3, latency=lat)
        assert r.match and r.cycles == cyc.cycles == r.extra["cycles_register"], eng
        assert np.array_equal(r.outputs["Y"], cyc.outputs["Y"])

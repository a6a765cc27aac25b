"""Single-dataflow programmable designs are emitted hierarchically (lego/prog/hier.py: FU-type modules, the
instance level as text). The default matrix (test_program_matrix.py) runs 2x2 ws and 2x4 os; here a non-square
ws array and an is array (whose per-FU bank is X), on Icarus and Verilator: cycles equal the cycle engine's and
the cycle register, outputs bit-exact (the cycle engine's outputs match sw_reference)."""
import json
import numpy as np
import pytest
from lego.prog import program as P
from lego.prog.compiler import compile_gemm
from lego.prog.generate import generate_prog
from simulator.program import simulate_program


@pytest.mark.rtl
@pytest.mark.parametrize("arr, df, dims", [("4x3", "is", (30, 26, 21)), ("3x5", "ws", (31, 23, 40))])
def test_hier_rtl_equals_cycle_engine(arr, df, dims, tmp_path):
    d = tmp_path / "d"
    generate_prog("gemm", arr, (df,), 8, 2, 4, 128, True, d)
    man = json.loads((d / "manifest.json").read_text())
    dims = dict(M=dims[0], N=dims[1], K=dims[2])
    header, words, cmds = compile_gemm(man, dims, df, None, 7)
    P.write(tmp_path / "p.prog", header, words, cmds)
    cyc = simulate_program(d, tmp_path / "p.prog", "cycle", seed=3, latency=7)
    assert cyc.match
    for eng in ("icarus", "verilator"):
        r = simulate_program(d, tmp_path / "p.prog", eng, seed=3, latency=7)
        assert r.match and r.cycles == cyc.cycles == r.extra["cycles_register"]
        assert np.array_equal(r.outputs["Y"], cyc.outputs["Y"])

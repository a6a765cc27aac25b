"""A non-square programmable array (8x16 ws, 128 FUs): a tiny program (two tiles along N, K beyond one
tile) runs on Icarus and Verilator with the cycle engine's cycles exactly and sw_reference's outputs bit for
bit (simulate_program's check), the per-row bound compares pipelined with the control word included."""
import json

import numpy as np
import pytest

from lego.prog import program as P
from lego.prog.compiler import compile_gemm
from lego.prog.generate import generate_prog
from simulator.program import simulate_program


@pytest.mark.rtl
def test_8x16_ws_rtl_equals_cycle_engine(tmp_path):
    d = tmp_path / "d"
    generate_prog("gemm", "8x16", ("ws",), 8, 1, 2, 64, True, d)
    man = json.loads((d / "manifest.json").read_text())
    assert man["array"] == [8, 16] and man["prog"]["box"] == {"M": 16, "N": 16, "K": 16}
    dims = {"M": 5, "N": 21, "K": 19}            # partial tiles on every side, 2 tiles along N and K
    header, words, cmds = compile_gemm(man, dims, None, None, 2)
    P.write(tmp_path / "p.prog", header, words, cmds)
    cyc = simulate_program(d, tmp_path / "p.prog", "cycle", seed=3, latency=2)
    assert cyc.match
    for engine in ("icarus", "verilator"):
        rep = simulate_program(d, tmp_path / "p.prog", engine, seed=3, latency=2)
        assert rep.match, engine
        assert np.array_equal(rep.outputs["Y"], cyc.outputs["Y"])
        assert rep.cycles == rep.extra["cycles_register"] == cyc.cycles, engine

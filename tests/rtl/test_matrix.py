"""The RTL matrix: every design runs under Icarus and Verilator, bit-exact against sw_reference on random
inputs, with cycles exactly equal to the cycle engine's (shapes that do not divide the arrays; 1x1 up
to 8x8, non-square; 8- and 16-bit; every preset; fused designs switch dataflow with `mode`)."""
from pathlib import Path

import numpy as np
import pytest

from lego.generate import generate
from simulator.engine import get_engine, read_manifest

MATRIX = [
    # id, workload, shape, array, dataflows, bits
    ("gemm-1x1", "gemm", "M=3,N=2,K=4", "1x1", ("os",), 8),
    ("gemm-4x8-fused3-16b", "gemm", "M=9,N=13,K=5", "4x8", ("os", "ws", "is"), 16),
    ("conv2d-3x4-fused3", "conv2d", "N=1,C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1", "3x4", ("os", "ws", "is"), 8),
    ("dwconv2d-2x3-bcast", "dwconv2d", "C=5,H=6,W=7,R=3,S=3,PAD=1", "2x3", ("os", "ws-bcast", "is-bcast"), 8),
    ("bmm-8x8", "bmm", "B=2,M=9,N=10,K=3", "8x8", ("os", "ws-bcast"), 8),
    ("gemm-8x2-is-16b", "gemm", "M=5,N=3,K=17", "8x2", ("is-bcast", "os-bcast"), 16),
    ("attention-4x4", "attention", None, "4x4", ("os",), 8),
    ("attention-3x2-fused", "attention", "L=5,D=3", "3x2", ("ws", "is"), 8),
]


@pytest.fixture(scope="module", params=MATRIX, ids=[m[0] for m in MATRIX])
def design(request, tmp_path_factory):
    _, wl, shape, arr, dfs, bits = request.param
    out = tmp_path_factory.mktemp("mx") / "d"
    generate(wl, shape, arr, dfs, bits, True, out)
    return out


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_rtl_matches_reference_and_cycle_engine(design, engine):
    man = read_manifest(design)
    cyc = get_engine("cycle")
    rtl = get_engine(engine)
    for i, mode in enumerate(man["dataflows"]):
        seed = 11 + i
        ref = cyc.run(design, mode=mode, seed=seed)
        rep = rtl.run(design, mode=mode, seed=seed)
        assert rep.match, f"{engine} {mode}: max abs err {rep.max_abs_err}"
        assert ref.match
        assert rep.cycles == ref.cycles == man["cycles_predicted"][mode] == rep.extra["cycles_register"]
        for k in ref.outputs:
            assert np.array_equal(ref.outputs[k], rep.outputs[k])

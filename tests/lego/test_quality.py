"""Generated RTL is lint-clean (verilator -Wall with the backend-artifact waivers only) and synthesizes
with Yosys without latches or combinational loops (`check -assert`)."""
import subprocess

import pytest

from lego.generate import generate
from lego.synth import synth
from lego.toolchain import require

DESIGNS = [("gemm", "M=5,N=6,K=7", "3x2", ("os", "ws-bcast")), ("attention", "L=4,D=3", "2x2", ("os",)),
           ("conv2d", "C=2,K=3,H=5,W=5,R=3,S=3,PAD=1", "2x2", ("is",))]


@pytest.fixture(scope="module", params=DESIGNS, ids=[d[0] for d in DESIGNS])
def design(request, tmp_path_factory):
    wl, shape, arr, dfs = request.param
    out = tmp_path_factory.mktemp("q") / "d"
    generate(wl, shape, arr, dfs, 8, True, out)
    return out


def test_verilator_lint_wall_clean(design):
    r = subprocess.run([require("verilator"), "--lint-only", "-Wall", "lint.vlt", "-f", "files.f"],
                       cwd=design, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr and "%Error" not in r.stderr, r.stderr[-2000:]


def test_yosys_no_latches_no_loops(design):
    res = synth(design, "generic")
    assert res["latches"] == 0
    assert not res["comb_loops"]
    assert res["cells"] > 0

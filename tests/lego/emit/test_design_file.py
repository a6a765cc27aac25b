"""DIR/design.json, the hand-off from gen to sim: the IRs after every pass, read back without the front
end or the LP. Round trip: dump(load(file)) == file, and Verilog emitted from the loaded design is the
generated file byte for byte; lego sim works with the LP solver and the front end made to raise."""
import json
import subprocess
import sys

import pytest

from lego.emit import design_file
from lego.emit.top import ArrayTop
from lego.errors import LegoError
from lego.generate import generate, to_verilog

CASES = [
    ("gemm", "M=9,N=7,K=5", "2x3", ("os", "ws", "is")),
    ("conv2d", "N=1,C=2,K=3,H=6,W=5,R=3,S=2,STRIDE=2,PAD=1", "3x2", ("ws", "os-bcast")),
    ("dwconv2d", "C=3,H=5,W=5,R=3,S=3", "2x2", ("is-bcast",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("opt", [True, False], ids=["lp", "naive"])
def test_round_trip_is_exact(case, opt, tmp_path):
    wl, shape, arr, dfs = case
    generate(wl, shape, arr, dfs, 8, opt, tmp_path / "d")
    text = (tmp_path / "d" / design_file.FILE).read_text()
    d = design_file.read(tmp_path / "d")
    assert design_file.dumps(d) == text
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    top = ArrayTop(d.arch, d.pg, man["top"])
    assert to_verilog(top, man["top"]) == (tmp_path / "d" / f"{man['top']}.v").read_text()
    assert d.cycles == [man["cycles_predicted"][n] for n in man["dataflows"]]


def test_refuses_unknown_schema(tmp_path):
    generate("gemm", "M=3,N=3,K=3", "2x2", ("os",), 8, True, tmp_path / "d")
    p = tmp_path / "d" / design_file.FILE
    doc = json.loads(p.read_text())
    doc["schema"] = design_file.DESIGN_SCHEMA + 1
    p.write_text(json.dumps(doc))
    with pytest.raises(LegoError, match=r"^design.json: schema 2 is not supported \(this lego reads schema 1\)"):
        design_file.read(tmp_path / "d")
    p.write_text("{")
    with pytest.raises(LegoError, match=r"design.json: not valid JSON$"):
        design_file.read(tmp_path / "d")


NO_FRONT_END = """
import sys, pulp
import lego.design, lego.arch.graph, lego.prim.passes.schedule as S
def boom(*a, **k):
    raise RuntimeError("the front end or the LP ran during lego sim")
pulp.LpProblem.solve = boom
S.schedule_lp = S.schedule_asap = boom
lego.design.build_design = lego.design.build_array = lego.arch.graph.build_arch = boom
from lego.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["cycle", "icarus", "verilator"])
def test_sim_never_reruns_front_end_or_lp(engine, tmp_path):
    generate("gemm", "M=5,N=4,K=6", "2x2", ("ws", "os"), 8, True, tmp_path / "d")
    r = subprocess.run([sys.executable, "-c", NO_FRONT_END, "sim", str(tmp_path / "d"), "--engine", engine,
                        "--mode", "os", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["match"] is True and out["cycles"] == json.loads((tmp_path / "d" / "manifest.json").read_text())[
        "cycles_predicted"]["os"]

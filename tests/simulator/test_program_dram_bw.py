"""``--dram-bw`` (the DRAM's bandwidth in 64-bit words per cycle, each direction, below the AXI bus width;
docs/programmable.md, "Timing") through ``lego.cli.main``: ``lego sim DIR --program``, ``lego compile`` and ``lego sim --model M --design
DIR``. Bad values exit 2 with one line naming ``--dram-bw`` and write nothing; the bus width is the default, cycle
for cycle; a lower bandwidth gives more cycles, on the program engine and on model runs alike, and busies the
load and the store unit (reads and writes are limited). (The RTL benches against the cycle engine at 1, 2, 1/2
and 1/4 words per cycle: tests/simulator/test_program_matrix.py.)"""
import json
from pathlib import Path

import pytest

from lego.cli import main

_designs: dict = {}
CSV = "Layer, M, N, K,\ng1, 40, 24, 24,\ng2, 8, 64, 40,\n"


def design(tmp_path_factory) -> Path:
    """2x2 ws, 128-bit AXI (2 words per cycle), 4 read bursts outstanding."""
    if not _designs:
        d = tmp_path_factory.mktemp("bw") / "d"
        assert main(["gen", "--workload", "gemm", "--array", "2x2", "--scratchpad-kib", "1", "--accumulator-kib", "4",
                     "--dram-bits", "128", "--out", str(d)]) == 0
        _designs["d"] = d
    return _designs["d"]


def refused(capsys, argv, never=(), says=()) -> str:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert rc == 2, (rc, cap.err)
    assert len(lines) == 1 and lines[0].startswith("lego: error: --dram-bw: "), lines
    assert "Traceback" not in cap.err + cap.out
    for s in says:
        assert s in lines[0], (s, lines[0])
    for p in never:
        assert not Path(p).exists(), p
    return lines[0]


def program(capsys, d: Path, out: Path, *extra) -> dict:
    assert main(["compile", str(d), "--layer", "gemm:M=20,N=24,K=16", "--out", str(out), *extra]) == 0
    capsys.readouterr()
    return json.loads(Path(str(out) + ".json").read_text())


BAD = [("0", "> 0"), ("-1", "> 0"), ("x", "not a number"), ("1/0", "not a number"), ("4", "above the 128-bit bus"),
       ("3", "above"), ("1/4", "1...4 cycles per beat"), ("3/2", "allowed: 2, 1, 2/3, 1/2")]


@pytest.mark.parametrize("bw,says", BAD)
def test_bad_values_exit_2_and_write_nothing(bw, says, tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    prog = tmp_path / "p.prog"
    program(capsys, d, prog)
    out = tmp_path / "y.npz"
    refused(capsys, ["sim", d, "--program", prog, "--dram-bw", bw, "--out", out], (out,), (says,))
    refused(capsys, ["sim", d, "--program", prog, "--engine", "icarus", "--dram-bw", bw, "--out", out], (out,),
            (says,))
    p2 = tmp_path / "q.prog"
    refused(capsys, ["compile", d, "--layer", "gemm:M=8,N=8,K=8", "--dram-bw", bw, "--out", p2],
            (p2, Path(str(p2) + ".json")), (says,))
    csv = tmp_path / "net.csv"
    csv.write_text(CSV)
    od = tmp_path / "model"
    refused(capsys, ["sim", "--model", csv, "--design", d, "--dram-bw", bw, "--out", od], (od,), (says,))


def test_only_where_a_dram_is_timed(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    refused(capsys, ["sim", d, "--dram-bw", "1"], (), ("only with --program",))
    od = tmp_path / "m"
    refused(capsys, ["sim", "--model", "resnet50", "--array", "4x4", "--dram-bw", "1", "--out", od], (od,),
            ("--dram-gbps",))


def test_default_is_the_bus_width_and_less_is_slower(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    prog = tmp_path / "p.prog"
    h = program(capsys, d, prog)
    runs = {}
    for bw in (None, "2", "1", "1/2"):
        assert main(["sim", str(d), "--program", str(prog), "--json"] + ([] if bw is None else ["--dram-bw", bw])) == 0
        runs[bw] = json.loads(capsys.readouterr().out)
    assert runs[None]["cycles"] == runs["2"]["cycles"] == h["predicted"]["cycles"]
    assert runs[None]["busy_cycles"] == runs["2"]["busy_cycles"]
    assert [runs[b]["dram_bw"] for b in (None, "2", "1", "1/2")] == [2, 2, 1, 0.5]
    ld = [runs[b]["busy_cycles"]["ld"] for b in ("2", "1", "1/2")]
    assert ld[0] < ld[1] < ld[2], ld
    assert runs["2"]["cycles"] <= runs["1"]["cycles"] < runs["1/2"]["cycles"]
    # lego compile --dram-bw: the tile choice and the predicted cycles assume it, and the sim agrees
    q = tmp_path / "q.prog"
    hq = program(capsys, d, q, "--dram-bw", "1/2")
    assert hq["predicted"]["dram_bw"] == 0.5 and "dram_bw" not in h["predicted"]
    assert main(["sim", str(d), "--program", str(q), "--dram-bw", "1/2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == hq["predicted"]["cycles"]


def test_model_runs(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    csv = tmp_path / "net.csv"
    csv.write_text(CSV)
    tot = {}
    for bw in (None, "2", "1/2"):
        od = tmp_path / f"m{bw}".replace("/", "_")
        assert main(["sim", "--model", str(csv), "--design", str(d), "--out", str(od), "--json"]
                    + ([] if bw is None else ["--dram-bw", bw])) == 0
        tot[bw] = json.loads(capsys.readouterr().out)["total"]
    assert tot[None]["cycles"] == tot["2"]["cycles"] < tot["1/2"]["cycles"]
    assert (tot[None]["dram_bw"], tot["1/2"]["dram_bw"]) == (2, 0.5)


def test_a_design_whose_bench_predates_the_limit_is_refused_on_rtl(tmp_path_factory, tmp_path, capsys):
    import shutil
    d = tmp_path / "old"
    shutil.copytree(design(tmp_path_factory), d)
    bench = d / "tb" / "prog_bench.py"
    new = bench.read_text()
    bench.write_text(new.replace("beat_cycles", "gap"))
    prog = tmp_path / "p.prog"
    program(capsys, d, prog)
    out = tmp_path / "y.npz"
    refused(capsys, ["sim", d, "--program", prog, "--engine", "icarus", "--dram-bw", "1", "--out", out], (out,),
            ("predates the DRAM bandwidth limit",))
    assert main(["sim", str(d), "--program", str(prog), "--dram-bw", "1"]) == 0      # the cycle engine runs it
    capsys.readouterr()
    # a bench that paces reads only (before the write limit) would not give the engine's cycles: refused too
    bench.write_text(new.replace("DRAM_BW_LIMITS", "READ_PACING"))
    refused(capsys, ["sim", d, "--program", prog, "--engine", "verilator", "--dram-bw", "1", "--out", out], (out,),
            ("predates the write bandwidth limit",))


def test_writes_are_limited_too(tmp_path_factory, tmp_path, capsys):
    # a store-bound layer (K = 2) with rows not aligned to the 128-bit bus (N = 45): short W beats come faster
    # than one per D cycles, so the store unit is busier below the bus width, at 1 word per cycle and below
    d = design(tmp_path_factory)
    prog = tmp_path / "s.prog"
    assert main(["compile", str(d), "--layer", "gemm:M=24,N=45,K=2", "--out", str(prog)]) == 0
    capsys.readouterr()
    st = {}
    for bw in (None, "2", "1", "2/3", "1/2"):
        assert main(["sim", str(d), "--program", str(prog), "--json"] + ([] if bw is None else ["--dram-bw", bw])) == 0
        st[bw] = json.loads(capsys.readouterr().out)["busy_cycles"]["st"]
    assert st[None] == st["2"] < st["1"] < st["2/3"] < st["1/2"], st

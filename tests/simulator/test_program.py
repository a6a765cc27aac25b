"""Programs on programmable designs (lego gen --scratchpad-kib, lego compile, lego sim --program):
Icarus and Verilator agree bit for bit, the cycle engine's cycles equal the RTL's on every case, outputs
equal sw_reference for layers at least 8x the scratchpad; random shapes run on one design; bad input exits
2 naming the field."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lego.cli import main
from lego.prog import program as P
from lego.prog.compiler import compile_gemm
from lego.prog.generate import generate_prog
from simulator.program import simulate_program

# (array, dataflows, scratchpad KiB, accumulator KiB, DRAM bits, layer, mode, DRAM latency)
CASES = {
    "2x2-ws-1k-64b-lat1": ("2x2", ("ws",), 1, 1, 64, {"M": 48, "N": 48, "K": 8}, None, 1),
    "3x2-is+os-2k-256b-lat20": ("3x2", ("is", "os"), 2, 2, 256, {"M": 56, "N": 56, "K": 4}, "os", 20),
    "2x4-os-1k-256b-lat100": ("2x4", ("os",), 1, 1, 256, {"M": 40, "N": 52, "K": 4}, None, 100),
    # the wide load scatter: rows of 29 (X) and 37 (W) bytes start unaligned on the 16-byte beat, so lane
    # groups are clipped at the first and last beat of every row; ws: 4 lanes for X and W, os: 1 for X
    "4x4-ws+os-1k-128b-ws-lat2": ("4x4", ("ws", "os"), 1, 1, 128, {"M": 43, "N": 37, "K": 29}, "ws", 2),
    "4x4-ws+os-1k-128b-os-lat7": ("4x4", ("ws", "os"), 1, 1, 128, {"M": 43, "N": 37, "K": 29}, "os", 7),
}
# elements the DMA load writes per cycle (manifest prog.ld_lanes) in the case's mode: (X, W)
LANES = {"4x4-ws+os-1k-128b-ws-lat2": (4, 4), "4x4-ws+os-1k-128b-os-lat7": (1, 4)}
_designs = {}


def design(tmp_path_factory, array, dfs, spad, acc, bits) -> Path:
    key = (array, dfs, spad, acc, bits)
    if key not in _designs:
        d = tmp_path_factory.mktemp("prog") / "d"
        generate_prog("gemm", array, dfs, 8, spad, acc, bits, True, d)
        _designs[key] = d
    return _designs[key]


def compiled(d: Path, dims, mode, latency, out: Path) -> Path:
    man = json.loads((d / "manifest.json").read_text())
    header, words, cmds = compile_gemm(man, dims, mode, None, latency)
    P.write(out, header, words, cmds)
    return out


# the first three are covered in the default run by tests/simulator/test_program_matrix.py's cases on the same
# arrays, buses and latencies (2x2 ws 64-bit, 3x2 is+os, 2x4 os 256-bit latency 100): here they run with -m slow
SLOW_CASES = {"2x2-ws-1k-64b-lat1", "3x2-is+os-2k-256b-lat20", "2x4-os-1k-256b-lat100"}


@pytest.mark.rtl
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in CASES])
def test_matrix_rtl_equals_cycle_engine(case, tmp_path_factory, tmp_path):
    array, dfs, spad, acc, bits, dims, mode, lat = CASES[case]
    d = design(tmp_path_factory, array, dfs, spad, acc, bits)
    man = json.loads((d / "manifest.json").read_text())
    layer_bytes = dims["M"] * dims["K"] + dims["K"] * dims["N"] + 4 * dims["M"] * dims["N"]
    assert layer_bytes >= 8 * man["prog"]["scratchpad_bytes"]
    if case in LANES:
        lanes = man["prog"]["ld_lanes"]
        assert (lanes["X"][mode], lanes["W"][mode]) == LANES[case]
    prog = compiled(d, dims, mode, lat, tmp_path / "p.prog")
    cyc = simulate_program(d, prog, "cycle", seed=5, latency=lat)
    assert cyc.match
    for engine in ("icarus", "verilator"):
        rep = simulate_program(d, prog, engine, seed=5, latency=lat)
        assert rep.match, engine
        assert np.array_equal(rep.outputs["Y"], cyc.outputs["Y"])
        assert rep.cycles == rep.extra["cycles_register"] == cyc.cycles, engine


GEMM = st.fixed_dictionaries({"M": st.integers(1, 40), "N": st.integers(1, 40), "K": st.integers(1, 60)})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dims=GEMM, mode=st.sampled_from(["os", "ws", "is"]), lat=st.integers(0, 30))
def test_random_shapes_on_one_design_cycle_engine(dims, mode, lat, tmp_path_factory):
    d = design(tmp_path_factory, "2x3", ("os", "ws", "is"), 1, 1, 64)
    prog = compiled(d, dims, mode, lat, tmp_path_factory.mktemp("h") / "p.prog")
    rep = simulate_program(d, prog, "cycle", seed=dims["M"], latency=lat)
    assert rep.match


@pytest.mark.rtl
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dims=st.fixed_dictionaries({"M": st.integers(1, 24), "N": st.integers(1, 24), "K": st.integers(1, 30)}),
       mode=st.sampled_from(["os", "ws", "is"]))
def test_random_shapes_on_one_design_rtl(dims, mode, tmp_path_factory):
    """Only the program changes: the design (and its Icarus build) is the one of the property above."""
    d = design(tmp_path_factory, "2x3", ("os", "ws", "is"), 1, 1, 64)
    prog = compiled(d, dims, mode, 3, tmp_path_factory.mktemp("h") / "p.prog")
    cyc = simulate_program(d, prog, "cycle", seed=1, latency=3)
    rep = simulate_program(d, prog, "icarus", seed=1, latency=3)
    assert rep.match and cyc.match
    assert rep.cycles == cyc.cycles


@pytest.mark.rtl
@pytest.mark.parametrize("tensor, mode, lanes", [("X", "ws", 4), ("W", "ws", 4), ("X", "os", 1), ("W", "os", 4)])
def test_wide_load_takes_elements_over_lanes(tensor, mode, lanes, tmp_path_factory):
    """One LOAD of a whole tile (8 aligned rows of 32 int8, 2 beats of 16 lanes a row), latency 1: the RTL's
    cycles (and the cycle engine's) are 4 SETs + 3 + 1 edges to the first beat + rows·cols / P scatter
    cycles + END, the next burst's beat being there when the last beat's E / P >= 4 groups end; the
    one-element-per-cycle unit took rows·cols."""
    from lego.prog.spec import encode
    from lego.prog.timing import program_cycles
    from simulator.program import run_rtl
    d = design(tmp_path_factory, "4x4", ("ws", "os"), 1, 1, 128)
    man = json.loads((d / "manifest.json").read_text())
    assert man["prog"]["ld_lanes"][tensor][mode] == lanes
    rows, cols, lat = 8, 32, 1
    mi = man["prog"]["modes"][mode]
    cmds = [{"op": "SET", "reg": "LD_ADDR", "value": 64}, {"op": "SET", "reg": "LD_ROWS", "value": rows},
            {"op": "SET", "reg": "LD_COLS", "value": cols}, {"op": "SET", "reg": "LD_STRIDE", "value": cols},
            {"op": "LOAD", "tensor": tensor, "buf": 1, "mode": mi}, {"op": "END"}]
    want = 4 + (3 + lat + rows * cols // lanes) + 1
    assert program_cycles(man["prog"], cmds, lat).cycles == want
    header = {"dram": {"Y": {"addr": 0, "bytes": 4}}}
    img = np.arange(4096, dtype=np.uint32).astype(np.uint8)
    res = run_rtl(d, "icarus", man, header, [encode(c) for c in cmds], cmds, img, lat, want)
    assert res["error"] is None and res["cycles"] == res["cycles_reg"] == want


# ------------------------------------------------------------------------------------------ bad input

def _err(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lego: error: "), err
    return err[0]


def test_bad_input_exits_2_naming_the_field(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory, "2x2", ("ws",), 1, 1, 64)
    other = design(tmp_path_factory, "2x4", ("os",), 1, 1, 256)
    assert "--scratchpad-kib" in _err(capsys, ["gen", "--workload", "gemm", "--array", "16x16", "--scratchpad-kib", "1",
                                               "--accumulator-kib", "16", "--out", str(tmp_path / "x")])
    assert "--accumulator-kib" in _err(capsys, ["gen", "--workload", "gemm", "--array", "16x16", "--scratchpad-kib", "64",
                                                "--accumulator-kib", "1", "--out", str(tmp_path / "x")])
    assert "--dram-bits" in _err(capsys, ["gen", "--workload", "gemm", "--scratchpad-kib", "1", "--accumulator-kib", "1",
                                          "--dram-bits", "48", "--out", str(tmp_path / "x")])
    assert "--shape" in _err(capsys, ["gen", "--workload", "gemm", "--shape", "M=4", "--scratchpad-kib", "1",
                                      "--accumulator-kib", "1", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
    prog = tmp_path / "p.prog"
    assert "--tile" in _err(capsys, ["compile", str(d), "--layer", "gemm:M=8,N=8,K=8", "--tile", "M=64", "--out", str(prog)])
    assert "--layer" in _err(capsys, ["compile", str(d), "--layer", "gemm:M=70000,N=70000,K=70000", "--out", str(prog)])
    assert "--layer" in _err(capsys, ["compile", str(d), "--layer", "gemm:M=8,N=0,K=8", "--out", str(prog)])
    assert not prog.exists()
    assert main(["compile", str(d), "--layer", "gemm:M=9,N=7,K=13", "--out", str(prog)]) == 0
    capsys.readouterr()
    data = prog.read_bytes()
    (tmp_path / "t.prog").write_bytes(data[:-20])
    assert "--program: truncated" in _err(capsys, ["sim", str(d), "--program", str(tmp_path / "t.prog")])
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x40
    (tmp_path / "c.prog").write_bytes(bytes(bad))
    assert "--program: corrupt" in _err(capsys, ["sim", str(d), "--program", str(tmp_path / "c.prog")])
    assert "--program: compiled for another design" in _err(capsys, ["sim", str(other), "--program", str(prog)])
    assert "--program" in _err(capsys, ["sim", str(d)])
    assert main(["sim", str(d), "--program", str(prog), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["match"] and obj["cycles"] == obj["cycles_predicted"]


@pytest.mark.rtl
def test_watchdog_names_the_last_command(tmp_path_factory):
    """A stream the checks would refuse (a counter extent beyond the tile box never ends its COMPUTE), run on
    the RTL without them: the bench's watchdog fails it and names the command it hangs behind."""
    from lego.prog.spec import encode
    from simulator.program import run_rtl
    d = design(tmp_path_factory, "2x2", ("ws",), 1, 1, 64)
    man = json.loads((d / "manifest.json").read_text())
    cmds = [{"op": "SET", "reg": "EXT0", "value": 60000}, {"op": "SET", "reg": "EXT1", "value": 1},
            {"op": "SET", "reg": "EXT2", "value": 1}, {"op": "COMPUTE", "mode": 0, "xbuf": 0, "wbuf": 0, "ybuf": 0,
                                                       "acc": 0}, {"op": "END"}]
    header = {"dram": {"Y": {"addr": 0, "bytes": 4}}}
    res = run_rtl(d, "icarus", man, header, [encode(c) for c in cmds], cmds, np.zeros(4096, np.uint8), 0, 10)
    assert res["error"].startswith("watchdog: no command accepted for 1040 cycles; last accepted command #3 "
                                   "op=COMPUTE"), res["error"]
    assert "waiting on #4 op=END" in res["error"] and "cp_busy=1" in res["error"]


def test_cli_summary_names_the_gemm_layer(tmp_path_factory, tmp_path, capsys):
    """``lego sim DIR --program P``'s summary line names a one-GEMM program's layer as ``lego compile --layer``
    takes it (gemm:M=..,N=..,K=..), not as the header's JSON object."""
    d = design(tmp_path_factory, "2x2", ("ws",), 1, 1, 64)
    prog = tmp_path / "p.prog"
    assert main(["compile", str(d), "--layer", "gemm:M=9,N=7,K=13", "--out", str(prog)]) == 0
    capsys.readouterr()
    assert main(["sim", str(d), "--program", str(prog)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("PASS: cycle program gemm:M=9,N=7,K=13 mode=ws cycles="), line

"""lego.toolchain.run_cocotb under concurrency: several processes running benches on one build directory (a
user's `lego sim` runs of one design side by side, a parallel test session) each get their own results, and
a build waits for another's lock."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lego.toolchain import build_lock

ROOT = Path(__file__).resolve().parents[2]

ADDER = """module adder(input clk, input [15:0] a, input [15:0] b, output reg [16:0] s);
  always @(posedge clk) s <= a + b;
endmodule
"""

BENCH = '''
import json, os, time
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, ReadOnly


@cocotb.test()
async def add(dut):
    a, b = json.loads(os.environ["T_IN"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.a.value, dut.b.value = a, b
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    await ReadOnly()
    time.sleep(float(os.environ.get("T_SLEEP", "0")))   # wall time: the runs of the test overlap
    with open(os.environ["T_OUT"], "w") as f:
        json.dump({"s": int(dut.s.value), "cwd": os.getcwd()}, f)
'''

RUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lego.toolchain import run_cocotb
    src, tb, bd, out, engine = sys.argv[1:6]
    ok = run_cocotb(engine=engine, sources=[Path(src)], top="adder", test_module="adder_bench",
                    test_dir=Path(tb), build_dir=Path(bd), extra_env={"T_IN": sys.argv[6], "T_OUT": out,
                                                                     "T_SLEEP": sys.argv[7]})
    sys.exit(0 if ok else 1)
""")


def _files(tmp_path):
    src = tmp_path / "adder.v"
    src.write_text(ADDER)
    tb = tmp_path / "tb"
    tb.mkdir()
    (tb / "adder_bench.py").write_text(BENCH)
    return src, tb


def _start(tmp_path, src, tb, bd, i, a, b, engine="icarus", sleep=0.0):
    out = tmp_path / f"out{i}.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, "-c", RUN, str(src), str(tb), str(bd), str(out), engine,
                          json.dumps([a, b]), str(sleep)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    return p, out


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_concurrent_runs_on_one_build_dir_each_get_their_own_result(tmp_path, engine):
    """Four processes start at once on one empty build directory, each with its own operands: every one passes
    and reads back its own sum; each ran in its own working directory inside the build directory, which
    keeps the log and no run directory or results file afterwards."""
    src, tb = _files(tmp_path)
    bd = tmp_path / "build"
    rng = __import__("random").Random(7)
    ops = [(rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(4)]
    procs = [_start(tmp_path, src, tb, bd, i, a, b, engine, sleep=0.5) for i, (a, b) in enumerate(ops)]
    cwds = set()
    for (p, out), (a, b) in zip(procs, ops):
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log[-3000:]
        got = json.loads(out.read_text())
        assert got["s"] == a + b
        assert Path(got["cwd"]).parent == bd
        cwds.add(got["cwd"])
    assert len(cwds) == 4
    assert (bd / "sim.log").exists()
    assert not list(bd.glob("run-*")) and not (bd / "results.xml").exists()


@pytest.mark.rtl
def test_a_build_waits_for_the_build_lock(tmp_path):
    """While another process holds the directory's build lock, a run builds nothing; once it is released the
    run builds and passes."""
    src, tb = _files(tmp_path)
    bd = tmp_path / "build"
    bd.mkdir()
    with build_lock(bd):
        p, out = _start(tmp_path, src, tb, bd, 0, 1234, 4321)
        time.sleep(6)
        assert p.poll() is None
        assert not (bd / "sim.vvp").exists() and not out.exists()
    log, _ = p.communicate(timeout=300)
    assert p.returncode == 0, log[-3000:]
    assert json.loads(out.read_text())["s"] == 5555

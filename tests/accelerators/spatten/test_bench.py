"""accelerators/spatten/bench.py: `lego sim DIR` on a SpAtten directory (the cycle engine and the RTL
engines), the bench runner's errors, and the directory's own tb/ (run.py, test_design.py) through lego.api."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from accelerators.spatten import ACCELERATOR
from accelerators.spatten.bench import DEFAULT_ROWS, run_bench, run_design
from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.model import DEFAULT_TRACE, load_trace
from accelerators.spatten.rtl_model import replay
from lego.cli import main
from lego.errors import LegoError
from sw_reference.spatten.cascade import attention_query_int


def test_cycle_engine(spatten_rtl_dir):
    """The exact model's cycles of the default bench (as report.json predicts them) and the golden model's
    outputs, recomputed here from the same random draws."""
    out, _ = spatten_rtl_dir
    rep = run_design(out, "cycle", seed=2)
    cfg = SpAttenConfig.from_yaml(out / "config.yaml")
    rows = load_trace(DEFAULT_TRACE)[:DEFAULT_ROWS]
    want = replay(cfg, rows, seed=3, mem_latency=1)
    assert rep.match and rep.cycles == want["total"] == rep.extra["cycles_predicted"]
    assert [r["cycles"] for r in rep.extra["requests"]] == want["cycles"]
    from accelerators.spatten.rtl_model import request_data
    rng = np.random.default_rng(3)
    for row, o in zip(rows, rep.outputs["O"]):
        d = request_data(cfg, row, rng)
        ref = attention_query_int(d["q"], d["k"], d["v"], cfg, d["dq"], d["kv"] / d["n"])
        assert o.tolist() == ref.out.tolist()
    assert run_design(out, "cycle").cycles == json.loads((out / "report.json").read_text())["cycles"]["predicted"]


def test_errors(spatten_rtl_dir, capsys, tmp_path):
    out, _ = spatten_rtl_dir
    with pytest.raises(LegoError, match="^--engine: "):
        run_design(out, "xsim")
    with pytest.raises(LegoError, match="^--waves: the cycle engine"):
        run_design(out, "cycle", waves=tmp_path / "w.fst")
    with pytest.raises(LegoError, match="^bench: unknown SpAtten bench 'top'"):
        run_bench(out, "icarus", "top")
    with pytest.raises(LegoError, match="^--engine: the SpAtten benches run on icarus or verilator"):
        run_bench(out, "cycle", "units")
    with pytest.raises(LegoError, match="^--inputs: a SpAtten design replays trace rows"):
        ACCELERATOR.run_design(out, "cycle", inputs={"Q": np.zeros(8)})
    for argv, msg in ((["--mode", "os"], "--mode: a SpAtten design has no dataflow modes"),
                      (["--engine", "nope"], "--engine: unknown engine 'nope'")):
        assert main(["sim", str(out), *argv]) == 2
        assert msg in capsys.readouterr().err
    assert ACCELERATOR.cycles(SpAttenConfig.from_yaml(out / "config.yaml"), load_trace(DEFAULT_TRACE)[:2]) == \
        replay(SpAttenConfig.from_yaml(out / "config.yaml"), load_trace(DEFAULT_TRACE)[:2], 1, 1)["total"]


@pytest.mark.rtl
def test_lego_sim_icarus(spatten_rtl_dir, capsys, tmp_path):
    """`lego sim DIR --engine icarus --json`: the measured outputs equal the cycle engine's (the golden
    model's) bit for bit, and the measured cycles its prediction; --out writes O."""
    out, _ = spatten_rtl_dir
    assert main(["sim", str(out), "--engine", "icarus", "--json", "--out", str(tmp_path / "o.npz")]) == 0
    rtl = json.loads(capsys.readouterr().out)
    assert main(["sim", str(out), "--engine", "cycle", "--json"]) == 0
    cyc = json.loads(capsys.readouterr().out)
    assert rtl["match"] and rtl["max_abs_err"] == 0 and rtl["cycles"] == rtl["cycles_predicted"] == cyc["cycles"]
    assert rtl["outputs"] == cyc["outputs"] and len(rtl["outputs"]["O"]) == DEFAULT_ROWS
    assert np.load(tmp_path / "o.npz")["O"].tolist() == rtl["outputs"]["O"]


def test_generated_tb_through_lego_api(spatten_rtl_dir, tmp_path):
    """`python -m pytest DIR/tb` from another directory: tb/test_design.py and tb/run.py reach the
    benches through lego.api only (here its cycle-engine case; the RTL cases are the benches above)."""
    out, _ = spatten_rtl_dir
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out / "tb"),
                        "-k", "test_design and cycle"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.rtl
def test_generated_tb_all(spatten_rtl_dir, tmp_path):
    """Every case of the directory's tb/test_design.py (lego sim on each engine, the pipeline and unit
    benches under Icarus and Verilator)."""
    out, _ = spatten_rtl_dir
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out / "tb")],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "7 passed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]

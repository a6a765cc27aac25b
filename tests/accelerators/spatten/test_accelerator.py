"""accelerators/spatten/__init__.py: the SpAtten Accelerator as the CLI uses it (`lego list`,
`lego sim --accelerator spatten`: the trace model plus the exact RTL cycles of the trace's first rows)."""
import json

from accelerators.spatten import ACCELERATOR
from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.model import DEFAULT_TRACE, load_trace, simulate
from accelerators.spatten.rtl_model import replay
from lego import registry
from lego.cli import main


def _sim(capsys, *argv):
    code = main(["sim", "--accelerator", "spatten", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_registered():
    assert registry.get(registry.ACCELERATORS, "spatten") is ACCELERATOR
    assert ACCELERATOR.load_config() == SpAttenConfig.preset("eighth")


def test_sim_accelerator_json(capsys):
    """The summary of the model's Report (scalar totals, breakdowns, extra) and rtl_exact: spatten_top's
    exact cycles on the trace's first 8 rows (the numbers tb_cycles checks against Icarus/Verilator)."""
    code, out, err = _sim(capsys, "--json")
    assert code == 0, err
    res = json.loads(out)
    rep = simulate(SpAttenConfig.preset("eighth")).summary()
    for k in ("cycles", "dram_bytes", "energy_pj", "dram_bytes_by_tensor", "energy_pj_by_component",
              "dram_bytes_dense_int8", "dram_bytes_dense_fp32", "dram_reduction_vs_int8", "gops", "gops_per_watt"):
        assert res[k] == rep[k], k
    assert res["accelerator"] == "spatten" and res["engine"] == "spatten-model"
    ex = replay(SpAttenConfig.preset("eighth"), load_trace(DEFAULT_TRACE)[:8], seed=1, mem_latency=1)
    assert res["rtl_exact"]["cycles"] == ex["cycles"] and res["rtl_exact"]["total"] == ex["total"]
    assert res["rtl_exact"]["requests"] == ex["requests"]


def test_sim_accelerator_rtl_rows(capsys, tmp_path):
    """--rtl-rows N --mem-latency L --seed S: the exact model on N rows (what `python -m ... --rtl-exact
    --rows N` printed), on a given trace."""
    trace = tmp_path / "t.csv"                      # the header and the first 39 rows of the default trace
    trace.write_text("\n".join(DEFAULT_TRACE.read_text().splitlines()[:40]) + "\n")
    code, out, err = _sim(capsys, "--rtl-rows", "3", "--mem-latency", "2", "--seed", "4", "--trace", str(trace),
                          "--json")
    assert code == 0, err
    res = json.loads(out)
    ex = replay(SpAttenConfig.preset("eighth"), load_trace(trace)[:3], seed=5, mem_latency=2)
    assert res["rtl_exact"]["rows"] == 3 and res["rtl_exact"]["total"] == ex["total"]
    assert res["requests"] == 39 and res["trace"] == "t.csv"
    code, out, err = _sim(capsys, "--rtl-rows", "0", "--json")
    assert code == 0 and json.loads(out)["rtl_exact"]["total"] == 0


def test_sim_accelerator_no_rtl_for_config(capsys, tmp_path):
    """A config the RTL generator refuses (3 keys per cycle do not divide the top-k parallelism) still
    gets the paper-level model; rtl_exact says why it is absent."""
    (tmp_path / "c.yaml").write_text("preset: eighth\nqk_multipliers: 192\n")
    code, out, err = _sim(capsys, "--config", str(tmp_path / "c.yaml"), "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["cycles"] > 0
    assert res["rtl_exact"]["skipped"].startswith("no RTL for this config (qk_multipliers: ")


def test_sim_accelerator_errors(capsys, tmp_path):
    for argv, msg in ((["--rtl-rows", "-1"], "--rtl-rows: must be >= 0, got -1"),
                      (["--mem-latency", "0"], "--mem-latency: must be >= 1, got 0"),
                      (["--trace", str(tmp_path / "none.csv")], "--trace: file"),
                      (["--rtl-row", "2"], "--rtl-row: unknown option for lego sim (did you mean --rtl-rows?)")):
        code, out, err = _sim(capsys, *argv)
        assert code == 2 and out == "" and msg in err and err.count("\n") == 1, (argv, err)

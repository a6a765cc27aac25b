import numpy as np
import pytest

from accelerators.spatten.config import SpAttenConfig
from lego.errors import LegoError
from simulator.spatten import DEFAULT_TRACE, DENSE_TRACE, load_trace, simulate, topk_cycles
from sw_reference.spatten.topk import topk_engine

KEYS = ("cycles", "dram_bytes", "dram_bytes_dense_int8", "dram_bytes_dense_fp32", "dram_reduction_vs_int8",
        "gops", "energy_pj")


@pytest.fixture(scope="module")
def eighth():
    return simulate(SpAttenConfig.preset("eighth"))


def test_keys_and_trace_arithmetic(eighth):
    for k in KEYS:
        assert k in eighth
    rows = load_trace(DEFAULT_TRACE)
    kv = sum(r.key_fetch * r.d * r.k_bits / 8 + r.value_fetch * r.d * r.v_bits / 8
             + (r.key_fetch * r.d * r.requant_bits / 8 if r.requant else 0) for r in rows)
    assert eighth["dram_bytes"] == round(kv)
    dense = sum(2 * r.seq_len * r.d for r in rows)
    assert eighth["dram_bytes_dense_int8"] == dense
    assert abs(eighth["dram_reduction_vs_int8"] / 7.2 - 1) < 0.05
    assert eighth["dram_reduction_vs_fp32"] == pytest.approx(4 * eighth["dram_reduction_vs_int8"])


def test_eighth_throughput_near_paper(eighth):
    assert abs(eighth["gops"] / 360 - 1) <= 0.20
    assert eighth["cycles"] <= eighth["cycles_serial"]


def test_full_faster_than_eighth(eighth):
    full = simulate(SpAttenConfig.preset("full"))
    assert full["cycles"] < eighth["cycles"] / 2
    assert full["dram_bytes"] == eighth["dram_bytes"]


def test_dense_trace_has_no_reduction():
    r = simulate(SpAttenConfig.preset("eighth"), DENSE_TRACE)
    assert r["dram_reduction_vs_fp32"] == pytest.approx(1.0)


def test_bad_trace(tmp_path):
    with pytest.raises(LegoError, match="^--trace: "):
        simulate(SpAttenConfig(), tmp_path / "none.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LegoError, match="^--trace: "):
        simulate(SpAttenConfig(), tmp_path / "x.csv")


def test_topk_cycles_model_is_engine_model():
    rng = np.random.default_rng(0)
    cfg = SpAttenConfig.preset("eighth")
    for _ in range(50):
        n = int(rng.integers(1, 200))
        k = int(rng.integers(1, n + 1))
        x = rng.integers(0, 1 << 16, n)
        assert topk_cycles(x, k, cfg) == topk_engine(x, k, 16).cycles


def test_cli_sim_accelerator_json():
    """`lego sim --accelerator spatten --json`: the issue's keys, plus spatten_top's exact cycles on the
    trace's first rows (the same numbers tb_cycles checks against Icarus/Verilator)."""
    import json
    import subprocess
    import sys

    from accelerators.spatten.config import SpAttenConfig
    from simulator.spatten import DEFAULT_TRACE, load_trace
    from simulator.spatten_rtl import replay

    r = subprocess.run([sys.executable, "-m", "lego.cli", "sim", "--accelerator", "spatten", "--json"],
                       capture_output=True, text=True, check=True)
    res = json.loads(r.stdout)
    for k in ("cycles", "dram_bytes", "dram_bytes_dense_int8", "dram_bytes_dense_fp32",
              "dram_reduction_vs_int8", "gops", "energy_pj"):
        assert k in res, k
    ex = replay(SpAttenConfig.preset("eighth"), load_trace(DEFAULT_TRACE)[:8], seed=1, mem_latency=1)
    assert res["rtl_exact"]["cycles"] == ex["cycles"] and res["rtl_exact"]["total"] == ex["total"]


def test_cli_sim_accelerator_no_rtl_for_config(tmp_path):
    """A config the RTL generator refuses (3 keys per cycle do not divide the top-k parallelism) still
    gets the paper-level model; rtl_exact says why it is absent."""
    import json
    import subprocess
    import sys

    (tmp_path / "c.yaml").write_text("preset: eighth\nqk_multipliers: 192\n")
    r = subprocess.run([sys.executable, "-m", "lego.cli", "sim", "--accelerator", "spatten", "--config",
                        str(tmp_path / "c.yaml"), "--json"], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout)
    assert res["cycles"] > 0
    assert res["rtl_exact"]["skipped"].startswith("no RTL for this config (qk_multipliers: ")

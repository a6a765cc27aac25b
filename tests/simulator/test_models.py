"""Built-in models and model-level runs (totals = sum of layers, CSV/JSON/PNG, CLI)."""
import json
from pathlib import Path

import pytest

from lego.errors import LegoError
from lego.cli import main
from simulator.model_run import run_model, run_model_report
from simulator.models import MODELS, Layer, conv2d, get_model, gpt2


def test_known_mac_counts():
    macs = {m: sum(l.macs for l in get_model(m)) for m in MODELS}
    assert macs["resnet50"] == pytest.approx(4.09e9, rel=0.01)      # published ~4.1 GMACs
    assert macs["mobilenetv2"] == pytest.approx(300e6, rel=0.01)    # published ~300 MMACs
    # BERT-base seq 128: 12 * (128*768*(3*768 + 768 + 2*3072) + 2*12*128*128*64)
    assert macs["bert-base"] == 12 * (128 * 768 * (4 * 768 + 2 * 3072) + 2 * 12 * 128 * 128 * 64)


def test_gpt2_decode_reads_every_weight():
    w = sum(l.tensor_elems()["W"] for l in gpt2() if l.op == "gemm")
    assert w == pytest.approx(123.5e6, rel=0.01)        # GPT-2 small, LM head tied to embedding
    assert all(dict(l.dims).get("i", 1) == 1 for l in gpt2())


def test_layer_validation():
    with pytest.raises(LegoError, match="op"):
        Layer("x", "fft", (("i", 1),))
    with pytest.raises(LegoError, match="dims"):
        Layer("x", "gemm", (("i", 1), ("j", 2)))
    with pytest.raises(LegoError, match="stride"):
        conv2d("c", 1, 1, 1, 1, 1, 1, 1, stride=0)
    with pytest.raises(LegoError, match="model"):
        get_model("vgg")


def test_conv_tensor_sizes():
    l = conv2d("c", 1, 8, 3, 4, 4, 3, 3, stride=2)
    assert l.tensor_elems() == {"X": 3 * 9 * 9, "W": 8 * 3 * 9, "Y": 8 * 16}
    assert l.gemm_view() == (1, 16, 8, 27)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_totals_equal_sum_of_layers(model):
    rows, tot = run_model(model)
    assert len(rows) == len(get_model(model)) == tot["layers"]
    for k_row, k_tot in (("cycles", "cycles"), ("stall_cycles", "stall_cycles"),
                         ("macs", "macs"), ("dram_bytes", "dram_bytes_total"),
                         ("compute_cycles", "compute_cycles")):
        assert sum(r[k_row] for r in rows) == tot[k_tot], k_row
    assert sum(r["energy_pj"] for r in rows) == pytest.approx(tot["energy_pj_total"], rel=1e-9)
    assert 0 < tot["utilization"] <= 1
    assert all(0 < r["utilization"] <= 1 for r in rows)


def test_run_model_writes_csv_json_png(tmp_path):
    rows, tot = run_model("gpt2", (8, 8), ["os", "ws"], out_dir=tmp_path)
    files = tot["files"]
    data = json.loads(open(files["json"]).read())
    assert data["total"]["cycles"] == tot["cycles"]
    assert len(open(files["csv"]).read().splitlines()) == len(rows) + 1
    assert open(files["png"], "rb").read(4) == b"\x89PNG"
    assert tot["area_um2_total"] == rows[0]["area_um2"]


def test_row_model_slows_memory_bound_model():
    _, base = run_model("gpt2")
    _, rows = run_model("gpt2", dram_row_model=True)
    assert rows["cycles"] > base["cycles"] and rows["dram_row_model"]


def test_gpt2_decode_is_memory_bound():
    _, tot = run_model("gpt2")
    assert tot["stall_cycles"] > 0.8 * tot["cycles"]


def cli(argv):
    """`lego sim --model ...` through the one CLI."""
    return main(["sim", *argv])


def test_cli_json(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)               # without --out, the files go to ./lego-model-<model>
    assert cli(["--model", "gpt2", "--array", "8x8", "--dataflow", "ws", "--json"]) == 0
    out = capsys.readouterr().out
    obj = json.loads(out)
    files = obj["total"]["files"]
    assert files == {"csv": "lego-model-gpt2/gpt2_lego_layers.csv", "json": "lego-model-gpt2/gpt2_lego.json",
                     "png": "lego-model-gpt2/gpt2_lego.png"}
    assert (tmp_path / files["png"]).read_bytes()[:4] == b"\x89PNG"
    assert obj["total"]["array"] == "8x8" and obj["total"]["dataflows"] == ["ws"]
    assert out.count("\n") == 1


def test_cli_design_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from lego.generate import generate
    generate("gemm", "M=4,N=8,K=2", "4x8", ("os",), 8, True, tmp_path / "d")
    assert cli(["--model", "gpt2", "--design", str(tmp_path / "d"), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["total"]["array"] == "4x8" and obj["total"]["dataflows"] == ["os"]
    # every tile of every layer pays the design's own fill/drain: systolic (4-1) + (8-1) + 2 (bank read,
    # output write; tests/simulator/test_cycle.py) = 12, not the analytic constant's 13
    assert json.loads((tmp_path / "d" / "report.json").read_text())["cycles"]["fill_drain"] == {"os": 12}
    for r in obj["layers"]:
        assert r["compute_cycles"] == r["tiles"] * (-(-r["steps"] // r["tiles"]) + 12), r["layer"]


@pytest.mark.parametrize("argv,field", [
    (["--model", "vgg"], "model"),
    (["--model", "gpt2", "--array", "4by4"], "array"),
    (["--model", "gpt2", "--dataflow", "rs"], "dataflow"),
    (["--model", "gpt2", "--design", "/nonexistent"], "design"),
    (["--model", "gpt2", "--buffer-kib", "0"], "buffer-kib"),
    (["--model", "gpt2", "--dram-gbps", "0"], "dram_gbps"),
    (["--model", "gpt2", "--freq-ghz", "x"], "freq-ghz"),
    ([], "model"),
])
def test_cli_bad_input_exit_2(argv, field, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.count("\n") == 1 and field in cap.err


def test_run_model_report():
    rep = run_model_report("gpt2", (8, 8), ["ws"])
    rows, tot = run_model("gpt2", (8, 8), ["ws"])
    assert rep.cycles == tot["cycles"] and rep.total_dram_bytes == tot["dram_bytes_total"]
    assert rep.total_energy_pj == pytest.approx(tot["energy_pj_total"])
    assert len(rep.extra["layers"]) == len(rows) and rep.engine == "lego"

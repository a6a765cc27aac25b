"""`lego sim --accelerator dota` through lego.cli.main: the contract's JSON keys, the options, the files
(CSV, JSON, two PNGs) and bad input (exit 2, one line naming the field, nothing written)."""
import csv
import json
from pathlib import Path

import pytest

from accelerators.dota import ACCELERATOR, load_config, simulate
from lego import registry
from lego.cli import main


def _sim(capsys, *argv):
    code = main(["sim", "--accelerator", "dota", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_registered():
    assert registry.get(registry.ACCELERATORS, "dota") is ACCELERATOR
    assert ACCELERATOR.load_config() == load_config()
    assert ACCELERATOR.load_config(preset="mzi-8bit") == load_config(preset="mzi", bits=8)


def test_defaults_json_and_files(capsys, tmp_path, monkeypatch):
    """No options: DOTA-B, 4 bits, arch all, DeiT-T at 197 tokens; files in lego-dota-deit-t/."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _sim(capsys, "--json")
    assert code == 0, err
    res = json.loads(out)
    ref = simulate(load_config(), "deit-t")
    for k in ("energy_mj", "latency_ms", "area_mm2", "power_w"):
        assert res[k] == pytest.approx(ref.extra[k], rel=1e-12), k
    assert res["energy_pj_by_component"] == pytest.approx(ref.energy_pj)
    assert res["area_um2_by_component"] == pytest.approx(ref.area_um2)
    assert res["power_mw"] == pytest.approx(ref.extra["power_mw"])
    assert sum(res["energy_mj_by_component"].values()) == pytest.approx(res["energy_mj"])
    assert (res["accelerator"], res["config"], res["arch"], res["tokens"], res["bits"]) == \
        ("dota", "dota-b-4bit", "all", 197, 4)
    d = tmp_path / "lego-dota-deit-t"
    assert res["files"] == {"csv": "lego-dota-deit-t/layers.csv", "json": "lego-dota-deit-t/summary.json",
                            "png_breakdown": "lego-dota-deit-t/breakdown.png",
                            "png_compare": "lego-dota-deit-t/compare.png"}
    assert json.loads((d / "summary.json").read_text())["energy_mj"] == res["energy_mj"]
    rows = list(csv.DictReader((d / "layers.csv").open()))
    assert [r["name"] for r in rows] == ["embed", "qkv", "qk", "sv", "proj", "fc1", "fc2", "head"]
    assert sum(float(r["energy_pj"]) * int(r["count"]) for r in rows) + ref.energy_pj["others"] \
        + ref.energy_pj["periphery"] == pytest.approx(ref.total_energy_pj)
    for png in ("breakdown.png", "compare.png"):
        assert (d / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cmp = res["compare"]
    assert cmp["mrr"]["energy_x"] == pytest.approx(simulate(load_config(preset="mrr"), "deit-t").extra["energy_mj"]
                                                   / res["energy_mj"])
    # DeiT-T alone: 3.90x energy with our periphery (4.02x is the six workloads' mean), 12.6x latency
    assert cmp["mrr"]["energy_x"] > 3.8 and cmp["mrr"]["latency_x"] > 10 and cmp["mzi"]["latency_x"] > 100


def test_options(capsys, tmp_path):
    out = tmp_path / "o"
    code, stdout, err = _sim(capsys, "--model", "bert-b", "--tokens", "384", "--bits", "8", "--preset", "dota-l",
                             "--arch-opt", "crossbar", "--out", str(out), "--json")
    assert code == 0, err
    res = json.loads(stdout)
    ref = simulate(load_config(preset="dota-l", bits=8, arch="crossbar"), "bert-b", 384)
    assert res["energy_mj"] == pytest.approx(ref.extra["energy_mj"]) and res["tokens"] == 384
    assert res["config"] == "dota-l-8bit" and res["arch"] == "crossbar" and (out / "summary.json").is_file()
    # a baseline: power is not modelled, the comparison adds DOTA-B
    code, stdout, err = _sim(capsys, "--preset", "mrr", "--out", str(tmp_path / "m"), "--json")
    res = json.loads(stdout)
    assert code == 0 and res["power_w"] is None and set(res["compare"]) == {"this", "dota-b", "mzi", "note"}
    assert res["compare"]["dota-b"]["energy_x"] < 1
    # stall mode, and the text output
    code, stdout, err = _sim(capsys, "--latency", "stall", "--out", str(tmp_path / "s"))
    assert code == 0 and "latency_ms" in stdout and "stall_cycles" in stdout
    # --bits wins over the YAML's bits; --arch-opt over the YAML's arch
    (tmp_path / "c.yaml").write_text("preset: dota-b\nbits: 4\ntiles: 6\narch: crossbar\n")
    code, stdout, err = _sim(capsys, "--config", str(tmp_path / "c.yaml"), "--bits", "8", "--arch-opt", "all",
                             "--out", str(tmp_path / "y"), "--json")
    res = json.loads(stdout)
    assert code == 0 and res["bits"] == 8 and res["arch"] == "all"
    ref = simulate(load_config(bits=8, tiles=6), "deit-t")
    assert res["energy_mj"] == pytest.approx(ref.extra["energy_mj"])


BAD_CLI = [
    (["--model", "gpt2"], "--model: unknown model 'gpt2' for dota (allowed: deit-t, deit-s, deit-b, bert-b, bert-l)"),
    (["--tokens", "0"], "--tokens: must be a positive integer, got 0"),
    (["--tokens", "-3"], "--tokens: must be a positive integer, got -3"),
    (["--bits", "6"], "--bits: must be 4 or 8 (the authors' tables), got 6"),
    (["--bits", "four"], "--bits: must be 4 or 8 (the authors' tables), got 'four'"),
    (["--tokens", "many"], "--tokens: must be a positive integer, got 'many'"),
    (["--preset", "dota-x"], "--preset: unknown preset 'dota-x' for dota (allowed: dota-b, dota-l, mrr, mzi"),
    (["--arch-opt", "mesh"], "--arch-opt: must be one of all, crossbar, broadcast, got 'mesh'"),
    (["--preset", "mzi", "--arch-opt", "all"], "--arch-opt: the mzi baseline runs 'broadcast' only, got 'all'"),
    (["--latency", "exact"], "--latency: must be one of overlap, stall, got 'exact'"),
    (["--preset", "mrr", "--latency", "stall"], "--latency: 'stall' models the DOTA dataflow only, not the mrr"),
    (["--arch", "all"], "--arch: unknown option for lego sim (did you mean --arch-opt?)"),
]

BAD_YAML = [
    ("nh: 0\n", "nh: must be > 0, got 0"),
    ("nw: -12\n", "nw: must be > 0, got -12"),
    ("n_lambda: 0\n", "n_lambda: must be > 0, got 0"),
    ("tiles: 0\n", "tiles: must be > 0, got 0"),
    ("cores_per_tile: -1\n", "cores_per_tile: must be > 0, got -1"),
    ("freq_ghz: 0\n", "freq_ghz: must be > 0, got 0.0"),
    ("freq_ghz: -5\n", "freq_ghz: must be > 0, got -5.0"),
    ("bits: 16\n", "bits: must be 4 or 8 (the authors' tables), got 16"),
    ("in_bits: 9\n", "in_bits: must be in 2..8, got 9"),
    ("act_bits: 1\n", "act_bits: must be in 2..8, got 1"),
    ("sigma_in: -0.1\n", "sigma_in: must be >= 0, got -0.1"),
    ("sigma_out: -1\n", "sigma_out: must be >= 0, got -1.0"),
    ("sigma_phase_deg: -2\n", "sigma_phase_deg: must be >= 0, got -2.0"),
    ("tiles: four\n", "tiles: must be an integer, got 'four'"),
    ("input_sharing: 1\n", "input_sharing: must be true or false, got 1"),
    ("foo: 1\n", "foo: unknown DotaConfig field (allowed: preset, bits, name, kind, "),
    ("device:\n  bogus: 1\n", "device.bogus: unknown DeviceParams field (allowed: "),
    ("device:\n  pd_power_mw: -1\n", "device.pd_power_mw: must be >= 0, got -1.0"),
    ("- 1\n", "config: "),
    ("tiles: [\n", "--config: "),
]


@pytest.mark.parametrize("argv,msg", BAD_CLI + [(["--config", text], msg) for text, msg in BAD_YAML],
                         ids=[a[0] for a, _ in BAD_CLI] + [t.split(":")[0].strip("- \n") or t for t, _ in BAD_YAML])
def test_bad_input_exits_2_and_writes_nothing(capsys, tmp_path, argv, msg):
    out = tmp_path / "out"
    if argv[0] == "--config":
        (tmp_path / "c.yaml").write_text(argv[1])
        argv = ["--config", str(tmp_path / "c.yaml")]
    code, stdout, err = _sim(capsys, *argv, "--out", str(out), "--json")
    assert code == 2 and stdout == "", (argv, err)
    assert err.count("\n") == 1 and err.startswith("lego: error: " + msg), err
    assert not out.exists()


def test_bad_out_and_config_paths(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = _sim(capsys, "--out", str(f))
    assert code == 2 and err == f"lego: error: --out: '{f}' exists and is not a directory\n"
    code, _, err = _sim(capsys, "--out", str(tmp_path / "no" / "such"))
    assert code == 2 and err.startswith("lego: error: --out: directory ") and not (tmp_path / "no").exists()
    code, _, err = _sim(capsys, "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("lego: error: --config: file ") and not (tmp_path / "o").exists()

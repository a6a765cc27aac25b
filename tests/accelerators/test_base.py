"""The Accelerator interface as a third party uses it: one file (toy_accel.py) plus one registry entry
make `lego list`, `lego gen --accelerator`, `lego sim DIR`, `lego sim --accelerator` and `lego synth`
work, with the same directory files and manifest schema as an array."""
import json
import sys
from pathlib import Path

import pytest

from lego import registry
from lego.cli import main
from lego.emit.directory import SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parent))
import toy_accel  # noqa: E402


@pytest.fixture
def toy():
    registry.register(registry.ACCELERATORS, "toy", toy_accel.ACCELERATOR)
    yield toy_accel.ACCELERATOR
    registry.unregister(registry.ACCELERATORS, "toy")


def run(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_list_shows_exactly_the_registry(toy, capsys):
    code, out, _ = run(capsys, "list", "--json")
    accs = json.loads(out)["accelerators"]
    assert code == 0 and "toy" in accs and accs["toy"] == toy.description
    assert set(accs) == set(registry.names(registry.ACCELERATORS))
    assert "pointacc" not in accs or "pointacc" in registry.names(registry.ACCELERATORS)


@pytest.mark.rtl
def test_gen_sim_synth(toy, capsys, tmp_path):
    d = tmp_path / "t"
    code, out, err = run(capsys, "gen", "--accelerator", "toy", "--preset", "wide", "--out", str(d), "--json")
    assert code == 0, err
    assert json.loads(out)["accelerator"] == "toy"
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted([".lego", "config.yaml", "files.f", "lint.vlt", "manifest.json", "report.json", "tb",
                            "toy_top.core", "toy_top.v"])
    man = json.loads((d / "manifest.json").read_text())
    assert (man["schema_version"], man["kind"], man["accelerator"], man["top"]) == (SCHEMA_VERSION, "accelerator",
                                                                                     "toy", "toy_top")
    assert (d / "files.f").read_text() == "toy_top.v\n"
    for engine in ("cycle", "icarus", "verilator"):
        code, out, err = run(capsys, "sim", str(d), "--engine", engine, "--seed", "5", "--json")
        assert code == 0, (engine, err)
        res = json.loads(out)
        assert res["match"] is True and res["cycles"] == 64
    code, out, err = run(capsys, "sim", "--accelerator", "toy", "--repeat", "3", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["cycles"] == 48 and res["runs"] == 3 and res["energy_pj"] == pytest.approx(0.03 * 48)
    code, out, err = run(capsys, "synth", str(d), "--json")
    assert code == 0, err
    syn = json.loads(out)
    assert syn["flipflops"] == 24 and syn["latches"] == 0          # the wide preset: a 24-bit total


def test_bad_config_names_the_field(toy, capsys, tmp_path):
    (tmp_path / "c.yaml").write_text("n: 0\n")
    code, out, err = run(capsys, "gen", "--accelerator", "toy", "--config", str(tmp_path / "c.yaml"),
                         "--out", str(tmp_path / "o"))
    assert code == 2 and out == "" and err == "lego: error: n: must be >= 1, got 0\n"
    assert not (tmp_path / "o").exists()
    (tmp_path / "c.yaml").write_text("n: 4\nwidht: 12\n")
    code, out, err = run(capsys, "gen", "--accelerator", "toy", "--config", str(tmp_path / "c.yaml"),
                         "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("lego: error: widht: unknown ToyConfig field (allowed: preset, n, width)")
    code, out, err = run(capsys, "sim", "--accelerator", "toy", "--repat", "2")
    assert code == 2 and err == "lego: error: --repat: unknown option for lego sim (did you mean --repeat?)\n"
    code, out, err = run(capsys, "gen", "--accelerator", "nope", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("lego: error: --accelerator: unknown accelerator 'nope' (allowed: ")

"""Design-space exploration: Pareto front, design space, Dask sweep, CLI."""
import json

import pytest

from lego.errors import LegoError
from lego.cli import main
from simulator.explore import (DesignPoint, all_dataflow_sets, design_space, pareto_mask,
                               sweep)


def test_pareto_mask_by_hand():
    rows = [{"latency_ms": 1, "area_mm2": 2, "energy_uj": 3},
            {"latency_ms": 2, "area_mm2": 1, "energy_uj": 3},
            {"latency_ms": 2, "area_mm2": 2, "energy_uj": 3},     # dominated by both above
            {"latency_ms": 3, "area_mm2": 3, "energy_uj": 1}]
    assert pareto_mask(rows) == [True, True, False, True]


def test_design_space():
    assert len(all_dataflow_sets()) == 7
    pts = design_space([(8, 8), (16, 16)], [("os",), ("os", "ws")], [128, 256])
    assert len(pts) == 8 and pts[0] == DesignPoint(8, 8, ("os",), 128)
    with pytest.raises(LegoError, match="design space"):
        design_space([], [("os",)], [128])


def test_sweep_local_threads():
    pts = design_space([(8, 8), (16, 16)], [("ws",)], [256])
    rows = sweep("gpt2", pts, workers=1, processes=False, progress=False)
    assert [r["array"] for r in rows] == ["8x8", "16x16"]
    assert all("pareto" in r for r in rows)
    assert rows[1]["area_mm2"] > rows[0]["area_mm2"]


def cli(argv):
    """`lego explore ...` through the one CLI."""
    return main(["explore", *argv])


def test_cli_writes_csv_png_json(tmp_path, capsys):
    rc = cli(["--model", "gpt2", "--arrays", "8x8,16x16", "--dataflow-sets", "ws,os+ws",
              "--buffers-kib", "128", "--threads", "--workers", "1", "--no-progress",
              "--out", str(tmp_path), "--json"])
    assert rc == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["points"] == 4 and obj["pareto"]
    assert (tmp_path / "explore_gpt2.csv").read_text().count("\n") == 5
    assert (tmp_path / "explore_gpt2.png").read_bytes()[:4] == b"\x89PNG"


def _csv_rows(path):
    import csv
    return list(csv.DictReader(open(path)))


def test_cli_external_scheduler(tmp_path, capsys):
    """The same sweep on an external scheduler and on a local thread cluster gives the same rows (CSV and
    JSON), and each row equals evaluate() of its point run here in-process."""
    from dask.distributed import LocalCluster

    from simulator.explore import evaluate
    args = ["--model", "gpt2", "--arrays", "8x8,16x16", "--dataflow-sets", "ws,os+ws", "--buffers-kib", "128",
            "--no-progress", "--json"]
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        rc = cli(args + ["--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "ext")])
    assert rc == 0
    ext = json.loads(capsys.readouterr().out)
    assert cli(args + ["--threads", "--workers", "1", "--out", str(tmp_path / "loc")]) == 0
    loc = json.loads(capsys.readouterr().out)
    assert ext["points"] == loc["points"] == 4
    assert ext["pareto"] == loc["pareto"] and ext["pareto"]
    rows = _csv_rows(tmp_path / "ext" / "explore_gpt2.csv")
    assert rows == _csv_rows(tmp_path / "loc" / "explore_gpt2.csv")
    pts = design_space([(8, 8), (16, 16)], [("ws",), ("os", "ws")], [128])
    want = [evaluate("gpt2", p) for p in pts]
    assert [(r["array"], r["dataflows"]) for r in rows] == [(w["array"], w["dataflows"]) for w in want]
    for r, w in zip(rows, want):
        assert {k: r[k] for k in w} == {k: str(v) for k, v in w.items()}
    assert {(r["array"], r["dataflows"]) for r in ext["pareto"]} == {
        (r["array"], r["dataflows"]) for r, m in zip(want, pareto_mask(want)) if m}


@pytest.mark.parametrize("argv,field", [
    (["--model", "vgg"], "model"),
    (["--model", "gpt2", "--arrays", "8"], "array"),
    (["--model", "gpt2", "--dataflow-sets", "os+xx"], "dataflow-sets"),
    (["--model", "gpt2", "--buffers-kib", "0"], "buffers-kib"),
])
def test_cli_bad_input(argv, field, capsys):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err


@pytest.mark.slow
def test_sweep_local_processes_default():
    pts = design_space([(16, 16)], [("os", "ws", "is")], [256])
    rows = sweep("mobilenetv2", pts, workers=2, progress=False)
    assert rows[0]["pareto"] and rows[0]["cycles"] > 0

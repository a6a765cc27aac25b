"""The per-layer PNG of ``lego sim --model M --design DIR`` (simulator.prog_plot): read back pixel by pixel,
one bar per layer in order, utilization bars proportional to the utilization, cycles bars affine in
log10(cycles); and the PNG the CLI writes decodes to one bar per layer."""
import json

import numpy as np
import pytest
from PIL import Image

from lego.cli import main
from lego.prog.generate import generate_prog
from simulator.prog_plot import BLUE, ORANGE, render


def bars(img) -> list[tuple[int, int]]:
    """Per bar, left to right: (pixels of the cycles bar, pixels of the utilization bar) in its middle column;
    the bars are found as the runs of utilization colour on the row just above the panel's floor."""
    a = np.asarray(img.convert("RGB")).astype(int)
    blue, orange = (a == BLUE).all(axis=2), (a == ORANGE).all(axis=2)
    floor = max(np.nonzero(orange.any(axis=1))[0])
    line = orange[floor]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], line.astype(int), [0]])))
    runs = list(zip(edges[::2], edges[1::2]))
    return [(int(blue[:, (s + e) // 2].sum()), int(orange[:, (s + e) // 2].sum())) for s, e in runs]


def _fit_residual(x, y) -> float:
    A = np.stack([x, np.ones_like(x)], axis=1)
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    return float(np.abs(A @ coef - y).max()), coef


def test_bars_follow_the_rows():
    rng = np.random.default_rng(4)
    n = 37
    cycles = rng.integers(1_000, 3_000_000, n)
    util = rng.uniform(0.02, 1.0, n)
    rows = [{"cycles": int(c), "utilization": float(u)} for c, u in zip(cycles, util)]
    got = bars(render(rows, {"model": "m", "array": "16x16"}))
    assert len(got) == n
    hc, hu = np.array(got, dtype=float).T
    res_u, (k, c0) = _fit_residual(util, hu)              # h = k·u (+ c0 ~ 0): linear from zero
    assert res_u <= 1.0 and abs(c0) <= 1.0 and k > 100
    res_c, (b, _) = _fit_residual(np.log10(cycles), hc)   # h = a + b·log10(cycles)
    assert res_c <= 1.0 and b > 30
    assert _fit_residual(cycles.astype(float), hc)[0] > 5  # the fit tells scales apart: not linear in cycles
    # the bars are in the rows' order: heights never decrease along increasing cycles / utilization
    assert (np.diff(hc[np.argsort(cycles)]) >= 0).all() and (np.diff(hu[np.argsort(util)]) >= 0).all()


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    d = tmp_path_factory.mktemp("prog") / "d"
    generate_prog("gemm", "2x2", ("ws", "os"), 8, 1, 1, 64, True, d)
    return d


def test_the_cli_png_has_one_bar_per_layer(design, tmp_path, capsys):
    (tmp_path / "net.csv").write_text("Layer, M, N, K\n" + "".join(f"g{i}, {5 + 3 * i}, {4 + i}, {7 + 2 * i}\n"
                                                               for i in range(9)))
    out = tmp_path / "o"
    assert main(["sim", "--model", str(tmp_path / "net.csv"), "--design", str(design), "--out", str(out),
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    with Image.open(out / "net_prog.png") as img:
        img.load()
        assert img.format == "PNG"
        got = bars(img)
    assert len(got) == len(rows) == 9
    res, _ = _fit_residual(np.array([r["utilization"] for r in rows]), np.array([u for _, u in got], dtype=float))
    assert res <= 1.0

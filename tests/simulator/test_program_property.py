"""One programmable design, random layers of every kind: only the program changes.

The design (4x4, ws + os + is fused, 2 KiB scratchpad and accumulator) is generated once. Hypothesis draws a
layer (gemm; conv2d with random batch, stride, padding and groups that are valid; dwconv2d; bmm), a mode and
a DRAM latency; the layer goes through ``lego compile --layer``'s parser and compiler, the host's side
(``im2col`` / ``conv_weights`` for conv, read back with ``conv_output``), and the program runs on the cycle
engine. The output must equal an independent numpy oracle written here (direct loops over the output
pixels on an explicitly zero-padded image, per-batch products), not sw_reference and not the compiler's
im2col. A small ``rtl`` variant runs a few draws on Icarus on the same design (and its one build). Both run on
a gemm design (conv through the host's im2col) and on a conv design (conv layers through the load DMA's window
generator: the NHWC image and [G, R, S, C/G, K/G] kernel as docs/programmable.md places them).
"""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lego.prog import program as P
from lego.prog.compiler import compile_gemm, parse_layer
from lego.prog.generate import generate_prog
from lego.prog.lower import conv_output, conv_weights, im2col
from lego.prog.model import compile_model
from simulator.program import simulate_program

MODES = ("ws", "os", "is")
_design: dict = {}


def the_design(tmp_path_factory, workload: str = "gemm") -> Path:
    """The one design of a workload family: gemm (conv through the host's im2col) or conv2d (the load DMA's
    window generator: hardware im2col)."""
    if workload not in _design:
        d = tmp_path_factory.mktemp("prop") / workload
        generate_prog(workload, "4x4", MODES, 8, 2, 2, 64, True, d)
        _design[workload] = d
    return _design[workload]


# --------------------------------------------------------------------------------------------- oracle

def wrap32(a: np.ndarray) -> np.ndarray:
    return ((np.asarray(a, np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)


def oracle_conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """Direct convolution: x [N, C, H, W], w [K, C/groups, R, S] -> [N, K, Ho, Wo], one output pixel at a
    time on the zero-padded image (cross-correlation, as ONNX/PyTorch)."""
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), np.int64)
    xp[:, :, pad:pad + h, pad:pad + wd] = x
    ho, wo = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    kg = k // groups
    y = np.zeros((n, k, ho, wo), np.int64)
    for b in range(n):
        for ko in range(k):
            g = ko // kg
            for i in range(ho):
                for j in range(wo):
                    win = xp[b, g * cg:(g + 1) * cg, i * stride:i * stride + r, j * stride:j * stride + s]
                    y[b, ko, i, j] = int((win * w[ko]).sum())
    return wrap32(y)


def oracle_bmm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    b, m, k = x.shape
    n = w.shape[2]
    y = np.zeros((b, m, n), np.int64)
    for i in range(b):
        for kk in range(k):                       # outer products, in another order than a dot product
            y[i] += np.outer(x[i, :, kk], w[i, kk, :])
    return wrap32(y)


# ------------------------------------------------------------------------------------------ strategies

@st.composite
def conv_layers(draw, depthwise: bool, small: bool):
    top = 2 if small else 3
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    r = draw(st.integers(1, 4))
    s = draw(st.integers(1, 4))
    h = draw(st.integers(max(1, r - 2 * pad), 7 if small else 11))
    wd = draw(st.integers(max(1, s - 2 * pad), 7 if small else 11))
    n = draw(st.integers(1, 1 if small else 2))
    if depthwise:
        c = draw(st.integers(1, 2 * top))
        return f"dwconv2d:N={n},C={c},H={h},W={wd},R={r},S={s},STRIDE={stride},PAD={pad}"
    g = draw(st.integers(1, top))
    c = g * draw(st.integers(1, top))
    k = g * draw(st.integers(1, 2 * top))
    return f"conv2d:N={n},C={c},H={h},W={wd},K={k},R={r},S={s},STRIDE={stride},PAD={pad},GROUPS={g}"


def layers(small: bool = False):
    top = 16 if small else 40
    gemm = st.builds(lambda m, n, k: f"gemm:M={m},N={n},K={k}",
                     st.integers(1, top), st.integers(1, top), st.integers(1, top))
    bmm = st.builds(lambda b, m, n, k: f"bmm:B={b},M={m},N={n},K={k}",
                    st.integers(1, 3), st.integers(1, top // 2), st.integers(1, top // 2), st.integers(1, top // 2))
    return st.one_of(gemm, bmm, conv_layers(False, small), conv_layers(True, small))


LATENCY = st.one_of(st.sampled_from([0, 1, 20, 100]), st.integers(0, 120))


# ----------------------------------------------------------------------------------------------- runs

def compile_layer(d: Path, layer: str, mode: str, lat: int, out: Path):
    man = json.loads((d / "manifest.json").read_text())
    spec = parse_layer(layer)
    if spec.op == "gemm":
        header, words, cmds = compile_gemm(man, spec.dims, mode, None, lat)
    else:
        header, words, cmds = compile_model(man, [spec], model=layer, mode=mode, latency=lat, field="--layer")
    P.write(out, header, words, cmds)
    return spec, header


def run_layer(d: Path, layer: str, mode: str, lat: int, seed: int, out: Path, engine: str):
    """-> (the layer's output as the host reads it back, the oracle's, the report, the program header)."""
    spec, header = compile_layer(d, layer, mode, lat, out)
    rng = np.random.default_rng(seed)
    dd = spec.dims
    if spec.op in ("conv2d", "dwconv2d"):
        g = spec.groups
        x = rng.integers(-128, 128, size=(dd["N"], dd["C"], dd["H"], dd["W"]), dtype=np.int64)
        w = rng.integers(-128, 128, size=(dd["K"], dd["C"] // g, dd["R"], dd["S"]), dtype=np.int64)
        want = oracle_conv(x, w, spec.stride[0], spec.pads[0], g)
        if header["layers"][0]["im2col"] == "hardware":     # NHWC image, kernel [G, R, S, C/G, K/G], Y NHWC
            kg, cg = dd["K"] // g, dd["C"] // g
            inputs = {"X": x.transpose(0, 2, 3, 1),
                      "W": w.reshape(g, kg, cg, dd["R"], dd["S"]).transpose(0, 3, 4, 2, 1)}
            rep = simulate_program(d, out, engine, inputs=inputs, latency=lat)
            got = rep.outputs["Y"].transpose(0, 3, 1, 2)
        else:
            inputs = {"X": im2col(x, spec), "W": conv_weights(w, spec)}
            rep = simulate_program(d, out, engine, inputs=inputs, latency=lat)
            got = conv_output(rep.outputs["Y"], spec)
    elif spec.op == "bmm":
        x = rng.integers(-128, 128, size=(dd["B"], dd["M"], dd["K"]), dtype=np.int64)
        w = rng.integers(-128, 128, size=(dd["B"], dd["K"], dd["N"]), dtype=np.int64)
        want = oracle_bmm(x, w)
        rep = simulate_program(d, out, engine, inputs={"X": x, "W": w}, latency=lat)
        got = rep.outputs["Y"]
    else:
        x = rng.integers(-128, 128, size=(dd["M"], dd["K"]), dtype=np.int64)
        w = rng.integers(-128, 128, size=(dd["K"], dd["N"]), dtype=np.int64)
        want = oracle_bmm(x[None], w[None])[0]
        rep = simulate_program(d, out, engine, inputs={"X": x, "W": w}, latency=lat)
        got = rep.outputs["Y"]
    return got, want, rep, header


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=layers(), mode=st.sampled_from(MODES), lat=LATENCY, seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("workload", ["gemm", "conv2d"])
def test_random_layers_on_one_design_cycle_engine_equals_oracle(workload, layer, mode, lat, seed, tmp_path_factory):
    d = the_design(tmp_path_factory, workload)
    got, want, rep, header = run_layer(d, layer, mode, lat, seed, tmp_path_factory.mktemp("h") / "p.prog", "cycle")
    assert got.shape == want.shape, layer
    assert np.array_equal(got, want), layer
    assert rep.match, layer
    assert rep.cycles == header["predicted"]["cycles"]


@pytest.mark.rtl
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=layers(small=True), mode=st.sampled_from(MODES), lat=st.sampled_from([1, 20, 100]),
       seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("workload", ["gemm", "conv2d"])
def test_random_layers_on_one_design_icarus(workload, layer, mode, lat, seed, tmp_path_factory):
    d = the_design(tmp_path_factory, workload)
    got, want, rep, header = run_layer(d, layer, mode, lat, seed, tmp_path_factory.mktemp("h") / "p.prog", "icarus")
    assert np.array_equal(got, want), layer
    assert rep.match, layer
    assert rep.cycles == rep.extra["cycles_register"] == header["predicted"]["cycles"], layer

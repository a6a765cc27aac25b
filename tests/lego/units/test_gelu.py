"""GeluUnit RTL: bit-exact vs sw_reference.gelu_fx, fixed latency GELU_LATENCY / gelu_cycles, the
valid/ready protocol with random input gaps and output stalls, and verilator -Wall lint (the project's
lint.vlt, lego.emit.files.LINT_VLT, no waiver of our own), under Icarus and Verilator (cocotb bench:
gelu_bench.py). Several units with different parameters sit side by side in one generated top, built
once per simulator (module-scoped fixture)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _harness import assert_lint_clean, run_bench
from amaranth.hdl import Elaboratable, Module, Signal, unsigned

from lego.units import GELU_LATENCY, GeluUnit, gelu_cycles
from lego.units.harness import emit
from sw_reference.gelu_fx import gelu_fx, gelu_params

pytestmark = pytest.mark.rtl

# (params (c, g, mult, shift), lanes, in_bits, out_bits, beats, gap_p, stall_p)
CONFIGS = [
    (gelu_params(1 / 16, 1 / 16), 1, 8, 8, 300, 0.0, 0.0),             # int8: all 256 codes, back to back
    (gelu_params(1 / 1024, 1 / 64), 4, 16, 8, 120, 0.2, 0.3),          # int16 -> int8, 4 lanes, stalls
    (gelu_params(0.5, 0.5), 3, 4, 4, 60, 0.3, 0.0),                    # int4 (c = 5), gaps only
    (gelu_params(1 / 2048, 1 / 2048, mult_bits=24), 2, 16, 16, 100, 0.1, 0.5),   # int16 -> int16, 24-bit M
    (gelu_params(8.0, 8.0), 1, 8, 8, 40, 0.0, 0.2),                    # C = 0: relu-like
    ((3, 10, 1, 60), 2, 8, 32, 30, 0.0, 0.0),                          # SH far past the product
]


def stim_beats(rng, lanes, ib, n, k):
    lo, hi = -(1 << (ib - 1)), (1 << (ib - 1)) - 1
    vals = list(range(lo, hi + 1)) if k == 0 else []
    extremes = [lo, hi, 0, -1, 1, lo + 1, hi - 1]
    while len(vals) < n * lanes:
        r = rng.random()
        if r < 0.15:
            vals.append(int(rng.choice(extremes)))
        elif r < 0.6:                                    # the curved region, |x| < ~3 real
            c = max(CONFIGS[k][0][0], 1)
            vals.append(int(np.clip(rng.integers(-c - 2, c + 3), lo, hi)))
        else:
            vals.append(int(rng.integers(lo, hi + 1)))
    vals = vals[:n * lanes] + [0] * (n * lanes - len(vals[:n * lanes]))
    return [vals[i * lanes:(i + 1) * lanes] for i in range(n)]


class GeluTop(Elaboratable):
    """Several GeluUnits with independent ports u<k>_* (data ports flat) sharing clk/rst."""

    NAMES = ("in_valid", "in_data", "in_ready", "out_valid", "out_data", "out_ready")

    def __init__(self, configs):
        self.units = [GeluUnit(*p, lanes=ln, in_bits=ib, out_bits=ob) for p, ln, ib, ob, *_ in configs]
        self.ports = []
        for k, u in enumerate(self.units):
            for name in self.NAMES:
                sig = getattr(u, name)
                port = Signal(unsigned(len(sig.as_value()) if hasattr(sig, "as_value") else len(sig)),
                              name=f"u{k}_{name}")
                self.ports.append((name, u, port))

    def elaborate(self, platform):
        m = Module()
        for k, u in enumerate(self.units):
            m.submodules[f"u{k}"] = u
        for name, u, port in self.ports:
            sig = getattr(u, name)
            sig = sig.as_value() if hasattr(sig, "as_value") else sig
            if name in ("in_valid", "in_data", "out_ready"):
                m.d.comb += sig.eq(port)
            else:
                m.d.comb += port.eq(sig)
        return m


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    d = tmp_path_factory.mktemp("gelu_rtl")
    top = GeluTop(CONFIGS)
    src = emit(d / "gelu_top.v", top, "gelu_top", [p for _, _, p in top.ports])
    rng = np.random.default_rng(17)
    units = []
    for k, (p, lanes, ib, ob, n, gap, stall) in enumerate(CONFIGS):
        beats = stim_beats(rng, lanes, ib, n, k)
        exp = gelu_fx(np.array(beats, dtype=np.int64), *p, in_bits=ib, out_bits=ob).tolist()
        units.append({"lanes": lanes, "in_bits": ib, "out_bits": ob, "beats": beats, "expected": exp,
                      "gap_p": gap, "stall_p": stall})
    max_cycles = max(len(u["beats"]) for u in units) * 8 + 100
    stim = d / "stim.json"
    stim.write_text(json.dumps({"seed": 5, "units": units, "max_cycles": max_cycles}))
    return {"dir": d, "src": src, "stim": stim, "units": units}


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def sim(request, design):
    return run_bench("gelu", request.param, design["src"], design["stim"], design["dir"])


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_cycles_formula():
    assert GELU_LATENCY == 3
    assert [gelu_cycles(n, l) for n, l in ((1, 1), (256, 1), (12, 4), (13, 4), (384, 12))] == [4, 259, 6, 7, 35]
    assert GeluUnit(*gelu_params(1 / 16, 1 / 16)).latency == 3
    with pytest.raises(ValueError):
        gelu_cycles(0)
    with pytest.raises(ValueError):
        GeluUnit(*gelu_params(1 / 16, 1 / 16), lanes=0)
    with pytest.raises(ValueError):
        GeluUnit(40, 10, 1, 1)                           # 2G < C^2


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_ports():
    u = GeluUnit(*gelu_params(1 / 1024, 1 / 64), lanes=4, in_bits=16, out_bits=8)
    widths = [len(getattr(u, n).as_value()) if n.endswith("data") else len(getattr(u, n))
              for n in GeluTop.NAMES]
    assert widths == [1, 64, 1, 1, 32, 1]
    assert u.signature.members["in_data"].flow.name == "In" and u.signature.members["out_ready"].flow.name == "In"
    assert u.in_data[0].shape().signed and u.out_data[3].shape().signed


def test_bit_exact(sim, design):
    for k, (u, got) in enumerate(zip(design["units"], sim["units"])):
        assert len(got["outs"]) == len(u["beats"]), f"u{k}: {len(got['outs'])} results"
        for i, (o, e) in enumerate(zip(got["outs"], u["expected"])):
            assert o == e, f"u{k} beat {i}: in {u['beats'][i]} got {o} expected {e}"


def test_latency_and_protocol(sim, design):
    for k, (u, got) in enumerate(zip(design["units"], sim["units"])):
        assert got["ready_errors"] == 0, f"u{k}: in_ready != ~out_valid | out_ready"
        assert got["hold_errors"] == 0, f"u{k}: out_data changed while stalled"
        acc, oc = got["accepts"], got["out_cycles"]
        assert len(acc) == len(oc) == len(u["beats"])
        assert all(o >= a + GELU_LATENCY for a, o in zip(acc, oc)), f"u{k}: result before its latency"
        if u["stall_p"] == 0:                            # no stalls: exactly GELU_LATENCY cycles each
            assert [o - a for a, o in zip(acc, oc)] == [GELU_LATENCY] * len(acc), f"u{k}"
            if u["gap_p"] == 0:                          # back to back: one beat per cycle
                n = len(acc) * u["lanes"]
                assert acc == list(range(acc[0], acc[0] + len(acc)))
                assert oc[-1] + 1 - acc[0] == gelu_cycles(n, u["lanes"]), f"u{k}"


LINT_CFGS = [(gelu_params(1 / 16, 1 / 16), 1, 8, 8), (gelu_params(1 / 1024, 1 / 64), 4, 16, 8),
             (gelu_params(0.5, 0.5), 3, 4, 4), (gelu_params(8.0, 8.0), 1, 8, 8), ((3, 10, 1, 60), 2, 8, 32),
             (gelu_params(1 / 4096, 1 / 4096, mult_bits=32), 1, 16, 32)]


@pytest.mark.parametrize("cfg", LINT_CFGS)
def test_verilator_lint(tmp_path, cfg):
    """verilator -Wall with the project's lint.vlt: nothing left (no truncation in our logic)."""
    p, lanes, ib, ob = cfg
    u = GeluUnit(*p, lanes=lanes, in_bits=ib, out_bits=ob)
    ports = [u.in_valid, u.in_data.as_value(), u.in_ready, u.out_valid, u.out_data.as_value(), u.out_ready]
    src = emit(tmp_path / "gelu_unit.v", u, "gelu_unit", ports)
    assert_lint_clean(src, "gelu_unit", tmp_path)

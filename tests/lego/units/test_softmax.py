"""SoftmaxUnit RTL: bit-exact vs sw_reference.softmax_fx, fixed latency softmax_cycles(L), protocol,
and verilator -Wall lint, under Icarus and Verilator (cocotb bench: softmax_bench.py).

Several units with different parameters sit side by side in one generated top, so each simulator is
built once per test session (module-scoped fixture) and all units run concurrently.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed, unsigned

from lego.emit.files import LINT_VLT
from lego.toolchain import require, run_cocotb
from lego.units import SoftmaxUnit, softmax_cycles
from sw_reference.softmax_fx import softmax_fx, softmax_params

pytestmark = pytest.mark.rtl
HERE = Path(__file__).parent

# (L, mult, shift, pb, in_bits, rows)
CONFIGS = [
    (1, softmax_params(1 / 256), 16, 15, 32, 24),
    (5, softmax_params(1 / 300), 16, 15, 32, 24),
    (16, softmax_params(1 / 128), 16, 15, 32, 14),
    (37, softmax_params(1 / 500, shift=12), 12, 12, 24, 6),
    (5, (1 << 32) - 1, 20, 32, 32, 12),                      # extreme widths: 32-bit MULT, PB = 32
    (3, 255, 12, 15, 16, 12),                                # q = prod >> 20 has only 4 bits
    (2, 1000, 30, 10, 16, 12),                               # SHIFT beyond the product: y = 0
]


def stim_rows(rng, L, in_bits, n):
    """Rows mixing: int8.int8.D sums with moderate logit spread, ties with the max, constant rows,
    huge spreads (full in_bits range, q >= 17 underflow) and the range extremes."""
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    rows = []
    for i in range(n):
        kind = i % 6
        if kind == 0:                                          # int8 q . int8 k, D = 8..64
            D = int(rng.choice([8, 16, 32, 64]))
            row = rng.integers(-128, 128, (L, D)) @ rng.integers(-128, 128, D)
        elif kind == 1:                                        # logits std of a few units
            row = np.round(rng.standard_normal(L) * rng.uniform(100, 3000)) + rng.integers(-10**6, 10**6)
        elif kind == 2:                                        # ties with the max
            row = rng.integers(-4000, 4000, L)
            row[rng.integers(0, L, max(1, L // 2))] = row.max()
        elif kind == 3:                                        # full range
            row = rng.integers(lo, hi + 1, L)
        elif kind == 4:                                        # constant / extremes
            row = rng.choice([lo, hi, 0], L)
        else:                                                  # small spread near the top
            row = hi - rng.integers(0, 2000, L)
        rows.append([int(v) for v in np.clip(row, lo, hi)])
    return rows


class SoftmaxTop(Elaboratable):
    """Several SoftmaxUnits with independent ports u<k>_* sharing clk/rst."""

    def __init__(self, configs):
        self.units = [SoftmaxUnit(L, mult, shift, pb, ib) for L, mult, shift, pb, ib, _ in configs]
        self.ports = []
        for k, u in enumerate(self.units):
            for name in ("in_valid", "in_data", "in_ready", "out_valid", "out_data", "out_index", "busy"):
                sig = getattr(u, name)
                shape = signed(len(sig)) if sig.shape().signed else unsigned(len(sig))
                port = Signal(shape, name=f"u{k}_{name}")
                setattr(self, f"u{k}_{name}", port)
                self.ports.append((name, u, port))

    def elaborate(self, platform):
        m = Module()
        for k, u in enumerate(self.units):
            m.submodules[f"u{k}"] = u
        for name, u, port in self.ports:
            if name in ("in_valid", "in_data"):
                m.d.comb += getattr(u, name).eq(port)
            else:
                m.d.comb += port.eq(getattr(u, name))
        return m


def emit(path: Path, top: Elaboratable, name: str, ports) -> Path:
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    from amaranth.back import verilog
    path.write_text(verilog.convert(top, name=name, ports=ports))
    return path


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    d = tmp_path_factory.mktemp("softmax_rtl")
    top = SoftmaxTop(CONFIGS)
    src = emit(d / "softmax_top.v", top, "softmax_top", [p for _, _, p in top.ports])
    rng = np.random.default_rng(7)
    units = []
    for k, (L, mult, shift, pb, ib, n) in enumerate(CONFIGS):
        rows = stim_rows(rng, L, ib, n)
        gappy = [bool(i % 4 == 3) for i in range(n)]       # every 4th row: in_valid bubbles
        units.append({"L": L, "rows": rows, "gappy": gappy,
                      "expected": softmax_fx(np.array(rows, dtype=np.int64), mult, shift, pb).tolist()})
    max_cycles = max(len(u["rows"]) * 2 * softmax_cycles(u["L"]) for u in units) + 100
    stim = d / "stim.json"
    stim.write_text(json.dumps({"seed": 11, "units": units, "max_cycles": max_cycles}))
    return {"dir": d, "src": src, "stim": stim, "units": units}


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def sim(request, design):
    engine = request.param
    d = design["dir"]
    result = d / f"result_{engine}.json"
    ok = run_cocotb(engine=engine, sources=[design["src"]], top="softmax_top",
                    test_module="softmax_bench", test_dir=HERE, build_dir=d / f"build_{engine}",
                    extra_env={"SOFTMAX_STIM": str(design["stim"]), "SOFTMAX_RESULT": str(result)})
    assert ok, f"cocotb bench failed under {engine}"
    return json.loads(result.read_text())


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_cycles_formula():
    assert [softmax_cycles(L) for L in (1, 5, 16, 4096)] == [25, 37, 70, 12310]
    assert SoftmaxUnit(7, 100).cycles == 3 * 7 + 22
    with pytest.raises(ValueError):
        softmax_cycles(0)
    with pytest.raises(ValueError):
        SoftmaxUnit(4, 1 << 32)


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_ports():
    u = SoftmaxUnit(5, 1000, pb=12, in_bits=24)
    assert [len(getattr(u, n)) for n in ("in_valid", "in_data", "in_ready", "out_valid", "out_data",
                                        "out_index", "busy")] == [1, 24, 1, 1, 12, 3, 1]
    assert u.in_data.shape().signed and len(SoftmaxUnit(1, 1).out_index) == 1
    assert len(SoftmaxUnit(4096, 1).out_index) == 12


def test_bit_exact(sim, design):
    for k, (u, got) in enumerate(zip(design["units"], sim["units"])):
        L = u["L"]
        for i, (row, exp) in enumerate(zip(got["rows"], u["expected"])):
            assert [o[0] for o in row["outs"]] == list(range(L)), f"u{k} row {i}: out_index order"
            assert [o[1] for o in row["outs"]] == exp, f"u{k} (L={L}) row {i}: {u['rows'][i]}"


def test_latency_and_protocol(sim, design):
    for k, (u, got) in enumerate(zip(design["units"], sim["units"])):
        L, busy = u["L"], got["busy_trace"]
        prev_end = None
        for i, row in enumerate(got["rows"]):
            oc = row["out_cycles"]
            assert oc == list(range(oc[0], oc[0] + L)), f"u{k} row {i}: outputs not consecutive"
            gaps = row["last_accept"] - row["first_accept"] - (L - 1)
            assert gaps >= 0 and (gaps > 0) <= u["gappy"][i]
            span = oc[-1] + 1 - row["first_accept"]
            assert span == softmax_cycles(L) + gaps, f"u{k} row {i}: {span} cycles"
            if prev_end is not None and not u["gappy"][i]:
                assert row["first_accept"] == prev_end, f"u{k} row {i}: not back to back"
            prev_end = oc[-1] + 1
            # busy: high from the cycle after the first accept through the last out_valid
            assert all(busy[c] for c in range(row["first_accept"] + 1, oc[-1] + 1)), f"u{k} row {i}"
            assert not busy[row["first_accept"]] and not busy[oc[-1] + 1], f"u{k} row {i}"
        assert not any(busy[-3:])


@pytest.mark.parametrize("cfg", [(1, 1000, 16, 15, 32), (16, 80681, 16, 15, 32), (37, 123, 12, 12, 24),
                                 (4096, (1 << 32) - 1, 16, 32, 32), (3, 255, 12, 15, 16)])
def test_verilator_lint(tmp_path, cfg):
    """verilator -Wall with the lint.vlt every design directory ships (lego.emit.files.LINT_VLT: backend
    artifacts only, each narrowed with -match) and nothing else: no warning at all. The unit is emitted
    as lego_softmax_unit in lego_softmax_unit.v, as a generated design names its modules."""
    u = SoftmaxUnit(*cfg)
    ports = [getattr(u, n) for n in ("in_valid", "in_data", "in_ready", "out_valid", "out_data",
                                     "out_index", "busy")]
    src = emit(tmp_path / "lego_softmax_unit.v", u, "lego_softmax_unit", ports)
    (tmp_path / "lint.vlt").write_text(LINT_VLT)
    res = subprocess.run([require("verilator"), "--lint-only", "-Wall", "lint.vlt", src.name,
                          "--top-module", "lego_softmax_unit"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "%Warning" not in res.stderr, res.stderr


# ------------------------------------------------------------------------- the exp tables in the RTL

_ROM = re.compile(r"^\s*(\w+)\[(\d+)\] = (\d+)'h([0-9a-f]+);$", re.M)


def rom(verilog_text: str, name: str) -> tuple[int, list[int]]:
    """(width, contents) of the memory ``name`` from the initial block write_verilog prints."""
    rows = [(int(i), int(w), int(h, 16)) for n, i, w, h in _ROM.findall(verilog_text) if n == name]
    assert rows and [i for i, _, _ in rows] == list(range(len(rows)))
    assert len({w for _, w, _ in rows}) == 1
    return rows[0][1], [v for _, _, v in rows]


def exp2_by_math() -> list[int]:
    """LUT[f] = round(2**16 * 2**(-f/256)), f = 0..255, with Python's math."""
    return [math.floor(65536 * 2.0 ** (-f / 256) + 0.5) for f in range(256)]


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_rom_holds_the_exp2_table(tmp_path):
    """The ROM of the emitted unit and of a generated attention design holds 2**16 * 2**(-f/256) rounded,
    computed here with math (LUT[0] = 65536 = 17'h10000, LUT[1] = 65359 = 17'h0ff4f, LUT[255] = 32857)."""
    from lego.generate import generate
    u = SoftmaxUnit(5, 1000)
    ports = [getattr(u, n) for n in ("in_valid", "in_data", "in_ready", "out_valid", "out_data",
                                     "out_index", "busy")]
    text = emit(tmp_path / "u.v", u, "lego_softmax_unit", ports).read_text()
    want = exp2_by_math()
    assert want[:2] == [65536, 65359] and want[255] == 32857
    assert rom(text, "lut") == (17, want)
    generate("attention", "L=4,D=3", "2x2", ("os",), 8, True, tmp_path / "att")
    assert rom((tmp_path / "att" / "lego_attention.v").read_text(), "lut") == (17, want)


def test_spatten_rom_holds_the_exp_table():
    """SpAtten's softmax unit (accelerators/spatten/units/softmax.py, default config: 8 index bits, 4
    fraction bits, 2 lanes): each lane's ROM holds round(2**15 * exp(-i/16)), computed here with math."""
    from amaranth.back import verilog

    from accelerators.spatten.config import SpAttenConfig
    from accelerators.spatten.units.softmax import Softmax
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    cfg = SpAttenConfig.preset("eighth")
    assert (cfg.exp_lut_bits, cfg.exp_lut_frac_bits) == (8, 4)
    u = Softmax(cfg, 8, lanes=2)
    text = verilog.convert(u, name="sm", ports=[s for s, _ in u.io()])
    want = [math.floor(32768 * math.exp(-i / 16) + 0.5) for i in range(256)]
    assert want[:2] == [32768, 30783] and want[16] == 12055
    assert rom(text, "lut0") == rom(text, "lut1") == (16, want)

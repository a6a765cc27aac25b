"""The programmable arrays against a third-party AXI slave: cocotbext-axi's ``AxiRam`` (``LEGO_BENCH_DRAM=axiram``,
docs/programmable.md, "DRAM model") on the design's AXI master port instead of the bench's pipelined models,
the DRAM latency L added by the earlier benches' hook (``add_latency``: L edges after each AR before its data,
L edges before each write response).

* One burst outstanding (``--dram-outstanding 1``): the outputs are sw_reference's and the cycle engine's, bit
  for bit, and the RTL cycles (bench edges and the RTL's register) equal the engine's exactly: the docs' claim
  that at N = 1 the pipelined DRAM gives AxiRam's timing, checked against AxiRam itself (a 2x2 ws design with a
  64-bit bus, conv and gemm at latency 1 and 20, Icarus and Verilator; and four of the verification matrix's
  cases on 128- and 256-bit buses, modes os and is, a fused design, latency 100).
* Four bursts outstanding: AxiRam serializes bursts (one read and one write process), so the outputs must be
  bit-exact and the cycles no fewer than the engine's (which times the pipelined DRAM); with
  ``LEGO_BENCH_DRAM=axiram-pause:SEED`` AxiRam's own seeded pause generators also stall its AR, R, AW, W and B
  channels, and the outputs must still be bit-exact (the DMA's AXI master against an independent slave under
  backpressure on every channel).
"""
import json
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.prog.compiler import parse_layer
from lego.prog.lower import conv_output
from simulator.program import simulate_program

from test_program_matrix import ALL, DESIGNS as MATRIX_DESIGNS, conv_inputs, conv_reference  # noqa: E402
from test_program_matrix import design as matrix_design  # noqa: E402

DESIGNS = {1: None, 4: None}
CONV = "conv2d:C=2,H=17,W=17,K=22,R=3,S=3,STRIDE=2,PAD=1"
GEMM = "gemm:M=24,N=20,K=10"


def design(tmp_path_factory, n: int) -> Path:
    if DESIGNS[n] is None:
        d = tmp_path_factory.mktemp("axiram") / f"2x2-ws-o{n}"
        assert main(["gen", "--workload", "gemm", "--array", "2x2", "--dataflow", "ws", "--scratchpad-kib", "1",
                     "--accumulator-kib", "4", "--dram-outstanding", str(n), "--out", str(d)]) == 0
        DESIGNS[n] = d
    return DESIGNS[n]


def run(d: Path, layer: str, lat: int, engine: str, dram: str, tmp_path, monkeypatch, capsys, mode: str = "ws"):
    """(cycle engine report, RTL report under LEGO_BENCH_DRAM=dram); outputs checked bit-exact against each other,
    sw_reference and (conv, dwconv) sw_reference's conv of the image."""
    prog = tmp_path / "p.prog"
    assert main(["compile", str(d), "--layer", layer, "--mode", mode, "--dram-latency", str(lat),
                 "--out", str(prog)]) == 0
    capsys.readouterr()
    header = json.loads(Path(str(prog) + ".json").read_text())
    spec = parse_layer(layer)
    inputs, conv = None, None
    if spec.op in ("conv2d", "dwconv2d"):
        x, w, inputs = conv_inputs(spec, lat)
        conv = conv_reference(spec, x, w)
    cyc = simulate_program(d, prog, "cycle", inputs=inputs, seed=lat, latency=lat)
    assert cyc.match
    assert cyc.cycles == header["predicted"]["cycles"]
    monkeypatch.setenv("LEGO_BENCH_DRAM", dram)
    rep = simulate_program(d, prog, engine, inputs=inputs, seed=lat, latency=lat)
    monkeypatch.delenv("LEGO_BENCH_DRAM")
    assert rep.match, (engine, dram)
    assert rep.outputs.keys() == cyc.outputs.keys()
    for k in cyc.outputs:
        assert np.array_equal(rep.outputs[k], cyc.outputs[k]), (engine, dram, k)
    if conv is not None:
        assert np.array_equal(conv_output(rep.outputs["Y"], spec), conv), (engine, dram)
    assert rep.cycles == rep.extra["cycles_register"], (rep.cycles, rep.extra["cycles_register"])
    return cyc, rep


@pytest.mark.rtl
@pytest.mark.parametrize("layer,lat,engine", [
    pytest.param(CONV, 1, "icarus", id="conv-lat1-icarus"),
    pytest.param(CONV, 20, "icarus", id="conv-lat20-icarus"),
    pytest.param(GEMM, 1, "icarus", id="gemm-lat1-icarus"),
    pytest.param(GEMM, 20, "icarus", id="gemm-lat20-icarus"),
    pytest.param(GEMM, 20, "verilator", id="gemm-lat20-verilator"),
])
def test_one_burst_axiram_equals_engine_cycle_for_cycle(layer, lat, engine, tmp_path_factory, tmp_path, monkeypatch,
                                                        capsys):
    cyc, rep = run(design(tmp_path_factory, 1), layer, lat, engine, "axiram", tmp_path, monkeypatch, capsys)
    assert rep.cycles == cyc.cycles, (rep.cycles, cyc.cycles)


# matrix cases (tests/simulator/test_program_matrix.py) at one burst outstanding: 128- and 256-bit buses, modes os
# and is, a fused design, latency 100
MATRIX = ["bmm-2x4-1k-256b-lat100-os", "dwconv-p1-3x2-1k-128b-lat1-os", "gemm-3x2-1k-128b-lat20-is",
          "gemm-2x4-fused-1k-128b-lat20-ws"]


@pytest.mark.rtl
@pytest.mark.parametrize("case", MATRIX)
def test_one_burst_axiram_equals_engine_on_matrix_cases(case, tmp_path_factory, tmp_path, monkeypatch, capsys):
    dname, layer, mode, lat = ALL[case]
    assert len(MATRIX_DESIGNS[dname]) == 5          # --dram-outstanding 1
    cyc, rep = run(matrix_design(tmp_path_factory, dname), layer, lat, "icarus", "axiram", tmp_path, monkeypatch,
                   capsys, mode)
    assert rep.cycles == cyc.cycles, (rep.cycles, cyc.cycles)


@pytest.mark.rtl
@pytest.mark.parametrize("layer,lat,dram", [
    pytest.param(CONV, 20, "axiram", id="conv-lat20-axiram"),
    pytest.param(GEMM, 20, "axiram", id="gemm-lat20-axiram"),
    pytest.param(CONV, 20, "axiram-pause:3", id="conv-lat20-pause3"),
    pytest.param(GEMM, 1, "axiram-pause:5", id="gemm-lat1-pause5"),
])
def test_four_bursts_against_axiram_keep_the_data(layer, lat, dram, tmp_path_factory, tmp_path, monkeypatch, capsys):
    d = design(tmp_path_factory, 4)
    cyc, rep = run(d, layer, lat, "icarus", dram, tmp_path, monkeypatch, capsys)
    assert rep.cycles >= cyc.cycles, (rep.cycles, cyc.cycles)
    if dram == "axiram":        # one read and one write process: the latency is paid per burst, not shared
        assert rep.cycles > cyc.cycles, (rep.cycles, cyc.cycles)
    else:                       # the pause generators took effect: slower than AxiRam without them
        _, plain = run(d, layer, lat, "icarus", "axiram", tmp_path, monkeypatch, capsys)
        assert rep.cycles > plain.cycles, (rep.cycles, plain.cycles)
    with capsys.disabled():
        print(f"\nN=4 {layer} L={lat} {dram}: {rep.cycles} cycles; pipelined DRAM (engine) {cyc.cycles}")

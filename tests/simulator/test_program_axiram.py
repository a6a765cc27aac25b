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
* DRAM bandwidth (``--dram-bw``, D = B/W edges per beat, 2..4): AxiRam's R and W channels are paced to the token
  rule (the bench's ``ChannelPacer``, through cocotbext-axi's ``pause``) and a bus monitor (``TokenMonitor``)
  fails the run on any two R captures or W handshakes fewer than D edges apart. At N = 1 the RTL cycles equal
  the cycle engine's run with the same ``--dram-bw``, edge for edge, and exceed the unlimited run's (the limit
  binds); at N = 4 and under ``axiram-pause`` the outputs stay bit-exact and the cycles are no fewer than the
  engine's. A bench whose pacing ignores the rule is caught by the monitor, and with the monitor off too by the
  cycle count.
"""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.errors import LegoError
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


def run(d: Path, layer: str, lat: int, engine: str, dram: str, tmp_path, monkeypatch, capsys, mode: str = "ws",
        bw: str | None = None):
    """(cycle engine report, RTL report under LEGO_BENCH_DRAM=dram), both at --dram-bw ``bw`` (None: the bus
    width); outputs checked bit-exact against each other, sw_reference and (conv, dwconv) sw_reference's conv of
    the image. The program is compiled without --dram-bw (the same tiles at every ``bw``)."""
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
    cyc = simulate_program(d, prog, "cycle", inputs=inputs, seed=lat, latency=lat, dram_bw=bw)
    assert cyc.match
    if bw is None:
        assert cyc.cycles == header["predicted"]["cycles"]
    monkeypatch.setenv("LEGO_BENCH_DRAM", dram)
    rep = simulate_program(d, prog, engine, inputs=inputs, seed=lat, latency=lat, dram_bw=bw)
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


# --dram-bw on the 64-bit bus: 1/2 and 1/4 words per cycle, D = 2 and 4 edges per beat
BW = {2: "1/2", 4: "1/4"}


def bw_case(d: Path, layer: str, lat: int, engine: str, dram: str, bw: str, tmp_path, monkeypatch, capsys,
            mode: str = "ws"):
    """(unlimited cycle engine report, cycle engine report at ``bw``, RTL report at ``bw`` under ``dram``)."""
    free = simulate_program(d, compiled(d, layer, mode, lat, tmp_path, capsys), "cycle", seed=lat, latency=lat)
    cyc, rep = run(d, layer, lat, engine, dram, tmp_path, monkeypatch, capsys, mode, bw=bw)
    assert cyc.extra["dram_bw"] < free.extra["dram_bw"]
    return free, cyc, rep


def compiled(d: Path, layer: str, mode: str, lat: int, tmp_path, capsys) -> Path:
    prog = tmp_path / "free.prog"
    assert main(["compile", str(d), "--layer", layer, "--mode", mode, "--dram-latency", str(lat),
                 "--out", str(prog)]) == 0
    capsys.readouterr()
    return prog


@pytest.mark.rtl
@pytest.mark.parametrize("layer,lat,D,engine", [
    pytest.param(GEMM, 20, 4, "icarus", id="gemm-lat20-D4-icarus"),
    pytest.param(CONV, 20, 2, "icarus", id="conv-lat20-D2-icarus"),
    pytest.param(GEMM, 20, 2, "icarus", id="gemm-lat20-D2-icarus", marks=pytest.mark.slow),
    pytest.param(GEMM, 1, 4, "icarus", id="gemm-lat1-D4-icarus", marks=pytest.mark.slow),
    pytest.param(CONV, 20, 4, "icarus", id="conv-lat20-D4-icarus", marks=pytest.mark.slow),
    pytest.param(CONV, 1, 2, "icarus", id="conv-lat1-D2-icarus", marks=pytest.mark.slow),
    pytest.param(GEMM, 20, 4, "verilator", id="gemm-lat20-D4-verilator", marks=pytest.mark.slow),
])
def test_one_burst_axiram_with_dram_bw_equals_engine(layer, lat, D, engine, tmp_path_factory, tmp_path, monkeypatch,
                                                     capsys):
    free, cyc, rep = bw_case(design(tmp_path_factory, 1), layer, lat, engine, "axiram", BW[D], tmp_path, monkeypatch,
                             capsys)
    assert rep.cycles == cyc.cycles, (rep.cycles, cyc.cycles)
    assert cyc.cycles > free.cycles, (cyc.cycles, free.cycles)         # the limit binds
    with capsys.disabled():
        print(f"\nN=1 {layer} L={lat} D={D} {engine}: AxiRam {rep.cycles} = engine {cyc.cycles}; "
              f"unlimited {free.cycles}")


# matrix cases on the 128- and 256-bit buses at one burst outstanding, at a bandwidth where the limit binds
MATRIX_BW = [pytest.param("gemm-3x2-1k-128b-lat20-is", "1/2", id="gemm-3x2-1k-128b-lat20-is-bwhalf"),
             pytest.param("bmm-2x4-1k-256b-lat100-os", "1", id="bmm-2x4-1k-256b-lat100-os-bw1",
                          marks=pytest.mark.slow)]


@pytest.mark.rtl
@pytest.mark.parametrize("case,bw", MATRIX_BW)
def test_one_burst_axiram_with_dram_bw_on_wide_buses(case, bw, tmp_path_factory, tmp_path, monkeypatch, capsys):
    dname, layer, mode, lat = ALL[case]
    assert len(MATRIX_DESIGNS[dname]) == 5 and MATRIX_DESIGNS[dname][4] in (128, 256)
    free, cyc, rep = bw_case(matrix_design(tmp_path_factory, dname), layer, lat, "icarus", "axiram", bw, tmp_path,
                             monkeypatch, capsys, mode)
    assert rep.cycles == cyc.cycles, (rep.cycles, cyc.cycles)
    assert cyc.cycles > free.cycles, (cyc.cycles, free.cycles)
    with capsys.disabled():
        print(f"\n{case} --dram-bw {bw}: AxiRam {rep.cycles} = engine {cyc.cycles}; unlimited {free.cycles}")


@pytest.mark.rtl
@pytest.mark.parametrize("layer,lat,D,dram", [
    pytest.param(GEMM, 20, 4, "axiram-pause:7", id="gemm-lat20-D4-pause7"),
    pytest.param(GEMM, 20, 2, "axiram", id="gemm-lat20-D2-axiram", marks=pytest.mark.slow),
    pytest.param(CONV, 20, 4, "axiram", id="conv-lat20-D4-axiram", marks=pytest.mark.slow),
    pytest.param(CONV, 1, 2, "axiram-pause:3", id="conv-lat1-D2-pause3", marks=pytest.mark.slow),
])
def test_four_bursts_against_axiram_with_dram_bw_keep_the_data(layer, lat, D, dram, tmp_path_factory, tmp_path,
                                                               monkeypatch, capsys):
    """N = 4: outputs bit-exact, cycles no fewer than the engine's at the same bandwidth (the bench's monitor
    checks the token rule on the bus: a violation fails the run)."""
    free, cyc, rep = bw_case(design(tmp_path_factory, 4), layer, lat, "icarus", dram, BW[D], tmp_path, monkeypatch,
                             capsys)
    assert rep.cycles >= cyc.cycles > free.cycles, (rep.cycles, cyc.cycles, free.cycles)
    with capsys.disabled():
        print(f"\nN=4 {layer} L={lat} D={D} {dram}: {rep.cycles} cycles; engine {cyc.cycles}, unlimited "
              f"{free.cycles}")


def patched(d: Path, tmp_path: Path, edits: list[tuple[str, str]]) -> Path:
    """A copy of design ``d`` whose tb/prog_bench.py has ``edits`` (old, new) applied (each must occur)."""
    out = tmp_path / f"{d.name}-patched"
    shutil.copytree(d, out)
    bench = out / "tb" / "prog_bench.py"
    text = bench.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    bench.write_text(text)
    return out


# a pacing that ignores the token rule: never held off
NO_TOKEN = ("    return edge < last + beat_cycles\n", "    return False\n")
NO_MONITOR = ("        edge, last = 0, {ch: None for ch in self.s}\n", "        return\n")


@pytest.mark.rtl
def test_pacing_that_ignores_the_token_rule_is_detected(tmp_path_factory, tmp_path, monkeypatch, capsys):
    """The checks above can fail: with the pacers never holding a beat off, the bus monitor fails the run
    (naming the two handshakes too close), and with the monitor silenced too the RTL cycles fall below the
    engine's at the same bandwidth (the unlimited run's, here)."""
    d = design(tmp_path_factory, 1)
    prog = compiled(d, GEMM, "ws", 20, tmp_path, capsys)
    monkeypatch.setenv("LEGO_BENCH_DRAM", "axiram")
    with pytest.raises(LegoError, match=r"DRAM bandwidth: [RW] handshakes at edges \d+ and \d+, fewer than 4 apart"):
        simulate_program(patched(d, tmp_path / "a", [NO_TOKEN]), prog, "icarus", seed=20, latency=20, dram_bw="1/4")
    blind = simulate_program(patched(d, tmp_path / "b", [NO_TOKEN, NO_MONITOR]), prog, "icarus", seed=20,
                             latency=20, dram_bw="1/4")
    monkeypatch.delenv("LEGO_BENCH_DRAM")
    cyc = simulate_program(d, prog, "cycle", seed=20, latency=20, dram_bw="1/4")
    free = simulate_program(d, prog, "cycle", seed=20, latency=20)
    assert blind.match and cyc.match
    assert blind.cycles < cyc.cycles, (blind.cycles, cyc.cycles)
    assert blind.cycles == free.cycles, (blind.cycles, free.cycles)


@pytest.mark.rtl
def test_w_sink_taking_two_beats_is_detected(tmp_path_factory, tmp_path, monkeypatch, capsys):
    """At N = 4 the store presents W beats back to back: without the one-beat W sink (AxiRam's default queue of
    2) WREADY stays high in the edge of a handshake, and the monitor fails the run on two W handshakes one edge
    apart, though the pause keeps the rule from the next edge on."""
    d = design(tmp_path_factory, 4)
    prog = compiled(d, GEMM, "ws", 20, tmp_path, capsys)
    monkeypatch.setenv("LEGO_BENCH_DRAM", "axiram")
    two = patched(d, tmp_path, [("            channel.queue_occupancy_limit = 1\n", "            pass\n")])
    with pytest.raises(LegoError, match=r"DRAM bandwidth: W handshakes at edges \d+ and \d+, fewer than 4 apart") as e:
        simulate_program(two, prog, "icarus", seed=20, latency=20, dram_bw="1/4")
    a, b = map(int, re.search(r"edges (\d+) and (\d+)", str(e.value)).groups())
    assert b - a == 1, (a, b)
    assert simulate_program(d, prog, "icarus", seed=20, latency=20, dram_bw="1/4").match

"""The store DMA under write-channel backpressure (docs/programmable.md, "AXI4 subset"): the bench's
``PipelinedWrite`` with ``LEGO_BENCH_STALL`` drops AWREADY and WREADY in random cycles and delays the write
responses, so the DMA's handshakes wait (the W register held under WVALID, the beat slots of the streaming
gather full, a burst's last read waiting for its address to be taken, the N limit met at irregular
responses). The outputs must still be sw_reference's and the cycle engine's, bit for bit, and the RTL's
cycle register must agree with the bench's count; the cycles themselves are longer than the engine's (the
engine times the bench without stalls). Layers with 20-column rows and with 1-column rows (one-element
bursts), on designs with 1 and 3 write bursts outstanding."""
import numpy as np
import pytest

from lego.cli import main
from simulator.program import simulate_program

DESIGNS = {1: None, 3: None}


def design(tmp_path_factory, n: int):
    if DESIGNS[n] is None:
        d = tmp_path_factory.mktemp("stall") / f"2x2-ws-o{n}"
        assert main(["gen", "--workload", "gemm", "--array", "2x2", "--dataflow", "ws", "--scratchpad-kib", "1",
                     "--accumulator-kib", "4", "--dram-outstanding", str(n), "--out", str(d)]) == 0
        DESIGNS[n] = d
    return DESIGNS[n]


@pytest.mark.rtl
@pytest.mark.parametrize("n,layer", [(3, "gemm:M=24,N=20,K=2"), (3, "gemm:M=30,N=1,K=4"), (1, "gemm:M=24,N=20,K=2")])
def test_store_under_backpressure_keeps_the_data(n, layer, tmp_path_factory, tmp_path, monkeypatch, capsys):
    d = design(tmp_path_factory, n)
    prog = tmp_path / "p.prog"
    assert main(["compile", str(d), "--layer", layer, "--mode", "ws", "--dram-latency", "20", "--out", str(prog)]) == 0
    capsys.readouterr()
    cyc = simulate_program(d, prog, "cycle", seed=n, latency=20)
    assert cyc.match
    monkeypatch.setenv("LEGO_BENCH_STALL", "7")
    rep = simulate_program(d, prog, "icarus", seed=n, latency=20)
    assert rep.match
    for k in cyc.outputs:
        assert np.array_equal(rep.outputs[k], cyc.outputs[k]), k
    assert rep.cycles == rep.extra["cycles_register"]
    assert rep.cycles > cyc.cycles, (rep.cycles, cyc.cycles)

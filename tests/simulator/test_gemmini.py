"""Gemmini-like baseline: WS cycle formulas checked by hand on small GEMMs."""
import pytest

from simulator.gemmini import GemminiConfig, gemmini_layer, lower, ws_gemm_cycles
from simulator.memory import DramConfig
from simulator.model_run import run_model
from simulator.models import conv2d, dwconv2d, gemm

FAST = GemminiConfig(dram=DramConfig(gbps=1e9, latency_ns=0))


@pytest.mark.parametrize("m,n,k,expect", [
    (16, 16, 16, 16 + 33),                 # one 16x16 weight block, 16 rows streamed
    (64, 32, 48, 3 * 2 * 64 + 33),         # ceil(48/16)=3 x ceil(32/16)=2 blocks x 64 rows
    (17, 17, 17, 2 * 2 * 17 + 33),         # ragged: 4 blocks, mostly idle
    (1, 1, 1, 1 + 33),
])
def test_ws_gemm_by_hand(m, n, k, expect):
    assert ws_gemm_cycles(m, n, k) == expect
    r = gemmini_layer(gemm("g", m, n, k), FAST)
    assert r.extra["dataflow"] == "ws" and r.extra["tiles"] == 1
    assert r.extra["compute_cycles"] == expect
    assert r.cycles == expect + 2          # 1-cycle load and store with an ideal DRAM


def test_ws_gemm_with_default_dram_by_hand():
    # 64x32x48 fits on chip; double buffering splits it only if that is faster
    r = gemmini_layer(gemm("g", 64, 32, 48))
    one_tile = (100 + (64 * 48 + 48 * 32) // 16) + (3 * 2 * 64 + 33) + (100 + 64 * 32 // 16)
    assert r.cycles <= one_tile == 388 + 417 + 228


def test_conv_lowered_by_im2col():
    c = conv2d("c", 1, 8, 3, 4, 4, 3, 3)
    g = lower(c)
    assert g.op == "gemm" and dict(g.dims) == {"i": 16, "j": 8, "k": 27}
    r = gemmini_layer(c, FAST)
    assert r.extra["compute_cycles"] == 2 * 1 * 16 + 33
    assert r.dram_bytes["X"] == 3 * 6 * 6            # stored input, not the im2col matrix


def test_dwconv_per_channel_gemm():
    d = dwconv2d("d", 1, 32, 8, 8, 3, 3)
    g = lower(d)
    assert g.op == "bmm" and dict(g.dims) == {"b": 32, "i": 64, "j": 1, "k": 9}
    r = gemmini_layer(d, FAST)
    assert r.extra["compute_cycles"] == 32 * 1 * 1 * 64 + 33
    assert r.extra["spatial_utilization"] == pytest.approx(9 / 256)


def test_gemmini_config():
    c = GemminiConfig().array_config()
    assert (c.rows, c.cols, c.dataflows) == (16, 16, ("ws",))
    assert c.spad_bytes == 256 * 1024 and c.dram.gbps == 16.0


def test_memory_bound_gpt2_equal_on_both():
    _, g = run_model("gpt2", design="gemmini")
    _, l = run_model("gpt2")
    assert g["cycles"] == pytest.approx(l["cycles"], rel=0.05)

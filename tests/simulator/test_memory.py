"""Memory model: DRAM bandwidth/latency, row model, banks/ports, double-buffered tile pipeline."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lego.errors import LegoError
from simulator.mapping import ArrayConfig, map_layer
from simulator.memory import (Buffer, DramConfig, RowModel, banks_for, dram_cycles,
                              pipeline_cycles, port_stall_factor, uniform_pipeline_cycles)
from simulator.models import gemm


def test_dram_defaults_16gbps():
    d = DramConfig()
    assert d.gbps == 16.0 and d.bytes_per_cycle == 16.0 and d.latency_cycles == 100


def test_dram_cycles_bandwidth_plus_latency():
    d = DramConfig(gbps=16, latency_ns=100, freq_ghz=1)
    assert dram_cycles(0, d) == 0
    assert dram_cycles(1 << 20, d) == 100 + (1 << 20) // 16
    # 2 GHz clock: 8 bytes/cycle, latency 200 cycles
    assert dram_cycles(1024, DramConfig(16, 100, 2.0)) == 200 + 128


def test_row_model_adds_activation_penalty():
    base = DramConfig(latency_ns=0)
    rows = DramConfig(latency_ns=0, row=RowModel(row_bytes=2048, banks=16, row_miss_ns=32))
    n = 64 * 2048                                    # 64 rows over 16 banks
    assert dram_cycles(n, rows) - dram_cycles(n, base) == math.ceil(64 * 32 / 16)


def test_bad_dram_inputs():
    with pytest.raises(LegoError, match="dram_gbps"):
        DramConfig(gbps=0)
    with pytest.raises(LegoError, match="nbytes"):
        dram_cycles(-1, DramConfig())
    with pytest.raises(LegoError, match="row_bytes"):
        RowModel(row_bytes=0)


def test_buffer_banks_ports():
    b = Buffer("spad", 256 * 1024, banks=4, width_bits=128, read_ports=1)
    assert b.bank.capacity_bytes == 64 * 1024
    assert b.tile_bytes == 128 * 1024
    assert Buffer("x", 1024, double_buffered=False).tile_bytes == 1024
    assert b.words_per_cycle() == 4
    assert port_stall_factor(4 * 128, b) == 1.0
    assert port_stall_factor(8 * 128, b) == 2.0
    assert banks_for(32, 8, 128) == 2              # 16 int8 per 128-bit word
    with pytest.raises(LegoError, match="banks"):
        Buffer("spad", 1000, banks=3)


def test_bandwidth_bound_pipeline_reaches_bytes_over_bandwidth():
    d = DramConfig(gbps=16, latency_ns=0)
    n, tile_bytes = 100, 64 * 1024
    load = dram_cycles(tile_bytes, d)
    res = pipeline_cycles([10] * n, [load] * n, [0] * n, double_buffered=True)
    ideal = n * tile_bytes / d.bytes_per_cycle
    assert ideal <= res.cycles <= ideal + 10        # only the last compute is exposed
    assert res.stall_cycles == res.cycles - 10 * n


def test_double_buffering_hides_transfers_when_compute_dominates():
    n, c, l, s = 50, 1000, 300, 200
    db = pipeline_cycles([c] * n, [l] * n, [s] * n, double_buffered=True)
    assert db.cycles == l + n * c + s               # only the first load and last store show
    sb = pipeline_cycles([c] * n, [l] * n, [s] * n, double_buffered=False)
    assert sb.cycles == n * (c + l + s)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 20), st.integers(0, 500), st.integers(0, 500), st.integers(0, 500),
       st.booleans())
def test_uniform_closed_form_matches_list(n, c, l, s, db):
    a = uniform_pipeline_cycles(n, c, l, s, db)
    b = pipeline_cycles([c] * n, [l] * n, [s] * n, db)
    assert a == b


def test_pipeline_bad_input():
    with pytest.raises(LegoError, match="pipeline"):
        pipeline_cycles([], [], [])
    with pytest.raises(LegoError, match="tiles"):
        uniform_pipeline_cycles(0, 1, 1, 1)


def test_layer_bandwidth_bound_matches_bytes_over_bandwidth():
    # matrix-vector: 4096x4096 int8 weights, one MAC row per weight: DRAM bound
    cfg = ArrayConfig(dram=DramConfig(gbps=16, latency_ns=0))
    r = map_layer(gemm("mv", 1, 4096, 4096), cfg, "ws")
    ideal = r.total_dram_bytes / 16
    assert ideal <= r.cycles <= 1.02 * ideal + 200
    assert r.stall_cycles > 0.9 * r.cycles


def test_layer_compute_bound_hides_dram():
    cfg = ArrayConfig(dram=DramConfig(gbps=16))
    r = map_layer(gemm("g", 1024, 256, 256), cfg, "os")
    assert r.stall_cycles < 0.02 * r.cycles

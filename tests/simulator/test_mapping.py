"""Layer mapping: the step/fill-drain convention, presets, SRAM accesses, tiling, energy; tied to small
generated designs (steps, traffic, fill/drain and compute cycles exactly) in the default run."""
import math

import pytest

from lego.errors import LegoError
from simulator.mapping import (PRESETS, ArrayConfig, compute_steps, fill_drain, map_layer,
                               map_layer_best, sram_accesses)
from simulator.memory import DramConfig
from simulator.models import bmm, conv2d, dwconv2d, gemm

FAST = DramConfig(gbps=1e9, latency_ns=0)


def test_preset_table_complete():
    for op in ("gemm", "bmm", "conv2d", "dwconv2d"):
        assert set(PRESETS[op]) == {"os", "ws", "is"}
    assert PRESETS["gemm"]["ws"] == ("k", "j", "i")
    assert PRESETS["conv2d"]["os"] == ("k", "w", "s")
    assert PRESETS["dwconv2d"]["is"] == ("c", "w", "r")


def test_fill_drain_control_vector():
    assert fill_drain(16, 16) == 15 + 15 + 3
    assert fill_drain(16, 16, (0, 0)) == 3
    assert fill_drain(4, 8, (1, 0), 5) == 3 + 5


def test_steps_by_hand():
    g = gemm("g", 20, 30, 40)
    assert compute_steps(g, 16, 16, "os") == 2 * 2 * 40
    assert compute_steps(g, 16, 16, "ws") == 3 * 2 * 20
    assert compute_steps(g, 16, 16, "is") == 2 * 3 * 30
    b = bmm("b", 3, 20, 30, 40)
    assert compute_steps(b, 16, 16, "os") == 3 * 2 * 2 * 40
    c = conv2d("c", 1, 32, 8, 10, 12, 3, 3)        # n k c h w r s
    assert compute_steps(c, 16, 8, "os") == 2 * 2 * (1 * 8 * 10 * 3 * 3)   # k/16, w/8
    assert compute_steps(c, 16, 8, "ws") == 1 * 4 * (1 * 10 * 12 * 3 * 3)  # c/16, k/8
    assert compute_steps(c, 16, 8, "is") == 1 * 2 * (1 * 32 * 10 * 3 * 3)  # c/16, w/8
    d = dwconv2d("d", 1, 32, 10, 12, 3, 3)         # n c h w r s
    assert compute_steps(d, 16, 8, "os") == 2 * 2 * (10 * 3 * 3)
    assert compute_steps(d, 16, 8, "ws") == 2 * 1 * (10 * 12 * 3)
    assert compute_steps(d, 16, 8, "is") == 2 * 2 * (10 * 3 * 3)


def test_single_tile_compute_cycles_are_steps_plus_fill_drain():
    cfg = ArrayConfig(rows=4, cols=8, dram=FAST)
    g = gemm("g", 8, 8, 8)
    for df in ("os", "ws", "is"):
        r = map_layer(g, cfg, df)
        assert r.extra["tiles"] == 1
        assert r.extra["compute_cycles"] == compute_steps(g, 4, 8, df) + 3 + 7 + 3
        assert r.cycles == r.extra["compute_cycles"] + 2      # 1-cycle load + 1-cycle store


def test_broadcast_control_shortens_fill():
    g = gemm("g", 64, 64, 64)
    sys_ = map_layer(g, ArrayConfig(dram=FAST), "os")
    bc = map_layer(g, ArrayConfig(control=(0, 0), dram=FAST), "os")
    assert sys_.cycles - bc.cycles == 30 * sys_.extra["tiles"]


def test_sram_accesses_gemm_os_by_hand():
    r, w = sram_accesses(gemm("g", 32, 32, 10), 16, 16, "os")
    steps = 2 * 2 * 10
    assert r["X"] == steps * 16 and r["W"] == steps * 16
    assert w["Y"] == 32 * 32 and r["Y"] == 0                  # stationary outputs: one write


def test_sram_accesses_gemm_ws_partial_sums():
    r, w = sram_accesses(gemm("g", 10, 16, 32), 16, 16, "ws")
    # steps = ceil(32/16) * 1 * 10 = 20; 16 partial sums per step leave the array
    assert w["Y"] == 20 * 16 and r["Y"] == 20 * 16 - 10 * 16
    assert r["W"] == 32 * 16                                  # stationary weights: read once


def test_tiling_large_layer_and_traffic():
    big = gemm("g", 2048, 2048, 2048)
    cfg = ArrayConfig()
    r = map_layer(big, cfg, "os")
    assert r.extra["tiles"] > 1
    g, m, n, k = r.extra["tile_gmnk"]
    assert 2 * (m * k + k * n) <= cfg.spad_bytes and 2 * 4 * m * n <= cfg.acc_bytes
    assert r.dram_bytes["Y"] == 2048 * 2048
    assert r.dram_bytes["X"] >= 2048 * 2048 and r.dram_bytes["W"] >= 2048 * 2048
    small = map_layer(big, ArrayConfig(spad_bytes=32 * 1024, acc_bytes=16 * 1024), "os")
    assert small.total_dram_bytes > r.total_dram_bytes
    # fits on chip: every tensor moves once
    f = map_layer(gemm("f", 64, 64, 64), cfg, "os")
    assert f.total_dram_bytes == 3 * 64 * 64


def test_single_buffered_is_slower():
    g = gemm("g", 512, 512, 512)
    db = map_layer(g, ArrayConfig(), "os")
    sb = map_layer(g, ArrayConfig(double_buffered=False), "os")
    assert sb.cycles > db.cycles


def test_best_dataflow_and_fusion():
    d = dwconv2d("d", 1, 64, 28, 28, 3, 3)
    cfg = ArrayConfig(dram=FAST)
    best = map_layer_best(d, cfg)
    assert best.cycles == min(map_layer(d, cfg, df).cycles for df in ("os", "ws", "is"))
    one = map_layer(d, ArrayConfig(dataflows=("os",), dram=FAST), "os")
    assert best.total_area_um2 > one.total_area_um2         # fusion muxes cost area


def test_energy_components_positive():
    r = map_layer(conv2d("c", 1, 64, 64, 28, 28, 3, 3), ArrayConfig(), "ws")
    assert set(r.energy_pj) == {"mac", "pe_regs", "spad", "acc", "dram"}
    assert all(v > 0 for v in r.energy_pj.values())
    assert 0 < r.extra["utilization"] <= r.extra["spatial_utilization"] <= 1


def test_fixed_banks_port_stalls():
    g = gemm("g", 1, 256, 256)                     # WS matrix-vector: weight preload each step
    free = map_layer(g, ArrayConfig(dram=FAST), "ws")
    fixed = map_layer(g, ArrayConfig(dram=FAST, spad_banks=4, spad_width_bits=128), "ws")
    # (256 weights + 16 inputs) x 8 bits per step against 4 banks x 128 bits: 4.25x slower
    assert free.extra["port_slowdown"] == 1.0 and fixed.extra["port_slowdown"] == 4.25
    assert fixed.extra["compute_cycles"] > 3 * free.extra["steps"]


def test_bad_inputs():
    with pytest.raises(LegoError, match="dataflow"):
        ArrayConfig(dataflows=("rs",))
    with pytest.raises(LegoError, match="rows"):
        ArrayConfig(rows=0)
    with pytest.raises(LegoError, match="dataflow"):
        map_layer(gemm("g", 4, 4, 4), ArrayConfig(dataflows=("os",)), "ws")
    with pytest.raises(LegoError, match="spad_bytes"):
        ArrayConfig(spad_bytes=1, acc_bytes=1)
    with pytest.raises(LegoError, match="spad_bytes"):
        map_layer(gemm("g", 4, 4, 4), ArrayConfig(spad_bytes=16, acc_bytes=16, acc_bits=128), "os")
    with pytest.raises(LegoError, match="spad_banks"):
        ArrayConfig(spad_banks=0)
    with pytest.raises(LegoError, match="compute_layer"):
        map_layer(gemm("g", 4, 4, 4), ArrayConfig(), "os", compute_layer=gemm("h", 4, 4, 5))
    assert math.isfinite(map_layer(gemm("g", 1, 1, 1), ArrayConfig(), "os").cycles)


def test_presets_agree_with_generator_table():
    from lego.affine.dataflow import PRESET_TABLE as table
    for op, presets in PRESETS.items():
        assert table[op] == presets, op


# small generated designs and the mapper's Layer of the same loop nest (conv: h, w are output sizes)
MATCH = [
    ("gemm", "M=8,N=12,K=20", "4x4", "os", gemm("g", 8, 12, 20)),
    ("gemm", "M=5,N=7,K=9", "8x2", "ws", gemm("g", 5, 7, 9)),
    ("gemm", "M=5,N=7,K=9", "2x3", "is-bcast", gemm("g", 5, 7, 9)),
    ("bmm", "B=2,M=5,N=6,K=3", "2x2", "ws-bcast", bmm("b", 2, 5, 6, 3)),
    ("conv2d", "N=1,C=3,K=8,H=7,W=7,R=3,S=3", "4x4", "ws", conv2d("c", 1, 8, 3, 5, 5, 3, 3)),
    ("dwconv2d", "N=1,C=8,H=7,W=7,R=3,S=3", "4x4", "is", dwconv2d("d", 1, 8, 5, 5, 3, 3)),
    ("gemm", "M=6,N=5,K=4", "2x2", "os,ws,is", gemm("g", 6, 5, 4)),           # fused: each mode
]


@pytest.fixture(scope="module", params=MATCH, ids=[f"{m[0]}-{m[2]}-{m[3]}" for m in MATCH])
def generated(request, tmp_path_factory):
    wl, shape, array, dfs, layer = request.param
    from lego.generate import generate
    out = tmp_path_factory.mktemp("map") / "d"
    generate(wl, shape, array, tuple(dfs.split(",")), 8, True, out)
    return out, layer


def test_matches_generated_design(generated):
    """Per layer, what `lego sim --model --design DIR`, explore and the Gemmini comparison use, against
    the generated design: steps equal report.json's and the cycle engine's; SRAM reads and writes equal
    the cycle engine's; mapped onto the design (its directory), fill/drain equals report.json's and the
    compute cycles of the one tile (DRAM free) equal the cycle engine's cycles, exactly."""
    import json

    from simulator.cycle import CycleEngine
    from simulator.model_run import design_config
    out, layer = generated
    rpt = json.loads((out / "report.json").read_text())["cycles"]
    cfg = design_config(out, dram=FAST)
    for df in cfg.dataflows:
        rep = CycleEngine().run(out, mode=df, outputs=False)
        steps = compute_steps(layer, cfg.rows, cfg.cols, df)
        assert steps == rpt["steps"][df] == rep.extra["steps"]
        reads, writes = sram_accesses(layer, cfg.rows, cfg.cols, df)
        assert {k: reads[k] for k in rep.sram_reads} == rep.sram_reads
        assert {k: writes[k] for k in rep.sram_writes} == rep.sram_writes
        m = map_layer(layer, cfg, df)
        assert m.extra["steps"] == steps and m.extra["tiles"] == 1
        assert m.extra["fill_drain"] == rpt["fill_drain"][df] == rep.cycles - steps
        assert m.extra["compute_cycles"] == rep.cycles


def test_analytic_fill_drain_slope_matches_generated(tmp_path):
    """Without a design (--array), fill/drain is (R-1) c0 + (C-1) c1 + PIPELINE_DEPTH: the generated
    designs' drain grows exactly so with the array (8-bit, single dataflow: the same constant part on
    1x1 to 8x2, systolic and broadcast os), whatever the constant."""
    import json

    from lego.generate import generate
    from simulator.mapping import control_of
    for df in ("os", "os-bcast"):
        parts = set()
        for arr in ("1x1", "2x2", "3x2", "8x2", "4x4"):
            d = tmp_path / f"{df}-{arr}"
            generate("gemm", "M=8,N=8,K=3", arr, (df,), 8, True, d)
            r, c = (int(v) for v in arr.split("x"))
            fd = json.loads((d / "report.json").read_text())["cycles"]["fill_drain"][df]
            parts.add(fd - fill_drain(r, c, control_of(ArrayConfig(dataflows=(df,)), df), 0))
        assert parts == {2}, (df, parts)


def test_bcast_dataflow_names():
    g = gemm("g", 64, 64, 64)
    cfg = ArrayConfig(dataflows=("os", "os-bcast"), dram=FAST)
    a, b = map_layer(g, cfg, "os"), map_layer(g, cfg, "os-bcast")
    assert a.extra["steps"] == b.extra["steps"]
    assert b.extra["fill_drain"] == 3 and a.extra["fill_drain"] == 33
    assert map_layer_best(g, cfg).extra["dataflow"] == "os-bcast"


def test_conv_tiles_pay_halo():
    from simulator.mapping import halo_factor
    import numpy as np
    c = conv2d("c", 1, 64, 64, 56, 56, 3, 3)
    f = halo_factor(c, np.array([56 * 4, 56 * 56]), np.array([14, 1]))
    assert f[0] == pytest.approx(1 + 2 / 4) and f[1] == 1.0          # 4 rows need 6
    assert halo_factor(gemm("g", 8, 8, 8), np.array([4]), np.array([2]))[0] == 1.0
    # a conv that must be tiled over pixels moves more than its stored input
    r = map_layer(conv2d("c", 1, 64, 256, 56, 56, 3, 3), ArrayConfig(), "ws")
    assert r.dram_bytes["X"] >= 256 * 58 * 58

"""PointAccConfig on the shared config scaffold: presets, validation with field-named LegoErrors,
dict/YAML input, RTL parameters.

(Not test_config.py: tests/accelerators/dota/test_config.py exists and basenames must be unique.)
"""
from __future__ import annotations

import dataclasses

import pytest

from accelerators.config import Config
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.cycles import fps_cycles, knn_cycles, knn_feature_cycles
from accelerators.pointacc.driver import Geometry
from accelerators.pointacc.mapping import MappingUnit
from lego.errors import LegoError

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def test_presets():
    ps = PointAccConfig.presets()
    assert set(ps) == {"server", "edge", "tiny"} and isinstance(ps["server"], Config)
    s, e, t = ps["server"], ps["edge"], ps["tiny"]
    assert (s.sorter_width, s.point_buffer, s.distance_lanes, s.cache_sets) == (32, 16384, 8, 64)
    assert (e.sorter_width, e.point_buffer, e.distance_lanes, e.cache_sets) == (16, 4096, 4, 128)
    assert (t.sorter_width, t.point_buffer, t.distance_lanes, t.cache_sets) == (4, 64, 2, 4)
    assert [(c.mmu_mshrs, c.mmu_queue) for c in (s, e, t)] == [(16, 64), (16, 64), (4, 8)]
    assert [(c.mxu_rows, c.mxu_cols, c.mxu_dataflow, c.mxu_dram_bits, c.mxu_outstanding) for c in (s, e, t)] == [
        (64, 64, "ws", 256, 16), (16, 16, "ws", 256, 16), (4, 4, "ws", 64, 4)]
    for c in (s, e, t):
        u = MappingUnit(**c.mapping_params())
        u._MustUse__silence = True    # not elaborated here
        assert Geometry.of(u) == Geometry.from_config(c) == Geometry.from_params(**c.mapping_params())
    with pytest.raises(LegoError, match="^preset: unknown PointAccConfig preset 'big'"):
        PointAccConfig.preset("big")


def test_frozen_and_replace():
    c = PointAccConfig.preset("server")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.sorter_width = 8
    d = c.replace(sorter_width=16, point_buffer=1024)
    assert d.sorter_width == 16 and c.sorter_width == 32
    with pytest.raises(LegoError, match="^sorter_width: must be a power of two >= 2, got 12"):
        c.replace(sorter_width=12)


@pytest.mark.parametrize("bad, msg", [
    ({"sorter_width": 12}, "^sorter_width: must be a power of two >= 2, got 12$"),
    ({"sorter_width": "16"}, "^sorter_width: must be an integer"),
    ({"sorter_width": True}, "^sorter_width: must be an integer"),
    ({"distance_lanes": 64}, "^distance_lanes: must be <= sorter_width"),
    ({"point_buffer": 100}, "^point_buffer: must be a positive multiple of sorter_width"),
    ({"max_neighbors": 12}, "^max_neighbors"),
    ({"coord_bits": 22}, "^coord_bits"),
    ({"cache_bytes": 1000}, "^cache_bytes"),
    ({"cache_block_rows": 3}, "^cache_block_rows"),
    ({"feature_row_bytes": 32}, "^feature_row_bytes: must equal mxu_rows = 64"),
    ({"mxu_rows": 1, "feature_row_bytes": 1}, "^mxu_rows: must be in 2..128, got 1$"),
    ({"mxu_cols": 256}, "^mxu_cols: must be in 2..128, got 256$"),
    ({"mxu_dataflow": "rs"}, "^mxu_dataflow: must be one of ws, os, is, got 'rs'$"),
    ({"mxu_dram_bits": 96}, "^mxu_dram_bits: must be one of 64, 128, 256, got 96$"),
    ({"mxu_outstanding": 0}, "^mxu_outstanding: must be in 1..16, got 0$"),
    ({"weight_buffer_bytes": 5000}, "^weight_buffer_bytes: must be a whole number of KiB in 1..1024, got 5000$"),
    ({"acc_buffer_bytes": 0}, "^acc_buffer_bytes: must be a whole number of KiB in 1..1024, got 0$"),
    # a 64 x 64 array needs 2 * 4 B * 64 * 64 = 32 KiB of accumulator for one output tile twice
    ({"acc_buffer_bytes": 16384}, r"^acc_buffer_bytes: 16 KiB holds no 64x64 int32 output tile twice \(needs 32768 "
                                  r"bytes for a 64x64 array\), got 16384$"),
    ({"weight_buffer_bytes": 8192}, r"^weight_buffer_bytes: 8 KiB holds no X 64x64 and W 64x64 tile twice"),
    ({"clock_ghz": 0.0}, "^clock_ghz"),
    ({"clock_ghz": "fast"}, "^clock_ghz: must be a finite number"),
    ({"dram_latency_cycles": 0}, "^dram_latency_cycles"),
    ({"dram_energy": "sram"}, "^dram_energy: must be one of hbm2_byte, dram_byte"),
    ({"bogus": 1}, "^bogus: unknown PointAccConfig field"),
    ({"name": ""}, "^name"),
    ({"mmu_mshrs": 0}, "^mmu_mshrs: must be in 1..64"),
    ({"mmu_mshrs": 65, "mmu_queue": 128}, "^mmu_mshrs: must be in 1..64"),
    ({"mmu_mshrs": 16, "mmu_queue": 8}, "^mmu_mshrs: must be <= mmu_queue = 8"),
    ({"mmu_queue": 48}, "^mmu_queue: must be a power of two in 2..256, got 48$"),
    ({"mmu_queue": 512}, "^mmu_queue: must be a power of two"),
    ({"mmu_mshrs": 2.5}, "^mmu_mshrs: must be an integer"),
    ({"knn_merge_stages": 3}, r"^knn_merge_stages: must be in 0..2 \(0: auto, ceil\(max\(sorter_width, "
                              r"max_neighbors\) / sorter_width\)\), got 3$"),
    ({"knn_merge_stages": -1}, "^knn_merge_stages: must be in 0..2 "),
    ({"knn_merge_stages": 1.0}, "^knn_merge_stages: must be an integer"),
])
def test_refusals(bad, msg):
    with pytest.raises(LegoError, match=msg):
        PointAccConfig.from_dict(bad)


def test_from_dict_and_yaml(tmp_path):
    c = PointAccConfig.from_dict({"clock_ghz": 2, "sorter_width": 16, "point_buffer": 4096})
    assert c.clock_ghz == 2.0 and isinstance(c.clock_ghz, float)
    f = tmp_path / "pa.yaml"
    f.write_text("preset: edge\nname: my-edge\ncache_ways: 4\n")
    y = PointAccConfig.from_yaml(f)
    assert (y.name, y.sorter_width, y.cache_ways, y.cache_sets) == ("my-edge", 16, 4, 64)
    assert PointAccConfig.from_yaml(_round_trip(tmp_path, y)) == y
    f.write_text("preset: edge\ncache_wayz: 4\n")
    with pytest.raises(LegoError, match="^cache_wayz: unknown PointAccConfig field"):
        PointAccConfig.from_yaml(f)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(LegoError, match="^config: expected a mapping"):
        PointAccConfig.from_yaml(f)
    with pytest.raises(LegoError, match="^--config: cannot read"):
        PointAccConfig.from_yaml(tmp_path / "missing.yaml")


def _round_trip(tmp_path, cfg):
    p = tmp_path / "rt.yaml"
    cfg.to_yaml(p)
    return p


def test_cycle_model_scales_with_config():
    s, e = Geometry.from_config(PointAccConfig.preset("server")), Geometry.from_config(PointAccConfig.preset("edge"))
    assert fps_cycles(s, 4096, 16) == 1 + 15 * (512 + 4)
    assert fps_cycles(e, 4096, 16) == 1 + 15 * (1024 + 4)
    assert knn_cycles(s, 4096, 1, 16) == 512 + s.sorter_latency + 16 + 7
    assert s.sorter_latency == 15 and e.sorter_latency == 10     # log2 W (log2 W + 1) / 2 stages


@pytest.mark.parametrize("line, field", [("mmu_mshrs: 0", "mmu_mshrs"), ("mmu_queue: 12", "mmu_queue"),
                                         ("mmu_mshrs: 32\nmmu_queue: 16", "mmu_mshrs")])
def test_mmu_fields_cli_refusal(tmp_path, capsys, line, field):
    """A bad MMU field in a YAML config: exit 2, one line naming the field, nothing written."""
    from lego.cli import main
    f = tmp_path / "bad.yaml"
    f.write_text(f"preset: tiny\n{line}\n")
    out = tmp_path / "out"
    code = main(["gen", "--accelerator", "pointacc", "--config", str(f), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and field in err, err
    assert not out.exists()
    y = tmp_path / "ok.yaml"
    y.write_text("preset: edge\nmmu_mshrs: 1\nmmu_queue: 2\n")
    c = PointAccConfig.from_yaml(y)
    assert (c.mmu_mshrs, c.mmu_queue) == (1, 2) and c.mmu_params()["mshrs"] == 1


@pytest.mark.parametrize("line, field", [("feature_dims: 0", "feature_dims"), ("feature_dims: 2000", "feature_dims"),
                                         ("feature_bits: 1", "feature_bits"), ("feature_bits: 17", "feature_bits"),
                                         ("feature_lanes: 9", "feature_lanes"), ("feature_lanes: 0", "feature_lanes"),
                                         ("feature_points: 65", "feature_points"),
                                         ("feature_points: -1", "feature_points"),
                                         ("feature_dims: 1024\nfeature_bits: 16", "feature_bits"),
                                         ("feature_lanes: 2.5", "feature_lanes")])
def test_feature_fields_cli_refusal(tmp_path, capsys, line, field):
    """A bad feature-kNN field in a YAML config (tiny: C 8, NF <= 64, 36-bit sort keys): exit 2, one line
    naming the field, nothing written."""
    from lego.cli import main
    f = tmp_path / "bad.yaml"
    f.write_text(f"preset: tiny\n{line}\n")
    out = tmp_path / "out"
    code = main(["gen", "--accelerator", "pointacc", "--config", str(f), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"error: {field}:" in err, err
    assert not out.exists()


def test_feature_fields_yaml_and_params(tmp_path):
    s, e, t = (PointAccConfig.preset(p) for p in ("server", "edge", "tiny"))
    assert [(c.feature_dims, c.feature_bits, c.feature_lanes, c.feature_points) for c in (s, e, t)] == [
        (128, 8, 64, 1024), (128, 8, 16, 1024), (8, 8, 2, 16)]
    y = tmp_path / "f.yaml"
    y.write_text("preset: edge\nfeature_dims: 64\nfeature_lanes: 8\nfeature_points: 512\nfeature_bits: 6\n")
    c = PointAccConfig.from_yaml(y)
    assert (c.feature_dims, c.feature_lanes, c.feature_points, c.feature_bits) == (64, 8, 512, 6)
    assert PointAccConfig.from_yaml(_round_trip(tmp_path, c)) == c
    g = Geometry.from_config(c)
    assert (g.feature_dims, g.feature_bits, g.feature_lanes, g.feature_points) == (64, 6, 8, 512)
    assert knn_feature_cycles(g, 512, 3, 16, 64, 8) == 3 * (512 * 8 + g.sorter_latency + 16 + 8)
    off = PointAccConfig.from_dict({"preset": "tiny", "feature_points": 0})
    u = MappingUnit(**off.mapping_params())
    u._MustUse__silence = True
    assert u.feat is None and "fld_en" not in u.signature.members
    # without the feature path the feature distance width does not bound the sort key (a small FPGA config)
    small = PointAccConfig.from_dict({"preset": "tiny", "point_buffer": 8, "coord_bits": 5, "feature_points": 0})
    assert small.feature_bits == 8
    with pytest.raises(LegoError, match="^feature_bits: distances of 19 bits exceed"):
        PointAccConfig.from_dict({"preset": "tiny", "point_buffer": 8, "coord_bits": 5, "feature_points": 8})

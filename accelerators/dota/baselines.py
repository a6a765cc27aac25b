"""The two photonic baselines the DOTA authors compare against (note section 6), per GEMM instance.

Both are weight-stationary ("broadcast", weight_reuse_factor -1 = N2): a static Nh x Nw weight block
serves every input column, so iter_N2 = N2 and iter_D = ceil(D / Nw).

- MRR bank: add-drop rings hold the weights; signed inputs are split (f_x = 2, full-range factor f_r = 2)
  for linear layers and Q.K^T; S.V has S >= 0 (f_r = 1) and runs with V^T static, i.e. with
  (N1, D, N2) = (head_dim, tokens, tokens). Latency ignores memory.
- MZI mesh: a Clements mesh of Nh(Nh-1)/2 + Nw(Nw-1)/2 MZIs plus max(Nh, Nw) Sigma modulators; each
  weight block costs a 2 us reprogramming. It runs linear layers only: attention costs nothing here
  (the authors skip it), so MZI totals exclude attention.
"""
from __future__ import annotations

import math

from .config import DotaConfig
from .physics import event_energy_pj
from .workloads import Gemm


def _ceil(a: float) -> int:
    return int(math.ceil(a - 1e-12))


def _zero() -> dict[str, float]:
    return {k: 0.0 for k in ("laser", "dac", "mzm", "mrr", "mzi", "pd", "tia", "adc", "adder",
                             "rf", "noc", "lb", "gb", "dram")}


def _outputs_lb_gb(cfg: DotaConfig, n1: int, n2: int, itd: int, fr: int) -> tuple[float, float]:
    """Output words through GB1 (local) and GB2 (global), with the reload factor L' rounded up."""
    C = cfg.cores_per_tile
    lp = max(_ceil(cfg.nh * n2 * cfg.act_bits / 8 / cfg.device.lb_bytes), 1)
    psum = n1 * n2 * itd * fr / C
    if lp > 1:
        return n1 * n2 * (2 * itd * fr / C - 1), n1 * n2 + n1 * n2 * (2 * itd * fr / C - 2)
    return psum, n1 * n2


def mrr_gemm(cfg: DotaConfig, g: Gemm) -> tuple[float, int, float, dict[str, float], float]:
    e = event_energy_pj(cfg)
    n1, dd, n2 = (g.n2, g.d, g.n1) if g.kind == "sv" else (g.n1, g.d, g.n2)
    fr = 1 if g.kind == "sv" else cfg.full_range_factor
    fx, fw = fr, 1
    it1, itd = _ceil(n1 / cfg.nh), _ceil(dd / cfg.nw)
    cycles = _ceil(it1 * n2 * itd * g.heads / cfg.cores) * fr
    lat = cycles / cfg.freq_ghz
    w_words, x_words = n1 * dd * fw, it1 * n2 * dd * fx
    conv = n1 * n2 * itd * fr                           # ADC, receiver and adder events
    en = _zero()
    en.update(
        laser=it1 * n2 * itd * fr * e["laser"],
        dac=(w_words + x_words) * e["dac"],
        mrr=(it1 * n2 * dd * fr * e["ring_tx"]             # input ring modulators
             + n1 * n2 * dd * fr * e["ring_static"]        # every weight ring holds its bias
             + n1 * dd * (fr if g.is_linear else fw) * e["ring_dyn"]),
        pd=conv * e["pd"], tia=conv * e["tia"], adc=conv * e["adc"], adder=conv * e["adder"],
    )
    en.update(_data(cfg, g, w_words, x_words, conv, n1, n2, itd, fr))
    dram = w_words if g.is_linear else 0.0
    h = g.heads
    return lat, cycles, 0.0, {k: v * h for k, v in en.items()}, dram * h


def mzi_gemm(cfg: DotaConfig, g: Gemm) -> tuple[float, int, float, dict[str, float], float]:
    if not g.is_linear:
        return 0.0, 0, 0.0, _zero(), 0.0
    e, d = event_energy_pj(cfg), cfg.device
    n1, dd, n2 = g.n1, g.d, g.n2
    it1, itd = _ceil(n1 / cfg.nh), _ceil(dd / cfg.nw)
    n_blk = it1 * itd
    n_mzi = cfg.nh * (cfg.nh - 1) // 2 + cfg.nw * (cfg.nw - 1) // 2
    n_sig = max(cfg.nh, cfg.nw)
    cycles = _ceil(n_blk * n2 / cfg.cores)
    reprog = _ceil(n_blk / cfg.cores) * d.mzi_response_ns
    lat = cycles / cfg.freq_ghz + reprog
    phases, x_words = n_blk * (n_mzi + n_sig), it1 * n2 * dd
    conv = n1 * n2 * itd
    en = _zero()
    en.update(
        laser=n_blk * n2 * e["laser"],
        dac=(phases + x_words) * e["dac"],
        mzm=x_words * e["mzm"],
        mzi=n_blk * (n_mzi * e["mzi_dyn"] + n_sig * e["mzm"]),
        pd=conv * e["pd"], tia=conv * e["tia"], adc=conv * e["adc"], adder=conv * e["adder"],
    )
    en.update(_data(cfg, g, phases, x_words, conv, n1, n2, itd, 1, gb_weight=n1 * dd))
    return lat, cycles, reprog, en, float(phases)


def _data(cfg: DotaConfig, g: Gemm, w_words: float, x_words: float, conv: float, n1: int, n2: int,
          itd: int, fr: int, gb_weight: float | None = None) -> dict[str, float]:
    """RF, NoC, GB1, GB2 and DRAM energy (pJ) of a weight-stationary baseline GEMM."""
    d, C = cfg.device, cfg.cores_per_tile
    s16 = cfg.in_bits / 16
    out_lb, out_gb = _outputs_lb_gb(cfg, n1, n2, itd, fr)
    rf = 2 * (w_words + x_words) + 2 * conv / C
    lb = 2 * (w_words + x_words) + out_lb
    gb = (w_words + x_words) + out_gb
    if g.is_linear:
        gb += w_words if gb_weight is None else gb_weight
    dram = w_words if g.is_linear else 0.0
    return {"rf": rf * s16 * d.rf_pj_per_word16, "noc": conv * s16 * d.noc_pj_per_word16,
            "lb": lb * s16 * d.lb_pj_per_word16, "gb": gb * s16 * d.gb_pj_per_word16,
            "dram": dram * s16 * d.dram_pj_per_word16}


def baseline_gemm(cfg: DotaConfig, g: Gemm) -> tuple[float, int, float, dict[str, float], float]:
    """(latency ns, compute cycles, memory/reprogramming ns, energy pJ per component, DRAM words)."""
    return mrr_gemm(cfg, g) if cfg.kind == "mrr" else mzi_gemm(cfg, g)

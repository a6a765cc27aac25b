"""DOTA analytical model: latency and energy per GEMM, per inference, and ``simulate``.

The model follows the authors' simulator as restated in /work/shared/notes/dota.md (sections 3-4);
docs/dota.md gives every formula and where we differ. Counts are per GEMM and include its heads.
Units: energy pJ, latency ns inside, reported as mJ / ms in ``Report.extra``; area um^2; power mW.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from lego.errors import LegoError
from simulator.report import Report

from .area import area_um2, power_mw
from .config import DotaConfig
from .periphery import figures as periphery_figures
from .physics import event_energy_pj
from .workloads import Gemm, NonGemmOps, Workload, get_workload

MODES = ("overlap", "stall")
# Report.energy_pj keys (pJ). "mzm" is the MZM itself; "mrr" its two WDM mux/demux rings (DOTA) or the
# weight-bank rings (MRR baseline); "mzi" the MZI-mesh reprogramming; "others" the non-GEMM digital ops.
COMPONENTS = ("laser", "dac", "mzm", "mrr", "mzi", "phase_shifter", "pd", "tia", "adc", "adder",
              "rf", "noc", "lb", "gb", "dram", "others", "periphery")


@dataclass
class GemmCost:
    """One GEMM instance (all heads): latency, compute cycles and energy per component."""

    gemm: Gemm
    latency_ns: float
    compute_cycles: int
    mem_ns: float
    energy_pj: dict[str, float] = field(default_factory=dict)
    dram_words: float = 0.0


def _ceil(a: float) -> int:
    return int(math.ceil(a - 1e-12))


def _sram_cycles(bits: float, bw_gbps: float, sram_ghz: float) -> int:
    """SRAM-clock cycles to move ``bits`` at ``bw_gbps``: ceil(bits / bw * f_sram)."""
    return _ceil(bits / bw_gbps * sram_ghz)


def dota_latency(cfg: DotaConfig, g: Gemm) -> tuple[float, int, float]:
    """(latency ns, compute cycles, memory ns) of one DOTA GEMM, fully overlapped: max(t_comp, t_mem).

    Compute: ceil(iter_N1 * iter_N2 * iter_D * h / (T*C)) core cycles. Memory, per chunk of T*Nh rows
    (SRAM clock cycles, rounded up per chunk): linear layers preload weights from DRAM, whose bandwidth
    the T tiles share; attention moves (Nh*D*T + D*N2) words from the global buffer per chunk and head.
    """
    T, C, b = cfg.tiles, cfg.cores_per_tile, cfg.in_bits
    it1, it2, itd = _ceil(g.n1 / cfg.nh), _ceil(g.n2 / cfg.nw), _ceil(g.d / cfg.n_lambda)
    cycles = _ceil(it1 * it2 * itd * g.heads / (T * C))
    t_comp = cycles / cfg.freq_ghz
    chunks = _ceil(g.n1 / (T * cfg.nh))
    clk = cfg.sram_clock_ghz
    gb_term = chunks * _sram_cycles((cfg.nh * g.d * T + g.d * g.n2) * b, cfg.gb_bw_gbps, clk)
    if g.is_linear:
        mem = chunks * _sram_cycles(cfg.nh * g.d * b, cfg.dram_bw_gbps / T, clk)
        if not cfg.authors_compat:      # the authors compute the GB->SRAM term for linear layers, then drop it
            mem = max(mem, gb_term)
    else:
        mem = g.heads * gb_term
    t_mem = mem / clk
    return max(t_comp, t_mem), cycles, t_mem


def dota_energy(cfg: DotaConfig, g: Gemm) -> tuple[dict[str, float], float]:
    """(energy pJ per component, DRAM words) of one DOTA GEMM instance, all heads."""
    e = event_energy_pj(cfg)
    d = cfg.device
    T, C, nl, b = cfg.tiles, cfg.cores_per_tile, cfg.n_lambda, cfg.in_bits
    tau, share_in, share_adc, xbar = cfg.dataflow()
    compat = cfg.authors_compat
    n1, dd, n2 = g.n1, g.d, g.n2
    it1, it2, itd = _ceil(n1 / cfg.nh), _ceil(n2 / cfg.nw), _ceil(dd / nl)
    ts = T if share_in else 1

    # compute events
    laser_ev = it1 * it2 * itd
    m1_ev = n1 * dd * it2 if xbar else n1 * n2 * dd      # M1 modulated once per column chunk (crossbar)
    m2_ev = it1 * n2 * dd / ts                           # M2 once per row chunk, broadcast to T tiles
    pd_ev = n1 * n2 * itd
    tau_eff = min(tau, _ceil(dd / (C * nl)))             # a core owns only ceil(D/(C*Nl)) chunks
    per_out = _ceil(_ceil(itd / tau_eff) / C) if share_adc else _ceil(itd / tau_eff)
    ps = n1 * n2 * per_out                               # ADC conversions = TIA reads = adder ops
    en = {
        "laser": laser_ev * e["laser"],
        "dac": (m1_ev + m2_ev) * e["dac"],
        "mzm": (m1_ev + m2_ev) * e["mzm"],
        "mrr": (m1_ev + m2_ev) * e["mrr"],
        "phase_shifter": n1 * n2 * dd * e["phase_shifter"],
        "pd": pd_ev * e["pd"],
        "tia": ps * e["tia"],
        "adc": ps * e["adc"],
        "adder": ps * e["adder"],
    }

    # data movement: words x (b/16) x energy per 16-bit word
    s16 = b / 16
    lr = max(cfg.nh * dd * b / 8 / d.lb_bytes, 1.0)      # output reload factor
    if g.is_linear or not compat:
        lr = float(_ceil(lr))                            # the authors leave it fractional in attention only
    outs = n1 * n2 * (2 * lr - 1)
    psum_rf = n1 * n2 * _ceil(_ceil(itd / tau_eff) / C) if compat else ps   # authors divide by C always
    m1_lb = n1 * dd * it2 if compat else m1_ev           # authors' GB1 M1 term ignores broadcast mode
    rf = 2 * (m1_ev + m2_ev + psum_rf)
    lb = (m1_lb + m2_ev) + (n1 * dd + m2_ev) + outs
    if g.is_linear:
        gb = outs + n1 * dd + m2_ev + n1 * dd            # + the DRAM -> GB weight fill
        dram = n1 * dd
    else:
        gb = outs + (0.0 if compat else n1 * dd + m2_ev)  # authors: input term squared away (bug)
        dram = 0.0                                       # activations stay on chip
    en.update(rf=rf * s16 * d.rf_pj_per_word16, noc=ps * s16 * d.noc_pj_per_word16,
              lb=lb * s16 * d.lb_pj_per_word16, gb=gb * s16 * d.gb_pj_per_word16,
              dram=dram * s16 * d.dram_pj_per_word16)
    h = g.heads
    return {k: v * h for k, v in en.items()}, dram * h


def others_cost(cfg: DotaConfig, ops: NonGemmOps, blocks: int) -> tuple[float, float]:
    """(energy pJ, latency ns) of the non-GEMM ops (softmax, LayerNorm, residual, GELU).

    GELU costs 8 elementary ops, LayerNorm 5, residual 1, each ``op_energy_pj``; softmax costs
    ``softmax_pj_per_byte`` per byte; every op's operand is read and written through the global buffer.
    authors_compat: one block only, at 4 bits, and the latency in seconds added to a sum in ms.
    """
    d = cfg.device
    bits, reps = (4, 1) if cfg.authors_compat else (cfg.act_bits, max(blocks, 1))
    e = ((8 * ops.gelu + 5 * ops.layernorm + ops.residual) * d.op_energy_pj
         + ops.softmax * bits / 8 * d.softmax_pj_per_byte
         + ops.total * d.gb_pj_per_word16 * bits / 16 * 2)
    seconds = ops.total * bits / (cfg.gb_bw_gbps * 1e9)
    ns = seconds * (1e6 if cfg.authors_compat else 1e9)
    return e * reps, ns * reps


def gemm_cost(cfg: DotaConfig, g: Gemm) -> GemmCost:
    """One GEMM instance on ``cfg.kind``."""
    if cfg.kind == "dota":
        lat, cyc, mem = dota_latency(cfg, g)
        en, dram = dota_energy(cfg, g)
    else:
        from .baselines import baseline_gemm
        lat, cyc, mem, en, dram = baseline_gemm(cfg, g)
    return GemmCost(g, lat, cyc, mem, en, dram)


def simulate(cfg: DotaConfig, model: str | list, tokens: int | None = None, mode: str = "overlap") -> Report:
    """Latency, energy, area and power of one inference of ``model`` on ``cfg``.

    ``model`` is a name from ``workloads.MODELS`` (``tokens`` overrides its token count) or a list of GEMM
    shapes (see ``workloads.custom``). ``mode="overlap"`` (default) is the authors' fully overlapped
    loop-trip model; ``mode="stall"`` (DOTA only) walks the mapping step by step and lets the DRAM, global-
    and local-buffer bandwidths stall the core (``stall.stall_schedule``); energy is the same in both.
    """
    t0 = time.perf_counter()
    if not isinstance(cfg, DotaConfig):
        raise LegoError(f"cfg: must be a DotaConfig, got {type(cfg).__name__}")
    if mode not in MODES:
        raise LegoError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "stall" and cfg.kind != "dota":
        raise LegoError(f"mode: 'stall' models the DOTA dataflow only, not the {cfg.kind} baseline")
    wl: Workload = get_workload(model, tokens)

    energy = {k: 0.0 for k in COMPONENTS}
    rows = []
    latency_ns = 0.0
    dram_words = 0.0
    costs = [gemm_cost(cfg, g) for g in wl.gemms]
    stall_rows = None
    if mode == "stall":
        from .stall import stall_schedule
        stall_rows = stall_schedule(cfg, wl)
    for i, c in enumerate(costs):
        g = c.gemm
        for k, v in c.energy_pj.items():
            energy[k] += v * g.count
        dram_words += c.dram_words * g.count
        row = {"name": g.name, "kind": g.kind, "n1": g.n1, "d": g.d, "n2": g.n2, "heads": g.heads,
               "count": g.count, "macs": g.macs, "latency_ns": c.latency_ns, "compute_cycles": c.compute_cycles,
               "mem_ns": c.mem_ns, "energy_pj": sum(c.energy_pj.values()),
               "energy_pj_by_component": dict(c.energy_pj)}
        if stall_rows is not None:
            sc, st = stall_rows[i]
            row.update(stall_compute_cycles=sc, stall_cycles=st,
                       latency_ns=(sc + st) / cfg.freq_ghz / g.count)
        latency_ns += row["latency_ns"] * g.count
        rows.append(row)
    e_oth, t_oth = others_cost(cfg, wl.others, wl.blocks)
    energy["others"] = e_oth
    latency_ns += t_oth
    # the digital periphery: the synthesized energy per step x the steps of the inference (each compute cycle
    # steps every tile), plus a user's own power x latency (mW x ns = pJ)
    per = periphery_figures(cfg)
    steps = sum(r["compute_cycles"] * r["count"] for r in rows) if cfg.kind == "dota" else 0
    energy["periphery"] = per.get("energy_pj_per_step", 0.0) * steps + cfg.periphery_power_mw * latency_ns

    area = area_um2(cfg)
    power = power_mw(cfg)
    stall_cycles = sum(r[1] for r in stall_rows) if stall_rows is not None else 0
    total_pj = sum(energy.values())
    extra = {
        "config": cfg.name, "kind": cfg.kind, "arch": cfg.arch, "mode": mode, "workload": wl.name,
        "tokens": wl.tokens, "macs": wl.macs,
        "energy_mj": total_pj * 1e-9, "latency_ms": latency_ns * 1e-6, "latency_ns": latency_ns,
        "others_latency_ns": t_oth,
        "area_mm2": sum(area.values()) * 1e-6,
        "power_w": sum(power.values()) * 1e-3 if power is not None else None,
        "power_mw": power,
        "layers": rows,
        "periphery": {k: v for k, v in per.items()} | {"steps": steps},
    }
    if mode == "stall":
        extra["compute_cycles"] = sum(r[0] for r in stall_rows)
    return Report(engine=f"dota-model:{cfg.kind}", cycles=_ceil(latency_ns * cfg.freq_ghz),
                  stall_cycles=int(stall_cycles),
                  dram_bytes={"weights": int(round(dram_words * cfg.in_bits / 8))},
                  energy_pj=energy, area_um2=area, sim_seconds=time.perf_counter() - t0, extra=extra)

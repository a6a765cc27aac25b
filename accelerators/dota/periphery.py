"""The digital periphery's synthesized area and power, fed back into the model (``periphery: synth``).

**Where the figures come from.** ``bench/dota_periphery.py`` generates ``lego_dota_periphery`` (the RTL of
``rtl.top`` with ``twin=False``: the photonic cores, integrators and ADCs are ports, so only digital logic
is left) for each preset geometry and synthesizes it with ``lego synth`` (generic Yosys) at 1 and 2 tiles.
One tile's figures are the difference, the shared part (controller, M2 staging, softmax, LayerNorm, GELU)
the rest. The results are committed in ``data/periphery_synth.json``, which this module reads.

**Area.** Yosys generic cells mapped to NanGate-equivalent areas at 28 nm (``simulator.energy.cell_area_um2``),
minus the memory bits that Yosys maps to flip-flops (``memory_bits`` x an enable flip-flop, as
``bench/area_calibration.py`` does): buffers are SRAM, and the authors' model already has the local
buffers (LB, PE buffers); the synthesis is run with the smallest buffers (one word per bank and step)
so their address and read-multiplexer logic is small.

**Power.** Energy per cycle = flip-flop bits x the energy of a clocked bit (``reg_bit``, every cycle, no
clock gating) + NAND2 gate equivalents x the energy of one gate operation, calibrated on Horowitz's 8-bit
adder (0.03 pJ at 45 nm) over the gate equivalents Yosys makes of an 8-bit adder (measured by the bench), both
scaled to 28 nm; every gate is taken to switch once per cycle (an upper bound for a datapath that runs
every cycle). The periphery runs one step of the photonic core per cycle, so power = energy per step x the
core clock; at a digital clock ``digital_clock_ghz`` below ``freq_ghz`` the datapath is replicated
ceil(freq / digital_clock) times, which multiplies the area (not the energy per step).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from lego.errors import LegoError

from .config import DATA, DotaConfig

DATA_FILE = DATA / "periphery_synth.json"


def geometry_key(nh: int, nw: int, n_lambda: int, cores: int, tau: int, in_bits: int, act_bits: int,
                 share_in: bool, share_adc: bool) -> str:
    return (f"{nh}x{nw}x{n_lambda}-c{cores}-tau{tau}-b{in_bits}a{act_bits}-in{int(share_in)}"
            f"adc{int(share_adc)}")


def config_key(cfg: DotaConfig) -> str:
    tau, share_in, share_adc, _ = cfg.dataflow()
    return geometry_key(cfg.nh, cfg.nw, cfg.n_lambda, cfg.cores_per_tile, tau, cfg.in_bits, cfg.act_bits, share_in,
                        share_adc)


@lru_cache(maxsize=None)
def _table() -> dict:
    if not DATA_FILE.is_file():
        return {}
    return json.loads(DATA_FILE.read_text())


def replication(cfg: DotaConfig) -> int:
    """Copies of the per-step datapath a digital clock of ``digital_clock_ghz`` needs to keep up."""
    return max(1, math.ceil(cfg.freq_ghz / cfg.digital_clock_ghz - 1e-9))


def lookup(cfg: DotaConfig) -> dict:
    """The synthesized figures for ``cfg``'s geometry: {per_tile, shared, source}. A geometry that was not
    synthesized takes the entry of the same bits and sharing with the nearest node count, its per-tile
    figures scaled by Nh*Nw (the accumulators and staging dominate) and said so in ``source``."""
    tab = _table().get("entries", {})
    key = config_key(cfg)
    if key in tab:
        e = tab[key]
        return {"per_tile": e["per_tile"], "shared": e["shared"], "source": f"synthesized ({key})"}
    tau, share_in, share_adc, _ = cfg.dataflow()
    cands = [(k, e) for k, e in tab.items()
             if (e["geometry"]["B"], e["geometry"]["A"], e["geometry"]["share_in"], e["geometry"]["share_adc"])
             == (cfg.in_bits, cfg.act_bits, share_in, share_adc)]
    if not cands:
        cands = list(tab.items())
    if not cands:
        raise LegoError(f"periphery: no synthesized figures in {DATA_FILE.name} (run bench/dota_periphery.py), "
                        "or set periphery: none")
    nodes = cfg.nh * cfg.nw
    k, e = min(cands, key=lambda kv: abs(math.log(kv[1]["geometry"]["NH"] * kv[1]["geometry"]["NW"] / nodes)))
    s = nodes / (e["geometry"]["NH"] * e["geometry"]["NW"])
    per = {f: (v * s if isinstance(v, (int, float)) else v) for f, v in e["per_tile"].items()}
    return {"per_tile": per, "shared": e["shared"], "source": f"scaled from {k} by {s:.3g} (node count)"}


def figures(cfg: DotaConfig) -> dict:
    """Area (um^2) and power (mW) of the periphery of ``cfg`` (T tiles + the shared part), as the model adds
    them, with their provenance."""
    if cfg.periphery != "synth":
        return {"area_um2": 0.0, "power_mw": 0.0, "source": "none"}
    f = lookup(cfg)
    rep = replication(cfg)
    t = cfg.tiles
    area = rep * (t * f["per_tile"]["logic_area_um2"] + f["shared"]["logic_area_um2"])
    e_step = t * f["per_tile"]["energy_pj_per_cycle"] + f["shared"]["energy_pj_per_cycle"]
    return {"area_um2": area, "power_mw": e_step * cfg.freq_ghz, "energy_pj_per_step": e_step,
            "replication": rep, "source": f["source"]}

"""DOTA / Lightening-Transformer photonic accelerator (arXiv 2305.19533) on lego, behind the one Accelerator
interface (docs/dota.md):

* the analytical model (``model``, ``physics``, ``area``, ``baselines``, ``stall``; workloads in
  ``workloads``): latency, energy, area and power of DOTA and the MRR-bank / MZI-mesh baselines, with the
  digital periphery's synthesized area and power fed back (``periphery``); ``lego sim --accelerator dota``
  (``sim``) writes CSV, JSON and plots;
* the numpy noise model (``noise``);
* the RTL (``rtl``, ``gen``): the digital periphery of T tiles (operand staging and broadcast, ADC read-out
  and a lego-generated accumulator array per tile, local buffers, the tiling controller, the shared
  softmax / LayerNorm / GELU units) around digital twins of the photonic cores, bit-exact against
  ``sw_reference.dota_fx``; ``bench``: ``lego sim DIR`` on the cycle model, Icarus or Verilator.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lego.errors import LegoError
from simulator.report import Report

from ..base import Accelerator, Build
from .config import PRESETS, DeviceParams, DotaConfig, RtlParams, load_config, preset_config
from .model import simulate
from .workloads import MODELS, Gemm, get_workload


class DotaAccelerator(Accelerator):
    name = "dota"
    description = "DOTA: photonic transformer accelerator (analytical model + digital-periphery RTL with a twin core)"
    config_type = DotaConfig
    default_preset = "dota-b"

    def presets(self) -> dict:
        return DotaConfig.presets()

    def load_config(self, path: str | Path | None = None, preset: str | None = None) -> DotaConfig:
        """``--config`` (a YAML of DotaConfig fields; may name ``preset`` and ``bits``) over ``--preset``
        (dota-b, dota-l, mrr, mzi, or with -4bit / -8bit; default dota-b at 4 bits)."""
        from .sim import config_from
        return config_from(None if path is None else str(path), preset, None, None)

    def build(self, cfg: DotaConfig) -> Build:
        from .gen import build_files
        return build_files(cfg)

    def run_design(self, design_dir: Path, engine: str, inputs=None, seed: int = 0, mode=None, waves=None) -> Report:
        """``lego sim DIR``: the default jobs (attention head, linear layer with GELU and LayerNorm) on random
        DAC codes of ``seed`` or ``--inputs`` (Q, K, V, W, X, gamma, beta), checked bit for bit against
        sw_reference.dota_fx and cycle for cycle against the exact model (``bench.run_design``)."""
        from .bench import run_design
        if mode is not None:
            raise LegoError("--mode: a DOTA design has no dataflow modes")
        return run_design(Path(design_dir), engine, inputs=inputs, seed=seed,
                          waves=None if waves is None else Path(waves))

    def add_sim_arguments(self, parser: argparse.ArgumentParser) -> None:
        from .sim import add_arguments
        add_arguments(parser)

    def simulate(self, cfg: DotaConfig, options: argparse.Namespace) -> Report:
        """``lego sim --accelerator dota``: the analytical model on ``--model`` (``sim.simulate_options``;
        the configuration is re-read from the options so that ``--bits`` and ``--arch-opt`` apply)."""
        from .sim import simulate_options
        return simulate_options(options)

    def cycles(self, cfg: DotaConfig, case=None) -> int:
        """Exact cycles of the default jobs (seed ``case``, default 0) on the generated lego_dota."""
        from .gen import default_plan
        from .rtl.accum import accum_latency
        from .rtl.geometry import geometry
        geo = geometry(cfg)
        lat = accum_latency(geo.KD, geo.NH, geo.NW, geo.CODE, geo.ACC)
        return sum(j.cycles for j in default_plan(cfg, geo, lat, seed=case or 0))


ACCELERATOR = DotaAccelerator()

__all__ = ["ACCELERATOR", "DotaAccelerator", "PRESETS", "DeviceParams", "DotaConfig", "RtlParams", "load_config",
           "preset_config", "simulate", "MODELS", "Gemm", "get_workload"]

"""Attention as an accelerator: Q·Kᵀ and P·V as two lego-generated arrays joined by the bit-exact
fixed-point softmax unit (``design.py``); ``lego gen --workload attention`` and
``lego gen --accelerator attention`` both generate it."""
from __future__ import annotations

import argparse
from pathlib import Path

from lego.affine.library import parse_shape
from lego.design import parse_array
from lego.errors import LegoError
from simulator.report import Report

from ..base import Accelerator, Build
from .config import AttentionConfig


class AttentionAccelerator(Accelerator):
    name = "attention"
    description = "S = Q·Kᵀ (int8) -> fixed-point softmax -> O = P·V, two lego arrays"
    config_type = AttentionConfig
    workloads = ("attention",)

    def config_from_workload(self, shape, array, dataflows, bits, opt) -> AttentionConfig:
        sh = parse_shape(shape, "attention")
        if bits != 8:
            raise LegoError("--bits: attention supports 8-bit Q/K/V only (P is 16-bit with 15 fraction bits)")
        if sh["L"] > 1024 or sh["D"] > 1024:
            raise LegoError("--shape: attention L and D must be <= 1024")
        return AttentionConfig(L=sh["L"], D=sh["D"], array=parse_array(array), dataflows=tuple(dataflows),
                               bits=bits, opt=opt)

    def build(self, cfg: AttentionConfig) -> Build:
        from .design import build_files
        return build_files(cfg)

    def run_design(self, design_dir: Path, engine: str, inputs=None, seed: int = 0, mode=None, waves=None) -> Report:
        from .bench import run_cycle, run_rtl
        if engine == "cycle":
            if waves is not None:
                raise LegoError("--waves: the cycle engine has no waveforms (use --engine icarus|verilator)")
            return run_cycle(Path(design_dir), inputs, seed, mode)
        return run_rtl(engine, Path(design_dir), inputs, seed, waves, mode)

    def add_sim_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--seed", type=int, default=0, help="seed of the random Q, K, V (default 0)")

    def simulate(self, cfg: AttentionConfig, options: argparse.Namespace) -> Report:
        from .bench import model_report
        return model_report(cfg, getattr(options, "seed", 0) or 0)

    def cycles(self, cfg: AttentionConfig, mode: int = 0) -> int:
        from .design import build_design
        return build_design(cfg).cycles(mode)


ACCELERATOR = AttentionAccelerator()

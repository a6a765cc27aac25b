"""SpAtten (HPCA 2021) on lego: config, generated RTL (special units + lego-generated dot-product
datapaths, ``gen``), the benches of a generated directory (``bench``), the trace-replay model (``model``)
and the exact cycle model of the RTL (``rtl_model``), behind the one Accelerator interface."""
from __future__ import annotations

import argparse
from pathlib import Path

from lego.errors import LegoError
from simulator.report import Report

from ..base import Accelerator
from .config import SpAttenConfig

RTL_EXACT_ROWS = 8


class SpAttenAccelerator(Accelerator):
    name = "spatten"
    title = "SpAtten"
    description = "SpAtten: cascade token/head pruning, progressive quantization, top-k engine"
    config_type = SpAttenConfig
    default_preset = "eighth"

    def run_design(self, design_dir: Path, engine: str, inputs=None, seed: int = 0, mode=None, waves=None,
                   rows: int | None = None, mem_latency: int | None = None) -> Report:
        """``lego sim DIR``: the first ``rows`` (default 4) rows of the default trace back to back through
        spatten_top with random Q/K/V (``bench.run_design``): on icarus/verilator the cycles bench (outputs
        bit-exact against sw_reference.spatten, cycles against ``rtl_model``, both measured), on the cycle
        engine the exact cycle model and the golden model's outputs."""
        from .bench import DEFAULT_MEM_LATENCY, DEFAULT_ROWS, run_design
        if inputs is not None:
            raise LegoError("--inputs: a SpAtten design replays trace rows with random Q/K/V (--seed); it takes "
                            "no .npz")
        self.refuse_mode(mode)
        return run_design(Path(design_dir), engine, seed=seed, rows=DEFAULT_ROWS if rows is None else rows,
                          mem_latency=DEFAULT_MEM_LATENCY if mem_latency is None else mem_latency,
                          waves=None if waves is None else Path(waves))

    def run_bench(self, design_dir: Path, engine: str, bench: str = "cycles", cases: int = 20,
                  env: dict | None = None) -> bool:
        """One cocotb bench of a generated directory (``bench.BENCHES``: cycles, pipeline, units) under icarus
        or verilator; True when it passed (what ``DIR/tb/run.py --bench`` runs)."""
        from .bench import run_bench
        return run_bench(Path(design_dir), engine, bench, cases=cases, env=env)

    def add_sim_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rtl-rows", type=int, default=RTL_EXACT_ROWS,
                            help="rows of the trace replayed on the exact cycle model of the generated "
                                 f"spatten_top, reported as rtl_exact (default {RTL_EXACT_ROWS}; 0: none)")
        parser.add_argument("--mem-latency", type=int, default=1,
                            help="with --rtl-rows: cycles from a K/V request to its response (default 1)")

    def simulate(self, cfg: SpAttenConfig, options: argparse.Namespace) -> Report:
        """``lego sim --accelerator spatten``: the trace-replay model (``model.simulate``) on ``--trace`` (default
        the GPT-2 per8 trace), plus ``rtl_exact``: the exact cycles of the generated spatten_top on the
        trace's first ``--rtl-rows`` rows (random Q/K/V of seed ``--seed`` + 1), when cfg has RTL."""
        from .gen import check_rtl_config
        from .model import DEFAULT_TRACE, load_trace, simulate
        from .rtl_model import replay
        trace = getattr(options, "trace", None)
        if trace is not None and not Path(trace).is_file():
            raise LegoError(f"--trace: file '{trace}' not found")
        rows_n = getattr(options, "rtl_rows", RTL_EXACT_ROWS)
        if rows_n < 0:
            raise LegoError(f"--rtl-rows: must be >= 0, got {rows_n}")
        lat = getattr(options, "mem_latency", 1)
        if lat < 1:
            raise LegoError(f"--mem-latency: must be >= 1, got {lat}")
        seed = (getattr(options, "seed", 0) or 0) + 1
        path = Path(trace) if trace else DEFAULT_TRACE
        rep = simulate(cfg, path)
        try:
            check_rtl_config(cfg)
        except LegoError as e:
            rep.extra["rtl_exact"] = {"skipped": f"no RTL for this config ({e})"}
        else:
            ex = replay(cfg, load_trace(path)[:rows_n], seed=seed, mem_latency=lat)
            rep.extra["rtl_exact"] = {"rows": len(ex["cycles"]), "mem_latency": lat, "seed": seed,
                                      "qk_latency": ex["qk_latency"], "pv_latency": ex["pv_latency"],
                                      "cycles": ex["cycles"], "total": ex["total"], "requests": ex["requests"]}
        return rep

    def cycles(self, cfg: SpAttenConfig, case) -> int:
        """Exact cycles of trace rows ``case`` back to back through spatten_top (seed 1, memory latency 1)."""
        from .rtl_model import replay
        return replay(cfg, case, seed=1, mem_latency=1)["total"]


ACCELERATOR = SpAttenAccelerator()
__all__ = ["ACCELERATOR", "SpAttenAccelerator", "SpAttenConfig"]

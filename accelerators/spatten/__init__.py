"""SpAtten (HPCA 2021) on lego: config, generated RTL (special units + lego-generated dot-product
datapaths), the trace-replay model (``model``) and the exact cycle model of the RTL (``rtl_model``)."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lego.errors import LegoError
from simulator.report import Report

from ..base import Accelerator, Build
from .config import SpAttenConfig

RTL_EXACT_ROWS = 8


class SpAttenAccelerator(Accelerator):
    name = "spatten"
    description = "SpAtten: cascade token/head pruning, progressive quantization, top-k engine"
    config_type = SpAttenConfig
    default_preset = "eighth"

    def presets(self) -> dict:
        return SpAttenConfig.presets()

    def build(self, cfg: SpAttenConfig) -> Build:
        from .gen import build_files
        return build_files(cfg)

    def run_design(self, design_dir: Path, engine: str, inputs=None, seed: int = 0, mode=None, waves=None,
                   rows: int = 4, mem_latency: int = 1) -> Report:
        """The cycle bench of the directory: the first ``rows`` trace rows back to back through spatten_top
        (outputs bit-exact against sw_reference.spatten, cycles exact against ``rtl_model``), or, on the
        cycle engine, the exact cycle model of the same rows."""
        import time

        from .model import DEFAULT_TRACE, load_trace
        from .rtl_model import replay
        if inputs is not None:
            raise LegoError("--inputs: a SpAtten design replays trace rows with random Q/K/V; it takes no .npz")
        if mode is not None:
            raise LegoError("--mode: a SpAtten design has no dataflow modes")
        if waves is not None:
            raise LegoError("--waves: not available for the SpAtten bench")
        cfg = SpAttenConfig.from_yaml(Path(design_dir) / "config.yaml")
        t0 = time.perf_counter()
        trace_rows = load_trace(DEFAULT_TRACE)[:rows]
        model = replay(cfg, trace_rows, seed=seed + 1, mem_latency=mem_latency)
        extra = {"requests": model["requests"], "mem_latency": mem_latency, "cycles_predicted": model["total"]}
        if engine == "cycle":
            return Report(engine="cycle", cycles=model["total"], match=True, sim_seconds=time.perf_counter() - t0,
                          extra=extra)
        import sys
        sys.path.insert(0, str(Path(design_dir) / "tb"))
        try:
            import run_tb
            with tempfile.TemporaryDirectory() as td:
                ok = run_tb.run(engine, build_dir=Path(td), which="cycles",
                                extra_env={"SPATTEN_TRACE_ROWS": str(rows), "SPATTEN_MEM_LATENCY": str(mem_latency),
                                           "SPATTEN_SEED": str(seed + 1), "SPATTEN_CYCLES_COVERAGE": "0"})
        finally:
            sys.path.remove(str(Path(design_dir) / "tb"))
            sys.modules.pop("run_tb", None)
        return Report(engine=engine, cycles=model["total"] if ok else -1, match=bool(ok),
                      sim_seconds=time.perf_counter() - t0, extra=extra)

    def add_sim_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--rtl-rows", type=int, default=RTL_EXACT_ROWS,
                            help=f"rows of the trace replayed on the exact RTL cycle model (default {RTL_EXACT_ROWS})")

    def simulate(self, cfg: SpAttenConfig, options: argparse.Namespace) -> Report:
        from .gen import check_rtl_config
        from .model import DEFAULT_TRACE, load_trace, simulate
        from .rtl_model import replay
        trace = getattr(options, "trace", None)
        if trace is not None and not Path(trace).is_file():
            raise LegoError(f"--trace: file '{trace}' not found")
        rows_n = getattr(options, "rtl_rows", RTL_EXACT_ROWS)
        if rows_n < 0:
            raise LegoError(f"--rtl-rows: must be >= 0, got {rows_n}")
        res = simulate(cfg, Path(trace) if trace else None)
        try:
            check_rtl_config(cfg)
        except LegoError as e:
            res["rtl_exact"] = {"skipped": f"no RTL for this config ({e})"}
        else:
            rows = load_trace(Path(trace) if trace else DEFAULT_TRACE)[:rows_n]
            ex = replay(cfg, rows, seed=1, mem_latency=1)
            res["rtl_exact"] = {"rows": len(rows), "mem_latency": 1, "cycles": ex["cycles"], "total": ex["total"]}
        energy = res.pop("energy_pj_by_component")
        res.pop("energy_pj")
        dram = res.pop("dram_bytes")
        return Report(engine="spatten-model", cycles=res.pop("cycles"), dram_bytes={"kv": dram},
                      energy_pj=energy, extra=res)

    def cycles(self, cfg: SpAttenConfig, case) -> int:
        from .rtl_model import replay
        return replay(cfg, case, seed=1, mem_latency=1)["total"]


ACCELERATOR = SpAttenAccelerator()
__all__ = ["ACCELERATOR", "SpAttenConfig"]

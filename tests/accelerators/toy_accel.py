"""A toy accelerator in one file (the issue's yardstick for the Accelerator interface): a running sum of
n signed bytes. With one registry entry (``lego.registry.register`` here; an entry point in a package's
pyproject.toml for a third party), lego list/gen/sim/synth work on it (tests/accelerators/test_base.py)."""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable, Module, Signal, signed

from accelerators.base import Accelerator, Build
from accelerators.config import Config, need
from lego.toolchain import run_cocotb
from simulator.report import Report

BENCH = '''
import json, os
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, ReadOnly

@cocotb.test()
async def sums(dut):
    xs = json.loads(os.environ["TOY_DATA"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1; dut.in_valid.value = 0; dut.in_data.value = 0
    await RisingEdge(dut.clk); await FallingEdge(dut.clk)
    dut.rst.value = 0
    for x in xs:
        dut.in_valid.value = 1; dut.in_data.value = x
        await FallingEdge(dut.clk)
    dut.in_valid.value = 0
    await ReadOnly()
    with open(os.environ["TOY_RESULT"], "w") as f:
        json.dump({"sum": dut.total.value.to_signed(), "cycles": len(xs)}, f)
'''


@dataclass(frozen=True)
class ToyConfig(Config):
    n: int = 16                        # bytes summed by one run
    width: int = 16                    # accumulator bits

    def validate(self):
        need(self, self.n >= 1, "n", "must be >= 1")
        need(self, 9 <= self.width <= 32, "width", "must be in 9..32")

    @classmethod
    def presets(cls):
        return {"default": cls(), "wide": cls(n=64, width=24)}


class Summer(Elaboratable):
    def __init__(self, width):
        self.in_valid = Signal(name="in_valid")
        self.in_data = Signal(signed(8), name="in_data")
        self.total = Signal(signed(width), name="total")

    def elaborate(self, platform):
        m = Module()
        with m.If(self.in_valid):
            m.d.sync += self.total.eq(self.total + self.in_data)
        return m


class ToyAccelerator(Accelerator):
    name = "toy"
    description = "running sum of signed bytes (test accelerator)"
    config_type = ToyConfig

    def build(self, cfg):
        from lego.generate import to_verilog

        top = Summer(cfg.width)
        top.ports = lambda: [top.in_valid, top.in_data, top.total]
        ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1},
                 {"name": "in_valid", "direction": "in", "width": 1}, {"name": "in_data", "direction": "in", "width": 8},
                 {"name": "total", "direction": "out", "width": cfg.width}]
        man = {"ports": ports, "tensors": {"x": {"shape": [cfg.n], "dtype": "int8", "role": "input", "bits": 8}},
               "config": cfg.to_dict()}
        return Build(top="toy_top", sources={"toy_top.v": to_verilog(top, "toy_top")}, manifest=man,
                     report={"cycles": cfg.n}, tb={"toy_bench.py": BENCH}, extra={"config.yaml": cfg.to_yaml_text()})

    def _data(self, cfg, inputs, seed):
        if inputs is not None:
            return np.asarray(inputs["x"], np.int64)
        return np.random.default_rng(seed).integers(-128, 128, cfg.n)

    def run_design(self, design_dir, engine, inputs=None, seed=0, mode=None, waves=None):
        cfg = ToyConfig.from_yaml(Path(design_dir) / "config.yaml")
        xs = self._data(cfg, inputs, seed)
        want = int(xs.sum())
        if engine == "cycle":
            return Report(engine="cycle", cycles=cfg.n, outputs={"total": np.array(want)}, match=True)
        with tempfile.TemporaryDirectory() as td:
            res = Path(td) / "res.json"
            run_cocotb(engine=engine, sources=[Path(design_dir) / "toy_top.v"], top="toy_top", test_module="toy_bench",
                       test_dir=Path(design_dir) / "tb", build_dir=Path(td) / "b",
                       extra_env={"TOY_DATA": json.dumps(xs.tolist()), "TOY_RESULT": str(res)})
            got = json.loads(res.read_text())
        return Report(engine=engine, cycles=got["cycles"], outputs={"total": np.array(got["sum"])},
                      match=got["sum"] == want, max_abs_err=float(abs(got["sum"] - want)))

    def add_sim_arguments(self, parser: argparse.ArgumentParser):
        parser.add_argument("--repeat", type=int, default=1, help="runs of n bytes each (default 1)")

    def simulate(self, cfg, options):
        return Report(engine="toy-model", cycles=cfg.n * options.repeat, energy_pj={"adds": 0.03 * cfg.n * options.repeat},
                      extra={"runs": options.repeat})


ACCELERATOR = ToyAccelerator()

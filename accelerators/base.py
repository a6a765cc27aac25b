"""The one Accelerator interface. An accelerator is one module that subclasses ``Accelerator`` plus one
registry entry (``[project.entry-points."lego.accelerators"]`` in pyproject.toml, or
``lego.registry.register`` in-process); ``lego list``, ``lego gen --accelerator``, ``lego sim DIR``,
``lego sim --accelerator`` and ``lego synth`` then work on it.

An accelerator provides:

* ``config_type``: one frozen dataclass, with ``presets`` and a YAML loader (``load_config``);
* ``build(cfg) -> Build`` (by default ``gen.build_files`` of the accelerator's package): the Verilog and what the manifest and report say about it; ``generate`` writes
  the design directory through the shared writer (``lego.emit.directory.write_design``), so an
  accelerator's directory has the same files as an array's (``.core``, ``report.json``, ``files.f``,
  ``lint.vlt``, ``tb/``) and the same manifest schema;
* ``run_design(design_dir, engine, ...)``: ``lego sim DIR --engine E``: runs the accelerator's bench on
  the generated RTL (icarus, verilator) or its exact cycle model (cycle) on default or given inputs,
  against the golden model in ``sw_reference``; returns a ``Report``;
* ``simulate(cfg, options) -> Report``: ``lego sim --accelerator NAME``, the accelerator-level model,
  with options it declares in ``add_sim_arguments``;
* ``cycles(cfg, case) -> int``: the exact cycle model the benches check the RTL against.

Library code never prints and never returns exit codes: errors are ``LegoError`` (exit 2) and
``CheckFailed`` (exit 1), raised to the CLI.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lego.emit.directory import write_design
from lego.errors import LegoError
from simulator.report import Report


def out_dir(options: argparse.Namespace, default: str) -> Path:
    """``--out DIR`` of ``lego sim --accelerator`` (``default`` when not given): a directory, or a new name
    in an existing one."""
    out = getattr(options, "out", None)
    out = Path(out) if out else Path(default)
    if out.exists() and not out.is_dir():
        raise LegoError(f"--out: '{out}' exists and is not a directory")
    if not out.resolve().parent.is_dir():
        raise LegoError(f"--out: directory '{out.resolve().parent}' does not exist")
    return out


@dataclass
class Build:
    """What ``Accelerator.build`` returns: the shared writer turns it into the design directory."""
    top: str
    sources: dict[str, str]                 # Verilog files, relative path -> text (files.f order)
    manifest: dict                          # accelerator-specific manifest keys (ports, tensors, ...)
    report: dict                            # report.json
    tb: dict[str, str] = field(default_factory=dict)      # tb/... files
    lint: str = ""                          # extra lint.vlt waivers (backend artifacts only)
    extra: dict[str, str | bytes] = field(default_factory=dict)   # other files (config.yaml, design.json)
    summary: str = ""


class Accelerator(ABC):
    name: str = ""
    title: str = ""                         # the name in messages ("a DOTA design"); default: name
    description: str = ""
    config_type: type = object
    default_preset: str = "default"
    workloads: tuple[str, ...] = ()         # `lego gen --workload NAME` names this accelerator generates

    # ------------------------------------------------------------------ configuration
    def presets(self) -> dict[str, Any]:
        """Preset name -> config: the config type's ``presets()``."""
        return self.config_type.presets()

    def load_config(self, path: str | Path | None = None, preset: str | None = None):
        """``path`` (YAML) or ``preset`` (default: ``default_preset``); errors name the field."""
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise LegoError(f"--config: file '{path}' not found")
            return self.config_type.from_yaml(p)
        ps = self.presets()
        name = preset or self.default_preset
        if name not in ps:
            raise LegoError(f"--preset: unknown preset '{name}' for {self.name} (allowed: {', '.join(ps)})")
        return ps[name]

    def config_from_workload(self, shape: str | None, array: str | None, dataflows: tuple[str, ...],
                             bits: int, opt: bool):
        """The config ``lego gen --workload NAME`` asks for (accelerators that provide ``workloads``)."""
        raise LegoError(f"--workload: {self.name} is generated with --accelerator {self.name}")

    # ------------------------------------------------------------------ generation
    def build(self, cfg) -> Build:
        """Elaborate the RTL for ``cfg``: by default ``build_files(cfg)`` of the ``gen`` module beside the
        module that defines the accelerator (``accelerators/<name>/gen.py``)."""
        pkg = sys.modules[type(self).__module__].__package__
        return importlib.import_module(f"{pkg}.gen").build_files(cfg)

    def generate(self, cfg, out: Path, force: bool = False) -> dict:
        b = self.build(cfg)
        man = write_design(Path(out), top=b.top, kind="accelerator", sources=b.sources,
                           manifest={"accelerator": self.name, **b.manifest}, report=b.report, tb=b.tb,
                           lint=b.lint, extra=b.extra, force=force, description=f"lego {self.name} accelerator")
        return {"top": b.top, "dir": str(out), "accelerator": self.name, "cycles": b.report.get("cycles"),
                "summary": b.summary or f"{self.name} RTL, top {b.top}", "schema_version": man["schema_version"]}

    # ------------------------------------------------------------------ simulation
    @abstractmethod
    def run_design(self, design_dir: Path, engine: str, inputs: dict | None = None, seed: int = 0,
                   mode: str | None = None, waves: Path | None = None) -> Report:
        """``lego sim DIR --engine E``: the bench on the generated directory against the golden model."""

    def refuse_mode(self, mode: str | None) -> None:
        """``--mode``: for a design without dataflow modes (every accelerator but attention), refused."""
        if mode is not None:
            raise LegoError(f"--mode: a {self.title or self.name} design has no dataflow modes")

    def add_sim_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Options of ``lego sim --accelerator NAME`` beyond --config/--preset/--json (each with help)."""

    @abstractmethod
    def simulate(self, cfg, options: argparse.Namespace) -> Report:
        """``lego sim --accelerator NAME``: the accelerator-level model."""

    def cycles(self, cfg, case) -> int:
        """Exact cycles of one bench case on the generated RTL."""
        raise NotImplementedError(f"{self.name}: no exact cycle model")

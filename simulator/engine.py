"""One Engine interface for the cycle model and the RTL simulators (cocotb + Icarus/Verilator).

    get_engine("cycle" | "icarus" | "verilator").run(design_dir, mode=None, inputs=None, seed=0) -> Report
    get_engine(...).run_jobs(design_dir, [Job(...), ...]) -> [Report, ...]

A run is a sequence of jobs on one powered-up design, as a host drives it (docs/host_protocol.md): each
job optionally pulses ``rst``, loads some input tensors (the banks keep every other word), runs in a
mode and reads the whole output. Every job is checked against ``sw_reference`` on the inputs the banks
hold for that mode.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from lego import registry
from lego.emit.directory import read_manifest
from lego.errors import LegoError
from lego.host import Banks, HostError, random_inputs

from .report import Report


@dataclass(frozen=True)
class Job:
    """One run of a sequence: ``inputs`` are the tensors loaded before it (None or missing tensors: the
    banks keep their words), ``reset`` pulses ``rst`` first, ``mode`` is a dataflow name (None: the
    design's first)."""
    mode: str | None = None
    inputs: dict | None = None
    reset: bool = False


class Engine(ABC):
    name: str

    def run(self, design_dir: Path, mode: str | None = None, inputs: dict | None = None, seed: int = 0,
            waves: Path | None = None, **kw) -> Report:
        """One job after power-up: load every input (``inputs`` or random with ``seed``), run, read."""
        man = read_manifest(design_dir)
        if man["kind"] != "array":
            raise LegoError(f"sim: '{design_dir}' holds the {man.get('accelerator')} accelerator; its bench runs "
                            f"through lego.api.simulate (lego sim DIR)")
        if inputs is None:
            inputs = random_inputs(man, seed)
        return self.run_jobs(design_dir, [Job(mode, inputs)], waves=waves, seed=seed, **kw)[0]

    @abstractmethod
    def run_jobs(self, design_dir: Path, jobs: list[Job], waves: Path | None = None, **kw) -> list[Report]:
        """Run ``jobs`` back to back on one simulated design; one Report per job."""


def get_engine(name: str) -> Engine:
    """The registered engine ``name`` (entry points ``lego.engines``: cycle, icarus, verilator)."""
    return registry.get(registry.ENGINES, name)()


def pick_mode(man: dict, mode: str | None) -> tuple[str, int]:
    modes = man["modes"]
    if mode is None:
        name = man["dataflows"][0]
        return name, modes[name]
    if mode not in modes:
        raise LegoError(f"--mode: '{mode}' is not a dataflow of this design (allowed: {', '.join(modes)})")
    return mode, modes[mode]


def job_inputs(man: dict, jobs: list[Job]):
    """Per job: (mode name, mode index, the tensors loaded before it, the inputs the run computes with)."""
    banks = Banks(man)
    out = []
    try:
        for k, job in enumerate(jobs):
            name, mi = pick_mode(man, job.mode)
            loads = dict(job.inputs or {})
            rows = banks.load(name, loads, [n for n in man["ld_tensor"] if n in loads])
            out.append((name, mi, rows, banks.gather(name)))
    except HostError as e:
        raise LegoError(f"job {k}: {e}") from None
    return out

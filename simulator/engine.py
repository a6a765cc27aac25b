"""One Engine interface for the cycle model and the RTL simulators (cocotb + Icarus/Verilator).

    get_engine("cycle" | "icarus" | "verilator").run(design_dir, mode=None, inputs=None, seed=0) -> Report
    get_engine(...).run_jobs(design_dir, [Job(...), ...]) -> [Report, ...]

A run is a sequence of jobs on one powered-up design, as a host drives it (docs/host_protocol.md): each
job optionally pulses ``rst``, loads some input tensors (the banks keep every other word), runs in a
mode and reads the whole output. Every job is checked against ``sw_reference`` on the inputs the banks
hold for that mode.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from lego.host import Banks, HostError, check_tensor, random_inputs

from .report import Report

ENGINES = ("cycle", "icarus", "verilator")


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
        if inputs is None and man.get("kind") == "array":
            inputs = random_inputs(man, seed)
        return self.run_jobs(design_dir, [Job(mode, inputs)], waves=waves, seed=seed, **kw)[0]

    @abstractmethod
    def run_jobs(self, design_dir: Path, jobs: list[Job], waves: Path | None = None, **kw) -> list[Report]:
        """Run ``jobs`` back to back on one simulated design; one Report per job."""


def get_engine(name: str) -> Engine:
    if name == "cycle":
        from .cycle import CycleEngine
        return CycleEngine()
    if name in ("icarus", "verilator"):
        from .rtl import RtlEngine
        return RtlEngine(name)
    raise LegoError(f"--engine: unknown engine '{name}' (allowed: {', '.join(ENGINES)})")


def read_manifest(design_dir: Path) -> dict:
    p = Path(design_dir) / "manifest.json"
    if not p.is_file():
        raise LegoError(f"'{design_dir}' is not a lego design directory (no manifest.json)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        raise LegoError(f"{p} is not valid JSON") from None


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


def load_inputs(path: Path, man: dict) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise LegoError(f"--inputs: file '{path}' not found")
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as e:
        why = "holds pickled objects (save plain integer arrays)" if "allow_pickle" in str(e) else "is not a .npz file"
        raise LegoError(f"--inputs: '{path}' {why}") from None
    except Exception:
        raise LegoError(f"--inputs: '{path}' is not a readable .npz file") from None
    out = {}
    with z:
        for name, t in man["tensors"].items():
            if t["role"] != "input":
                continue
            if name not in z.files:
                raise LegoError(f"--inputs: tensor '{name}' missing (needs: "
                                f"{', '.join(k for k, v in man['tensors'].items() if v['role'] == 'input')})")
            try:
                out[name] = check_tensor(name, t, z[name])
            except HostError as e:
                raise LegoError(str(e)) from None
            except ValueError:
                raise LegoError(f"--inputs: tensor '{name}' holds pickled objects (save plain integer arrays)") from None
    return out

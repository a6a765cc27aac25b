"""One Engine interface for the cycle model and the RTL simulators (cocotb + Icarus/Verilator).

    get_engine("cycle" | "icarus" | "verilator").run(design_dir, mode=None, inputs=None, seed=0) -> Report
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from lego.errors import LegoError

ENGINES = ("cycle", "icarus", "verilator")


class Engine(Protocol):
    name: str

    def run(self, design_dir: Path, mode: str | None = None, inputs: dict | None = None, seed: int = 0,
            waves: Path | None = None) -> "Report": ...


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
        raise LegoError(f"sim: '{design_dir}' is not a lego design directory (no manifest.json)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        raise LegoError(f"sim: {p} is not valid JSON") from None


def pick_mode(man: dict, mode: str | None) -> tuple[str, int]:
    modes = man["modes"]
    if mode is None:
        name = man["dataflows"][0]
        return name, modes[name]
    if mode not in modes:
        raise LegoError(f"--mode: '{mode}' is not a dataflow of this design (allowed: {', '.join(modes)})")
    return mode, modes[mode]


def load_inputs(path: Path, man: dict) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise LegoError(f"--inputs: file '{path}' not found")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception:
        raise LegoError(f"--inputs: '{path}' is not a readable .npz file") from None
    out = {}
    for name, t in man["tensors"].items():
        if t["role"] != "input":
            continue
        if name not in z:
            raise LegoError(f"--inputs: tensor '{name}' missing (needs: "
                            f"{', '.join(k for k, v in man['tensors'].items() if v['role'] == 'input')})")
        a = z[name]
        if list(a.shape) != t["shape"]:
            raise LegoError(f"--inputs: tensor '{name}' has shape {list(a.shape)}, expected {t['shape']}")
        if not np.issubdtype(a.dtype, np.integer):
            raise LegoError(f"--inputs: tensor '{name}' has dtype {a.dtype}, expected {t['dtype']}")
        lo, hi = -(1 << (t["bits"] - 1)), (1 << (t["bits"] - 1)) - 1
        if a.size and (a.min() < lo or a.max() > hi):
            raise LegoError(f"--inputs: tensor '{name}' has values outside {t['dtype']} [{lo}, {hi}]")
        out[name] = a.astype(np.int64)
    return out

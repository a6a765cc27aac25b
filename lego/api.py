"""The public Python API of lego that generated files and third parties use (``DIR/tb/run.py`` imports
only this module): simulate a design directory on a registered engine, whatever made it (an array or
an accelerator), and read a user's inputs checked against the manifest."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import registry
from .emit.directory import read_manifest
from .errors import LegoError
from .host import HostError, check_tensor


def engine(name: str):
    """The registered engine ``name`` (``lego.engines``), ready to run."""
    return registry.get(registry.ENGINES, name)()


def accelerator(name: str):
    """The registered accelerator ``name`` (``lego.accelerators``)."""
    return registry.get(registry.ACCELERATORS, name)


def simulate(design_dir: Path, engine_name: str = "cycle", mode: str | None = None, inputs: dict | None = None,
             seed: int = 0, waves: Path | None = None, **kw):
    """One run of the design in ``design_dir`` (``lego sim DIR``) -> Report: an array on the engine
    itself, an accelerator's directory through that accelerator's bench."""
    man = read_manifest(Path(design_dir))
    if man["kind"] == "array":
        return engine(engine_name).run(Path(design_dir), mode=mode, inputs=inputs, seed=seed, waves=waves, **kw)
    if kw:
        raise LegoError(f"--{next(iter(kw)).replace('_', '-')}: not available for an accelerator design")
    registry.get(registry.ENGINES, engine_name)            # an unknown engine is named as such
    # absolute: the accelerators' cocotb benches import DIR/tb and read DIR's files from their own run directory
    return accelerator(man["accelerator"]).run_design(Path(design_dir).resolve(), engine_name, inputs=inputs,
                                                      seed=seed, mode=mode, waves=waves)


def load_inputs(path: Path, man: dict) -> dict[str, np.ndarray]:
    """``--inputs IN.npz``: one integer array per input tensor of the manifest, in its dtype's range."""
    path = Path(path)
    if not path.is_file():
        raise LegoError(f"--inputs: file '{path}' not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":                      # an .npz is a zip archive of .npy files
        raise LegoError(f"--inputs: '{path}' is not a .npz file (np.savez writes one)")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception:
        raise LegoError(f"--inputs: '{path}' is not a readable .npz file") from None
    out = {}
    with z:
        names = [k for k, v in man["tensors"].items() if v["role"] == "input"]
        for name in names:
            if name not in z.files:
                if man["tensors"][name].get("optional"):      # the accelerator's bench supplies a default
                    continue
                raise LegoError(f"--inputs: tensor '{name}' missing (needs: {', '.join(names)})")
            try:
                out[name] = check_tensor(name, man["tensors"][name], z[name])
            except HostError as e:
                raise LegoError(str(e)) from None
            except ValueError:
                raise LegoError(f"--inputs: tensor '{name}' holds pickled objects (save plain integer arrays)") from None
    return out

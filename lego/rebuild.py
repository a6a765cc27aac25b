"""Rebuild a design's in-memory IR from its manifest (generation is deterministic)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .design import build_array, load_workload
from .errors import LegoError


@lru_cache(maxsize=16)
def _build(workload: str, shape: str | None, array: tuple, dataflows: tuple, bits: int, opt: bool):
    w = load_workload(workload, shape, bits)
    return build_array(w, array, dataflows, opt)


def design_from_manifest(man: dict, design_dir: Path):
    spec = man.get("spec")
    if not spec:
        raise LegoError(f"sim: manifest in '{design_dir}' has no generator spec")
    wl = spec["workload"]
    if spec.get("workload_file"):
        wl = str(Path(design_dir) / spec["workload_file"])
    dfs = tuple(str(Path(design_dir) / x) if x.endswith((".yaml", ".yml", ".json")) else x
                for x in spec["dataflows"])
    args = (wl, spec.get("shape"), tuple(spec["array"]), dfs, spec["bits"], spec["opt"])
    from_files = spec.get("workload_file") or any(x != y for x, y in zip(dfs, spec["dataflows"]))
    d = _build.__wrapped__(*args) if from_files else _build(*args)
    if [int(c) for c in d.cycles] != [int(man["cycles_predicted"][n]) for n in man["dataflows"]]:
        raise LegoError(f"sim: design in '{design_dir}' does not match this lego version (cycles differ)")
    return d

"""`lego gen/sim --accelerator NAME`: dispatch to accelerators/<name> and simulator/<name>."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .emit.outdir import check_target, write_atomic
from .errors import LegoError

AVAILABLE = ("spatten",)
PLANNED = ("pointacc", "dota")


def _config(name: str, path: str | None):
    if name not in AVAILABLE:
        if name in PLANNED:
            raise LegoError(f"--accelerator: '{name}' is not implemented yet (available: {', '.join(AVAILABLE)})")
        raise LegoError(f"--accelerator: unknown accelerator '{name}' (allowed: {', '.join(AVAILABLE + PLANNED)})")
    from accelerators.spatten.config import SpAttenConfig
    if path is None:
        return SpAttenConfig.preset("eighth")
    if not Path(path).is_file():
        raise LegoError(f"--config: file '{path}' not found")
    return SpAttenConfig.from_yaml(Path(path))


def gen_accelerator(name: str, config: str | None, out: Path, force: bool) -> dict:
    cfg = _config(name, config)
    check_target(out, force)
    from accelerators.spatten.gen import generate
    with tempfile.TemporaryDirectory() as td:
        man = generate(cfg, Path(td))
        files = {str(p.relative_to(td)): p.read_bytes() for p in Path(td).rglob("*") if p.is_file()}
    write_atomic(out, files, force)
    return {"dir": str(out), "top": man.get("top"), "summary": f"{name} RTL, top {man.get('top')}"}


def sim_accelerator(name: str, config: str | None, trace: str | None, as_json: bool) -> int:
    cfg = _config(name, config)
    from simulator.spatten import simulate
    if trace is not None and not Path(trace).is_file():
        raise LegoError(f"--trace: file '{trace}' not found")
    res = simulate(cfg, Path(trace) if trace else None)
    if as_json:
        print(json.dumps(res, sort_keys=True, default=float))
    else:
        for k in ("cycles", "dram_bytes", "dram_bytes_dense_int8", "dram_bytes_dense_fp32",
                  "dram_reduction_vs_int8", "gops", "energy_pj"):
            print(f"{k:24s} {res.get(k)}")
    return 0

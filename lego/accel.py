"""`lego gen/sim --accelerator NAME`: dispatch to accelerators/<name> and simulator/<name>."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .emit.outdir import check_target, write_atomic
from .errors import LegoError

AVAILABLE = ("spatten",)
RTL_EXACT_ROWS = 8
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
    # the generated spatten_top's exact cycle counts on the trace's first rows (simulator.spatten_rtl;
    # the benches check them against Icarus/Verilator): the config's keys / V rows per cycle, requests one
    # after another (no overlap between requests, unlike the paper-level model)
    from accelerators.spatten.gen import check_rtl_config
    from simulator.spatten import DEFAULT_TRACE, load_trace
    from simulator.spatten_rtl import replay
    try:
        check_rtl_config(cfg)
    except LegoError as e:
        res["rtl_exact"] = {"skipped": f"no RTL for this config ({e})"}
    else:
        rows = load_trace(Path(trace) if trace else DEFAULT_TRACE)[:RTL_EXACT_ROWS]
        ex = replay(cfg, rows, seed=1, mem_latency=1)
        res["rtl_exact"] = {"rows": len(rows), "mem_latency": 1, "cycles": ex["cycles"], "total": ex["total"]}
    if as_json:
        print(json.dumps(res, sort_keys=True, default=float))
    else:
        for k in ("cycles", "dram_bytes", "dram_bytes_dense_int8", "dram_bytes_dense_fp32",
                  "dram_reduction_vs_int8", "gops", "energy_pj"):
            print(f"{k:24s} {res.get(k)}")
        ex = res["rtl_exact"]
        print(f"{'rtl_exact_cycles':24s} " + (ex["skipped"] if "skipped" in ex else
              f"{ex['total']} (spatten_top, first {ex['rows']} rows, memory latency 1)"))
    return 0

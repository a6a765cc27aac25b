"""The benches of a generated SpAtten directory (cocotb modules in its ``tb/``) and ``lego sim DIR``.

Three benches, each against ``sw_reference.spatten`` (bit-exact):

* ``cycles`` (``tb/tb_cycles.py`` on ``spatten_top.v``): trace rows back to back with a fixed-latency K/V
  memory; outputs, requant decisions and V rows against ``attention_query_int``, the measured cycles of
  every request and of the sequence against the exact model ``rtl_model`` (``lego sim DIR`` runs this one);
* ``pipeline`` (``tb/tb_pipeline.py`` on ``spatten_top.v``): whole queries with a random-latency memory and
  three layers of cascade token/head pruning against ``spatten_layer``;
* ``units`` (``tb/tb_spatten.py`` on ``tb/spatten_units.v``): every unit on random inputs, the top-k
  engine and the pruner's selections also cycle-exact.

RTL builds are cached like the array engines' (``simulator.rtl``: keyed by the Verilog, the simulator and
the interpreter), so the ``cycles`` and ``pipeline`` benches of one directory share one build.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from simulator.report import Report

from ..rtlbench import ENGINES, build_dir, check_waves, run_cached
from .config import SpAttenConfig

# bench -> (Verilog file relative to the directory, top module, cocotb module in tb/)
BENCHES = {"cycles": ("spatten_top.v", "spatten_top", "tb_cycles"),
           "pipeline": ("spatten_top.v", "spatten_top", "tb_pipeline"),
           "units": ("tb/spatten_units.v", "spatten_units", "tb_spatten")}
DEFAULT_ROWS = 2            # trace rows of `lego sim DIR` (the default trace's first rows)
DEFAULT_SEED = 1            # the random Q/K/V/dq of those rows: seed DEFAULT_SEED + `lego sim --seed`
DEFAULT_MEM_LATENCY = 1     # cycles from a K/V request to its response


def run_bench(design_dir: Path, engine: str, bench: str = "cycles", *, cases: int = 20, env: dict | None = None,
              waves: Path | None = None) -> bool:
    """Build (or reuse) the bench's Verilog under ``engine`` (icarus, verilator) and run its cocotb module;
    True when every cocotb test passed. ``cases``: random cases of the pipeline/unit benches; ``env``: the
    bench's SPATTEN_* variables (see the module docstrings in tb/)."""
    design_dir = Path(design_dir)
    if bench not in BENCHES:
        raise LegoError(f"bench: unknown SpAtten bench '{bench}' (allowed: {', '.join(BENCHES)})")
    if engine not in ("icarus", "verilator"):
        raise LegoError(f"--engine: the SpAtten benches run on icarus or verilator, got '{engine}'")
    check_waves(engine, waves)
    src, top, module = BENCHES[bench]
    if not (design_dir / src).is_file() or not (design_dir / "tb" / f"{module}.py").is_file():
        raise LegoError(f"DIR: '{design_dir}' lacks {src} or tb/{module}.py (regenerate the design)")
    bd = build_dir(engine, "spatten", [design_dir / src], waves)
    return run_cached(bd, engine=engine, waves=waves, sources=[design_dir / src], top=top, test_module=module,
                      test_dir=design_dir / "tb", extra_env={"SPATTEN_CFG": str(design_dir / "config.yaml"),
                                                              "SPATTEN_CASES": str(cases), **(env or {})})


def run_design(design_dir: Path, engine: str, seed: int = 0, rows: int = DEFAULT_ROWS,
               mem_latency: int = DEFAULT_MEM_LATENCY, waves: Path | None = None) -> Report:
    """``lego sim DIR --engine E``: the first ``rows`` rows of the default trace back to back through the
    directory's spatten_top with random Q/K/V (seed ``DEFAULT_SEED + seed``) and a memory of fixed latency
    ``mem_latency``. RTL engines run the ``cycles`` bench and report the measured outputs (``O``, one row
    per request) and cycles, checked against sw_reference and ``rtl_model``; the cycle engine reports the
    exact model's cycles and the golden model's outputs."""
    from .model import DEFAULT_TRACE, load_trace
    from .rtl_model import replay
    t0 = time.perf_counter()
    design_dir = Path(design_dir)
    if engine not in ENGINES:
        raise LegoError(f"--engine: a SpAtten design runs on {', '.join(ENGINES)}, got '{engine}'")
    if rows < 1:
        raise LegoError(f"rows: at least 1 trace row, got {rows}")
    if mem_latency < 1:
        raise LegoError(f"mem_latency: at least 1 cycle, got {mem_latency}")
    if waves is not None and engine == "cycle":
        raise LegoError("--waves: the cycle engine has no waveforms (use --engine icarus|verilator)")
    cfg = SpAttenConfig.from_yaml(design_dir / "config.yaml")
    man = json.loads((design_dir / "manifest.json").read_text())
    lat = (man["datapaths"]["qk"]["latency"], man["datapaths"]["pv"]["latency"])
    trace_rows = load_trace(DEFAULT_TRACE)[:rows]
    s = DEFAULT_SEED + seed
    model = replay(cfg, trace_rows, s, mem_latency, *lat)
    ref = np.array(model["outputs"], dtype=np.int64)
    extra = {"cycles_predicted": model["total"], "mem_latency": mem_latency, "seed": s, "trace": DEFAULT_TRACE.name,
             "requests": [{k: r[k] for k in ("n", "kv", "requant")} | {"cycles_predicted": r["cycles"]}
                          for r in model["requests"]]}
    if engine == "cycle":
        for r in extra["requests"]:
            r["cycles"] = r["cycles_predicted"]
        return Report(engine="cycle", cycles=model["total"], outputs={"O": ref}, match=True, max_abs_err=0.0,
                      sim_seconds=time.perf_counter() - t0, extra=extra)
    with tempfile.TemporaryDirectory(prefix="spatten-run-") as td:
        result = Path(td) / "result.json"
        ok = run_bench(design_dir, engine, "cycles", waves=waves,
                       env={"SPATTEN_TRACE_ROWS": str(rows), "SPATTEN_MEM_LATENCY": str(mem_latency),
                            "SPATTEN_SEED": str(s), "SPATTEN_CYCLES_COVERAGE": "0", "SPATTEN_RESULT": str(result)})
        got = json.loads(result.read_text()).get(str(mem_latency)) if result.is_file() else None
    if got is None:
        return Report(engine=engine, cycles=-1, match=False, sim_seconds=time.perf_counter() - t0,
                      extra=extra | {"error": f"the {engine} bench measured nothing (a hang or a failed build)"})
    out = np.array(got["out"], dtype=np.int64)
    err = float(np.abs(out - ref).max()) if out.shape == ref.shape else float("inf")
    for r, c in zip(extra["requests"], got["cycles"]):
        r["cycles"] = c
    # match: the outputs and requant decisions; the cycles are checked against cycles_predicted by the
    # caller (a cycle mismatch alone also fails the cocotb bench, which is not an output mismatch)
    cycles_differ = got["cycles"] != model["cycles"] or got["total"] != model["total"]
    same = err == 0 and got["requant"] == [int(r["requant"]) for r in model["requests"]]
    return Report(engine=engine, cycles=int(got["total"]), outputs={"O": out}, match=same and (ok or cycles_differ),
                  max_abs_err=err, sim_seconds=time.perf_counter() - t0, extra=extra)

"""The bench of a generated DOTA directory and ``lego sim DIR``.

``run_design(dir, engine)`` runs the default jobs (an attention head Q.K^T -> softmax -> .V, a linear layer
with a GELU epilogue and, when its output has ``rtl.ln_n`` rows, with a LayerNorm epilogue) on random DAC
codes of ``seed`` (or ``--inputs``): on icarus/verilator through ``tb/tb_dota.py`` on the directory's Verilog
(every word the jobs write read back and compared with ``sw_reference.dota_fx``, the ``cycles`` register of
every job with the exact model ``rtl.cycles``), on the cycle engine the exact model and the golden outputs.
Builds are cached like the array engines' (``simulator.rtl.CACHE``, keyed by the Verilog and the toolchain).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from lego.toolchain import BuildError, run_cocotb
from simulator.report import Report
from simulator.rtl import CACHE, toolchain_id

from .config import DotaConfig
from .rtl.geometry import geometry
from .rtl.host import decode

ENGINES = ("cycle", "icarus", "verilator")
# short benches: -O0 C++ builds
VERILATOR_MAKEFLAGS = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
INPUT_NAMES = ("Q", "K", "V", "W", "X", "gamma", "beta")


def _build_dir(design_dir: Path, engine: str, waves: Path | None) -> Path:
    h = hashlib.sha256(toolchain_id(engine).encode())
    for rel in (Path(design_dir) / "files.f").read_text().split():
        h.update((Path(design_dir) / rel).read_bytes())
    if waves is not None:
        h.update(f"waves:{waves}".encode())
    return CACHE / f"{engine}-dota-{h.hexdigest()[:16]}"


def read_config(design_dir: Path) -> DotaConfig:
    p = Path(design_dir) / "config.yaml"
    if not p.is_file():
        raise LegoError(f"DIR: '{design_dir}' lacks config.yaml (regenerate the design)")
    return DotaConfig.from_yaml(p)


def run_plan(design_dir: Path, engine: str, plan: dict, waves: Path | None = None) -> tuple[bool, list]:
    """Run ``plan`` (jobs as host.Job.plan() dicts) through tb/tb_dota.py under ``engine``; (passed, results)."""
    design_dir = Path(design_dir)
    if engine not in ("icarus", "verilator"):
        raise LegoError(f"--engine: the DOTA bench runs on icarus or verilator, got '{engine}'")
    if waves is not None:
        want = ".fst" if engine == "icarus" else ".vcd"
        if Path(waves).suffix != want:
            raise LegoError(f"--waves: {engine} writes {want[1:].upper()}; name the file *{want}")
    man = json.loads((design_dir / "manifest.json").read_text())
    srcs = [design_dir / rel for rel in (design_dir / "files.f").read_text().split()]
    if not (design_dir / "tb" / "tb_dota.py").is_file():
        raise LegoError(f"DIR: '{design_dir}' lacks tb/tb_dota.py (regenerate the design)")
    bd = _build_dir(design_dir, engine, waves)
    with tempfile.TemporaryDirectory(prefix="dota-run-") as td:
        plan = dict(plan, ports=[p["name"] for p in man["ports"] if p["direction"] == "in"
                                 and p["name"] not in ("clk", "rst")])
        (Path(td) / "plan.json").write_text(json.dumps(plan))
        res = Path(td) / "result.json"
        kw = dict(engine=engine, sources=srcs, top=man["top"], test_module="tb_dota", test_dir=design_dir / "tb",
                  waves=waves, extra_env={"DOTA_PLAN": str(Path(td) / "plan.json"), "DOTA_RESULT": str(res)})
        old = os.environ.get("MAKEFLAGS")
        if engine == "verilator":
            os.environ["MAKEFLAGS"] = VERILATOR_MAKEFLAGS
        try:
            try:
                ok = run_cocotb(build_dir=bd, **kw)
            except BuildError:
                shutil.rmtree(bd, ignore_errors=True)      # a stale cached build: rebuild once
                ok = run_cocotb(build_dir=bd, **kw)
        finally:
            if engine == "verilator":
                if old is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = old
        results = json.loads(res.read_text()) if res.is_file() else []
    if waves is not None and not (engine == "icarus" and Path(waves).exists()):
        cands = sorted(bd.glob("*.vcd"), key=lambda p: p.stat().st_mtime)
        if not cands:
            raise LegoError(f"--waves: the {engine} run wrote no waveform")
        shutil.copy(cands[-1], waves)
    return ok, results


def _inputs(inputs: dict | None) -> dict | None:
    if inputs is None:
        return None
    missing = [k for k in INPUT_NAMES if k not in inputs]
    if missing:
        raise LegoError(f"--inputs: tensor '{missing[0]}' missing (needs: {', '.join(INPUT_NAMES)})")
    return {k: np.asarray(inputs[k]) for k in INPUT_NAMES}


def _outputs(jobs, decoded: list[dict]) -> dict:
    out = {}
    for job, dec in zip(jobs, decoded):
        for name, arr in dec.items():
            key = name if name != "Z" else ("Z_gelu" if job.regs["post"] == 1 else "Z_layernorm")
            out[key] = arr
    return out


def run_design(design_dir: Path, engine: str, inputs: dict | None = None, seed: int = 0,
               waves: Path | None = None) -> Report:
    """``lego sim DIR --engine E``: see the module docstring. ``match``: every word bit-exact (and, on the
    RTL, the bench passed); ``cycles``: the jobs' ``cycles`` registers summed; ``cycles_predicted``: the
    exact model's sum."""
    from .gen import default_plan
    t0 = time.perf_counter()
    design_dir = Path(design_dir)
    if engine not in ENGINES:
        raise LegoError(f"--engine: a DOTA design runs on {', '.join(ENGINES)}, got '{engine}'")
    if waves is not None and engine == "cycle":
        raise LegoError("--waves: the cycle engine has no waveforms (use --engine icarus|verilator)")
    cfg = read_config(design_dir)
    man = json.loads((design_dir / "manifest.json").read_text())
    geo = geometry(cfg)
    jobs = default_plan(cfg, geo, int(man["acc_latency"]), seed=seed, inputs=_inputs(inputs))
    predicted = sum(j.cycles for j in jobs)
    extra = {"cycles_predicted": predicted, "seed": seed,
             "jobs": [{"name": j.name, "cycles_predicted": j.cycles, "words": len(j.expected),
                       "adc_shift": [j.regs["sh0"]] + ([j.regs["sh1"]] if j.regs["kind"] == 1 else [])}
                      for j in jobs]}
    if engine == "cycle":
        golden = [{k: j.golden[k] for k in j.outputs} for j in jobs]
        for e in extra["jobs"]:
            e["cycles"] = e["cycles_predicted"]
        return Report(engine="cycle", cycles=predicted, outputs=_outputs(jobs, golden), match=True, max_abs_err=0.0,
                      sim_seconds=time.perf_counter() - t0, extra=extra)
    ok, results = run_plan(design_dir, engine, {"jobs": [j.plan() for j in jobs]}, waves)
    if len(results) != len(jobs):
        return Report(engine=engine, cycles=-1, match=False, sim_seconds=time.perf_counter() - t0,
                      extra=extra | {"error": f"the {engine} bench finished {len(results)} of {len(jobs)} jobs "
                                              "(a hang or a failed build)"})
    decoded, exact, err = [], True, 0.0
    for job, res, e in zip(jobs, results, extra["jobs"]):
        e["cycles"], e["latency"] = res["cycles"], res["latency"]
        e["words_exact"] = sum(a == b for a, b in zip(res["words"], job.expected))
        exact &= e["words_exact"] == len(job.expected)
        dec = decode(geo, job, res["words"])
        for k, arr in dec.items():
            err = max(err, float(np.abs(arr - job.golden[k]).max()) if arr.size else 0.0)
        decoded.append(dec)
    cycles = sum(r["cycles"] for r in results)
    cycles_differ = any(e["cycles"] != e["cycles_predicted"] for e in extra["jobs"])
    # match: the outputs; a cycle mismatch alone fails the cocotb bench too, and the caller compares cycles
    return Report(engine=engine, cycles=cycles, outputs=_outputs(jobs, decoded), match=exact and (ok or cycles_differ),
                  max_abs_err=err, sim_seconds=time.perf_counter() - t0, extra=extra)

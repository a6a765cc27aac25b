"""The attention design's bench: ``lego sim DIR`` on the cycle model or the RTL (cocotb), one job on
given or random Q, K, V, checked against ``sw_reference.attention.attention_fx`` (bit-exact)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lego.emit.directory import read_manifest
from lego.emit.files import host_view
from lego.errors import LegoError
from lego.host import load_words, read_words
from simulator.cycle import execute, traffic
from simulator.engine import pick_mode
from simulator.report import Report
from simulator.rtl import run_plan
from sw_reference.attention import attention_fx
from sw_reference.softmax_fx import softmax_fx

from .design import AttentionDesign, build_design, read_design


def _inputs(ad: AttentionDesign, inputs, seed: int) -> dict:
    if inputs is not None:
        return {k: np.asarray(inputs[k], np.int64) for k in ("Q", "K", "V")}
    rng = np.random.default_rng(seed)
    return {k: rng.integers(-128, 128, (ad.L, ad.D)).astype(np.int64) for k in ("Q", "K", "V")}


def _cycle(ad: AttentionDesign, mi: int, ins: dict, name: str, t0: float) -> Report:
    S = execute(ad.qk.arch, mi, {"Q": ins["Q"], "K": ins["K"]})
    P = softmax_fx(S, ad.mult, pb=15)
    O = execute(ad.pv.arch, mi, {"P": P, "V": ins["V"]})
    _, _, ref = attention_fx(ins["Q"], ins["K"], ins["V"], ad.mult)
    r1, w1 = traffic(ad.qk.arch, mi)
    r2, w2 = traffic(ad.pv.arch, mi)
    diff = np.abs(O - ref)
    return Report(engine="cycle", cycles=ad.cycles(mi), outputs={"O": O}, match=bool((diff == 0).all()),
                  max_abs_err=float(diff.max()), sram_reads={**r1, **r2}, sram_writes={**w1, **w2, "P": P.size},
                  sim_seconds=time.perf_counter() - t0, extra={"mode": name, "cycles_predicted": ad.cycles(mi)})


def run_cycle(design_dir: Path, inputs=None, seed: int = 0, mode: str | None = None) -> Report:
    t0 = time.perf_counter()
    man = read_manifest(design_dir)
    ad = read_design(design_dir)
    name, mi = pick_mode(man, mode)
    return _cycle(ad, mi, _inputs(ad, inputs, seed), name, t0)


def model_report(cfg, seed: int = 0) -> Report:
    """``lego sim --accelerator attention``: the cycle model of ``cfg`` on random inputs, first mode."""
    t0 = time.perf_counter()
    ad = build_design(cfg)
    return _cycle(ad, 0, _inputs(ad, None, seed), cfg.dataflows[0], t0)


def run_rtl(engine: str, design_dir: Path, inputs=None, seed: int = 0, waves=None, mode: str | None = None) -> Report:
    t0 = time.perf_counter()
    man = read_manifest(design_dir)
    ad = read_design(design_dir)
    name, mi = pick_mode(man, mode)
    ins = _inputs(ad, inputs, seed)
    qk, pv = host_view(ad.qk.arch), host_view(ad.pv.arch)
    loads = load_words(qk, name, {"Q": ins["Q"], "K": ins["K"]}).tolist()
    loads += [(2, b, a, v) for (t, b, a, v) in load_words(pv, name, {"V": ins["V"]}, ["V"]).tolist()]
    b, a = read_words(pv, name)
    _, _, ref = attention_fx(ins["Q"], ins["K"], ins["V"], ad.mult)
    plan = {"rd_latency": man["host"]["rd_latency"], "timeout": 4 * ad.cycles(mi) + 1000,
            "jobs": [{"mode": mi, "loads": loads, "reads": np.stack([b, a], axis=1).tolist(),
                      "expected": ref.reshape(-1).tolist(), "expected_cycles": ad.cycles(mi)}]}
    res = run_plan(Path(design_dir), engine, plan, waves)
    if not res.get("jobs"):
        raise LegoError(f"sim: {engine} run of the attention design returned no job")
    r = res["jobs"][0]
    O = np.array(r["outputs"], np.int64).reshape(ad.L, ad.D)
    diff = np.abs(O - ref)
    return Report(engine=engine, cycles=int(r["cycles"]), outputs={"O": O}, match=bool((diff == 0).all()),
                  max_abs_err=float(diff.max()), sim_seconds=time.perf_counter() - t0,
                  extra={"mode": name, "cycles_register": r["cycles_reg"], "cycles_predicted": ad.cycles(mi)})

"""Engines for the attention design: cycle model and RTL runs share the same inputs and reference."""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from sw_reference.attention import attention_fx
from sw_reference.softmax_fx import softmax_fx

from .cycle import execute, traffic
from .engine import pick_mode
from .report import Report


@lru_cache(maxsize=4)
def _design(shape, array, dataflows, bits, opt):
    from lego.attention import build_attention
    return build_attention(shape, f"{array[0]}x{array[1]}", dataflows, bits, opt)


def design_of(man: dict, design_dir: Path):
    s = man["spec"]
    ad = _design(s.get("shape"), tuple(s["array"]), tuple(s["dataflows"]), s["bits"], s["opt"])
    if [ad.cycles(i) for i in range(len(s["dataflows"]))] != [man["cycles_predicted"][n] for n in s["dataflows"]]:
        raise LegoError(f"sim: design in '{design_dir}' does not match this lego version (cycles differ)")
    return ad


def _inputs(ad, inputs, seed):
    if inputs is not None:
        return {k: np.asarray(inputs[k], np.int64) for k in ("Q", "K", "V")}
    rng = np.random.default_rng(seed)
    return {k: rng.integers(-128, 128, (ad.L, ad.D)).astype(np.int64) for k in ("Q", "K", "V")}


def run_cycle(design_dir: Path, man: dict, inputs=None, seed: int = 0, mode: str | None = None) -> Report:
    t0 = time.perf_counter()
    ad = design_of(man, design_dir)
    name, mi = pick_mode(man, mode)
    ins = _inputs(ad, inputs, seed)
    S = execute(ad.qk.arch, mi, {"Q": ins["Q"], "K": ins["K"]})
    P = softmax_fx(S, ad.mult, pb=15)
    O = execute(ad.pv.arch, mi, {"P": P, "V": ins["V"]})
    _, _, ref = attention_fx(ins["Q"], ins["K"], ins["V"], ad.mult)
    r1, w1 = traffic(ad.qk.arch, mi)
    r2, w2 = traffic(ad.pv.arch, mi)
    diff = np.abs(O - ref)
    return Report(engine="cycle", cycles=ad.cycles(mi), outputs={"O": O}, match=bool((diff == 0).all()),
                  max_abs_err=float(diff.max()), sram_reads={**r1, **r2}, sram_writes={**w1, **w2, "P": P.size},
                  sim_seconds=time.perf_counter() - t0, extra={"mode": name})


def run_rtl(engine: str, design_dir: Path, man: dict, inputs=None, seed: int = 0, waves=None,
            mode: str | None = None) -> Report:
    from lego.emit.files import host_view
    from lego.host import load_words, read_words
    from .rtl import run_plan

    t0 = time.perf_counter()
    ad = design_of(man, design_dir)
    name, mi = pick_mode(man, mode)
    ins = _inputs(ad, inputs, seed)
    qk, pv = host_view(ad.qk.arch), host_view(ad.pv.arch)
    loads = load_words(qk, name, {"Q": ins["Q"], "K": ins["K"]}).tolist()
    loads += [(2, b, a, v) for (t, b, a, v) in load_words(pv, name, {"V": ins["V"]}, ["V"]).tolist()]
    b, a = read_words(pv, name)
    plan = {"rd_latency": 0, "mode": mi, "loads": loads, "reads": list(zip(b.tolist(), a.tolist())), "expected": None,
            "expected_cycles": None, "timeout": 4 * ad.cycles(mi) + 1000}
    res = run_plan(Path(design_dir), engine, plan, waves)["jobs"][0]
    O = np.array(res["outputs"], np.int64).reshape(ad.L, ad.D)
    _, _, ref = attention_fx(ins["Q"], ins["K"], ins["V"], ad.mult)
    diff = np.abs(O - ref)
    return Report(engine=engine, cycles=int(res["cycles"]), outputs={"O": O}, match=bool((diff == 0).all()),
                  max_abs_err=float(diff.max()), sim_seconds=time.perf_counter() - t0,
                  extra={"mode": name, "cycles_register": res["cycles_reg"], "cycles_predicted": ad.cycles(mi)})

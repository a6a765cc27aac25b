"""DOTA RTL generator: ``build_files(cfg)`` -> the ``Build`` that ``Accelerator.generate`` hands to the shared
directory writer (``lego_dota.v``, ``files.f``, ``manifest.json``, ``report.json``, ``lint.vlt``,
``lego_dota.core``, ``config.yaml`` and ``tb/``). The design is ``rtl.top.DotaTop`` (docs/dota.md, "RTL");
``periphery_verilog`` emits the same periphery without the twins (what ``periphery.py`` synthesizes).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..base import Build
from .config import DotaConfig
from .rtl import host
from .rtl.geometry import BETA_BITS, GAMMA_BITS, Geometry, geometry
from .rtl.top import PERIPHERY_TOP, TOP, DotaTop

TB_DIR = Path(__file__).resolve().parent / "tb"


def port_doc(top: DotaTop) -> list[dict]:
    dirs = top.port_dirs()
    return ([{"name": "clk", "direction": "in", "width": 1, "signed": False},
             {"name": "rst", "direction": "in", "width": 1, "signed": False}]
            + [{"name": s.name, "direction": dirs[s.name], "width": len(s), "signed": False} for s in top.ports()])


def emit(geo: Geometry, twin: bool = True) -> tuple[str, DotaTop]:
    """Verilog of the design (``twin``) or of its periphery alone."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from lego.generate import to_verilog
    top = DotaTop(geo, twin=twin)
    return to_verilog(top, TOP if twin else PERIPHERY_TOP), top


def tensors(cfg: DotaConfig, geo: Geometry) -> dict:
    r = cfg.rtl
    B, L, dh = geo.B, geo.L, r.head_dim
    n1, d, n2 = r.linear_n1, r.linear_d, r.linear_n2

    def t(shape, bits, role, unsigned=False, **kw):
        return {"shape": list(shape), "dtype": f"{'u' if unsigned else ''}int{bits}", "bits": bits, "role": role, **kw}

    return {
        "Q": t((L, dh), B, "input"), "K": t((L, dh), B, "input"), "V": t((L, dh), B, "input"),
        "W": t((n1, d), B, "input", note="M1 of the linear layer (weights, out x in)"),
        "X": t((d, n2), B, "input", note="M2 of the linear layer (activations, in x tokens)"),
        "gamma": t((geo.ln_n,), 8, "input", note=f"LayerNorm gamma, {geo.ln_gamma_frac} fraction bits"),
        "beta": t((geo.ln_n,), 24, "input", note=f"LayerNorm beta, {geo.ln_frac + geo.ln_gamma_frac} fraction bits"),
        "O": t((L, dh), geo.ACC, "output", note="attention output: sum of ADC codes of P.V"),
        "Pc": t((L, L), B, "output", unsigned=True, note="P as unsigned DAC codes (the M1 of P.V)"),
        "Y": t((n1, n2), geo.ACC, "output", note="linear output: sum of ADC codes"),
        "Z_gelu": t((n1, n2), B, "output", note="GELU(Y) as the next layer's DAC codes"),
        "Z_layernorm": t((n1, n2), B, "output", note="LayerNorm of Y's columns as DAC codes (n1 = ln_n)"),
    }


def default_plan(cfg: DotaConfig, geo: Geometry, acc_latency: int, seed: int = 0, inputs: dict | None = None):
    """The jobs ``lego sim DIR`` runs (host.default_jobs) on default or given inputs."""
    r = cfg.rtl
    ins = inputs if inputs is not None else host.default_inputs(geo, r.head_dim, (r.linear_n1, r.linear_d, r.linear_n2),
                                                                seed)
    return host.default_jobs(geo, ins, acc_latency)


def build_files(cfg: DotaConfig) -> Build:
    geo = geometry(cfg)
    text, top = emit(geo)
    jobs = default_plan(cfg, geo, top.acc_latency)
    acc = top.acc[0]
    d = acc.design
    accum = {"workload": "ACC[r, w] += CODE[k, r, w] * V[k]", "stream": "k", "array": [geo.NH, geo.NW],
             "latency": top.acc_latency, "registers": {"lp_bits": d.lp_bits, "naive_bits": d.naive_bits},
             "passes": list(d.pg.passes), "per_tile": 1}
    manifest = {
        "workload": "dota",
        "shape": {"L": geo.L, "head_dim": cfg.rtl.head_dim, "linear": [cfg.rtl.linear_n1, cfg.rtl.linear_d,
                                                                        cfg.rtl.linear_n2], "ln_n": geo.ln_n},
        "dataflows": [],
        "array": [geo.NH, geo.NW],
        "bits": {"dac": geo.B, "adc": geo.A, "acc": geo.ACC},
        "ports": port_doc(top),
        "tensors": tensors(cfg, geo),
        "modes": {},
        "geometry": geo.to_dict(),
        "accumulator": accum,
        "acc_latency": top.acc_latency,
        "jobs": [j.name for j in jobs],
        "cycles_predicted": sum(j.cycles for j in jobs),
        "cycles_per_job": {j.name: j.cycles for j in jobs},
        "host": {"reset": {"polarity": "high", "synchronous": True, "min_cycles": 1}, "rd_latency": 1,
                 "ld_latency": 1, "ld_sel": {"M1": 0, "M2": 1, "LN": 2}, "rd_sel": {"Y": 0, "M1": 1, "M2": 2},
                 "kind": {"linear": 0, "attention": 1}, "post": {"none": 0, "gelu": 1, "layernorm": 2}},
        "config": cfg.to_dict(),
        "sw_reference": "sw_reference.dota_fx",
        "synth": {"blackbox": [f"{TOP}.twin{t}" for t in range(geo.T)],
                  "reason": "photonic-core twins: the analog macro's simulation model, not logic to build"},
    }
    report = {"geometry": geo.to_dict(), "accumulator": accum,
              "units": {"softmax": {"L": geo.L, "mult": geo.softmax_mult}, "layernorm": {"N": geo.ln_n, **geo.ln},
                        "gelu": dict(zip(("c", "g", "mult", "shift"), geo.gelu))},
              "buffers_bits": buffer_bits(geo),
              "cycles": {"predicted": manifest["cycles_predicted"], "per_job": manifest["cycles_per_job"]}}
    tb = {f.name: f.read_text() for f in sorted(TB_DIR.glob("*.py"))}
    return Build(top=TOP, sources={f"{TOP}.v": text}, manifest=manifest, report=report, tb=tb,
                 extra={"config.yaml": cfg.to_yaml_text()},
                 summary=f"dota RTL, top {TOP}, {geo.T} tiles x {geo.C} cores of {geo.NH}x{geo.NW}x{geo.NL}, "
                         f"{geo.B}-bit DAC / {geo.A}-bit ADC")


def buffer_bits(geo: Geometry) -> dict:
    """Bits of every memory of the design: the buffers, the units' row buffers (RAM) and the softmax's
    exp2 table (ROM). Their sum is what Yosys reports as memory bits."""
    return {"m1_local": geo.T * geo.C * geo.NH * max(geo.M1_DEPTH, 2) * geo.WORD,
            "m2_local": geo.C * geo.NW * max(geo.M2_DEPTH, 2) * geo.WORD,
            "output": geo.T * geo.NH * max(geo.OB_DEPTH, 2) * geo.NW * geo.ACC,
            "layernorm_params": max(geo.ln_n, 2) * (GAMMA_BITS + BETA_BITS),
            "softmax_row": max(geo.L, 2) * max(geo.ACC, 17),
            "layernorm_row": max(geo.ln_n, 2) * (geo.ACC + GAMMA_BITS + BETA_BITS),
            "softmax_exp2_rom": 256 * 17}


def ram_bits(geo: Geometry) -> int:
    """Memory bits that are RAM (written at run time): all but the softmax's ROM."""
    return sum(v for k, v in buffer_bits(geo).items() if not k.endswith("_rom"))


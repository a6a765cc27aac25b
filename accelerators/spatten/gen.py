"""SpAtten RTL generator: ``generate(cfg, out_dir)`` writes spatten_top.v, files.f, manifest.json, lint.vlt
and tb/ into an existing empty directory.

``spatten_top`` is the per-query pipeline (units/pipeline.py): K MSB stream -> K fetcher -> Q.K
(``DotProduct``, the stand-in for the lego-generated datapath; same port contract) -> softmax (exp LUT +
reciprocal) -> requant decision [-> K LSB stream and recompute] -> token importance -> quick-select top-k
-> V stream of the selected rows -> P.V. Its K/V memories are outside (request/response ports).

``tb/spatten_units.v`` (top ``spatten_units``) is the unit benches' harness: every unit side by side,
each unit's ports brought out with the unit's name as prefix (``topk_start``, ``softmax_in_score``, ...):
  qk DotProduct, kfetch/vfetch KVFetcher, softmax Softmax, requant RequantDecision, topk TopKEngine,
  pv PVAccumulator, tokimp/headimp ImportanceAccumulator.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from amaranth import Elaboratable, Module, Signal

from lego.errors import LegoError

from .config import SpAttenConfig
from .units.datapath import DotProduct, ImportanceAccumulator, KVFetcher, PVAccumulator, RequantDecision
from .units.softmax import Softmax
from .units.pipeline import QueryPipeline
from .units.topk import TopKEngine

TOP = "spatten_top"
UNITS_TOP = "spatten_units"
REPO = Path(__file__).resolve().parents[2]
TB_DIR = Path(__file__).resolve().parent / "tb"

LINT_VLT = """`verilator_config
// Waivers for Amaranth/Yosys backend artifacts only; widths in the hand-written logic are explicit.
// DECLFILENAME: Amaranth names submodules '<top>.<inst>' in one file; the file is named after the top.
lint_off -rule DECLFILENAME
// UNUSEDSIGNAL: the backend keeps unused slices of internal nets (bit-select temporaries, FSM debug names).
lint_off -rule UNUSEDSIGNAL
// WIDTHEXPAND/WIDTHTRUNC: Yosys's write_verilog emits zero-extension of internal $add/$mul/$eq cells
// implicitly in mixed-width expressions it generates itself.
lint_off -rule WIDTHEXPAND
lint_off -rule WIDTHTRUNC
// CASEINCOMPLETE: the backend's FSM and mux case statements rely on the preceding default assignment.
lint_off -rule CASEINCOMPLETE
// PROCASSINIT: the backend initializes registers in their declarations and assigns them in processes.
lint_off -rule PROCASSINIT
"""


def small_config() -> SpAttenConfig:
    """Small config for fast RTL benches (D = 8, top-k capacity 64)."""
    return SpAttenConfig(name="rtl-test", head_dim=8, qk_multipliers=8, pv_multipliers=8, buffer_lines=64,
                         topk_max_n=64)


def units(cfg: SpAttenConfig) -> dict:
    n = cfg.topk_max_n
    acc = cfg.prob_bits + cfg.kv_bits + n.bit_length() + 1
    return {
        "qk": DotProduct(cfg.head_dim, cfg.q_bits, cfg.kv_bits),
        "kfetch": KVFetcher(cfg.head_dim, cfg.kv_bits, cfg.kv_msb_bits),
        "vfetch": KVFetcher(cfg.head_dim, cfg.kv_bits, cfg.kv_msb_bits),
        "softmax": Softmax(cfg, n),
        "requant": RequantDecision(cfg.prob_bits),
        "topk": TopKEngine(cfg.topk_parallelism, cfg.prob_bits, n),
        "pv": PVAccumulator(cfg.head_dim, cfg.prob_bits, cfg.kv_bits, acc),
        "tokimp": ImportanceAccumulator(n, cfg.prob_bits, cfg.importance_bits),
        "headimp": ImportanceAccumulator(64, cfg.prob_bits, cfg.importance_bits),
    }


class _Wrapper(Elaboratable):
    """Brings the ports of named units out as top-level ports called '<prefix><port>'."""

    def __init__(self, cfg: SpAttenConfig, named_units: dict, prefix: bool):
        self.cfg = cfg
        self.units = named_units
        self.port_list: list[tuple[Signal, str]] = []
        self._links = []
        for uname, u in self.units.items():
            for sig, d in u.io():
                top = Signal(sig.shape(), name=f"{uname}_{sig.name}" if prefix else sig.name)
                self.port_list.append((top, d))
                self._links.append((top, sig, d))

    def elaborate(self, platform):
        m = Module()
        for uname, u in self.units.items():
            m.submodules[uname] = u
        for top, sig, d in self._links:
            m.d.comb += (sig.eq(top) if d == "i" else top.eq(sig))
        return m


def emit_verilog(cfg: SpAttenConfig, which: str = "top") -> tuple[str, list[dict], dict]:
    """which='top': spatten_top (the query pipeline); which='units': spatten_units (every unit side by
    side, ports prefixed with the unit name; the unit benches' harness)."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth.back import verilog
    if which == "top":
        top = _Wrapper(cfg, {"pipe": QueryPipeline(cfg, cfg.topk_max_n)}, prefix=False)
    else:
        top = _Wrapper(cfg, units(cfg), prefix=True)
    name = TOP if which == "top" else UNITS_TOP
    text = verilog.convert(top, name=name, ports=[s for s, _ in top.port_list], emit_src=False)
    ports = [{"name": s.name, "direction": "input" if d == "i" else "output", "width": len(s),
              "signed": s.shape().signed} for s, d in top.port_list]
    ports = [{"name": "clk", "direction": "input", "width": 1, "signed": False},
             {"name": "rst", "direction": "input", "width": 1, "signed": False}] + ports
    return text, ports, {name: type(x).__name__ for name, x in top.units.items()}


def generate(cfg: SpAttenConfig, out_dir: Path) -> dict:
    out = Path(out_dir)
    if not out.is_dir():
        raise LegoError(f"--out: '{out}' is not an existing directory")
    if any(out.iterdir()):
        raise LegoError(f"--out: '{out}' is not empty")
    if cfg.topk_max_n > 4096:
        raise LegoError(f"topk_max_n: at most 4096 for generated RTL (registers), got {cfg.topk_max_n}")
    text, ports, _ = emit_verilog(cfg, "top")
    (out / f"{TOP}.v").write_text(text)
    (out / "files.f").write_text(f"{TOP}.v\n")
    (out / "lint.vlt").write_text(LINT_VLT)
    cfg.to_yaml(out / "config.yaml")
    tb = out / "tb"
    tb.mkdir()
    for f in sorted(TB_DIR.glob("*.py")):
        shutil.copy(f, tb / f.name)
    utext, _, unit_types = emit_verilog(cfg, "units")
    (tb / f"{UNITS_TOP}.v").write_text(utext)
    manifest = {
        "top": TOP,
        "accelerator": "spatten",
        "workload": "spatten",
        "shape": {"D": cfg.head_dim, "max_n": cfg.topk_max_n},
        "dataflows": [],
        "array": [cfg.qk_multipliers, cfg.pv_multipliers],
        "bits": {"q": cfg.q_bits, "kv": cfg.kv_bits, "kv_msb": cfg.kv_msb_bits, "prob": cfg.prob_bits,
                 "importance": cfg.importance_bits, "score": cfg.score_bits},
        "ports": ports,
        "tensors": {
            "Q": {"shape": [cfg.head_dim], "dtype": f"int{cfg.q_bits}", "role": "input"},
            "K": {"shape": ["n", cfg.head_dim], "dtype": f"int{cfg.kv_bits}", "role": "input",
                  "layout": f"MSB int{cfg.kv_msb_bits} | LSB uint{cfg.kv_lsb_bits}"},
            "V": {"shape": ["n", cfg.head_dim], "dtype": f"int{cfg.kv_bits}", "role": "input"},
            "P": {"shape": ["n"], "dtype": f"uint{cfg.prob_bits}", "role": "output",
                  "scale": f"2**-{cfg.prob_bits}"},
        },
        "modes": {},
        "units": unit_types,
        "datapath_plugin": {"unit": "qk", "contract": "DotProduct ports/latency (units/datapath.py)",
                            "latency": DotProduct.LATENCY},
        "config": cfg.to_dict(),
        "lego_version": __import__("lego").__version__,
        "sw_reference": "sw_reference.spatten",
        "repo": str(REPO),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest

"""The contents of a design directory: Verilog, manifest, report, files.f, .core, lint.vlt, tb/."""
from __future__ import annotations

import os
from pathlib import Path

from .. import __version__
from ..design import ArrayDesign, GenSpec
from ..host import layout_doc
from .outdir import dumps

LINT_VLT = """`verilator_config
// Waivers for artifacts of Amaranth's Verilog backend only (see docs/toolchain.md).
// WIDTHEXPAND: Amaranth prints operands of `+`, `*`, `==` and Mux() at their declared (minimal)
//   widths and relies on Verilog's context extension; the values are exact.
lint_off -rule WIDTHEXPAND
// WIDTHTRUNC, only for `x == 0`, which Amaranth prints as `!x` on a multi-bit x. Any other
//   truncation stays a warning (the generator sizes every signal explicitly).
lint_off -rule WIDTHTRUNC -file "*" -match "Logical operator LOGNOT*"
// UNUSEDSIGNAL: Amaranth keeps debug aliases and unused slices of the control word.
lint_off -rule UNUSEDSIGNAL
// PROCASSINIT: Amaranth initializes registers both at declaration and in the reset process.
lint_off -rule PROCASSINIT
// UNSIGNED: `x >= 0` comparisons on unsigned counters emitted by bound checks that Amaranth keeps.
lint_off -rule UNSIGNED
// DECLFILENAME: all modules of a design live in one file named after the top.
lint_off -rule DECLFILENAME
// CASEINCOMPLETE: Amaranth emits FSM/Switch case statements without a default; every signal is
//   assigned its default before the case, so unmatched values hold that default (no latch).
lint_off -rule CASEINCOMPLETE
"""

CORE = """CAPI=2:
name: lego:generated:{top}:{version}
description: {desc}
filesets:
  rtl:
    files:
      - {top}.v
    file_type: verilogSource
  lint:
    files:
      - lint.vlt: {{file_type: vlt}}
targets:
  default:
    filesets: [rtl]
    toplevel: {top}
  lint:
    default_tool: verilator
    filesets: [rtl, lint]
    toplevel: {top}
    tools:
      verilator:
        mode: lint-only
        verilator_options: [-Wall]
"""

TB_RUN = '''"""Standalone cocotb run of this design against sw_reference (random inputs).

    python tb/run.py [--engine icarus|verilator] [--seed N] [--mode DATAFLOW]
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="icarus", choices=["icarus", "verilator"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mode", default=None)
    a = ap.parse_args(argv)
    from simulator.engine import get_engine
    rep = get_engine(a.engine).run(HERE.parent, mode=a.mode, seed=a.seed)
    print(f"{'PASS' if rep.match else 'FAIL'}: {a.engine} cycles={rep.cycles} max_abs_err={rep.max_abs_err}")
    return 0 if rep.match else 1


if __name__ == "__main__":
    sys.exit(main())
'''

TB_TEST = '''"""pytest entry: python -m pytest DIR/tb"""
import json
from pathlib import Path

import pytest

from run import main

MODES = json.loads((Path(__file__).resolve().parent.parent / "manifest.json").read_text())["modes"]


@pytest.mark.parametrize("engine", ["icarus", "verilator"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_design(engine, mode):
    assert main(["--engine", engine, "--mode", mode, "--seed", "3"]) == 0
'''


def port_list(top) -> list[dict]:
    out = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    ins = {"start", "mode", "ld_en", "ld_tensor", "ld_bank", "ld_addr", "ld_data", "rd_bank", "rd_addr"}
    for s in top.ports():
        out.append({"name": s.name, "direction": "in" if s.name in ins else "out", "width": len(s)})
    return out


def manifest(spec: GenSpec, d: ArrayDesign, top_name: str, top, extra: dict | None = None) -> dict:
    w = d.workload
    tensors = {t.name: {"shape": list(t.shape), "dtype": t.dtype, "role": t.role, "bits": t.bits}
               for t in w.tensors}
    m = {
        "top": top_name,
        "workload": spec.workload if not os.path.sep in spec.workload else Path(spec.workload).name,
        "shape": w.shape_dict,
        "dataflows": [md.df.name for md in d.arch.modes],
        "array": list(d.arch.P),
        "bits": spec.bits,
        "opt": spec.opt,
        "ports": port_list(top),
        "tensors": tensors,
        "modes": {md.df.name: md.index for md in d.arch.modes},
        "lego_version": __version__,
        "layouts": layout_doc(d.arch),
        "cycles_predicted": {md.df.name: c for md, c in zip(d.arch.modes, d.cycles)},
        "host_protocol": "load inputs with ld_* (one word per cycle, per manifest.layouts of the chosen mode), "
                         "set mode, pulse start, wait for done, read outputs with rd_bank/rd_addr",
    }
    if extra:
        m.update(extra)
    return m


def report(d: ArrayDesign) -> dict:
    a = d.arch
    return {
        "fus": len(a.fus),
        "array": list(a.P),
        "links": a.link_counts(),
        "memory": {"banks": {t.name: a.banks(t.name)[0] for t in a.workload.tensors},
                   "depth": {t.name: a.banks(t.name)[1] for t in a.workload.tensors},
                   "replicated": {t.name: any(m.nets[t.name].layout.replicated for m in a.modes)
                                  for t in a.workload.tensors}},
        "mux_inputs": a.mux_inputs(),
        "registers": {"naive_bits": d.naive_bits, "lp_bits": d.lp_bits,
                      "emitted_bits": d.pg.register_bits()},
        "lp": {k: d.lp_stats.get(k) for k in ("variables", "constraints", "solve_seconds", "timing_rows", "solver")},
        "cycles": {"predicted": {m.df.name: c for m, c in zip(a.modes, d.cycles)},
                   "steps": {m.df.name: m.df.steps for m in a.modes},
                   "fill_drain": {m.df.name: c - m.df.steps for m, c in zip(a.modes, d.cycles)}},
        "macs": a.workload.macs,
        "passes": list(d.pg.passes),
        "primitives": d.pg.stats(),
    }


def tb_files() -> dict[str, str]:
    here = Path(__file__).resolve().parent
    return {"tb/lego_bench.py": (here / "cocotb_bench.py").read_text(), "tb/run.py": TB_RUN,
            "tb/test_design.py": TB_TEST}


def common_files(top_name: str, desc: str) -> dict[str, str]:
    return {"files.f": f"{top_name}.v\n", f"{top_name}.core": CORE.format(top=top_name, version=__version__,
                                                                            desc=desc),
            "lint.vlt": LINT_VLT}


__all__ = ["manifest", "report", "tb_files", "common_files", "dumps", "port_list"]

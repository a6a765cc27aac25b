"""The contents of a design directory: Verilog, manifest, report, files.f, .core, lint.vlt, tb/."""
from __future__ import annotations

import os
from pathlib import Path

from ..affine.widths import terms_per_output
from ..design import ArrayDesign, GenSpec
from . import fusesoc

LINT_VLT = """`verilator_config
// Waivers for artifacts of the Amaranth/Yosys Verilog backend only (see docs/toolchain.md), each narrowed
// with -match to the message text that backend produces (a glob: * and ?). A message that names a signal
// of the generator (a VARREF 'name' operand, unused bits of a named signal, any assignment, UNSIGNED)
// is not waived: it comes from generator logic and stays a warning. One exception, the host address ports
// (last waiver below).
// Amaranth's `a OP b` is exact and printed with the narrower operand at its own width; here a constant:
lint_off -rule WIDTHEXPAND -file "*" -match "Operator * expects * bits on the ?HS, but ?HS's CONST '*' generates * bits."
// ... a signed operand, printed as $signed(x) (Verilog sign-extends it, as Amaranth does):
lint_off -rule WIDTHEXPAND -file "*" -match "Operator * expects * bits on the ?HS, but ?HS's SIGNED generates * bits."
// ... a Yosys temporary $N, the exact-width result of an inner operation:
lint_off -rule WIDTHEXPAND -file "*" -match "Operator * expects * bits on the ?HS, but ?HS's VARREF '$*' generates * bits."
// `x == 0` on a multi-bit x is printed as `!x` (exact); any other truncation stays a warning:
lint_off -rule WIDTHTRUNC -file "*" -match "Logical operator LOGNOT expects 1 bit on the LHS, but LHS's * generates * bits."
// Amaranth declares each named signal as a debug-alias wire; its readers use the driving net instead:
lint_off -rule UNUSEDSIGNAL -file "*" -match "Signal is not used: '*'"
// Yosys temporaries $N are exact-width results of which a slice is used:
lint_off -rule UNUSEDSIGNAL -file "*" -match "Bits of signal are not used: '$*'[*]"
// write_verilog (and lego/prog/array_text.py, likewise) puts a register's init value on its declaration and
// assigns it in the clocked process:
lint_off -rule PROCASSINIT -file "*" -match "Procedural assignment to declaration with initial value: '*'"
// the FU-type modules lego_<top>_fuN (emit/hier.py, lego/prog/hier.py) and the programmable array's instance
// level lego_<top>_fu_array (lego/prog/array_text.py) live in the top's single file:
lint_off -rule DECLFILENAME -file "*" -match "Filename 'lego_*' does not match MODULE name: 'lego_*_fu*'"
// Amaranth's submodules (lego_<top>.<name>, e.g. the softmax unit) live in the top's single file:
lint_off -rule DECLFILENAME -file "*" -match "Filename 'lego_*' does not match MODULE name: 'lego_*.*'"
// write_verilog's casez of a Switch/FSM has no default; every target gets its default before it (no latch):
lint_off -rule CASEINCOMPLETE -file "*" -match "Case values incompletely covered (example pattern 0x*)"
// the host address ports ld_addr/rd_addr have one width, that of the deepest bank (manifest.ports); a bank
// with fewer words ignores the upper address bits, as the host addresses it within its depth (manifest.layouts):
lint_off -rule UNUSEDSIGNAL -file "*" -match "Bits of signal are not used: '?d_addr'[*]"
"""

TB_RUN = '''"""Standalone cocotb run of this design against its golden model (random inputs); needs lego
installed (pip install lego-hw, or the repository's .venv) and imports only its public API, lego.api.

    python tb/run.py [--engine icarus|verilator|cycle] [--seed N] [--mode DATAFLOW]
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="icarus", help="a registered engine (default icarus)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random inputs")
    ap.add_argument("--mode", default=None, help="dataflow of a fused design (default: the first)")
    a = ap.parse_args(argv)
    try:
        from lego.api import simulate
    except ImportError:
        sys.exit("tb/run.py needs lego installed in this interpreter (pip install lego-hw); "
                 "tb/run_plain.sh needs only numpy and Icarus")
    rep = simulate(HERE.parent, a.engine, mode=a.mode, seed=a.seed)
    ok = bool(rep.match) and rep.extra.get("cycles_predicted", rep.cycles) == rep.cycles
    print(f"{'PASS' if ok else 'FAIL'}: {a.engine} cycles={rep.cycles} max_abs_err={rep.max_abs_err}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
'''

TB_TEST = '''"""pytest entry: python -m pytest DIR/tb"""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import main  # noqa: E402

MODES = json.loads((Path(__file__).resolve().parent.parent / "manifest.json").read_text())["modes"] or {None: 0}


@pytest.mark.parametrize("engine", ["icarus", "verilator"])
@pytest.mark.parametrize("mode", sorted(MODES, key=str))
def test_design(engine, mode):
    assert main(["--engine", engine, "--seed", "3"] + (["--mode", mode] if mode else [])) == 0
'''



def layout_doc(arch) -> dict:
    """manifest.layouts: mode -> tensor -> layout (``Layout.doc``)."""
    return {m.df.name: {name: net.layout.doc() for name, net in m.nets.items()} for m in arch.modes}


def host_view(arch) -> dict:
    """The part of a manifest that ``lego.host`` reads (tensors, modes, ld_tensor, layouts) for one array."""
    w = arch.workload
    return {"tensors": {t.name: {"shape": list(t.shape), "dtype": t.dtype, "role": t.role, "bits": t.bits}
                        for t in w.tensors},
            "dataflows": [m.df.name for m in arch.modes], "modes": {m.df.name: m.index for m in arch.modes},
            "ld_tensor": {t.name: i for i, t in enumerate(w.inputs)}, "layouts": layout_doc(arch)}


def loop_nest(w) -> dict:
    """manifest.loop_nest: the workload as the user format writes it (index expressions as text)."""
    return {"iterators": list(w.iterators), "extents": list(w.extents), "body": w.body,
            "index": {t.name: [a.render(w.iterators) for a in t.index] for t in w.tensors},
            "pad": {t.name: t.pad for t in w.inputs}}


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
        "workload": spec.workload if not os.path.sep in spec.workload else Path(spec.workload).name,
        "shape": w.shape_dict,
        "dataflows": [md.df.name for md in d.arch.modes],
        "array": list(d.arch.P),
        "bits": spec.bits,
        "opt": spec.opt,
        "ports": port_list(top),
        "tensors": tensors,
        "modes": {md.df.name: md.index for md in d.arch.modes},
        "layouts": layout_doc(d.arch),
        "cycles_predicted": {md.df.name: c for md, c in zip(d.arch.modes, d.cycles)},
        "ld_tensor": {t.name: i for i, t in enumerate(w.inputs)},
        "loop_nest": loop_nest(w),
        "host": {"reset": {"polarity": "high", "synchronous": True, "min_cycles": 1},
                 "rd_latency": 1, "ld_latency": 1},
        "host_protocol": "docs/host_protocol.md: load inputs with ld_* (one word per cycle, ld_tensor per "
                         "manifest.ld_tensor, bank and address per manifest.layouts of the run's mode), set "
                         "mode, pulse start, wait for done, read outputs with rd_bank/rd_addr (rd_data "
                         "one cycle later, manifest.host.rd_latency)",
    }
    if extra:
        m.update(extra)
    m["top"] = top_name
    return m


def report(d: ArrayDesign, emitted_bits: int | None = None) -> dict:
    """report.json of one array; ``emitted_bits``: the delay-register bits of the elaborated core
    (``ArrayCore.emitted_bits``; below the LP's count where control-word fields go unread)."""
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
        "widths": {"acc_bits": d.pg.acc_bits, "output_bits": a.workload.output.bits,
                   "terms_per_output": terms_per_output(a.workload)},
        "registers": {"naive_bits": d.naive_bits, "lp_bits": d.lp_bits,
                      "emitted_bits": d.pg.register_bits() if emitted_bits is None else emitted_bits},
        "lp": {k: d.lp_stats.get(k) for k in ("variables", "constraints", "solve_seconds", "timing_rows", "solver")},
        "cycles": {"predicted": {m.df.name: c for m, c in zip(a.modes, d.cycles)},
                   "steps": {m.df.name: m.df.steps for m in a.modes},
                   "fill_drain": {m.df.name: c - m.df.steps for m, c in zip(a.modes, d.cycles)}},
        "macs": a.workload.macs,
        "passes": list(d.pg.passes),
        "primitives": d.pg.stats(),
    }


def tb_files(man: dict | None = None) -> dict[str, str]:
    """tb/: the cocotb bench and its runners; with an array's manifest, also the plain Verilog testbench
    and its vector writer (``lego.host``, numpy only)."""
    from .. import host
    from .verilog_tb import plain_tb

    here = Path(__file__).resolve().parent
    out = {"tb/lego_bench.py": (here / "cocotb_bench.py").read_text(), "tb/run.py": TB_RUN,
           "tb/test_design.py": TB_TEST}
    if man is not None:
        timeout = 10 * max(man["cycles_predicted"].values()) + 1000
        out.update(plain_tb(man["top"], man["ports"], man["host"]["rd_latency"], timeout))
        out["tb/lego_host.py"] = Path(host.__file__).read_text()
        vectors = fusesoc.default_vectors(man)        # the FuseSoC sim target's default command file
        if vectors is not None:
            out["tb/vectors.txt"] = vectors
    return out


__all__ = ["manifest", "report", "tb_files", "port_list", "layout_doc", "loop_nest", "host_view", "LINT_VLT"]

"""Synthesize DOTA's digital periphery and store the figures the model reads (``periphery: synth``).

    .venv/bin/python bench/dota_periphery.py [--only KEY]   # -> accelerators/dota/data/periphery_synth.json,
                                                            #    bench/results/dota_periphery.json

For every preset geometry (12x12 nodes, 12 wavelengths, 2 cores; 4 and 8 bits; ``arch`` all: tau 3 with
input and ADC sharing, and crossbar: tau 1 without them) it generates ``lego_dota_periphery`` (the RTL with
the photonic twins replaced by ports: only digital logic), at 1 and 2 tiles, checks it with
``verilator --lint-only -Wall`` (lego's waivers only) and synthesizes it with ``lego synth`` (generic Yosys).
Per tile = P(2 tiles) - P(1 tile); shared = P(1) - per tile. Capacities are the smallest that hold one word
per bank and step (L = ln_n = 12, max_n1 = max_n2 = 12, max_d = 24): capacities change the memory bits,
not the logic beyond a few counter bits. Area and energy rules: accelerators/dota/periphery.py.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from _common import ROOT, save, table

from accelerators.dota import load_config
from accelerators.dota.gen import buffer_bits, emit, port_doc, ram_bits
from accelerators.dota.periphery import DATA_FILE, config_key
from accelerators.dota.rtl.geometry import geometry
from accelerators.dota.rtl.top import PERIPHERY_TOP
from lego.emit.files import LINT_VLT
from lego.synth import gate_equivalents, synth
from lego.toolchain import require
from simulator import energy as E

SIZES = dict(tokens=12, head_dim=12, max_n1=12, max_d=24, max_n2=12, ln_n=12, linear_n1=12, linear_d=24,
             linear_n2=12)
POINTS = [(p, bits, arch) for p in ("dota-b",) for arch in ("all", "crossbar") for bits in (4, 8)]
FF_RE = re.compile(r"^\$_(DFF|DFFE|SDFF|SDFFE|SDFFCE|DFFSR|DFFSRE|ALDFF|ALDFFE)_")


def write_dir(root: Path, text: str, top, name: str) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / f"{PERIPHERY_TOP}.v").write_text(text)
    (d / "files.f").write_text(f"{PERIPHERY_TOP}.v\n")
    (d / "lint.vlt").write_text(LINT_VLT)
    (d / "manifest.json").write_text(json.dumps({"top": PERIPHERY_TOP, "ports": port_doc(top)}))
    return d


def lint(d: Path) -> int:
    r = subprocess.run([require("verilator"), "--lint-only", "-Wall", "lint.vlt", "-f", "files.f", "--top-module",
                        PERIPHERY_TOP], cwd=d, capture_output=True, text=True)
    return r.stderr.count("%Warning") + (r.returncode != 0 and "%Warning" not in r.stderr)


def adder8_ge(root: Path) -> float:
    """NAND2 gate equivalents of an 8-bit adder after generic synthesis (the energy calibration)."""
    d = root / "add8"
    d.mkdir()
    (d / "add8.v").write_text("module add8(input [7:0] a, input [7:0] b, output [8:0] y);\n"
                              "  assign y = a + b;\nendmodule\n")
    (d / "files.f").write_text("add8.v\n")
    (d / "manifest.json").write_text(json.dumps({"top": "add8", "ports": [
        {"name": "a", "direction": "in", "width": 8}, {"name": "b", "direction": "in", "width": 8},
        {"name": "y", "direction": "out", "width": 9}]}))
    return float(synth(d)["gate_equivalents"])


def figures(res: dict, geo, e_reg: float, e_ge: float) -> dict:
    """RAM bits (the buffers and the units' row buffers, counted from the design: Yosys' memory bits also hold
    the softmax's exp2 table and the ROMs it infers from case statements, which become logic) become one
    enable flip-flop each in a generic netlist: they are taken out of the flip-flops and the area."""
    by = res["cells_by_type"]
    mem = ram_bits(geo)
    assert mem < res["memory_bits"], (buffer_bits(geo), res["memory_bits"])
    dffe = E.YOSYS_CELL_AREA_45NM["$_DFFE_PP_"] * E.area_scale()
    comb = {t: n for t, n in by.items() if not FF_RE.match(t)}
    ge_comb, _ = gate_equivalents(comb)
    ff = res["flipflops"] - mem
    area = E.cell_area_um2(by)
    return {"cells": res["cells"], "flipflops": res["flipflops"], "memory_bits": res["memory_bits"], "ram_bits": mem,
            "logic_ff_bits": ff,
            "gate_equivalents": res["gate_equivalents"], "comb_gate_equivalents": ge_comb,
            "area_um2": area, "logic_area_um2": area - mem * dffe,
            "energy_pj_per_cycle": ff * e_reg + ge_comb * e_ge, "synth_seconds": res["time_s"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="synthesize one geometry key only (merged into the existing file)")
    a = ap.parse_args()
    e_reg = E.energy_pj("reg_bit")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="dota-periphery-") as td:
        root = Path(td)
        ge8 = adder8_ge(root)
        e_ge = E.energy_pj("add8") / ge8
        print(f"8-bit adder: {ge8} GE -> {e_ge:.3g} pJ per gate operation at 28 nm; clocked bit {e_reg:.3g} pJ")
        old = json.loads(DATA_FILE.read_text()) if DATA_FILE.is_file() else {}
        entries = dict(old.get("entries", {})) if a.only else {}
        rows = []
        for preset, bits, arch in POINTS:
            runs = {}
            for tiles in (1, 2):
                cfg = load_config(preset=preset, bits=bits, arch=arch, rtl=dict(SIZES, tiles=tiles))
                key = config_key(cfg)
                if a.only and key != a.only:
                    break
                geo = geometry(cfg)
                text, top = emit(geo, twin=False)
                d = write_dir(root, text, top, f"{key}-t{tiles}")
                warnings = lint(d)
                res = synth(d, "generic", timeout_s=3600)
                runs[tiles] = dict(figures(res, geo, e_reg, e_ge), lint_warnings=warnings, latches=res["latches"],
                                   comb_loops=res["comb_loops"], buffers_bits=buffer_bits(geo))
                print(f"{key} T={tiles}: {res['cells']} cells, {res['flipflops']} FF, {res['memory_bits']} memory "
                      f"bits, lint warnings {warnings}, {res['time_s']} s", flush=True)
            if len(runs) < 2:
                continue
            one, two = runs[1], runs[2]
            num = [k for k, v in one.items() if isinstance(v, (int, float)) and k not in ("lint_warnings", "latches",
                                                                                        "comb_loops", "synth_seconds")]
            per = {k: two[k] - one[k] for k in num}
            shared = {k: one[k] - per[k] for k in num}
            g = geometry(cfg)
            entries[key] = {"geometry": {k: getattr(g, k) for k in ("NH", "NW", "NL", "C", "TAU", "B", "A", "share_in",
                                                                   "share_adc")},
                            "preset": preset, "arch": arch, "per_tile": per, "shared": shared,
                            "runs": {str(t): r for t, r in runs.items()}}
            rows.append({"key": key, **{f"tile_{k}": per[k] for k in ("cells", "logic_ff_bits", "ram_bits",
                                                                      "logic_area_um2", "energy_pj_per_cycle")},
                         **{f"shared_{k}": shared[k] for k in ("cells", "logic_ff_bits", "logic_area_um2",
                                                               "energy_pj_per_cycle")}})
    doc = {"what": "synthesized digital periphery of DOTA (lego_dota_periphery, generic Yosys via lego synth), per "
                   "tile and shared; read by accelerators/dota/periphery.py",
           "made_by": "bench/dota_periphery.py", "node_nm": E.DEFAULT_NODE_NM,
           "capacities": SIZES,
           "calibration": {"ge_add8": ge8, "pj_per_gate_op": e_ge, "pj_per_clocked_bit": e_reg,
                           "area": "simulator.energy.cell_area_um2 (NanGate-equivalent cell areas, 28 nm) minus "
                                   "RAM bits (memory bits but the softmax's exp2 ROM) x $_DFFE_PP_",
                           "energy": "logic flip-flop bits x pj_per_clocked_bit + combinational NAND2 equivalents x "
                                     "pj_per_gate_op, per cycle (one photonic step per cycle)"},
           "entries": entries}
    DATA_FILE.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(table(rows, list(rows[0]) if rows else ["key"]))
    p = save("dota_periphery", doc | {"rows": rows, "seconds": round(time.time() - t0, 1)})
    print(f"wrote {DATA_FILE.relative_to(ROOT)} and {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Calibrate the cycle engine's analytic logic-area model against `lego synth` (Yosys generic) cells.

    .venv/bin/python bench/area_calibration.py

Generic synthesis maps the banks to flip-flops, so their bits (``memory_bits`` × an enable-DFF) are
removed from the netlist area before comparing with the model's logic (multipliers, adders, pipeline
registers, muxes). The fitted scale multiplies model logic areas to match the netlist.
"""
import tempfile
from pathlib import Path

from _common import save, table

from lego.generate import generate
from lego.synth import synth
from simulator import energy as E

DESIGNS = [("gemm", "M=8,N=8,K=8", "2x2", ("os",)), ("gemm", "M=8,N=8,K=8", "4x4", ("os",)),
           ("gemm", "M=8,N=8,K=8", "4x4", ("ws",)), ("conv2d", "C=2,K=4,H=6,W=6", "2x4", ("os", "ws"))]
LOGIC = ("mul", "add", "registers", "muxes")


def main():
    rows, samples = [], []
    dffe = E.YOSYS_CELL_AREA_45NM["$_DFFE_PP_"] * E.area_scale()
    with tempfile.TemporaryDirectory() as td:
        for wl, shape, arr, dfs in DESIGNS:
            out = Path(td) / f"{wl}{arr}{'_'.join(dfs)}"
            generate(wl, shape, arr, dfs, 8, True, out)
            from lego.emit import design_file
            from simulator.costs import design_costs
            d = design_file.read(out)
            _, area = design_costs(d.arch, d.pg, 0, d.cycles[0], {}, {}, calibrated=False)
            model = sum(area[k] for k in LOGIC)
            s = synth(out, "generic")
            netlist = E.cell_area_um2(s["cells_by_type"]) - s["memory_bits"] * dffe
            cells_logic = {k: v for k, v in s["cells_by_type"].items()}
            samples.append((model, cells_logic))
            rows.append({"design": f"{wl} {arr} {'+'.join(dfs)}", "model_logic_um2": model,
                         "netlist_logic_um2": netlist, "ratio": netlist / model, "cells": s["cells"],
                         "memory_bits": s["memory_bits"]})
    scale = sum(r["netlist_logic_um2"] * r["model_logic_um2"] for r in rows) / \
        sum(r["model_logic_um2"] ** 2 for r in rows)
    for r in rows:
        r["calibrated_error"] = (scale * r["model_logic_um2"] - r["netlist_logic_um2"]) / r["netlist_logic_um2"]
    print(table(rows, ["design", "model_logic_um2", "netlist_logic_um2", "ratio", "calibrated_error", "cells",
                       "memory_bits"]))
    print(f"fitted logic-area scale: {scale:.3f} (28 nm, NanGate-derived cell areas)")
    print(save("area_calibration", {"rows": rows, "scale": scale}))


if __name__ == "__main__":
    main()

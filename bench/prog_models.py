"""The analytical mapper's per-layer cycles against the exact program timing of a programmable design.

Generates a 16x16 ws+os programmable GEMM design (64 KiB scratchpad, 64 KiB accumulator, 64-bit AXI),
compiles bert-base and resnet50 for it and times every layer's segment (``lego sim --model M --design DIR``'s
path), maps the same models with ``simulator.mapping`` on the same array, buffers, DRAM bandwidth
(8 B/cycle at 1 GHz) and latency (20 cycles), and prints per-layer errors (mapper - engine) / engine.
Writes bench/results/prog_models.json.

    python bench/prog_models.py [--models bert-base,resnet50] [--design DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from lego.prog.generate import generate_prog
from simulator.mapping import KIB
from simulator.model_run import run_model
from simulator.prog_model import run_model_program

LATENCY = 20


def compare(model: str, design: Path) -> dict:
    man = json.loads((design / "manifest.json").read_text())
    prog = man["prog"]
    t0 = time.perf_counter()
    rows, total = run_model_program(model, design, LATENCY, quiet=True)
    t_prog = time.perf_counter() - t0
    bpc = prog["dram_bits"] / 8
    mrows, _ = run_model(model, tuple(prog["array"]), list(prog["dataflows"]), prog["scratchpad_kib"] * KIB,
                         dram_gbps=bpc, acc_bytes=prog["accumulator_kib"] * KIB, freq_ghz=1.0,
                         dram_latency_ns=float(LATENCY), fill_drain=dict(prog["drain"]))
    per = []
    for r, m in zip(rows, mrows):
        assert r["layer"] == m["layer"], (r["layer"], m["layer"])
        per.append({"layer": r["layer"], "op": r["op"], "macs": r["macs"], "engine_cycles": r["cycles"],
                    "mapper_cycles": m["cycles"], "error": (m["cycles"] - r["cycles"]) / r["cycles"]})
    errs = [abs(p["error"]) for p in per]
    return {"model": model, "layers": per, "engine_total": total["cycles"],
            "mapper_total": sum(p["mapper_cycles"] for p in per),
            "total_error": sum(p["mapper_cycles"] for p in per) / total["cycles"] - 1,
            "median_abs_error": statistics.median(errs), "max_abs_error": max(errs),
            "engine_utilization": total["utilization"], "program_seconds": t_prog}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="bert-base,resnet50")
    ap.add_argument("--design", help="an existing programmable design (default: generate the 16x16 one)")
    ap.add_argument("--dram-outstanding", type=int, help="with no --design: read bursts in flight "
                                                         "(default: lego gen's)")
    a = ap.parse_args()
    design = Path(a.design) if a.design else Path(tempfile.mkdtemp()) / "d16"
    if not a.design:
        generate_prog("gemm", "16x16", ("ws", "os"), 8, 64, 64, 64, True, design, outstanding=a.dram_outstanding)
    man = json.loads((design / "manifest.json").read_text())["prog"]
    res = {"design": {"array": "16x16", "dataflows": ["ws", "os"], "scratchpad_kib": 64, "accumulator_kib": 64,
                      "dram_bits": 64, "dram_latency": LATENCY, "dram_outstanding": man.get("dram_outstanding", 1)},
           "models": [compare(m, design) for m in a.models.split(",")]}
    out = Path(__file__).parent / "results" / "prog_models.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"| model | layers | engine cycles | mapper cycles | total error | median abs layer error | "
          f"max abs layer error | engine utilization |")
    print("|---|---|---|---|---|---|---|---|")
    for m in res["models"]:
        print(f"| {m['model']} | {len(m['layers'])} | {m['engine_total']:,} | {m['mapper_total']:,} | "
              f"{m['total_error']:+.1%} | {m['median_abs_error']:.1%} | {m['max_abs_error']:.1%} | "
              f"{m['engine_utilization']:.3f} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

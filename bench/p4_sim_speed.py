"""P3/P4: cycle-engine speed on GEMM 512^3 on a 16x16 array vs SCALE-Sim 3.0 in the same run.

    .venv/bin/python bench/p4_sim_speed.py [--no-scalesim]

The cycle engine's cycles come from the design's scheduled PrimGraph; its SRAM traffic from the
controller's change flags over all 524,288 steps (vectorized); ``--outputs`` also executes all 134M MACs
of the space-time map (bit-exact outputs).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from _common import save, table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lego.design import build_array, load_workload
from simulator.cycle import execute, traffic


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-scalesim", action="store_true")
    ap.add_argument("--outputs", action="store_true", help="also execute every MAC (functional outputs)")
    a = ap.parse_args()
    w = load_workload("gemm", "M=512,N=512,K=512", 8)
    rows = []
    for df in ("ws", "os"):
        t0 = time.perf_counter()
        d = build_array(w, (16, 16), (df,), True)
        t_ir = time.perf_counter() - t0
        t0 = time.perf_counter()
        cycles = d.cycles[0]
        reads, writes = traffic(d.arch, 0)
        t_sim = time.perf_counter() - t0
        row = {"dataflow": df, "cycles": cycles, "ir_seconds": t_ir, "engine_seconds": t_sim,
               "cycles_per_second": cycles / t_sim, "sram_reads": sum(reads.values()),
               "sram_writes": sum(writes.values())}
        if a.outputs:
            rng = np.random.default_rng(0)
            ins = {"X": rng.integers(-128, 128, (512, 512)), "W": rng.integers(-128, 128, (512, 512))}
            t0 = time.perf_counter()
            out = execute(d.arch, 0, ins)
            row["functional_seconds"] = time.perf_counter() - t0
            row["functional_match"] = bool((out == ins["X"] @ ins["W"]).all())
        rows.append(row)
    ss = None
    if not a.no_scalesim:
        from scalesim_compare import ensure_venv, run_scalesim
        py = ensure_venv()
        t0 = time.perf_counter()
        res = run_scalesim(py, [(512, 512, 512)], 16, 16, "ws")
        ss = {"wall_seconds": time.perf_counter() - t0, "result": res}
        rows[0]["scalesim_seconds"] = ss["wall_seconds"]
        rows[0]["speedup_vs_scalesim"] = ss["wall_seconds"] / rows[0]["engine_seconds"]
    print(table(rows, [k for k in rows[0]]))
    print(save("p4_sim_speed", {"workload": "gemm 512^3", "array": "16x16", "rows": rows, "scalesim": ss,
                                "targets": {"cycles_per_second": 1e6, "speedup_vs_scalesim": 100}}))


if __name__ == "__main__":
    main()

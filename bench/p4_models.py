"""P4 on the user's path, on models and a programmable design: whole-process wall times of the commands a
user types, beside SCALE-Sim 3.0 on the same layers in the same run.

    .venv/bin/python bench/p4_models.py [--models resnet50,bert-base] [--scalesim-layers 5] [--no-scalesim]

1. ``lego gen`` a 16x16 ws+os programmable GEMM design (64 KiB scratchpad, 64 KiB accumulator, 64-bit AXI:
   8 int8 words per cycle) — timed apart, not part of the figure.
2. Per model: ``lego sim --model M --design DIR --json`` as a whole process (process start to exit: imports,
   lowering every layer, the compiler's tile search, the exact program timing of every layer, CSV/JSON/PNG
   written): wall seconds and simulated cycles per wall second.
3. Like for like with SCALE-Sim: the model's first ``--scalesim-layers`` layers, as the GEMMs they lower to,
   written as one SCALE-Sim topology CSV (``Layer, M, N, K``; a grouped layer as G rows); ``lego sim
   --model that.csv --design DIR`` and SCALE-Sim 3.0 (16x16, ws, the same SRAM bytes split 32/32/64 KiB,
   8 words/cycle) each run it as a whole process.
4. GEMM 512^3: ``lego compile`` + ``lego sim DIR --program P --engine cycle`` (whole processes) vs SCALE-Sim.

The two simulators model different machines (SCALE-Sim: static SRAM partitions, its own prefetch; lego:
the generated RTL's exact timing), so the cycle counts are reported side by side, not compared.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import save, table

sys.path.insert(0, str(Path(__file__).resolve().parent))

LEGO = str(Path(sys.executable).parent / "lego")
DESIGN = {"array": "16x16", "dataflows": ["ws", "os"], "scratchpad_kib": 64, "accumulator_kib": 64, "dram_bits": 64}
SCALESIM = {"sram_kb": (32, 32, 64), "bw_words": 8, "dataflow": "ws"}


def child_cpu() -> float:
    """User + system CPU seconds of the waited-for child processes so far (the box is shared: CPU time is
    reported beside wall time)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Whole-process wall and CPU seconds of ``cmd``, and its stdout."""
    t0, c0 = time.perf_counter(), child_cpu()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, child_cpu() - c0, r.stdout


def lego_model(model: str, design: Path, out: Path) -> tuple[float, float, dict]:
    wall, cpu, stdout = timed([LEGO, "sim", "--model", model, "--design", str(design), "--json", "--out", str(out)])
    return wall, cpu, json.loads(stdout)


def gemm_rows(layers: list[dict]) -> list[tuple[str, int, int, int]]:
    return [(f"{l['layer']}_{g}" if l["G"] > 1 else l["layer"], l["M"], l["N"], l["K"])
            for l in layers for g in range(l["G"])]


def write_csv(path: Path, gemms: list[tuple[str, int, int, int]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Layer", "M", "N", "K"])
        w.writerows(gemms)


def scalesim(py: Path, gemms: list[tuple[int, int, int]], timeout: float) -> dict:
    """SCALE-Sim on ``gemms`` as a whole process; stopped at ``timeout`` s, in which case its wall time is
    only a lower bound (``finished: False``) and the speed-up derived from it too."""
    from scalesim_compare import run_scalesim
    t0, c0 = time.perf_counter(), child_cpu()
    try:
        res = run_scalesim(py, gemms, 16, 16, SCALESIM["dataflow"], sram_kb=SCALESIM["sram_kb"],
                           bw_words=SCALESIM["bw_words"], timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"wall_seconds": time.perf_counter() - t0, "cpu_seconds": child_cpu() - c0, "finished": False,
                "run_scale_seconds": None, "cycles": None, "layers": 0}
    return {"wall_seconds": time.perf_counter() - t0, "cpu_seconds": child_cpu() - c0, "finished": True,
            "run_scale_seconds": res["wall_s"], "cycles": sum(r["total"] for r in res["layers"]),
            "layers": len(res["layers"])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet50,bert-base")
    ap.add_argument("--scalesim-layers", type=int, default=5)
    ap.add_argument("--no-scalesim", action="store_true")
    ap.add_argument("--scalesim-timeout", type=float, default=900,
                    help="stop each SCALE-Sim run after this many seconds (the speed-up is then a lower bound)")
    a = ap.parse_args(argv)
    load_start = os.getloadavg()
    py = None
    if not a.no_scalesim:
        from scalesim_compare import ensure_venv
        py = ensure_venv()
    rows, subsets = [], []
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        d = td / "d16"
        gen_s, _, _ = timed([LEGO, "gen", "--workload", "gemm", "--array", DESIGN["array"], "--dataflow", "ws",
                          "--dataflow", "os", "--scratchpad-kib", "64", "--accumulator-kib", "64", "--dram-bits", "64",
                          "--out", str(d), "--json"])
        for model in a.models.split(","):
            wall, cpu, res = lego_model(model, d, td / f"out-{model}")
            tot = res["total"]
            rows.append({"model": model, "layers": tot["layers"], "cycles": tot["cycles"],
                         "utilization": tot["utilization"], "lego_sim_wall_s": wall,
                         "lego_sim_cpu_s": cpu, "cycles_per_s": tot["cycles"] / wall})
            if py is None:
                continue
            first = res["layers"][:a.scalesim_layers]
            gemms = gemm_rows(first)
            topo = td / f"{model}-first{len(first)}.csv"
            write_csv(topo, gemms)
            lwall, lcpu, lres = lego_model(str(topo), d, td / f"sub-{model}")
            ss = scalesim(py, [g[1:] for g in gemms], a.scalesim_timeout)
            subsets.append({"model": model, "layers": [l["layer"] for l in first], "gemms": len(gemms),
                            "lego_wall_s": lwall, "lego_cpu_s": lcpu, "lego_cycles": lres["total"]["cycles"],
                            "scalesim_wall_s": ss["wall_seconds"], "scalesim_cpu_s": ss["cpu_seconds"],
                            "scalesim_finished": ss["finished"], "scalesim_run_scale_s": ss["run_scale_seconds"],
                            "scalesim_cycles": ss["cycles"],
                            "speedup": ss["wall_seconds"] / lwall,
                            "speedup_is_lower_bound": not ss["finished"]})
        g512 = None
        if py is not None:
            comp_s, comp_cpu, _ = timed([LEGO, "compile", str(d), "--layer", "gemm:M=512,N=512,K=512", "--out",
                               str(td / "g.prog")])
            sim_s, sim_cpu, out = timed([LEGO, "sim", str(d), "--program", str(td / "g.prog"), "--engine", "cycle",
                                         "--json"])
            r = json.loads(out)
            ss = scalesim(py, [(512, 512, 512)], a.scalesim_timeout)
            g512 = {"lego_compile_wall_s": comp_s, "lego_sim_wall_s": sim_s, "lego_compile_cpu_s": comp_cpu,
                    "lego_sim_cpu_s": sim_cpu, "lego_cycles": r["cycles"],
                    "match": r["match"], "cycles_per_s": r["cycles"] / sim_s,
                    "scalesim_wall_s": ss["wall_seconds"], "scalesim_cpu_s": ss["cpu_seconds"],
                    "scalesim_finished": ss["finished"], "scalesim_cycles": ss["cycles"],
                    "speedup_sim_only": ss["wall_seconds"] / sim_s,
                    "speedup_compile_and_sim": ss["wall_seconds"] / (comp_s + sim_s)}
    print(table(rows, list(rows[0])))
    if subsets:
        print(table(subsets, [k for k in subsets[0] if k != "layers"]))
    if g512:
        print(table([g512], list(g512)))
    print(save("p4_models", {"design": DESIGN, "lego_gen_wall_s": gen_s, "models": rows, "scalesim_subsets": subsets,
                             "gemm512": g512, "scalesim_config": SCALESIM,
                             "loadavg_1_5_15": {"start": load_start, "end": os.getloadavg()},
                             "scalesim_timeout_s": a.scalesim_timeout,
                             "method": "whole-process wall and CPU (user + system, of the child) times (subprocess "
                                       "start to exit) of the lego and SCALE-Sim commands, same machine, same run",
                             "targets": {"cycles_per_second": 1e7, "speedup_vs_scalesim": 100}}))


if __name__ == "__main__":
    main()

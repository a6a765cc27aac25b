"""RTL simulation speed of a programmable array: Verilator (under cocotb) on a 16x16 ws design, whole process.

    .venv/bin/python bench/prog_verilator_speed.py [--quick] [--layer gemm:M=128,N=256,K=128]

Design: `lego gen --workload gemm --array 16x16 --dataflow ws --scratchpad-kib 16 --accumulator-kib 16`
(64-bit AXI); program: `lego compile DIR --layer gemm:M=128,N=256,K=128` (a few hundred thousand cycles at
DRAM latency 20). Timed as whole processes (`/usr/bin/time -v`: wall, user+sys CPU, peak RSS):

1. `lego sim DIR --program P --engine verilator --json` with an empty build cache (``LEGO_SIM_CACHE`` set to a
   fresh directory): Verilator + C++ build, then the run. ccache (scripts/setup.sh installs it) may still hold
   objects from earlier builds of the same Verilog, which shortens this first build;
2. the same command again: the build is cached (``simulator/rtl.py: build_dir_for``, keyed by the Verilog and the
   toolchain; the program runs reuse ``<key>-prog``), so this is the run alone;
3. `lego sim DIR --program P --engine cycle --json`, the exact cycle engine (it also executes the data path).

Simulated cycles / s = the program's cycles / the process's wall time (and / its CPU time). The Verilator run
includes cocotb's Python bench (one coroutine step per clock edge, AxiRam) and the sw_reference check; the
Verilated model itself is not timed alone. ``--quick``: gemm M=N=K=64. Writes
bench/results/prog_verilator_speed.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import save, table
from prog_gentime import time_v

LEGO = str(Path(sys.executable).parent / "lego")


def timed_json(cmd: list[str], env: dict, timeout: float = 3600) -> tuple[dict, dict]:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        t = time_v(["sh", "-c", " ".join(cmd) + f" > {out}"], timeout)
        if t.get("returncode") != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}: {t}")
        return json.loads(out.read_text()), t
    finally:
        out.unlink(missing_ok=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="gemm 64^3")
    ap.add_argument("--layer", default="gemm:M=128,N=256,K=128")
    ap.add_argument("--design", help="an existing programmable design (default: generate the 16x16 one)")
    a = ap.parse_args()
    layer = "gemm:M=64,N=64,K=64" if a.quick else a.layer
    td = Path(tempfile.mkdtemp(prefix="prog_vl_"))
    design = Path(a.design) if a.design else td / "p16"
    gen = [LEGO, "gen", "--workload", "gemm", "--array", "16x16", "--dataflow", "ws", "--scratchpad-kib", "16",
           "--accumulator-kib", "16", "--out", str(design)]
    env = dict(os.environ, LEGO_SIM_CACHE=str(td / "cache"))
    os.environ["LEGO_SIM_CACHE"] = env["LEGO_SIM_CACHE"]   # time_v inherits it
    gen_t = None
    if not a.design:
        gen_t = time_v(gen, 3600)
    prog = td / "p.bin"
    subprocess.run([LEGO, "compile", str(design), "--layer", layer, "--out", str(prog)], check=True,
                   capture_output=True)
    sim = [LEGO, "sim", str(design), "--program", str(prog), "--json"]
    rows, res = [], {}
    for label, engine in (("verilator_first (build + run)", "verilator"), ("verilator_cached", "verilator"),
                          ("cycle_engine", "cycle")):
        r, t = timed_json([*sim, "--engine", engine], env)
        assert r["match"] and r["cycles"] == r["cycles_predicted"], r
        res[label] = {"json": {k: v for k, v in r.items() if k != "layers"}, "process": t}
        rows.append({"run": label, "cycles": r["cycles"], "wall_seconds": t["wall_seconds"],
                     "cpu_seconds": t["cpu_seconds"], "max_rss_mib": t["max_rss_mib"],
                     "cycles_per_wall_second": r["cycles"] / t["wall_seconds"],
                     "cycles_per_cpu_second": r["cycles"] / t["cpu_seconds"],
                     "sim_seconds_reported": r["sim_seconds"]})
        print(rows[-1], flush=True)
    first, cached = rows[0], rows[1]
    build = {"build_wall_seconds_estimate": first["wall_seconds"] - cached["wall_seconds"],
             "build_cpu_seconds_estimate": first["cpu_seconds"] - cached["cpu_seconds"]}
    print(table(rows, list(rows[0])))
    print(save("prog_verilator_speed", {
        "design": {"array": "16x16", "dataflows": ["ws"], "scratchpad_kib": 16, "accumulator_kib": 16,
                   "dram_bits": 64, "gen_command": " ".join(["lego", *gen[1:-1], "DIR"]) if not a.design else None,
                   "gen_process": gen_t},
        "layer": layer, "dram_latency": 20, "rows": rows, "runs": res, **build,
        "method": "whole-process `lego sim DIR --program P --engine E --json` under /usr/bin/time -v; fresh "
                  "LEGO_SIM_CACHE for the first Verilator run (ccache may still hit)",
        "machine": "shared 2-core box, loaded by other jobs; nice -n 10 (wall times inflated, CPU less so)"}))


if __name__ == "__main__":
    main()

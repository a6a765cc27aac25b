"""P4 on the user's path: `lego sim DIR --engine cycle` on GEMM 512^3, 16x16, timed as a whole process,
beside SCALE-Sim 3.0 on the same layer in the same run.

    .venv/bin/python bench/p4_sim_speed.py [--no-scalesim]

Headline (``user_path``): the wall time of the command a user types, ``lego sim DIR --engine cycle
--json`` (process start to exit: imports, reading the design directory, the cycle count from the
scheduled graph, SRAM traffic, executing all 134M MACs of the space-time map, the sw_reference check),
and simulated cycles per second of that wall time. ``lego gen`` of the same design is timed separately.
SCALE-Sim's wall time is its own process on the same layer (its venv, bench/scalesim_compare.py).

Labelled component timing (not the headline): ``component_cycles_traffic_seconds``, the cycle count and
the traffic flags alone, in-process, after the design is loaded.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import save, table

sys.path.insert(0, str(Path(__file__).resolve().parent))

LEGO = str(Path(sys.executable).parent / "lego")


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-scalesim", action="store_true")
    a = ap.parse_args()
    from lego.emit import design_file
    from simulator.cycle import traffic
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for df in ("ws", "os"):
            d = Path(td) / df
            gen_s, _ = timed([LEGO, "gen", "--workload", "gemm", "--shape", "M=512,N=512,K=512", "--array", "16x16",
                              "--dataflow", df, "--out", str(d), "--json"])
            sim_s, out = timed([LEGO, "sim", str(d), "--engine", "cycle", "--json"])
            res = json.loads(out)
            des = design_file.read(d)
            t0 = time.perf_counter()
            _ = des.cycles[0]
            traffic(des.arch, 0)
            comp = time.perf_counter() - t0
            rows.append({"dataflow": df, "cycles": res["cycles"], "match": res["match"],
                         "lego_sim_wall_seconds": sim_s, "cycles_per_second_user_path": res["cycles"] / sim_s,
                         "lego_gen_wall_seconds": gen_s, "component_cycles_traffic_seconds": comp,
                         "verilog_bytes": (d / "lego_gemm.v").stat().st_size})
    ss = None
    if not a.no_scalesim:
        from scalesim_compare import ensure_venv, run_scalesim
        py = ensure_venv()
        t0 = time.perf_counter()
        res = run_scalesim(py, [(512, 512, 512)], 16, 16, "ws")
        ss = {"wall_seconds": time.perf_counter() - t0, "result": res}
        rows[0]["scalesim_wall_seconds"] = ss["wall_seconds"]
        rows[0]["speedup_vs_scalesim_user_path"] = ss["wall_seconds"] / rows[0]["lego_sim_wall_seconds"]
    print(table(rows, [k for k in rows[0]]))
    print(save("p4_sim_speed", {"workload": "gemm 512^3", "array": "16x16", "rows": rows, "scalesim": ss,
                                "method": "whole-process wall time of `lego sim DIR --engine cycle --json`",
                                "targets": {"cycles_per_second": 1e7, "speedup_vs_scalesim": 100}}))


if __name__ == "__main__":
    main()

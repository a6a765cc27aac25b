"""P5: `lego gen` wall time for GEMM on growing arrays, with LP size and solve time.

    .venv/bin/python bench/p5_gentime.py [--max 32]

``gen_seconds`` is the wall time of the whole `lego gen` process; ``cpu_seconds`` its user + system CPU
time, which other load on the machine does not inflate (the generator is single-threaded).
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, save, table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=32)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for n in (4, 8, 16, 24, 32):
            if n > a.max:
                break
            out = Path(td) / f"g{n}"
            t0 = time.perf_counter()
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-m", "lego.cli", "gen", "--workload", "gemm", "--shape",
                            f"M={2 * n},N={2 * n},K={2 * n}", "--array", f"{n}x{n}", "--out", str(out)],
                           check=True, cwd=ROOT, capture_output=True)
            wall = time.perf_counter() - t0
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
            rep = json.loads((out / "report.json").read_text())
            rows.append({"array": f"{n}x{n}", "fus": rep["fus"], "gen_seconds": wall, "cpu_seconds": cpu,
                         "lp_variables": rep["lp"]["variables"], "lp_constraints": rep["lp"]["constraints"],
                         "lp_solve_seconds": rep["lp"]["solve_seconds"], "lp_bits": rep["registers"]["lp_bits"],
                         "naive_bits": rep["registers"]["naive_bits"]})
            print(f"{n}x{n}: {wall:.1f} s", flush=True)
    print(table(rows, list(rows[0])))
    print(save("p5_gentime", {"workload": "gemm 2Nx2Nx2N, os", "rows": rows,
                              "targets": {"16x16_seconds": 5, "32x32_seconds": 60}}))


if __name__ == "__main__":
    main()

"""Scale of the fixed-shape output: `lego gen` wall time, peak memory and Verilog size for GEMM 512^3 and
2048^3 on 16x16 (os and ws), each a whole process (/usr/bin/time -v).

    .venv/bin/python bench/gen_scale.py
"""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import save, table

LEGO = str(Path(sys.executable).parent / "lego")


def main():
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for n in (512, 2048):
            for df in ("os", "ws"):
                out = Path(td) / f"g{n}{df}"
                t0 = time.perf_counter()
                r = subprocess.run(["/usr/bin/time", "-v", LEGO, "gen", "--workload", "gemm", "--shape",
                                    f"M={n},N={n},K={n}", "--array", "16x16", "--dataflow", df, "--out", str(out)],
                                   capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t0
                cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", r.stderr))
                rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
                rows.append({"gemm": f"{n}^3", "dataflow": df, "wall_seconds": round(wall, 1),
                             "cpu_seconds": round(cpu, 1), "peak_rss_mib": round(rss / 1024),
                             "verilog_bytes": (out / "lego_gemm.v").stat().st_size,
                             "design_json_bytes": (out / "design.json").stat().st_size})
                print(rows[-1], flush=True)
    print(table(rows, list(rows[0])))
    print(save("gen_scale", {"array": "16x16", "rows": rows,
                             "before": {"2048^3 os": {"wall_seconds": 178, "verilog_bytes": 245e6},
                                        "512^3 ws": {"verilog_bytes": 16e6}}}))


if __name__ == "__main__":
    main()

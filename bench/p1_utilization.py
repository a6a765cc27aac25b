"""P1: GEMM 64x64x64 on an 8x8 array, per dataflow: RTL cycles vs MACs/PEs + the reported fill/drain.

    .venv/bin/python bench/p1_utilization.py [--engine icarus|verilator]
"""
import argparse
import tempfile
from pathlib import Path

from _common import save, table

from lego.generate import generate
from simulator.engine import get_engine


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="verilator")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for df in ("os", "ws", "is", "os-bcast", "ws-bcast", "is-bcast"):
            out = Path(td) / df
            res = generate("gemm", "M=64,N=64,K=64", "8x8", (df,), 8, True, out)
            import json
            rep = json.loads((out / "report.json").read_text())
            steps = rep["cycles"]["steps"][df]
            ideal = 64 ** 3 // 64
            fill = rep["cycles"]["fill_drain"][df]
            r = get_engine(a.engine).run(out, seed=1)
            bound = ideal + fill
            rows.append({"dataflow": df, "macs_per_pe": ideal, "fill_drain": fill, "rtl_cycles": r.cycles,
                         "bound": bound, "ratio": r.cycles / bound, "within_5pct": r.cycles <= 1.05 * bound,
                         "utilization": ideal / r.cycles, "match": r.match})
    print(table(rows, ["dataflow", "macs_per_pe", "fill_drain", "rtl_cycles", "bound", "ratio", "utilization",
                       "within_5pct", "match"]))
    print(save("p1_utilization", {"engine": a.engine, "workload": "gemm 64x64x64", "array": "8x8", "rows": rows}))


if __name__ == "__main__":
    main()

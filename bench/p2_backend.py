"""P2: back-end savings. LP register bits vs the naive design, and Yosys cells of --opt vs --no-opt, for an
8x8 systolic GEMM and for the default attention design.

    .venv/bin/python bench/p2_backend.py
"""
import json
import tempfile
from pathlib import Path

from _common import save, table

from lego.generate import generate
from lego.synth import synth

CASES = [("gemm 8x8 os (M=N=K=16)", "gemm", "M=16,N=16,K=16", "8x8", ("os",)),
         ("gemm 8x8 ws (M=N=K=16)", "gemm", "M=16,N=16,K=16", "8x8", ("ws",)),
         ("attention (default)", "attention", None, None, ("os",))]


def main():
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for label, wl, shape, arr, dfs in CASES:
            res = {}
            for opt in (True, False):
                out = Path(td) / f"{wl}_{arr}_{dfs[0]}_{opt}"
                generate(wl, shape, arr, dfs, 8, opt, out)
                rep = json.loads((out / "report.json").read_text())
                s = synth(out, "generic")
                res[opt] = (rep, s)
            (ro, so), (rn, sn) = res[True], res[False]
            rows.append({
                "design": label,
                "lp_bits": ro["registers"]["lp_bits"], "naive_bits": ro["registers"]["naive_bits"],
                "bits_ratio": ro["registers"]["lp_bits"] / ro["registers"]["naive_bits"],
                "cells_opt": so["cells"], "cells_noopt": sn["cells"], "cells_ratio": so["cells"] / sn["cells"],
                "logic_opt": so["cells"] - so["flipflops"], "logic_noopt": sn["cells"] - sn["flipflops"],
                "ff_bits_opt": so["flipflops"], "ff_bits_noopt": sn["flipflops"],
                "memory_bits": so.get("memory_bits"), "ge_opt": so.get("gate_equivalents"),
                "ge_noopt": sn.get("gate_equivalents"),
                "ge_ratio": (so.get("gate_equivalents") or 0) / max(1, sn.get("gate_equivalents") or 1),
                "latches": so["latches"] + sn["latches"],
            })
    print(table(rows, ["design", "lp_bits", "naive_bits", "bits_ratio", "cells_opt", "cells_noopt", "cells_ratio",
                       "ge_ratio", "memory_bits", "latches"]))
    print(save("p2_backend", {"rows": rows, "targets": {"bits_ratio": 0.65, "cells_ratio": 0.70}}))


if __name__ == "__main__":
    main()

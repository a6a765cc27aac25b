"""P3: cycle engine vs RTL over the generator's test matrix: outputs bit-exact, cycles exactly equal.

    .venv/bin/python bench/p3_agreement.py [--engines icarus,verilator]
"""
import argparse
import sys
import tempfile
from pathlib import Path

from _common import ROOT, save, table

sys.path.insert(0, str(ROOT / "tests" / "rtl"))
from test_matrix import MATRIX  # noqa: E402

from lego.generate import generate
from simulator.engine import get_engine


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", default="icarus,verilator")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for ident, wl, shape, arr, dfs, bits in MATRIX:
            out = Path(td) / ident
            generate(wl, shape, arr, dfs, bits, True, out)
            for mode in dfs:
                c = get_engine("cycle").run(out, mode=mode, seed=5)
                for eng in a.engines.split(","):
                    r = get_engine(eng).run(out, mode=mode, seed=5)
                    same = all((c.outputs[k] == r.outputs[k]).all() for k in c.outputs)
                    rows.append({"design": ident, "mode": mode, "engine": eng, "cycle_model": c.cycles,
                                 "rtl": r.cycles, "diff": r.cycles - c.cycles, "outputs_equal": bool(same and r.match)})
                    print(rows[-1], flush=True)
    print(table(rows, ["design", "mode", "engine", "cycle_model", "rtl", "diff", "outputs_equal"]))
    n = len(rows)
    bad = sum(1 for r in rows if r["diff"] != 0 or not r["outputs_equal"])
    print(f"{n} design/mode/engine runs compared, {bad} with any difference")
    print(save("p3_agreement", {"rows": rows, "compared": n, "differences": bad}))


if __name__ == "__main__":
    main()

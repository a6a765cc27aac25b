"""P3: cycle engine vs RTL over the generator's test matrix, run as a host runs a design: the seven-job
sequence of tests/simulator/test_engine.py (mode switches without reset, reruns without reloading,
partial reloads, rst between runs) on each engine; every job's outputs bit-exact and cycles equal.

    .venv/bin/python bench/p3_agreement.py [--engines icarus,verilator]
"""
import argparse
import sys
import tempfile
from pathlib import Path

from _common import ROOT, save, table

sys.path.insert(0, str(ROOT / "tests" / "simulator"))
from test_engine import MATRIX, USER, host_sequence  # noqa: E402

from lego.generate import generate
from simulator.engine import get_engine, read_manifest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", default="icarus,verilator")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for ident, wl, shape, arr, dfs, bits in MATRIX:
            out = Path(td) / ident
            if wl in USER:
                (Path(td) / wl).write_text(USER[wl])
                wl = str(Path(td) / wl)
            generate(wl, shape, arr, dfs, bits, True, out)
            jobs = host_sequence(read_manifest(out), seed=5)
            ref = get_engine("cycle").run_jobs(out, jobs)
            for eng in a.engines.split(","):
                got = get_engine(eng).run_jobs(out, jobs)
                for k, (c, r, j) in enumerate(zip(ref, got, jobs)):
                    same = all((c.outputs[n] == r.outputs[n]).all() for n in c.outputs)
                    rows.append({"design": ident, "job": k, "mode": j.mode, "reset": j.reset, "engine": eng,
                                 "cycle_model": c.cycles, "rtl": r.cycles, "diff": r.cycles - c.cycles,
                                 "outputs_equal": bool(same and r.match and c.match)})
            print(ident, "done", flush=True)
    print(table(rows, ["design", "job", "mode", "reset", "engine", "cycle_model", "rtl", "diff", "outputs_equal"]))
    n = len(rows)
    bad = sum(1 for r in rows if r["diff"] != 0 or not r["outputs_equal"])
    print(f"{n} design/job/engine runs compared, {bad} with any difference")
    print(save("p3_agreement", {"rows": rows, "compared": n, "differences": bad,
                                "method": "7-job host sequences per design (tests/simulator/test_engine.py)"}))


if __name__ == "__main__":
    main()

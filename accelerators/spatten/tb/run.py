"""Standalone run of this SpAtten design's benches against sw_reference.spatten; needs lego installed
(pip install lego-hw, or the repository's .venv) and imports only its public API, lego.api.

    python tb/run.py [--engine icarus|verilator|cycle] [--bench cycles|pipeline|units] [--seed N]
                     [--cases N] [--max-n N]

--bench cycles (default) is `lego sim DIR`: trace rows through spatten_top, outputs bit-exact and cycles
exact against the model; pipeline: whole queries and three layers of cascade pruning; units: every unit
on random inputs (tb/spatten_units.v). --max-n caps the tokens of the pipeline and units cases (a quick
run of a large design).
"""
import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="icarus", help="icarus, verilator or cycle (default icarus)")
    ap.add_argument("--bench", default="cycles", help="cycles, pipeline or units (default cycles)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random Q/K/V of the cycles bench")
    ap.add_argument("--cases", type=int, default=12, help="random cases of the pipeline and units benches")
    ap.add_argument("--max-n", type=int, default=None, help="at most this many tokens per pipeline/units case")
    a = ap.parse_args(argv)
    try:
        from lego.api import accelerator, simulate
    except ImportError:
        sys.exit("tb/run.py needs lego installed in this interpreter (pip install lego-hw)")
    if a.bench == "cycles":
        rep = simulate(HERE.parent, a.engine, seed=a.seed)
        ok = bool(rep.match) and rep.extra.get("cycles_predicted") == rep.cycles
        print(f"{'PASS' if ok else 'FAIL'}: {a.engine} cycles={rep.cycles} "
              f"predicted={rep.extra.get('cycles_predicted')} max_abs_err={rep.max_abs_err}")
    else:
        name = json.loads((HERE.parent / "manifest.json").read_text())["accelerator"]
        env = {"SPATTEN_MAX_N": str(a.max_n)} if a.max_n else {}
        ok = accelerator(name).run_bench(HERE.parent, a.engine, a.bench, cases=a.cases, env=env)
        print(f"{'PASS' if ok else 'FAIL'}: {a.engine} bench {a.bench}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

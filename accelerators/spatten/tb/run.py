"""Standalone run of this SpAtten design's benches against sw_reference.spatten; needs lego installed
(pip install lego-hw, or the repository's .venv) and imports only its public API, lego.api.

    python tb/run.py [--engine icarus|verilator|cycle] [--bench cycles|pipeline|units] [--seed N]
                     [--cases N] [--max-n N]

--bench cycles (default) is `lego sim DIR`: trace rows through spatten_top, outputs bit-exact and cycles
exact against the model; pipeline: whole queries and three layers of cascade pruning; units: every unit
on random inputs (tb/spatten_units.v). --max-n caps the tokens of the pipeline and units cases (a quick
run of a large design).
"""
import json
import sys

from lego_standalone import DESIGN, lego_api, parser, run_sim


def main(argv=None):
    ap = parser("seed of the random Q/K/V of the cycles bench")
    ap.add_argument("--bench", default="cycles", help="cycles, pipeline or units (default cycles)")
    ap.add_argument("--cases", type=int, default=12, help="random cases of the pipeline and units benches")
    ap.add_argument("--max-n", type=int, default=None, help="at most this many tokens per pipeline/units case")
    a = ap.parse_args(argv)
    if a.bench == "cycles":
        return run_sim(a.engine, a.seed)
    api = lego_api()
    name = json.loads((DESIGN / "manifest.json").read_text())["accelerator"]
    env = {"SPATTEN_MAX_N": str(a.max_n)} if a.max_n else {}
    ok = api.accelerator(name).run_bench(DESIGN, a.engine, a.bench, cases=a.cases, env=env)
    print(f"{'PASS' if ok else 'FAIL'}: {a.engine} bench {a.bench}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Standalone run of this DOTA design's bench against sw_reference.dota_fx; needs lego installed (pip install
lego-hw, or the repository's .venv) and imports only its public API, lego.api.

    python tb/run.py [--engine icarus|verilator|cycle] [--seed N]

Runs what `lego sim DIR` runs: an attention head (Q.K^T -> softmax -> .V) and a linear layer with its GELU
and LayerNorm epilogues on random DAC codes of the seed, every word the jobs write checked bit for bit and
every job's cycles against the exact model.
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="icarus", help="icarus, verilator or cycle (default icarus)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random DAC codes (default 0)")
    a = ap.parse_args(argv)
    try:
        from lego.api import simulate
    except ImportError:
        sys.exit("tb/run.py needs lego installed in this interpreter (pip install lego-hw)")
    rep = simulate(HERE.parent, a.engine, seed=a.seed)
    ok = bool(rep.match) and rep.extra.get("cycles_predicted") == rep.cycles
    print(f"{'PASS' if ok else 'FAIL'}: {a.engine} cycles={rep.cycles} predicted={rep.extra.get('cycles_predicted')} "
          f"max_abs_err={rep.max_abs_err}")
    for j in rep.extra.get("jobs", []):
        print(f"  {j['name']}: cycles {j.get('cycles')} (model {j['cycles_predicted']}), "
              f"{j.get('words_exact', j['words'])}/{j['words']} words exact, adc_shift {j['adc_shift']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

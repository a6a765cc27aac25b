"""Standalone run of this DOTA design's bench against sw_reference.dota_fx; needs lego installed (pip install
lego-hw, or the repository's .venv) and imports only its public API, lego.api.

    python tb/run.py [--engine icarus|verilator|cycle] [--seed N]

Runs what `lego sim DIR` runs: an attention head (Q.K^T -> softmax -> .V) and a linear layer with its GELU
and LayerNorm epilogues on random DAC codes of the seed, every word the jobs write checked bit for bit and
every job's cycles against the exact model.
"""
import sys

from lego_standalone import parser, run_sim


def jobs(rep):
    return [f"  {j['name']}: cycles {j.get('cycles')} (model {j['cycles_predicted']}), "
            f"{j.get('words_exact', j['words'])}/{j['words']} words exact, adc_shift {j['adc_shift']}"
            for j in rep.extra.get("jobs", [])]


def main(argv=None):
    a = parser("seed of the random DAC codes (default 0)").parse_args(argv)
    return run_sim(a.engine, a.seed, lines=jobs)


if __name__ == "__main__":
    sys.exit(main())

"""Shipped as ``DIR/tb/lego_standalone.py`` in every accelerator design directory (lego.emit.directory):
what the accelerators' ``tb/run.py`` share. It runs from the design directory alone (``python tb/run.py``
puts tb/ on sys.path); it needs lego installed (pip install lego-hw, or the repository's .venv) and
imports only its public API, lego.api."""
import argparse
import sys
from pathlib import Path

DESIGN = Path(__file__).resolve().parent.parent


def parser(seed_help: str) -> argparse.ArgumentParser:
    """The options every accelerator's tb/run.py takes: --engine and --seed (``seed_help``: what it seeds)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="icarus", help="icarus, verilator or cycle (default icarus)")
    ap.add_argument("--seed", type=int, default=0, help=seed_help)
    return ap


def lego_api():
    """lego.api, or exit with what is missing."""
    try:
        import lego.api
    except ImportError:
        sys.exit("tb/run.py needs lego installed in this interpreter (pip install lego-hw)")
    return lego.api


def run_sim(engine: str, seed: int, suffix=None, lines=None) -> int:
    """``lego sim DIR`` on ``engine``: PASS when the outputs match the golden model and the cycles the
    exact model's. Prints the verdict line (with ``suffix(report)`` appended) and ``lines(report)`` below
    it; the exit status."""
    rep = lego_api().simulate(DESIGN, engine, seed=seed)
    ok = bool(rep.match) and rep.extra.get("cycles_predicted") == rep.cycles
    print(f"{'PASS' if ok else 'FAIL'}: {engine} cycles={rep.cycles} predicted={rep.extra.get('cycles_predicted')} "
          f"max_abs_err={rep.max_abs_err}" + (suffix(rep) if suffix else ""))
    for line in lines(rep) if lines else ():
        print(line)
    return 0 if ok else 1

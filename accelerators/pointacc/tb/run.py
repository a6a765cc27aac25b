"""Standalone run of this PointAcc design's bench against sw_reference.pointacc; needs lego installed
(pip install lego-hw, or the repository's .venv) and imports only its public API, lego.api.

    python tb/run.py [--engine icarus|verilator|cycle] [--seed N]

The bench (`lego sim DIR`): FPS, kNN, ball query, downsample and both kernel maps on the mapping unit,
then a 3x3x3 sparse convolution through the MMU (gathers) and the matrix unit, on the unique 5 cm
voxels of a crop of the bundled Ouster frame (seed 0: nearest the sensor; another seed: another crop,
other features and weights); outputs bit-exact and cycles exact against the model.
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="icarus", help="icarus, verilator or cycle (default icarus)")
    ap.add_argument("--seed", type=int, default=0, help="the crop and the random features/weights (default 0)")
    a = ap.parse_args(argv)
    try:
        from lego.api import simulate
    except ImportError:
        sys.exit("tb/run.py needs lego installed in this interpreter (pip install lego-hw)")
    rep = simulate(HERE.parent, a.engine, seed=a.seed)
    ok = bool(rep.match) and rep.extra.get("cycles_predicted") == rep.cycles
    print(f"{'PASS' if ok else 'FAIL'}: {a.engine} cycles={rep.cycles} predicted={rep.extra.get('cycles_predicted')} "
          f"max_abs_err={rep.max_abs_err}" + (f" problems={rep.extra['problems']}" if rep.extra.get("problems") else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Standalone run of this PointAcc design's bench against sw_reference.pointacc; needs lego installed
(pip install lego-hw, or the repository's .venv) and imports only its public API, lego.api.

    python tb/run.py [--engine icarus|verilator|cycle] [--seed N]

The bench (`lego sim DIR`): FPS, kNN, ball query, downsample and both kernel maps on the mapping unit,
then a 3x3x3 sparse convolution through the MMU (gathers) and the matrix unit, on the unique 5 cm
voxels of a crop of the bundled Ouster frame (seed 0: nearest the sensor; another seed: another crop,
other features and weights); outputs bit-exact and cycles exact against the model.
"""
import sys

from lego_standalone import parser, run_sim


def problems(rep):
    return f" problems={rep.extra['problems']}" if rep.extra.get("problems") else ""


def main(argv=None):
    a = parser("the crop and the random features/weights (default 0)").parse_args(argv)
    return run_sim(a.engine, a.seed, suffix=problems)


if __name__ == "__main__":
    sys.exit(main())

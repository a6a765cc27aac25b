"""pytest entry: python -m pytest DIR/tb. The design's bench through tb/run.py (lego.api only) on every
engine: the cycle model, then pointacc_top under Icarus and Verilator against sw_reference.pointacc
(outputs bit-exact, cycles exact)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import main  # noqa: E402


@pytest.mark.parametrize("engine", ["cycle", "icarus", "verilator"])
def test_design(engine):
    assert main(["--engine", engine]) == 0

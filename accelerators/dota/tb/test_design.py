"""pytest entry: python -m pytest DIR/tb. `lego sim DIR` (an attention head and a linear layer with GELU and
LayerNorm, bit-exact against sw_reference.dota_fx, cycles against the exact model) on every engine, through
tb/run.py (lego.api only)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import main  # noqa: E402


@pytest.mark.parametrize("engine", ["cycle", "icarus", "verilator"])
def test_design(engine):
    assert main(["--engine", engine]) == 0

"""pytest entry: python -m pytest DIR/tb. The design's benches through tb/run.py (lego.api only): `lego sim DIR`
(trace rows through spatten_top, outputs and cycles checked) on every engine, then the pipeline and unit
benches against sw_reference.spatten under Icarus and Verilator, two random cases each of at most 64 tokens
(the full capacity runs with `python tb/run.py --bench pipeline|units`)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import main  # noqa: E402


@pytest.mark.parametrize("engine", ["cycle", "icarus", "verilator"])
def test_design(engine):
    assert main(["--engine", engine]) == 0


@pytest.mark.parametrize("bench", ["pipeline", "units"])
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_bench(engine, bench):
    assert main(["--engine", engine, "--bench", bench, "--cases", "2", "--max-n", "64"]) == 0

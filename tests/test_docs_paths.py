"""Every repository path the docs and the README name as a test, bench or source file exists: a reader who
runs ``pytest tests/...`` from a doc must find the file (several docs named tests that had been moved)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w./-])((?:tests|bench|lego|simulator|accelerators|sw_reference|cuda_kernels)/[\w/]+\.py)\b")


def test_named_python_files_exist():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {(d.name, m) for d in docs for m in PATH.findall(d.read_text())}
    assert len(named) > 50                     # the pattern finds the docs' paths
    missing = sorted((doc, p) for doc, p in named if not (ROOT / p).exists())
    assert not missing, missing

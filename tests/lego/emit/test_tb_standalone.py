"""DIR/tb as docs/ARCHITECTURE.md §4 ships it: ``python -m pytest DIR/tb`` on a copy of the design
directory, run from elsewhere with the installed package only (no repository on sys.path, no repository
conftest or pytest configuration), for an array and for the attention accelerator. Each mode runs under
Icarus and Verilator against the golden model, and pytest must report exactly that many passing tests.

The designs are test_engine's (gemm-2x2-ws) and test_engine's attention-3x2-fused: the same Verilog,
so the RTL builds made there serve here."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from lego.generate import generate

DESIGNS = [("gemm", "M=5,N=3,K=6", "2x2", ("ws",)), ("attention", "L=5,D=3", "3x2", ("ws", "is"))]


@pytest.mark.rtl
@pytest.mark.parametrize("wl,shape,arr,dfs", DESIGNS, ids=[d[0] for d in DESIGNS])
def test_pytest_dir_tb_standalone(tmp_path, wl, shape, arr, dfs):
    generate(wl, shape, arr, dfs, 8, True, tmp_path / "gen")
    d = tmp_path / "elsewhere" / "design"
    shutil.copytree(tmp_path / "gen", d)
    shutil.rmtree(tmp_path / "gen")                    # nothing of the original directory remains
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    probe = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('tests'), "
                            "u.find_spec('lego') is not None)"], cwd=d.parent, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert probe.split() == ["None", "True"]          # lego is installed; the repository's tests are not importable
    r = subprocess.run([sys.executable, "-m", "pytest", str(d / "tb"), "-q", "-p", "no:cacheprovider"],
                       cwd=d.parent, env=env, capture_output=True, text=True, timeout=900)
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    n = 2 * len(dfs)                                   # icarus and verilator per mode
    assert re.search(rf"\b{n} passed\b", r.stdout) and " failed" not in r.stdout, tail

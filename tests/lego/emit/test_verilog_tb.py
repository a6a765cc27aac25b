"""The plain Verilog-2005 testbench and its numpy vector writer, used as a user would: the design
directory copied elsewhere, vectors written by tb/lego_host.py (numpy and the manifest only), then
iverilog -g2005 and vvp, with several jobs, mode switches and rst pulses between runs."""
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lego.generate import generate
from lego.host import place

DESIGNS = [
    # id, workload, shape, array, dataflows, jobs
    ("gemm-4x8-os-ws", "gemm", "M=37,N=23,K=19", "4x8", ("os", "ws"), "os,ws,os,!ws,!os"),
    ("gemm-2x2-ws", "gemm", "M=5,N=3,K=6", "2x2", ("ws",), "ws,!ws,ws"),
    ("conv2d-is-os-pad", "conv2d", "N=1,C=2,K=3,H=5,W=6,R=3,S=3,STRIDE=2,PAD=1", "2x3", ("is", "os"),
     "is,os,!is,is"),
    ("u8-ws-os", "u8.yaml", None, "2x2", ("ws", "os"), "ws,os,!ws"),
]
U8 = """name: u8gemm
iterators: {i: 5, j: 3, k: 6}
tensors:
  X: {index: [i, k], role: input, dtype: uint8}
  W: {index: [k, j], role: input, dtype: int8}
  Y: {index: [i, j], role: output, dtype: int32}
"""
STDLIB = {"__future__", "argparse", "json", "re", "sys", "pathlib"}


@pytest.fixture(scope="module", params=DESIGNS, ids=[d[0] for d in DESIGNS])
def design(request, tmp_path_factory):
    _, wl, shape, arr, dfs, jobs = request.param
    root = tmp_path_factory.mktemp("ptb")
    if wl == "u8.yaml":
        (root / wl).write_text(U8)
        wl = str(root / wl)
    generate(wl, shape, arr, dfs, 8, True, root / "gen")
    moved = root / "elsewhere" / "design"             # the directory is the hand-off: no repository path
    shutil.copytree(root / "gen", moved)
    return moved, jobs


def _vvp(d: Path, vectors: Path, status: int = 0) -> list[str]:
    """The testbench's output; vvp exits with ``status`` (0 on PASS, 1 on FAIL)."""
    top = next(d.glob("*.core")).stem
    subprocess.run(["iverilog", "-g2005", "-s", f"tb_{top}", "-o", str(d / "tb.vvp"), str(d / f"{top}.v"),
                    str(d / "tb" / f"tb_{top}.v")], check=True, capture_output=True)
    r = subprocess.run(["vvp", "-n", str(d / "tb.vvp"), f"+vectors={vectors}"], capture_output=True, text=True)
    assert r.returncode == status, (r.returncode, r.stdout[-2000:])
    return r.stdout.strip().splitlines()


@pytest.mark.rtl
def test_plain_testbench_passes_sequences(design):
    d, jobs = design
    w = subprocess.run([sys.executable, "-I", str(d / "tb" / "lego_host.py"), "--jobs", jobs, "--seed", "4"],
                       capture_output=True, text=True, cwd=d.parent)
    assert w.returncode == 0, w.stderr
    njobs = len(jobs.split(","))
    lines = _vvp(d, d / "tb" / "vectors.txt")
    assert lines[-1].startswith(f"PASS: {njobs} jobs, "), lines[-20:]
    # the vectors check every output of every job
    text = (d / "tb" / "vectors.txt").read_text().splitlines()
    assert sum(ln.startswith("S ") for ln in text) == njobs
    assert sum(ln.startswith("X ") for ln in text) == 1 + jobs.count("!")
    # a wrong expected value is reported with its job, bank and address
    k = next(i for i, ln in enumerate(text) if ln.startswith("R "))
    _, b, a, y = text[k].split()
    text[k] = f"R {b} {a} {int(y) + 1}"
    (d / "tb" / "bad.txt").write_text("\n".join(text) + "\n")
    lines = _vvp(d, d / "tb" / "bad.txt", status=1)
    assert f"job 0: rd_bank {b} rd_addr {a}: got {y}, expected {int(y) + 1}" in lines
    assert lines[-1].startswith("FAIL: 1 errors")


@pytest.mark.rtl
def test_run_plain_script(design):
    d, jobs = design
    r = subprocess.run(["sh", str(d / "tb" / "run_plain.sh"), "--jobs", jobs.replace("!", ""), "--seed", "9"],
                       capture_output=True, text=True, env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                                           "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1].startswith("PASS: ")


def test_vector_writer_needs_only_numpy():
    src = Path(__file__).resolve().parents[3] / "lego" / "host.py"
    mods = set()
    for node in ast.walk(ast.parse(src.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the file is copied into tb/"
            mods.add(node.module.split(".")[0])
    assert mods <= STDLIB | {"numpy"}, mods


def test_docs_example_placement(tmp_path):
    """docs/host_protocol.md's worked example: X[4, 3] of the 2x2 ws GEMM M=5,N=3,K=6."""
    lay = {"banks": 2, "depth": 15, "replicated": False, "g": [1, 1], "B": [1, 2], "local_extents": [5, 3],
           "bank_ids": [0, 1]}
    generate("gemm", "M=5,N=3,K=6", "2x2", ("ws",), 8, True, tmp_path / "d")
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert man["layouts"]["ws"]["X"] == lay and man["ld_tensor"] == {"X": 0, "W": 1}
    (mask, bank, addr), = place(lay, np.array([[4, 3]]))
    assert (bool(mask[0]), int(bank[0]), int(addr[0])) == (True, 1, 13)
    # replicated: every bank, row-major address
    rep = dict(lay, replicated=True, local_extents=[5, 6])
    copies = place(rep, np.array([[4, 3]]))
    assert [(int(b[0]), int(a[0])) for _, b, a in copies] == [(0, 27), (1, 27)]

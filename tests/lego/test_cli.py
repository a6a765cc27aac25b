"""Bad input: exit 2, exactly one stderr line naming the problem, no traceback, nothing left behind."""
import subprocess
import sys
from pathlib import Path

import pytest

LEGO = [sys.executable, "-m", "lego.cli"]

YAMLS = {
    "tag.yaml": "!!python/object/apply:os.system ['echo pwned']\n",
    "nonaffine.yaml": "name: q\niterators: {i: 4, j: 4}\ntensors:\n  X: {index: [i*j], role: input}\n"
                      "  W: {index: [j], role: input}\n  Y: {index: [i], role: output}\n",
    "unknown_iter.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [z], role: input}\n"
                         "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\n",
    "badrole.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [i], role: weight}\n",
    "negative.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [i - 1], role: input}\n"
                     "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\n",
    "outrange.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [i], role: input, shape: [3]}\n"
                     "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\n",
    "rank.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [i], role: input, shape: [4, 4]}\n"
                 "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\n",
    "twoout.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [i], role: input}\n"
                   "  W: {index: [i], role: output}\n  Y: {index: [i], role: output}\n",
    "badextent.yaml": "name: q\niterators: {i: four}\ntensors: {}\n",
    "zeroextent.yaml": "name: q\niterators: {i: 0}\ntensors:\n  X: {index: [i], role: input}\n"
                       "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\n",
    "badbody.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [i], role: input}\n"
                    "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\nbody: fft\n",
    "baddtype.yaml": "name: q\niterators: {i: 4}\ntensors:\n  X: {index: [i], role: input, dtype: float32}\n"
                     "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\n",
    "notmap.yaml": "- 1\n- 2\n",
    "syntax.yaml": "name: [unclosed\n",
    "extra.yaml": "name: q\niterators: {i: 4}\ntensors: {}\nfoo: 1\n",
    "unused.yaml": "name: q\niterators: {i: 4, j: 3}\ntensors:\n  X: {index: [i], role: input}\n"
                   "  W: {index: [i], role: input}\n  Y: {index: [i], role: output}\n",
    "bad.json": "{not json",
    "df_rank.yaml": "A_T: [[1]]\nA_S: [[1, 0]]\nT: [4]\n",
    "df_notinj.yaml": "A_T: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\nA_S: [[0, 0], [0, 0], [0, 0]]\nT: [8, 8, 8]\nc: [1, 1]\n",
    "df_cols.yaml": "A_T: [[1, 0], [0, 1], [0, 0]]\nA_S: [[0, 0], [0, 0], [0, 0]]\nT: [8, 8, 8]\n",
    "df_cover.yaml": "A_T: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\nA_S: [[0, 0], [0, 0], [0, 0]]\nT: [4, 8, 8]\n",
}

G = ["gen", "--out", "{out}"]
CASES = [
    (G + ["--workload", "nosuch"], "unknown workload"),
    (G + ["--workload", "gemm", "--shape", "M=0"], "out of range"),
    (G + ["--workload", "gemm", "--shape", "Q=3"], "unknown key"),
    (G + ["--workload", "gemm", "--shape", "M"], "KEY=VALUE"),
    (G + ["--workload", "gemm", "--shape", "M=x"], "not an integer"),
    (G + ["--workload", "gemm", "--array", "4by4"], "not RxC"),
    (G + ["--workload", "gemm", "--array", "0x4"], "out of range"),
    (G + ["--workload", "gemm", "--array", "100x4"], "out of range"),
    (G + ["--workload", "gemm", "--dataflow", "xs"], "unknown dataflow"),
    (G + ["--workload", "gemm", "--dataflow", "os", "--dataflow", "os"], "given twice"),
    (G + ["--workload", "gemm", "--bits", "7"], "--bits"),
    (G + ["--workload", "gemm", "--dataflow", "missing.yaml"], "not found"),
    (G + ["--workload", "gemm", "--config", "x.yaml"], "--config"),
    (G + ["--workload", "conv2d", "--shape", "H=2,R=3"], "no output"),
    (["gen", "--workload", "gemm"], "--out"),
    (["frobnicate"], "invalid choice"),
    (["sim", "{missing}"], "not a lego design"),
    (["sim", "{design}", "--engine", "spice"], "unknown engine"),
    (["sim", "{design}", "--mode", "ws"], "--mode"),
    (["sim", "{design}", "--inputs", "{missing}.npz"], "not found"),
    (["sim", "{design}", "--inputs", "{badnpz}"], "--inputs"),
    (["sim", "{design}", "--inputs", "{wrongshape}"], "shape"),
    (["gen", "--workload", "gemm", "--out", "{foreign}"], "not made by lego"),
    (["gen", "--workload", "gemm", "--out", "{nofolder}/x/y"], "does not exist"),
] + [(G + ["--workload", "{tmp}/" + k], None) for k in YAMLS if not k.startswith("df_")] + \
    [(G + ["--workload", "gemm", "--dataflow", "{tmp}/" + k], None) for k in YAMLS if k.startswith("df_")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import numpy as np
    tmp = tmp_path_factory.mktemp("bad")
    for k, v in YAMLS.items():
        (tmp / k).write_text(v)
    design = tmp / "design"
    subprocess.run(LEGO + ["gen", "--workload", "gemm", "--shape", "M=3,N=3,K=3", "--array", "2x2",
                           "--out", str(design)], check=True, capture_output=True)
    (tmp / "bad.npz").write_text("nope")
    np.savez(tmp / "wrong.npz", X=np.zeros((2, 2), np.int8), W=np.zeros((3, 3), np.int8))
    foreign = tmp / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    return {"tmp": str(tmp), "design": str(design), "missing": str(tmp / "missing"), "badnpz": str(tmp / "bad.npz"),
            "wrongshape": str(tmp / "wrong.npz"), "foreign": str(foreign), "nofolder": str(tmp / "nofolder")}


def test_enough_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("args,needle", CASES, ids=[" ".join(c[0][:4]) + f"#{i}" for i, c in enumerate(CASES)])
def test_bad_input(env, tmp_path, args, needle):
    out = tmp_path / "out"
    argv = [a.format(out=out, **env) for a in args]
    r = subprocess.run(LEGO + argv, capture_output=True, text=True, cwd=env["tmp"])
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert lines[0].startswith("lego: error: ")
    if needle:
        assert needle in lines[0]
    assert not out.exists()
    assert not list(Path(out.parent).glob(".out.tmp-*"))
    assert (Path(env["foreign"]) / "keep.txt").read_text() == "mine"


def test_force_overwrites_foreign(env, tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    (d / "x").write_text("1")
    r = subprocess.run(LEGO + ["gen", "--workload", "gemm", "--shape", "M=2,N=2,K=2", "--array", "1x1",
                               "--out", str(d), "--force"], capture_output=True, text=True)
    assert r.returncode == 0 and (d / "manifest.json").exists() and not (d / "x").exists()

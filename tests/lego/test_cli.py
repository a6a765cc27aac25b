"""lego.cli, as users call it (a subprocess): bad input gets exit 2 and exactly one stderr line that names
the field, no traceback and nothing left behind; the success paths of every command and option in
docs/ARCHITECTURE.md §2 with their outputs checked."""
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

YAMLS.update({
    "dup.yaml": "name: q\niterators: {i: 4, k: 3}\ntensors:\n  X: {index: [i, k], role: input}\n"
                "  X: {index: [k], role: input}\n  Y: {index: [i], role: output}\n",
    "df_cover1.yaml": "A_T: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\nA_S: [[0, 0], [0, 0], [0, 0]]\nT: [4, 16, 16]\nc: [0, 0]\n",
})
# every workload/dataflow file case names the field (or the file and the key) it refuses
NEEDLES = {
    "tag.yaml": "tag.yaml: YAML tag not allowed",
    "nonaffine.yaml": "tensors.X.index[0]: 'i*j' is not affine",
    "unknown_iter.yaml": "tensors.X.index[0]: unknown iterator 'z'",
    "badrole.yaml": "tensors.X.role: 'weight' (allowed: input, output)",
    "negative.yaml": "tensors.X.index[0]: access reaches -1 < 0",
    "outrange.yaml": "tensors.X.index[0]: access 'i' ranges over [0, 3] but the dimension has size 3",
    "rank.yaml": "tensors.X: shape has rank 2 but index has rank 1",
    "twoout.yaml": "tensors: a 'mac' workload needs exactly one output tensor, got 2",
    "badextent.yaml": "iterators.i: extent must be an integer, got 'four'",
    "zeroextent.yaml": "iterators.i: extent must be a positive integer, got 0",
    "badbody.yaml": "body: unknown functional unit 'fft' (allowed: mac)",
    "baddtype.yaml": "tensors.X.dtype: 'float32' (allowed: int4,",
    "notmap.yaml": "notmap.yaml: top level must be a mapping",
    "syntax.yaml": "syntax.yaml: invalid YAML at line 2",
    "extra.yaml": "extra.yaml: unknown key 'foo' (allowed: name, iterators, tensors, body)",
    "unused.yaml": "iterators.j: iterator is used by no tensor",
    "bad.json": "bad.json: invalid JSON",
    "dup.yaml": "dup.yaml: 'X' is declared twice (line 4 and line 5)",
    "df_rank.yaml": "A_T: has 1 rows, the workload has 3 iterators (rank mismatch)",
    "df_notinj.yaml": "--dataflow: df_notinj: not injective: iteration {'i': 0, 'j': 0, 'k': 0} runs 16 times",
    "df_cols.yaml": "A_T: needs 3 columns (one per temporal loop in T)",
    "df_cover.yaml": "--dataflow: df_cover: not injective",
}

G = ["gen", "--out", "{out}"]
CASES = [
    (G + ["--workload", "nosuch"], "--workload: unknown workload 'nosuch'"),
    (G + ["--workload", "gemm", "--shape", "M=0"], "--shape: M=0 is out of range"),
    (G + ["--workload", "gemm", "--shape", "Q=3"], "--shape: unknown key 'Q' for gemm"),
    (G + ["--workload", "gemm", "--shape", "M"], "--shape: 'M' is not KEY=VALUE"),
    (G + ["--workload", "gemm", "--shape", "M=x"], "--shape: M='x' is not an integer"),
    (G + ["--workload", "gemm", "--shape", "M=100000,N=100000,K=100000"],
     "--shape: the tensors of gemm hold 30,000,000,000 words, more than the 67,108,864 a fixed-shape design"),
    (G + ["--workload", "gemm", "--array", "4by4"], "--array: '4by4' is not RxC"),
    (G + ["--workload", "gemm", "--array", "0x4"], "--array: 0x4 is out of range"),
    (G + ["--workload", "gemm", "--array", "100x4"], "--array: 100x4 is out of range (1..64 per side)"),
    (G + ["--workload", "gemm", "--dataflow", "xs"], "--dataflow: unknown dataflow 'xs'"),
    (G + ["--workload", "gemm", "--dataflow", "os", "--dataflow", "os"], "--dataflow: 'os' given twice"),
    (G + ["--workload", "gemm", "--bits", "7"], "--bits: 7 is not supported"),
    (G + ["--workload", "gemm", "--dataflow", "missing.yaml"], "not found"),
    (G + ["--workload", "gemm", "--config", "x.yaml"], "--config: only valid with --accelerator"),
    (G + ["--workload", "conv2d", "--shape", "H=2,R=3"], "--shape: H=2 with kernel 3"),
    (G + ["--workload", "gemm", "--dataflow", "{tmp}/df_cover1.yaml", "--array", "1x1"],
     "--dataflow: df_cover1: iteration {'i': 4, 'j': 0, 'k': 0} is never executed"),
    (G + ["--workload", "gemm", "--otu", "x"], "--otu: unknown option for lego gen (did you mean --out?)"),
    (["gen", "--workload", "gemm"], "--out: a design directory to write is required"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["sim", "{missing}"], "DIR: '{missing}' is not a lego design directory (no such directory)"),
    (["synth", "{tmp}"], "DIR: '{tmp}' is not a lego design directory (no manifest.json)"),
    (["sim", "{design}", "--engine", "spice"], "--engine: unknown engine 'spice' (allowed: cycle, icarus, verilator)"),
    (["sim", "{design}", "--mode", "ws"], "--mode: 'ws' is not a dataflow of this design (allowed: os)"),
    (["sim", "{design}", "--inputs", "{missing}.npz"], "--inputs: file '{missing}.npz' not found"),
    (["sim", "{design}", "--inputs", "{badnpz}"], "--inputs: '{badnpz}' is not a .npz file"),
    (["sim", "{design}", "--inputs", "{pickled}"], "--inputs: tensor 'X' holds pickled objects"),
    (["sim", "{design}", "--inputs", "{wrongshape}"], "--inputs: tensor 'X' has shape [2, 2], expected [3, 3]"),
    (["sim", "{design}", "--inputs", "{floats}"], "--inputs: tensor 'X' has dtype float64, expected int8"),
    (["sim", "{design}", "--inputs", "{toobig}"], "--inputs: tensor 'W' has values outside int8 [-128, 127]"),
    (["sim", "{udesign}", "--inputs", "{negative_u8}"], "--inputs: tensor 'X' has values outside uint8 [0, 255]"),
    (["sim", "{design}", "--out", "{readonly}/o.npz"], "--out: '{readonly}/o.npz' is not writable"),
    (["sim", "{design}", "--engine", "icarus", "--waves", "{readonly}/w.fst"], "--waves: "),
    (["sim", "{design}", "--trace-window", "0:9"], "--trace-window: only with --trace"),
    (["gen", "--workload", "gemm", "--out", "{foreign}"], "--out: '{foreign}' exists and was not made by lego"),
    (["gen", "--workload", "gemm", "--out", "{nofolder}/x/y"], "does not exist"),
    (["gen", "--accelerator", "spatten", "--workload", "gemm", "--out", "{out}"], "--accelerator: the accelerator"),
] + [(G + ["--workload", "{tmp}/" + k], NEEDLES[k]) for k in YAMLS if not k.startswith("df_")] + \
    [(G + ["--workload", "gemm", "--dataflow", "{tmp}/" + k], NEEDLES[k]) for k in YAMLS
     if k.startswith("df_") and k in NEEDLES]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import numpy as np
    tmp = tmp_path_factory.mktemp("bad")
    for k, v in YAMLS.items():
        (tmp / k).write_text(v)
    design, udesign = tmp / "design", tmp / "udesign"
    subprocess.run(LEGO + ["gen", "--workload", "gemm", "--shape", "M=3,N=3,K=3", "--array", "2x2",
                           "--out", str(design)], check=True, capture_output=True)
    (tmp / "u8.yaml").write_text("name: u8\niterators: {i: 3, j: 2, k: 4}\ntensors:\n"
                                 "  X: {index: [i, k], role: input, dtype: uint8}\n"
                                 "  W: {index: [k, j], role: input, dtype: int8}\n  Y: {index: [i, j], role: output}\n")
    subprocess.run(LEGO + ["gen", "--workload", str(tmp / "u8.yaml"), "--array", "2x2", "--out", str(udesign)],
                   check=True, capture_output=True)
    (tmp / "bad.npz").write_text("nope")
    z = np.zeros((3, 3), np.int8)
    np.savez(tmp / "wrong.npz", X=np.zeros((2, 2), np.int8), W=z)
    np.savez(tmp / "pickled.npz", X=np.array([object(), 1], dtype=object), W=z)
    np.savez(tmp / "floats.npz", X=np.zeros((3, 3)), W=z)
    np.savez(tmp / "toobig.npz", X=z, W=np.full((3, 3), 200, np.int16))
    np.savez(tmp / "negative_u8.npz", X=np.full((3, 4), -1, np.int16), W=np.zeros((4, 2), np.int8))
    foreign = tmp / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    ro = Path("/proc")              # unwritable even for root (CI runs as root: a chmod would not do)
    return {"tmp": str(tmp), "design": str(design), "udesign": str(udesign), "missing": str(tmp / "missing"),
            "badnpz": str(tmp / "bad.npz"), "pickled": str(tmp / "pickled.npz"), "floats": str(tmp / "floats.npz"),
            "toobig": str(tmp / "toobig.npz"), "negative_u8": str(tmp / "negative_u8.npz"),
            "wrongshape": str(tmp / "wrong.npz"), "foreign": str(foreign), "nofolder": str(tmp / "nofolder"),
            "readonly": str(ro)}


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
    for k, v in env.items():
        needle = needle.replace("{" + k + "}", v)
    assert needle in lines[0], lines[0]
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

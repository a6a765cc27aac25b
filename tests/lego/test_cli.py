"""lego.cli, as users call it (a subprocess): bad input gets exit 2 and exactly one stderr line that names
the field, no traceback and nothing left behind; the success paths of every command and option in
docs/ARCHITECTURE.md §2 with their outputs checked."""
import csv
import itertools
import json
import math
import os
import re
import shutil
import stat
import subprocess
import tomllib
import sys
from pathlib import Path

import numpy as np
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
    (["synth", "{design}", "--yosys", "{missing}"], "--yosys: '{missing}' is not an executable file"),
    (["synth", "{design}", "--timeout-s", "0"], "--timeout-s: must be a positive number of seconds, got 0"),
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


# ------------------------------------------------------------------------------------ success paths

def cli(*argv) -> tuple[int, str, str]:
    """``lego ARGV`` in this process (lego.cli.main): exit code, stdout, stderr."""
    import contextlib
    import io

    from lego.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def gemm_oracle(X, W):
    """Y = X W in Python integers (no numpy matmul, no lego)."""
    return np.array([[sum(int(X[i, k]) * int(W[k, j]) for k in range(X.shape[1])) for j in range(W.shape[1])]
                     for i in range(X.shape[0])], dtype=np.int64)


# The host-protocol example design (docs/host_protocol.md): gemm M=5 N=3 K=6 on 2x2, ws (rows k, cols j,
# inner i); test_engine's gemm-2x2-ws, so RTL builds are shared.
WS = ("--workload", "gemm", "--shape", "M=5,N=3,K=6", "--array", "2x2", "--dataflow", "ws")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("ws") / "d"
    code, out, err = cli("gen", *WS, "--out", d, "--json")
    assert code == 0, err
    return d, json.loads(out)


# the accelerators pyproject.toml declares, read from the file itself (what `lego list` must show, no more)
ACCELERATORS = sorted(tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
                      ["project"]["entry-points"]["lego.accelerators"])


def test_list_text_and_json(tmp_path):
    """A fresh process (only the entry points of pyproject.toml are registered)."""
    r = subprocess.run(LEGO + ["list", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    obj = json.loads(r.stdout)
    assert sorted(obj) == ["accelerators", "dataflows", "engines", "workloads"]
    assert obj["dataflows"] == ["os", "ws", "is", "os-bcast", "ws-bcast", "is-bcast"]
    assert obj["engines"] == ["cycle", "icarus", "verilator"]
    assert sorted(obj["accelerators"]) == ACCELERATORS
    assert sorted(obj["workloads"]) == ["attention", "bmm", "conv2d", "dwconv2d", "gemm"]
    conv = {"N": 1, "C": 3, "K": 8, "H": 9, "W": 9, "R": 3, "S": 3, "STRIDE": 1, "PAD": 0}
    assert {k: v["shape"] for k, v in obj["workloads"].items()} == {
        "gemm": {"M": 16, "N": 16, "K": 16}, "bmm": {"B": 2, "M": 8, "N": 8, "K": 8}, "conv2d": conv,
        "dwconv2d": {k: v for k, v in conv.items() if k != "K"} | {"C": 8}, "attention": {"L": 12, "D": 8}}
    assert obj["workloads"]["gemm"]["body"] == "Y[i,j] += X[i,k] * W[k,j]"
    assert obj["workloads"]["attention"]["accelerator"] == "attention"
    assert all("accelerator" not in v for k, v in obj["workloads"].items() if k != "attention")

    r = subprocess.run(LEGO + ["list"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == "workloads:"
    assert [ln.split()[0] for ln in lines[1:6]] == ["gemm", "bmm", "conv2d", "dwconv2d", "attention"]
    assert lines[1] == "  gemm       Y[i,j] += X[i,k] * W[k,j]   defaults: M=16,N=16,K=16"
    assert lines[6:] == ["dataflows:    os, ws, is, os-bcast, ws-bcast, is-bcast   (or a .yaml file with A_T, "
                         "A_S, T, c)", "accelerators: " + ", ".join(ACCELERATORS), "engines:      cycle, icarus, verilator"]


def test_gen_json(ws):
    d, obj = ws
    rep = json.loads((d / "report.json").read_text())
    assert sorted(obj) == ["cycles", "dir", "registers", "summary", "top"]
    assert obj["cycles"] == {"ws": 34}                   # 30 steps + 1 + 1 + 2 (tests/simulator/test_cycle.py)
    assert obj["dir"] == str(d) and obj["top"] == "lego_gemm"
    assert obj["registers"] == rep["registers"]
    assert obj["summary"] == (f"top lego_gemm, 4 FUs, cycles {{'ws': 34}}, register bits "
                              f"{rep['registers']['lp_bits']} (naive {rep['registers']['naive_bits']})")


def _place_by_hand(layout: dict, d: tuple[int, ...]) -> tuple[int, int]:
    """docs/host_protocol.md, cyclic layout, written out for one element: (bank, addr)."""
    g, B, E = layout["g"], layout["B"], layout["local_extents"]
    c = [(dm // gm) % Bm for dm, gm, Bm in zip(d, g, B)]
    loc = [(dm // (gm * Bm)) * gm + dm % gm for dm, gm, Bm in zip(d, g, B)]
    cid = sum(cm * math.prod(B[m + 1:]) for m, cm in enumerate(c))
    return layout["bank_ids"].index(cid), sum(lm * math.prod(E[m + 1:]) for m, lm in enumerate(loc))


def test_manifest_every_key_by_hand(ws):
    """Every manifest.json key of docs/ARCHITECTURE.md §4 and §8 for the host-protocol example, values
    derived by hand: ws puts k on the rows and j on the columns, so X[i,k] is banked by k over the 2 rows
    (B = [1, 2], 5 x 3 words each), W[k,j] over all 4 FUs (B = [2, 2], 3 x 2 words each) and Y[i,j] by j
    over the 2 columns (B = [1, 2], 5 x 2 words each); the address ports are as wide as the deepest bank
    (15 words: 4 bits), ld_bank addresses 4 banks (2 bits), rd_bank 2 (1 bit), ld_tensor 2 inputs (1 bit)."""
    import lego
    from lego.host import place
    d, _ = ws
    man = json.loads((d / "manifest.json").read_text())
    assert sorted(man) == sorted(["array", "bits", "cycles_predicted", "dataflows", "host", "host_protocol", "kind",
                                  "layouts", "ld_tensor", "lego_version", "loop_nest", "modes", "opt", "ports",
                                  "schema_version", "shape", "spec", "tensors", "top", "workload"])
    assert (man["top"], man["workload"], man["kind"], man["schema_version"]) == ("lego_gemm", "gemm", "array", 2)
    assert man["lego_version"] == lego.__version__ == "0.1.0"
    assert (man["shape"], man["array"], man["bits"], man["opt"]) == ({"M": 5, "N": 3, "K": 6}, [2, 2], 8, True)
    assert (man["dataflows"], man["modes"], man["cycles_predicted"]) == (["ws"], {"ws": 0}, {"ws": 34})
    assert man["ld_tensor"] == {"X": 0, "W": 1}                  # the workload's input order
    assert man["tensors"] == {"X": {"shape": [5, 6], "dtype": "int8", "role": "input", "bits": 8},
                              "W": {"shape": [6, 3], "dtype": "int8", "role": "input", "bits": 8},
                              "Y": {"shape": [5, 3], "dtype": "int32", "role": "output", "bits": 32}}
    assert [(p["name"], p["direction"], p["width"]) for p in man["ports"]] == [
        ("clk", "in", 1), ("rst", "in", 1), ("start", "in", 1), ("mode", "in", 1), ("busy", "out", 1),
        ("done", "out", 1), ("cycles", "out", 32), ("ld_en", "in", 1), ("ld_tensor", "in", 1), ("ld_bank", "in", 2),
        ("ld_addr", "in", 4), ("ld_data", "in", 8), ("rd_bank", "in", 1), ("rd_addr", "in", 4),
        ("rd_data", "out", 32)]
    assert man["layouts"] == {"ws": {
        "X": {"B": [1, 2], "g": [1, 1], "banks": 2, "bank_ids": [0, 1], "depth": 15, "local_extents": [5, 3],
              "replicated": False},
        "W": {"B": [2, 2], "g": [1, 1], "banks": 4, "bank_ids": [0, 1, 2, 3], "depth": 6, "local_extents": [3, 2],
              "replicated": False},
        "Y": {"B": [1, 2], "g": [1, 1], "banks": 2, "bank_ids": [0, 1], "depth": 10, "local_extents": [5, 2],
              "replicated": False}}}
    assert _place_by_hand(man["layouts"]["ws"]["X"], (4, 3)) == (1, 13)     # the example of the page
    for name, t in man["tensors"].items():                      # lego.host places every element there
        lay = man["layouts"]["ws"][name]
        coords = list(np.ndindex(*t["shape"]))
        ((mask, bank, addr),) = place(lay, np.array(coords))
        assert mask.all()
        assert [(int(b), int(a)) for b, a in zip(bank, addr)] == [_place_by_hand(lay, c) for c in coords]
        assert len(set(zip(bank.tolist(), addr.tolist()))) == len(coords)           # no two share a word
        assert int(addr.max()) < lay["depth"] and int(bank.max()) < lay["banks"]
    assert man["host"] == {"reset": {"polarity": "high", "synchronous": True, "min_cycles": 1}, "rd_latency": 1,
                           "ld_latency": 1}
    assert man["loop_nest"] == {"iterators": ["i", "j", "k"], "extents": [5, 3, 6], "body": "mac",
                                "index": {"X": ["i", "k"], "W": ["k", "j"], "Y": ["i", "j"]},
                                "pad": {"X": False, "W": False}}
    assert man["spec"] == {"workload": "gemm", "workload_file": None, "shape": "M=5,N=3,K=6", "array": [2, 2],
                           "dataflows": ["ws"], "bits": 8, "opt": True}
    assert man["host_protocol"].startswith("docs/host_protocol.md: ")


def test_report_every_key_by_hand(ws):
    """report.json (§4, §8) of the same design: 4 FUs; banks and depths as in the manifest; the
    accumulator holds 6 terms of at most 128 * 128 = 2**14 in magnitude: 6 * 2**14 = 98304 < 2**17, so 18
    signed bits; steps 3 * 2 * 5 = 30; one multiplier per FU, one bank read per X and W port (2 + 4), one
    write per Y port (2); 5 * 3 * 6 = 90 MACs."""
    d, _ = ws
    rep = json.loads((d / "report.json").read_text())
    assert sorted(rep) == ["array", "cycles", "fus", "links", "lp", "macs", "memory", "mux_inputs", "passes",
                           "primitives", "registers", "widths"]
    assert (rep["fus"], rep["array"], rep["macs"], rep["mux_inputs"]) == (4, [2, 2], 90, 0)
    assert rep["memory"] == {"banks": {"X": 2, "W": 4, "Y": 2}, "depth": {"X": 15, "W": 6, "Y": 10},
                             "replicated": {"X": False, "W": False, "Y": False}}
    assert rep["widths"] == {"acc_bits": 18, "output_bits": 32, "terms_per_output": 6}
    assert rep["cycles"] == {"predicted": {"ws": 34}, "steps": {"ws": 30}, "fill_drain": {"ws": 4}}
    assert sorted(rep["registers"]) == ["emitted_bits", "lp_bits", "naive_bits"]
    assert 0 < rep["registers"]["emitted_bits"] <= rep["registers"]["lp_bits"] < rep["registers"]["naive_bits"]
    assert sorted(rep["lp"]) == ["constraints", "solve_seconds", "solver", "timing_rows", "variables"]
    assert rep["lp"]["solver"] in ("HiGHS", "CBC") and rep["lp"]["variables"] > 0
    assert (rep["primitives"]["mul"], rep["primitives"]["rd"], rep["primitives"]["wr"]) == (4, 6, 2)
    assert rep["passes"] == ["lower", "reduction-trees", "lp"]
    assert sorted(rep["links"]) == ["delay", "direct", "stationary"]


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["cycle", "icarus"])
def test_sim_inputs_out_json(ws, tmp_path, engine):
    """--inputs/--out/--json: the outputs equal X W computed here; the .npz is written at exactly the
    path given (no .npz appended), holds Y only, as the manifest's int32."""
    d, _ = ws
    rng = np.random.default_rng(5)
    X = rng.integers(-128, 128, (5, 6)).astype(np.int8)
    W = rng.integers(-128, 128, (6, 3)).astype(np.int8)
    np.savez(tmp_path / "in.npz", X=X, W=W)
    out = tmp_path / "result.bin"
    code, text, err = cli("sim", d, "--engine", engine, "--inputs", tmp_path / "in.npz", "--out", out, "--json")
    assert code == 0, err
    obj = json.loads(text)
    want = gemm_oracle(X, W)
    assert obj["outputs"] == {"Y": want.tolist()}
    assert (obj["engine"], obj["cycles"], obj["match"], obj["max_abs_err"], obj["mode"]) == (engine, 34, True, 0.0,
                                                                                           "ws")
    assert obj["sim_seconds"] > 0 and obj["cycles_per_second"] == pytest.approx(34 / obj["sim_seconds"])
    assert {"engine", "cycles", "match", "max_abs_err", "outputs", "sim_seconds", "cycles_per_second"} <= set(obj)
    assert obj["sram_reads"] == {"X": 60, "W": 24} and obj["sram_writes"] == {"Y": 45}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz", "result.bin"]
    with np.load(out) as z:
        assert z.files == ["Y"] and z["Y"].dtype == np.int32 and np.array_equal(z["Y"], want)


def test_sim_text_line(ws):
    d, _ = ws
    code, text, err = cli("sim", d, "--seed", "3")
    assert code == 0 and err == ""
    assert re.fullmatch(r"PASS: cycle mode=ws cycles=34 max_abs_err=0\.0 \(\d+\.\d\d s\)\n", text), text


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.rtl
def test_sim_exit_1_on_tampered_verilog(ws, tmp_path):
    """Every FU multiplier of the copied design's Verilog turned into an adder: Icarus runs it, the outputs
    differ from sw_reference, exit 1 with one line on stderr."""
    d = _copy(ws[0], tmp_path / "bad")
    v = d / "lego_gemm.v"
    text = v.read_text()
    assert text.count("$signed(i0) * $signed(i1)") >= 1
    v.write_text(text.replace("$signed(i0) * $signed(i1)", "$signed(i0) + $signed(i1)"))
    code, out, err = cli("sim", d, "--engine", "icarus", "--json")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("lego: check failed: outputs: max abs error ")
    obj = json.loads(out)
    assert obj["match"] is False and obj["max_abs_err"] > 0 and obj["cycles"] == 34


@pytest.mark.rtl
def test_sim_exit_1_on_cycle_mismatch(ws, tmp_path):
    """The copied design's scheduled graph (design.json) puts its output writes one cycle later, so the
    design predicts 35 cycles; the unchanged Verilog runs in 34: exit 1, the line names both counts."""
    d = _copy(ws[0], tmp_path / "late")
    doc = json.loads((d / "design.json").read_text())
    sigma = doc["graph"]["sigma"]
    wr = [k for k in sigma if k.startswith("wr:")]
    assert wr
    for k in wr:
        sigma[k] += 1
    (d / "design.json").write_text(json.dumps(doc))
    code, out, err = cli("sim", d, "--engine", "icarus", "--json")
    assert code == 1
    assert err == "lego: check failed: cycles: the RTL counted 34, the design predicts 35\n"
    obj = json.loads(out)
    assert obj["match"] is True and obj["cycles"] == 34 and obj["cycles_predicted"] == 35


def test_trace_csv_values(tmp_path):
    """gemm M=5 N=3 K=4 on 2x2, os (rows i, cols j, inner k): loops (t_i, t_j, k) = (3, 2, 4), 24 steps,
    28 cycles. Step s = cycle s for s < 24; X[i,k] and W[k,j] change every step; an output's accumulation
    starts at k = 0 and ends at k = 3; FU (r, c) writes its word (r + c) + 2 cycles after the step, so the
    flushes of the steps with k = 3 land 2, 3, 3 and 4 cycles later (FUs (0,0), (0,1), (1,0), (1,1))."""
    d = tmp_path / "os"
    assert cli("gen", "--workload", "gemm", "--shape", "M=5,N=3,K=4", "--array", "2x2", "--dataflow", "os",
               "--out", d)[0] == 0
    tr = tmp_path / "t.csv"
    code, out, err = cli("sim", d, "--trace", tr, "--trace-window", "0:100")
    assert code == 0, err
    rows = list(csv.reader(open(tr)))
    assert rows[0] == ["cycle", "step", "t_i", "t_j", "k", "chg_X", "chg_W", "first", "last", "flushes_landing"]
    last = [s % 4 == 3 for s in range(24)]
    want = []
    for cyc in range(28):
        land = sum(last[cyc - lag] for lag in (2, 3, 3, 4) if 0 <= cyc - lag < 24)
        if cyc < 24:
            ti, tj, k = cyc // 8, (cyc // 4) % 2, cyc % 4
            want.append([cyc, cyc, ti, tj, k, 1, 1, int(k == 0), int(k == 3), land])
        else:
            want.append([cyc, "", "", "", "", "", "", "", "", land])
    assert rows[1:] == [[str(x) for x in r] for r in want]
    assert sum(r[-1] for r in want) == 4 * 6                       # every FU flushes once per (t_i, t_j)
    tr2 = tmp_path / "w.csv"
    assert cli("sim", d, "--trace", tr2, "--trace-window", "5:9")[0] == 0
    assert list(csv.reader(open(tr2)))[1:] == rows[6:10]


def test_synth_generic_via_cli(tmp_path):
    """gemm M=3 N=2 K=4 on 1x1: the input ports are clk, rst, start, mode, ld_en, ld_tensor, ld_bank,
    rd_bank (1 bit each), ld_addr, rd_addr (4: the deepest bank, X, has 12 words) and ld_data (8): 24 bits;
    outputs busy, done (1), cycles, rd_data (32): 66 bits. Three banks of 12 x 8 (X), 8 x 8 (W) and
    6 x 18 (Y, the accumulator width for 4 terms of at most 2**14) bits: 268 memory bits."""
    d = tmp_path / "g"
    assert cli("gen", "--workload", "gemm", "--shape", "M=3,N=2,K=4", "--array", "1x1", "--out", d)[0] == 0
    code, out, err = cli("synth", d, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert (res["target"], res["top"], res["check"], res["latches"], res["comb_loops"]) == (
        "generic", "lego_gemm", "pass", 0, 0)
    assert (res["in_bits"], res["out_bits"], res["memories"], res["memory_bits"]) == (24, 66, 3, 268)
    assert res["cells"] == sum(res["cells_by_type"].values()) > 0
    assert res["flipflops"] == sum(v for k, v in res["cells_by_type"].items() if "DFF" in k)
    native = shutil.which("yosys")          # Debian's (scripts/setup.sh installs it for FuseSoC)
    if native:
        code, out, err = cli("synth", d, "--json", "--yosys", native)
        assert code == 0, err
        nat = json.loads(out)
        assert nat["yosys"] == native and nat["check"] == "pass" and nat["latches"] == 0
        assert (nat["in_bits"], nat["out_bits"], nat["memory_bits"]) == (24, 66, 268)
        assert nat["flipflops"] > 0 and nat["cells"] > 0


def test_marker_and_regeneration_without_force(tmp_path):
    d = tmp_path / "d"
    d.mkdir()                                                      # an empty directory may be used
    assert cli("gen", "--workload", "gemm", "--shape", "M=2,N=2,K=2", "--array", "1x1", "--out", d)[0] == 0
    assert (d / ".lego").read_text() == "made by lego gen\n"
    (d / "stale.txt").write_text("from an earlier run")
    code, out, err = cli("gen", "--workload", "gemm", "--shape", "M=3,N=2,K=2", "--array", "1x1", "--out", d)
    assert code == 0, err
    # 3*2*2 steps + 2
    assert re.fullmatch(rf"lego: wrote {re.escape(str(d))} \(top lego_gemm, 1 FUs, cycles \{{'os': 14\}}, "
                        r"register bits \d+ \(naive \d+\)\)\n", out), out
    assert json.loads((d / "manifest.json").read_text())["shape"] == {"M": 3, "N": 2, "K": 2}
    assert not (d / "stale.txt").exists() and (d / ".lego").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]     # no temporary or old siblings left


@pytest.mark.parametrize("existing", [False, True])
def test_atomic_write_on_failure_midway(tmp_path, monkeypatch, existing):
    """A write that fails after three files: nothing new at DIR (an earlier design stays as it was), no
    temporary sibling left."""
    d = tmp_path / "d"
    if existing:
        assert cli("gen", "--workload", "gemm", "--shape", "M=2,N=2,K=2", "--array", "1x1", "--out", d)[0] == 0
        before = {p.relative_to(d): p.read_bytes() for p in d.rglob("*") if p.is_file()}
    real = Path.write_text
    calls = []

    def flaky(self, *a, **k):
        if ".d.tmp-" in str(self):
            calls.append(self)
            if len(calls) > 3:
                raise OSError(28, "No space left on device")
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "write_text", flaky)
    with pytest.raises(OSError, match="No space left"):
        cli("gen", "--workload", "gemm", "--shape", "M=3,N=3,K=3", "--array", "2x2", "--out", d)
    assert len(calls) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == (["d"] if existing else [])
    if existing:
        assert {p.relative_to(d): p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


CONV_JSON = {"name": "conv_valid", "iterators": {"n": 1, "k": 3, "c": 2, "h": 4, "w": 4, "r": 2, "s": 2},
             "tensors": {"X": {"index": ["n", "c", "h + r", "w + s"], "role": "input", "dtype": "int8"},
                         "W": {"index": ["k", "c", "r", "s"], "role": "input", "dtype": "int8"},
                         "Y": {"index": ["n", "k", "h", "w"], "role": "output", "dtype": "int32"}},
             "body": "mac"}


def test_json_user_workload(tmp_path):
    """The YAML example of docs/ARCHITECTURE.md §5 as a JSON file, smaller: X is 1 x 2 x 5 x 5 (h + r up to
    3 + 1), the outputs a valid 2x2 convolution computed here with loops."""
    f = tmp_path / "conv.json"
    f.write_text(json.dumps(CONV_JSON))
    d = tmp_path / "d"
    code, out, err = cli("gen", "--workload", f, "--array", "2x2", "--out", d, "--json")
    assert code == 0, err
    man = json.loads((d / "manifest.json").read_text())
    assert (man["top"], man["workload"]) == ("lego_conv", "conv.json")
    assert {k: v["shape"] for k, v in man["tensors"].items()} == {"X": [1, 2, 5, 5], "W": [3, 2, 2, 2],
                                                                  "Y": [1, 3, 4, 4]}
    assert man["loop_nest"]["index"]["X"] == ["n", "c", "h + r", "w + s"]
    assert json.loads((d / "workload.json").read_text()) == CONV_JSON         # the file travels with it
    rng = np.random.default_rng(9)
    X = rng.integers(-128, 128, (1, 2, 5, 5)).astype(np.int8)
    W = rng.integers(-128, 128, (3, 2, 2, 2)).astype(np.int8)
    np.savez(tmp_path / "in.npz", X=X, W=W)
    code, out, err = cli("sim", d, "--inputs", tmp_path / "in.npz", "--out", tmp_path / "o.npz", "--json")
    assert code == 0, err
    Y = np.zeros((1, 3, 4, 4), np.int64)
    for k, c, h, w, r, s in itertools.product(range(3), range(2), range(4), range(4), range(2), range(2)):
        Y[0, k, h, w] += int(X[0, c, h + r, w + s]) * int(W[k, c, r, s])
    assert json.loads(out)["outputs"]["Y"] == Y.tolist()
    with np.load(tmp_path / "o.npz") as z:
        assert z["Y"].dtype == np.int32 and np.array_equal(z["Y"], Y)


def test_explicit_dataflow_file(tmp_path):
    """{A_T, A_S, b, T, c}: gemm M=4 N=6 K=3 on 2x3 with j on the rows and i on the columns (transposed from
    os): i = 3 t0 + s1, j = 2 t1 + s0, k = t2 over T = (2, 3, 3): 18 steps, systolic 1 + 2 + 2 -> 23 cycles.
    The mode is named after the file; the outputs equal X W."""
    f = tmp_path / "tr.yaml"
    f.write_text("A_T: [[3, 0, 0], [0, 2, 0], [0, 0, 1]]\nA_S: [[0, 1], [1, 0], [0, 0]]\nb: [0, 0, 0]\n"
                 "T: [2, 3, 3]\nc: [1, 1]\n")
    d = tmp_path / "d"
    code, out, err = cli("gen", "--workload", "gemm", "--shape", "M=4,N=6,K=3", "--array", "2x3", "--dataflow", f,
                         "--out", d, "--json")
    assert code == 0, err
    assert json.loads(out)["cycles"] == {"tr": 23}
    man = json.loads((d / "manifest.json").read_text())
    assert man["dataflows"] == ["tr"] and man["spec"]["dataflows"] == ["dataflow_0.yaml"]
    assert (d / "dataflow_0.yaml").read_text() == f.read_text()
    rng = np.random.default_rng(4)
    X, W = rng.integers(-128, 128, (4, 3)).astype(np.int8), rng.integers(-128, 128, (3, 6)).astype(np.int8)
    np.savez(tmp_path / "in.npz", X=X, W=W)
    for engine in ("cycle", "icarus"):
        code, out, err = cli("sim", d, "--engine", engine, "--inputs", tmp_path / "in.npz", "--json")
        assert code == 0, err
        obj = json.loads(out)
        assert obj["outputs"]["Y"] == gemm_oracle(X, W).tolist() and obj["cycles"] == 23


def test_directories_follow_the_umask(tmp_path):
    """umask 027 (a subprocess, so the test's own umask is untouched): directories 0750, files 0640, the
    shell script 0750."""
    d = tmp_path / "d"
    r = subprocess.run(LEGO + ["gen", "--workload", "gemm", "--shape", "M=2,N=2,K=2", "--array", "1x1", "--out",
                               str(d)], capture_output=True, text=True, preexec_fn=lambda: os.umask(0o027))
    assert r.returncode == 0, r.stderr
    mode = {p.relative_to(d).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [d, *d.rglob("*")]}
    assert mode["."] == mode["tb"] == 0o750
    assert mode["manifest.json"] == mode["lego_gemm.v"] == mode[".lego"] == mode["tb/run.py"] == 0o640
    assert mode["tb/run_plain.sh"] == 0o750
    assert {m for m in mode.values()} == {0o750, 0o640}

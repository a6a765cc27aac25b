"""The RTL matrix, run as a host runs a design: every design gets a sequence of jobs on one powered-up
simulation (mode switches without reset, repeated runs without reloading, partial reloads, rst pulses
between runs), on the cycle engine, Icarus and Verilator. Every job is checked on its own: outputs
bit-exact against an oracle written here from the manifest's loop nest (``lego.host.reference``, which
parses the index expressions; not the generator's IR), cycles equal across engines, equal to the
manifest's prediction and to the ``cycles`` register.

Designs: shapes that do not divide the arrays; 1x1 up to 8x8, non-square; 8- and 16-bit; signed,
unsigned and mixed inputs; every preset; fused designs of two and three dataflows.

Cycles are also bounded by a formula written here from the shapes (``cycle_bounds``), independent of the
design's prediction: steps = ceil(e_rows/R) * ceil(e_cols/C) * the other extents, with the (rows, cols)
iterators of each preset from the table in docs/simulator.md §1; fill/drain = c0*(R-1) + c1*(C-1) + p,
c = (1, 1) for the presets and (0, 0) for *-bcast, where 2 <= p <= 2 + ceil(log2(max(R, C))) + [bits > 8]:
one cycle for the synchronous bank read and one for the output write at least, and at most one pipeline
register per adder level of a reduction tree across one array axis and one for a multiplier wider than
8x8 bits (tests/simulator/test_cycle.py derives p = 2 exactly for small 8-bit designs)."""
import math
from pathlib import Path

import numpy as np
import pytest

from lego.api import simulate
from lego.generate import generate
from lego.host import Banks, input_names, random_inputs, reference
from simulator.engine import Job, get_engine, read_manifest

MATRIX = [
    # id, workload, shape, array, dataflows, bits
    ("gemm-1x1", "gemm", "M=3,N=2,K=4", "1x1", ("os",), 8),
    ("gemm-4x8-os-ws", "gemm", "M=37,N=23,K=19", "4x8", ("os", "ws"), 8),
    ("gemm-2x2-ws", "gemm", "M=5,N=3,K=6", "2x2", ("ws",), 8),
    ("gemm-2x2-is-ws", "gemm", "M=5,N=3,K=6", "2x2", ("is", "ws"), 8),
    ("gemm-4x8-fused3-16b", "gemm", "M=9,N=13,K=5", "4x8", ("os", "ws", "is"), 16),
    ("conv2d-3x4-fused3", "conv2d", "N=1,C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1", "3x4", ("os", "ws", "is"), 8),
    ("dwconv2d-2x3-bcast", "dwconv2d", "C=5,H=6,W=7,R=3,S=3,PAD=1", "2x3", ("os", "ws-bcast", "is-bcast"), 8),
    ("bmm-8x8", "bmm", "B=2,M=9,N=10,K=3", "8x8", ("os", "ws-bcast"), 8),
    ("gemm-8x2-is-16b", "gemm", "M=5,N=3,K=17", "8x2", ("is-bcast", "os-bcast"), 16),
    ("u8-mixed-2x2", "u8.yaml", None, "2x2", ("ws", "os"), 8),
    ("u16-3x2", "u16.yaml", None, "3x2", ("is", "os-bcast"), 16),
]

USER = {
    "u8.yaml": """name: u8gemm
iterators: {i: 5, j: 3, k: 6}
tensors:
  X: {index: [i, k], role: input, dtype: uint8}
  W: {index: [k, j], role: input, dtype: int8}
  Y: {index: [i, j], role: output, dtype: int32}
""",
    "u16.yaml": """name: u16mv
iterators: {i: 4, j: 5, k: 7}
tensors:
  W: {index: [k, j], role: input, dtype: uint16}
  X: {index: [i, k], role: input, dtype: uint16}
  Y: {index: [i, j], role: output, dtype: int64}
""",
}


# (rows, cols) iterators of each preset, docs/simulator.md §1 (written here, not lego's PRESET_TABLE)
PRESET_AXES = {"gemm": {"os": "ij", "ws": "kj", "is": "ik"}, "bmm": {"os": "ij", "ws": "kj", "is": "ik"},
               "conv2d": {"os": "kw", "ws": "ck", "is": "cw"}, "dwconv2d": {"os": "cw", "ws": "cs", "is": "cw"}}


def extents(wl: str, shape: str) -> dict[str, int]:
    """Iterator extents of a built-in workload, from its shape string (conv output size by hand)."""
    s = {"N": 1, "STRIDE": 1, "PAD": 0, **{k: int(v) for k, v in (kv.split("=") for kv in shape.split(","))}}
    if wl == "gemm":
        return {"i": s["M"], "j": s["N"], "k": s["K"]}
    if wl == "bmm":
        return {"b": s["B"], "i": s["M"], "j": s["N"], "k": s["K"]}
    oh = (s["H"] + 2 * s["PAD"] - s["R"]) // s["STRIDE"] + 1
    ow = (s["W"] + 2 * s["PAD"] - s["S"]) // s["STRIDE"] + 1
    e = {"n": s["N"], "c": s["C"], "h": oh, "w": ow, "r": s["R"], "s": s["S"]}
    return {**e, "k": s["K"]} if wl == "conv2d" else e


def cycle_bounds(wl: str, shape: str, arr: str, df: str, bits: int) -> tuple[int, int]:
    R, C = (int(v) for v in arr.split("x"))
    e = extents(wl, shape)
    a, b = PRESET_AXES[wl][df.removesuffix("-bcast")]
    steps = math.ceil(e[a] / R) * math.ceil(e[b] / C) * math.prod(v for k, v in e.items() if k not in (a, b))
    skew = 0 if df.endswith("-bcast") else (R - 1) + (C - 1)
    return steps + skew + 2, steps + skew + 2 + math.ceil(math.log2(max(R, C))) + (bits > 8)


def test_cycle_bounds_by_hand():
    assert cycle_bounds("gemm", "M=5,N=3,K=6", "2x2", "ws", 8) == (30 + 4, 30 + 5)
    assert cycle_bounds("conv2d", "N=1,C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1", "3x4", "os", 8) == (151, 153)
    # is: rows i (ceil(5/8) = 1), cols k (ceil(17/2) = 9), j = 3 -> 27 steps; broadcast, 16-bit, 8 rows
    assert cycle_bounds("gemm", "M=5,N=3,K=17", "8x2", "is-bcast", 16) == (27 + 2, 27 + 2 + 3 + 1)


@pytest.fixture(scope="module", params=MATRIX, ids=[m[0] for m in MATRIX])
def design(request, tmp_path_factory):
    _, wl, shape, arr, dfs, bits = request.param
    root = tmp_path_factory.mktemp("mx")
    if wl in USER:
        (root / wl).write_text(USER[wl])
        wl = str(root / wl)
    generate(wl, shape, arr, dfs, bits, True, root / "d")
    return root / "d", request.param


def host_sequence(man: dict, seed: int) -> list[Job]:
    """Seven jobs: m0 full load; m0 again without reloading; m1 full; m0 full (os→ws→os without rst on a
    fused design); rst then m0 with only the second input reloaded; rst then the last mode, full; the last
    mode with only the first input reloaded."""
    modes = man["dataflows"]
    m0, m1, ml = modes[0], modes[1 % len(modes)], modes[-1]
    x, w = input_names(man)
    r = [random_inputs(man, seed + k) for k in range(6)]
    return [Job(m0, r[0]), Job(m0, None), Job(m1, r[1]), Job(m0, r[2]), Job(m0, {w: r[3][w]}, reset=True),
            Job(ml, r[4], reset=True), Job(ml, {x: r[5][x]})]


def expected(man: dict, jobs: list[Job]) -> list[np.ndarray]:
    banks = Banks(man)
    out = []
    for j in jobs:
        if j.inputs:
            banks.load(j.mode, j.inputs, list(j.inputs))
        out.append(reference(man, banks.gather(j.mode)))
    return out


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["cycle", "icarus", "verilator"])
def test_job_sequence(design, engine):
    design, (_, wl, shape, arr, _, bits) = design
    man = read_manifest(design)
    jobs = host_sequence(man, seed=11)
    want = expected(man, jobs)
    reps = get_engine(engine).run_jobs(design, jobs)
    assert len(reps) == len(jobs)
    for k, (job, rep, ref) in enumerate(zip(jobs, reps, want)):
        (out,) = rep.outputs.values()
        bad = int((out != ref).sum())
        assert bad == 0, f"{engine} job {k} ({job.mode}, reset={job.reset}): {bad} of {ref.size} outputs wrong"
        assert rep.match
        assert rep.cycles == man["cycles_predicted"][job.mode], (engine, k)
        if shape is not None:                  # a built-in workload: the preset table applies
            lo, hi = cycle_bounds(wl, shape, arr, job.mode, bits)
            assert lo <= rep.cycles <= hi, (engine, k, job.mode, rep.cycles, lo, hi)
        if engine != "cycle":
            assert rep.extra["cycles_register"] == rep.cycles


ATTENTION = [("attention-4x4", None, "4x4", ("os",)), ("attention-3x2-fused", "L=5,D=3", "3x2", ("ws", "is"))]


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
@pytest.mark.parametrize("spec", ATTENTION, ids=[a[0] for a in ATTENTION])
def test_attention_matches_cycle_engine(spec, engine, tmp_path):
    _, shape, arr, dfs = spec
    generate("attention", shape, arr, dfs, 8, True, tmp_path / "d")
    man = read_manifest(tmp_path / "d")
    for i, mode in enumerate(man["dataflows"]):
        ref = simulate(tmp_path / "d", "cycle", mode=mode, seed=11 + i)
        rep = simulate(tmp_path / "d", engine, mode=mode, seed=11 + i)
        assert rep.match and ref.match, f"{engine} {mode}: max abs err {rep.max_abs_err}"
        assert rep.cycles == ref.cycles == man["cycles_predicted"][mode] == rep.extra["cycles_register"]
        for k in ref.outputs:
            assert np.array_equal(ref.outputs[k], rep.outputs[k])

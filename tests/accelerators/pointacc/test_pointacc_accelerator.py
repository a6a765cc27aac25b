"""accelerators/pointacc/__init__.py through the CLI: `lego list`, `lego gen --accelerator pointacc` (the shared
directory, Verilator -Wall clean with lego's backend waivers only, generic synthesis without latches or
loops), `lego sim DIR` on the cycle model and on the RTL under Icarus and Verilator (the bench: mapping
ops and a 3x3x3 sparse convolution on a crop of the Ouster frame, bit-exact against sw_reference.pointacc,
cycles exactly the model's), the generated tb/ standalone, --inputs/--out, and refusals.

(The file name is not test_accelerator.py: tests/accelerators/spatten/test_accelerator.py exists.)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelerators.pointacc import ACCELERATOR
from accelerators.pointacc.bench import make_case, plan
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.cache_model import CacheModel
from accelerators.pointacc.bench import CONV_ZERO_ROW
from accelerators.pointacc.cycles import fps_cycles, gather_gemm_cycles, mmu_cycles
from accelerators.pointacc.dram import nb_gather_cycles
from accelerators.pointacc.matrix import MatrixUnit, mxu_prog
from accelerators.pointacc.top import PointAccTop
from lego import registry
from lego.cli import main
from lego.toolchain import require
from sw_reference import pointacc as ref

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")
TINY = PointAccConfig.preset("tiny")


def run(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pointacc") / "tiny"
    assert main(["gen", "--accelerator", "pointacc", "--preset", "tiny", "--out", str(d), "--json"]) == 0
    return d


def test_registered(capsys):
    assert registry.get(registry.ACCELERATORS, "pointacc") is ACCELERATOR
    assert ACCELERATOR.load_config() == PointAccConfig.preset("edge")
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0 and "pointacc" in json.loads(out)["accelerators"]


def test_directory(tiny_dir):
    files = {p.name for p in tiny_dir.iterdir()}
    assert {"pointacc_top.v", "files.f", "manifest.json", "report.json", "lint.vlt", "pointacc_top.core",
            "config.yaml", "tb"} <= files
    assert {p.name for p in (tiny_dir / "tb").iterdir()} >= {"tb_pointacc.py", "run.py", "test_design.py",
                                                            "prog_bench.py"}
    man = json.loads((tiny_dir / "manifest.json").read_text())
    assert (man["kind"], man["accelerator"], man["top"]) == ("accelerator", "pointacc", "pointacc_top")
    names = {p["name"] for p in man["ports"]}
    assert {"clk", "rst", "map_start", "map_out_idx", "mmu_m_ready", "mmu_dram_req_addr", "mxu_cmd_valid",
            "mxu_cmd_ready", "mxu_done", "mxu_m_axi_araddr", "mxu_m_axi_wdata", "mxu_stage", "mxu_stage_base",
            "mxu_stg_valid", "mxu_stg_addr", "mxu_stg_data"} <= names
    assert not names & {"mxu_src", "mxu_w_data", "mxu_y", "mxu_out_tag"}      # the old streaming unit is gone
    widths = {p["name"]: p["width"] for p in man["ports"]}
    assert (widths["mxu_m_axi_rdata"], widths["mxu_stg_data"], widths["mxu_stg_addr"]) == (64, 4 * 8, 32)
    # the tile box by hand: M = N = isqrt(1 KiB / (2 * 4 B)) rounded down to a multiple of 4 = 8;
    # K = 4 KiB / (2 buffers * 1 B * 2 tensors * 8) = 128
    assert man["array"] == [4, 4] and man["mxu"]["prog"]["box"] == {"M": 8, "N": 8, "K": 128}
    assert man["mxu"]["prog"]["dataflows"] == ["ws"] and man["datapaths"]["mxu"]["module"] == "pointacc_mxu"
    assert {k for k, v in man["tensors"].items() if v["role"] == "input"} == {"points", "feats", "weight", "ffeats",
                                                                             "sa_weight"}
    assert man["tensors"]["ffeats"]["shape"] == [16, 8] and man["tensors"]["ffeats"]["optional"] is True
    assert "map_fld_src" in names          # the feature buffer's source select (MMU gathers), only with the path
    assert "map_fld_src = 1" in man["host_protocol"]["feature_knn"]
    assert "map_fld_src" not in {p["name"] for p in PointAccTop(TINY.replace(feature_points=0)).port_doc()}
    assert PointAccConfig.from_yaml(tiny_dir / "config.yaml") == TINY
    rep = json.loads((tiny_dir / "report.json").read_text())
    assert rep["cycles"]["predicted"] == man["cycles_predicted"] == ACCELERATOR.cycles(TINY, 0)


def test_lint_clean(tiny_dir):
    """verilator -Wall with lint.vlt = lego's backend waivers + the submodule file-name waiver only."""
    vlt = (tiny_dir / "lint.vlt").read_text()
    assert vlt.count("lint_off") - vlt.count("DECLFILENAME") >= 1 and "pointacc_top.*" in vlt
    r = subprocess.run([require("verilator"), "--lint-only", "-Wall", "lint.vlt", "-f", "files.f"],
                       cwd=tiny_dir, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]


def test_bench_plan_hand_values():
    """The bench's cycle model, by hand: FPS on the crop, the matrix unit's pass and gather formulas."""
    case = make_case(TINY, 0)
    assert case["points"].shape == (64, 3) and case["feats"].shape == (64, 4) and case["weight"].shape == (27, 4, 4)
    keys = ref.coord_keys(case["points"])
    assert np.unique(keys).size == 64                                   # unique voxels
    prog = mxu_prog(TINY)
    bp = plan(TINY, case, prog)
    assert bp.map_cycles[0] == fps_cycles(bp.geo, 64, 16) == 1 + 15 * (32 + 4)
    assert gather_gemm_cycles(25, 100) == 128
    assert len(bp.conv) == 1                    # 64 sites x 27 slots fit the 16-bit tag: one tile
    c0 = bp.conv[0]
    assert c0["cycles"] == c0["mmu_cycles"] + 3 + c0["program"]["cycles"]
    assert c0["rows"] == implicit_gemm_rows(case["points"])
    # the tiny preset's MMU is non-blocking (4 MSHRs, queue 8): the timing of dram.nb_gather_cycles; with
    # mmu_mshrs = 1 (the blocking MMU): hit 1, miss LAT + B + 2
    blk = plan(TINY.replace(mmu_mshrs=1), case, prog).conv[0]
    assert blk["mmu_cycles"] == 1 + blk["hits"] + blk["misses"] * (8 + 2 + 2)
    assert (blk["hits"], blk["misses"]) == (c0["hits"], c0["misses"]) and c0["misses"] >= 2
    mc = mmu_cycles(CacheModel(TINY.cache_sets, TINY.cache_ways, TINY.cache_block_rows), "gather", c0["rows"], 8)
    assert mc["cycles"] == blk["mmu_cycles"]
    assert c0["mmu_cycles"] == nb_gather_cycles(mc["kinds"], mc["dists"], 8, 2, 4, 8) < blk["mmu_cycles"]
    sa = bp.sa[0]
    assert bp.cycles == sum(bp.map_cycles) + sum(c["cycles"] for c in bp.conv) + sa["cycles"] + \
        sum(f["cycles"] for f in bp.feat)
    assert [f["name"] for f in bp.feat] == ["fknn", "fknn_tied", "fknn_rerun"]     # the feature kNN steps
    # the set abstraction: one gather-GEMM of the 8 centres' K = 8 ball-query rows, after the reset and the
    # feature kNN rerun (the cache model replayed on those gathers, then the SA's), then its program
    assert len(sa["entries"]) == 8 * 8 and sa["cycles"] == sa["mmu_cycles"] + 3 + sa["program"]["cycles"]
    cold = CacheModel(TINY.cache_sets, TINY.cache_ways, TINY.cache_block_rows)
    mmu_cycles(cold, "gather", [r for r, _ in bp.feat[2]["entries"]], 8, TINY.mmu_mshrs, TINY.mmu_queue)
    mc = mmu_cycles(cold, "gather", [r for r, _ in sa["entries"]], 8, TINY.mmu_mshrs, TINY.mmu_queue)
    assert (mc["cycles"], mc["hits"], mc["misses"]) == (sa["mmu_cycles"], sa["hits"], sa["misses"])
    assert sa["misses"] > 0 and sa["hits"] > 0


def test_sim_cycle(capsys, tiny_dir):
    code, out, err = run(capsys, "sim", str(tiny_dir), "--engine", "cycle", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["match"] is True and r["cycles"] == r["cycles_predicted"] == ACCELERATOR.cycles(TINY, 0)
    assert set(r["outputs"]) == {"fps", "knn_idx", "knn_d2", "ball", "down_coords", "down_inverse", "kmap_sub",
                                 "kmap_str", "conv", "fknn_idx", "fknn_d2", "fknn_tied_idx", "fknn_tied_d2", "sa"}
    case = make_case(TINY, 0)
    km = ref.submanifold_kernel_map(case["points"], 3)
    assert np.array_equal(np.array(r["outputs"]["conv"]), ref.sparse_conv(case["feats"], case["weight"], km, 64))
    assert np.array_equal(np.array(r["outputs"]["sa"]), sa_oracle(case["points"], case["feats"], case["sa_weight"]))


def sa_oracle(points, feats, weight, m=8, radius=3, k=8):
    """PointNet++ set abstraction by hand (numpy, nothing from sw_reference or the bench): a brute-force FPS
    (ties to the lower index), the first k points in index order within the radius (padded with the first
    hit), [p_j - p_c, f_j] times the int8 weights, ReLU, round-half-up shift and int8 saturation, max over k."""
    p = np.asarray(points, dtype=np.int64)
    sel, d = [0], ((p - p[0]) ** 2).sum(axis=1)
    while len(sel) < m:
        sel.append(int(np.flatnonzero(d == d.max())[0]))
        d = np.minimum(d, ((p - p[sel[-1]]) ** 2).sum(axis=1))
    R = weight.shape[0]
    x_f = np.asarray(feats, dtype=np.int64)[:, :R - 3]
    shift = 7 + (R - 1).bit_length() // 2
    out = []
    for c in sel:
        hit = [j for j in range(len(p)) if ((p[j] - p[c]) ** 2).sum() <= radius * radius][:k]
        hit += [hit[0]] * (k - len(hit))
        x = np.concatenate([p[hit] - p[c], x_f[hit]], axis=1)
        acc = np.maximum(x @ np.asarray(weight, dtype=np.int64), 0)
        out.append(np.clip((acc + (1 << (shift - 1))) >> shift, -128, 127).max(axis=0))
    return np.array(out, dtype=np.int64)


@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_sim_rtl(capsys, tiny_dir, engine, tmp_path, monkeypatch):
    """The RTL against sw_reference.pointacc (bit-exact) and the model (cycles), per simulator; the design
    directory given relative to the working directory, as a user types it (cocotb runs elsewhere)."""
    out = tmp_path / "o.npz"
    monkeypatch.chdir(tiny_dir.parent)
    code, text, err = run(capsys, "sim", tiny_dir.name, "--engine", engine, "--json", "--out", str(out))
    assert code == 0, err
    r = json.loads(text)
    assert r["match"] is True and r["max_abs_err"] == 0.0
    assert r["cycles"] == r["cycles_predicted"] == ACCELERATOR.cycles(TINY, 0)
    z = np.load(out)
    assert set(z.files) == set(r["outputs"]) and z["conv"].dtype == np.int64
    assert np.array_equal(z["conv"], np.array(r["outputs"]["conv"]))


def test_sim_rtl_other_seed(tiny_dir):
    """Another crop of the frame (seed 3), other features and weights: still exact (Icarus)."""
    from lego.api import simulate
    rep = simulate(tiny_dir, "icarus", seed=3)
    assert rep.match and rep.cycles == rep.extra["cycles_predicted"] == ACCELERATOR.cycles(TINY, 3)
    assert rep.extra["mmu_measured"] == rep.extra["mmu"]


def test_generated_tb_standalone(tiny_dir):
    """python -m pytest DIR/tb in a fresh interpreter (lego.api only; the RTL builds are cached)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tiny_dir / "tb")],
                       cwd=tiny_dir, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "3 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]


def test_sim_inputs(capsys, tiny_dir, tmp_path):
    """--inputs: points/feats/weight from a .npz (the default case with the points permuted: other
    kernel-map paths); duplicate points and out-of-range coordinates exit 2 with one line."""
    case = make_case(TINY, 0)
    perm = np.random.default_rng(1).permutation(64)
    good = tmp_path / "good.npz"
    np.savez(good, points=case["points"][perm], feats=case["feats"], weight=case["weight"])
    code, out, err = run(capsys, "sim", str(tiny_dir), "--engine", "cycle", "--inputs", str(good), "--json")
    assert code == 0 and json.loads(out)["match"] is True, err
    assert np.array_equal(json.loads(out)["outputs"]["sa"],        # the seed's sa_weight (not given)
                          sa_oracle(case["points"][perm], case["feats"], case["sa_weight"]))
    dup = case["points"].copy()
    dup[5] = dup[9]
    bad = tmp_path / "dup.npz"
    np.savez(bad, points=dup, feats=case["feats"], weight=case["weight"])
    code, out, err = run(capsys, "sim", str(tiny_dir), "--engine", "icarus", "--inputs", str(bad))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "points: duplicate coordinates; a kernel map needs unique coordinates" in err
    far = case["points"].copy()
    far[0] = [2047, 0, 0]
    far[1] = [-2048, 0, 0]
    np.savez(bad, points=far, feats=case["feats"], weight=case["weight"])
    code, out, err = run(capsys, "sim", str(tiny_dir), "--engine", "cycle", "--inputs", str(bad), "--json")
    assert code == 0, err                              # the corners of the 12-bit range are fine
    assert "sa" not in json.loads(out)["outputs"]      # coordinates beyond int8: no set-abstraction step
    far[0] = [2048, 0, 0]
    np.savez(bad, points=far, feats=case["feats"], weight=case["weight"])
    code, out, err = run(capsys, "sim", str(tiny_dir), "--engine", "cycle", "--inputs", str(bad))
    assert code == 2 and out == "" and err == "lego: error: --inputs: tensor 'points' has values outside int12 " \
                                             "[-2048, 2047]\n", err


def test_gen_refusals(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: tiny\nsorter_width: 12\n")
    out = tmp_path / "d"
    code, text, err = run(capsys, "gen", "--accelerator", "pointacc", "--config", str(bad), "--out", str(out))
    assert code == 2 and text == "" and err == "lego: error: sorter_width: must be a power of two >= 2, got 12\n"
    assert not out.exists()
    code, text, err = run(capsys, "gen", "--accelerator", "pointacc", "--preset", "huge", "--out", str(out))
    assert code == 2 and "--preset: unknown preset 'huge' for pointacc (allowed: server, edge, tiny)" in err
    assert not out.exists()


def test_sim_dir_refusals(capsys, tiny_dir):
    code, out, err = run(capsys, "sim", str(tiny_dir), "--mode", "os")
    assert code == 2 and "--mode: a PointAcc design has no dataflow modes" in err
    code, out, err = run(capsys, "sim", str(tiny_dir), "--engine", "cycle", "--waves", str(tiny_dir / "w.fst"))
    assert code == 2 and "--waves: the cycle engine has no waveforms" in err


def implicit_gemm_rows(points) -> list[int]:
    """The implicit GEMM's gathered rows, independently: for each output site (major) and each of the 27
    offsets (minor, ``kernel_offsets`` order), the index of the site at point + offset (a dict of coordinates),
    or the zero row."""
    at = {tuple(int(v) for v in p): i for i, p in enumerate(points)}
    return [at.get(tuple(int(v) for v in p + o), CONV_ZERO_ROW) for p in points for o in ref.kernel_offsets(3)]


def test_matrix_unit_is_lego_programmable_array(tmp_path):
    """The matrix unit's program interface equals what `lego gen --workload gemm --scratchpad-kib ...` makes from the
    same sizes (the prog section: box, drains, counters, lanes, banks), and its programs' exact cycles are the
    standalone design's `compile_gemm` prediction."""
    from lego.prog.compiler import compile_gemm
    d = tmp_path / "g"
    assert main(["gen", "--workload", "gemm", "--array", "4x4", "--dataflow", "ws", "--scratchpad-kib", "4",
                 "--accumulator-kib", "1", "--dram-bits", "64", "--out", str(d)]) == 0
    ref_prog = json.loads((d / "manifest.json").read_text())["prog"]
    ours = mxu_prog(TINY)
    skip = {"design_hash", "scratchpad_kib", "accumulator_kib"}
    assert {k: v for k, v in ours.items() if k not in skip} == {k: v for k, v in ref_prog.items() if k not in skip}
    bp = plan(TINY, make_case(TINY, 0), ours)
    c0 = bp.conv[0]
    header, _, _ = compile_gemm({"prog": ref_prog}, {"M": 64, "N": 4, "K": 27 * 4}, latency=8)
    assert c0["program"]["cycles"] == header["predicted"]["cycles"] > 64
    m = MatrixUnit(TINY)
    m.silence()
    assert [s.name for s, _ in m.prog_ports()][:6] == ["cmd_valid", "cmd_ready", "cmd_data", "busy", "done", "cycles"]


def test_stager_addresses():
    """The stager in Amaranth's simulator: random rows, tags and bases; a row is written at base + tag * R only
    with stage high."""
    from amaranth.sim import Simulator
    m = MatrixUnit(TINY)
    rng = np.random.default_rng(3)
    cases = [(int(rng.integers(2)), int(rng.integers(2)), int(rng.integers(1 << 31)), int(rng.integers(1 << 16)),
              int(rng.integers(1 << 32))) for _ in range(64)]

    async def bench(ctx):
        for stage, valid, base, tag, data in cases:
            ctx.set(m.stage, stage)
            ctx.set(m.row_valid, valid)
            ctx.set(m.stage_base, base)
            ctx.set(m.row_tag, tag)
            ctx.set(m.row_data, data)
            assert ctx.get(m.stg_valid) == (stage & valid)
            assert ctx.get(m.stg_addr) == (base + tag * 4) % (1 << 32)
            assert ctx.get(m.stg_data) == data
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.slow
def test_default_preset_icarus(tmp_path):
    """`lego gen --accelerator pointacc --out D && lego sim D --engine icarus` on the default (edge) preset:
    a 256-voxel crop, a 16 x 16 matrix unit (about 30 s under Icarus)."""
    d = tmp_path / "p"
    assert main(["gen", "--accelerator", "pointacc", "--out", str(d)]) == 0
    assert main(["sim", str(d), "--engine", "icarus"]) == 0


@pytest.mark.slow
def test_synth_tiny(tmp_path, tiny_dir):
    """lego synth DIR (generic Yosys): no latches, no combinational loops."""
    from lego import synth as S
    if S.find_tool("yosys") is None:
        pytest.skip("no yosys")
    r = S.synth(tiny_dir, timeout_s=3000)
    assert r["check"] == "pass" and r["latches"] == 0 and r["comb_loops"] == 0


def test_implicit_gemm_tiles_equal_sparse_conv():
    """The bench's sparse-conv formulation (``costs.conv_plan`` with the bench's zero row) on a cloud that needs
    several output tiles (3,000 sites x 27 slots exceed the MMU's 16-bit tag): per tile, X = the gathered slot
    rows (feature rows, the zero row where no pair) times the weights reshaped to 27R x C, in numpy; the tiles
    together equal sw_reference's sparse_conv, and the slots a coordinate-dict oracle's."""
    from accelerators.pointacc.costs import conv_plan
    rng = np.random.default_rng(11)
    pts = np.unique(rng.integers(-12, 12, (4000, 3)), axis=0)[:3000]
    n, R, C = len(pts), 4, 4
    feats = rng.integers(-128, 128, (n, R)).astype(np.int8)
    weight = rng.integers(-128, 128, (27, R, C)).astype(np.int8)
    km = ref.submanifold_kernel_map(pts, 3)
    cp = conv_plan(TINY, km, n, R, zero=CONV_ZERO_ROW)
    assert cp["tiles"] == [2424, 576] and cp["starts"].tolist() == [0, 2424 * 27]     # 65536 // 27 = 2427 -> x4
    slots = cp["rows"].reshape(n, 27)
    assert slots.tolist() == np.array(implicit_gemm_rows(pts)).reshape(n, 27).tolist()
    rows = np.zeros((CONV_ZERO_ROW + 1, R), dtype=np.int64)
    rows[:n] = feats
    y = np.concatenate([rows[slots[lo:lo + m]].reshape(m, 27 * R) @ weight.reshape(27 * R, C).astype(np.int64)
                        for lo, m in zip(range(0, n, 2424), cp["tiles"])])
    assert np.array_equal(y, ref.sparse_conv(feats, weight, km, n))

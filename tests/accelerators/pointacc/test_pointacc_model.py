"""The PointAcc network-level model (accelerators/pointacc/model.py, networks.py) through
`lego sim --accelerator pointacc --model M`: the JSON contract keys, values derivable by hand, the two
ablations, the output files, bad inputs (exit 2, one line, nothing written), and the pieces the model
rests on: the x-slab tiling of kernel maps (exact), the fast read-stream cache (exact against
CacheModel) and the sparse convolution as an implicit GEMM on the programmable array (against a plan built
here: pairs from a dict of the points, programs timed by lego.prog.compiler.compile_gemm)."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from accelerators.pointacc.cache_model import CacheModel, ReadStreamCache
from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.cycles import ball_query_cycles, fps_cycles, kernel_map_cycles
from accelerators.pointacc.driver import Geometry
from accelerators.pointacc.model import simulate, x_tiles
from accelerators.pointacc.networks import object_points
from lego.cli import main
from lego.errors import LegoError
from sw_reference import pointacc as ref

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")
FRAME = DATA_DIR / "ouster_os1_128_frame0.bin"
EDGE = PointAccConfig.preset("edge")
KEYS = ("cycles", "dram_bytes", "energy_pj", "cache_hit_rate", "points", "voxels", "layers")


def sim(capsys, tmp_path, *argv, out="o"):
    code = main(["sim", "--accelerator", "pointacc", *argv, "--out", str(tmp_path / out), "--json"])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def by_name(res):
    return {r["layer"]: r for r in res["layers"]}


@pytest.fixture(scope="module")
def crop_npy(tmp_path_factory):
    """The 20,000 points of the Ouster frame nearest the sensor, as .npy (a fast MinkowskiUNet input)."""
    xyz = load_cloud(FRAME)
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:20000])
    p = tmp_path_factory.mktemp("clouds") / "crop.npy"
    np.save(p, xyz[keep])
    return p


@pytest.mark.slow
def test_minkunet_full_frame_default_preset(capsys, tmp_path):
    """`lego sim --accelerator pointacc --model minkunet --json` as it is (edge preset, about 10 s)."""
    code, out, err = sim(capsys, tmp_path, "--model", "minkunet")
    assert code == 0, err
    r = json.loads(out)
    assert r["config"] == "edge" and r["points"] == 107647 and r["voxels"] == 103091
    assert r["cycles"] == sum(x["cycles"] for x in r["layers"])


def test_minkunet_full_frame(capsys, tmp_path):
    """The shipped full frame (server preset): keys, points, voxels (counted by hand), totals."""
    code, out, err = sim(capsys, tmp_path, "--model", "minkunet", "--preset", "server")
    assert code == 0, err
    r = json.loads(out)
    for k in KEYS:
        assert k in r, k
    xyz = load_cloud(FRAME).astype(np.float64)
    assert r["points"] == len(xyz) == 107647
    assert r["voxels"] == len({tuple(math.floor(v) for v in row) for row in (xyz / 0.05).tolist()}) == 103091
    assert r["accelerator"] == "pointacc" and r["config"] == "server" and r["model"] == "minkunet"
    L = r["layers"]
    assert r["cycles"] == sum(x["cycles"] for x in L)
    assert r["dram_bytes"] == sum(x["dram_bytes"] for x in L)
    assert r["energy_pj"] == pytest.approx(sum(x["energy_pj"] for x in L), rel=1e-9)
    hits, misses = sum(x["cache_hits"] for x in L), sum(x["cache_misses"] for x in L)
    assert r["cache_hit_rate"] == pytest.approx(hits / (hits + misses)) and 0 < r["cache_hit_rate"] < 1
    for x in L:                                          # per layer too (rounded to 3 places like its floats)
        a = x["cache_hits"] + x["cache_misses"]
        assert x["cache_hit_rate"] == round(x["cache_hits"] / a if a else 0.0, 3), x["layer"]
    assert 0 < by_name(r)["stem.conv1"]["cache_hit_rate"] < 1 and by_name(r)["voxelize"]["cache_hit_rate"] == 0.0
    assert r["voxels_by_stride"]["1"] == 103091          # voxelization on the mapping unit = floor(xyz / v)
    n = by_name(r)
    assert n["kmap.sub.s1"]["map_jobs"] > 1 and "x-slab tiles" in n["kmap.sub.s1"]["notes"]
    assert {"stem.conv1", "stage4.res2.conv2", "up4.deconv", "classifier"} <= set(n)


def test_minkunet_crop_files_and_mapping_cycles(capsys, tmp_path, crop_npy):
    code, out, err = sim(capsys, tmp_path, "--model", "minkunet", "--cloud", str(crop_npy), out="mk")
    assert code == 0, err
    r = json.loads(out)
    assert r["points"] == 20000
    files = r["files"]
    assert set(files) == {"csv", "json", "png"}
    with open(files["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(r["layers"]) and int(rows[0]["cycles"]) == r["layers"][0]["cycles"]
    assert [float(x["cache_hit_rate"]) for x in rows] == [x["cache_hit_rate"] for x in r["layers"]]
    assert json.loads((tmp_path / "mk" / "summary.json").read_text())["cycles"] == r["cycles"]
    assert (tmp_path / "mk" / "layers.png").read_bytes()[:4] == b"\x89PNG"
    # the submanifold map at stride 1: every x-slab tile is one job of the unit, load + exact cycles
    geo = Geometry.from_config(EDGE)
    xyz = np.load(crop_npy)
    fine = np.floor(xyz.astype(np.float64) / 0.0125).astype(np.int64)
    vox = (ref.downsample(fine, 4)[0] // 4).astype(np.int64)
    tiles = x_tiles(vox[:, 0], EDGE.point_buffer, 1, 1, "t")
    want = sum((hi - lo) + kernel_map_cycles(geo, vox[lo:hi], 3, 1) for lo, hi, _, _ in tiles)
    assert by_name(r)["kmap.sub.s1"]["map_cycles"] == want


def test_pointnet2_hand_values(capsys, tmp_path):
    code, out, err = sim(capsys, tmp_path, "--model", "pointnet2")
    assert code == 0, err
    r = json.loads(out)
    assert r["points"] == 10000 and r["points_used"] == 1024
    n = by_name(r)
    geo = Geometry.from_config(EDGE)
    pts = object_points(load_cloud(DATA_DIR / "spot_10k_normal.txt"))
    sel = ref.fps(pts, 512)
    assert fps_cycles(geo, 1024, 512) == 1 + 511 * (1024 // 4 + 4)
    assert n["sa1.group"]["map_cycles"] == 1024 + fps_cycles(geo, 1024, 512) + \
        ball_query_cycles(geo, pts, pts[sel], 200, 32)
    # the last classifier layer: 256 -> 40 on one row, one program (compile_gemm's exact cycles); W read once,
    # X once per N tile of the program, Y int32
    fc3 = n["head.fc3"]
    h = _gemm_header(EDGE, 1, 256, 40)
    assert fc3["mxu_cycles"] == h["predicted"]["cycles"] == fc3["cycles"] and fc3["mxu_programs"] == 1
    assert fc3["dram_bytes_weights"] == 256 * 40 and fc3["dram_bytes_features_out"] == 40 * 4
    assert fc3["dram_bytes_features_in"] == 0 and fc3["fused"] == "yes"        # its X from the fusion buffer
    fc1 = n["head.fc1"]                            # reads X (int8) from DRAM, once per N tile of its program
    assert fc1["dram_bytes_features_in"] == 1024 * -(-512 // _gemm_header(EDGE, 1, 1024, 512)["tile"]["N"])
    assert fc3["macs"] == fc3["mxu_macs_issued"] == 256 * 40
    # temporal fusion: the SA1 MLP keeps its intermediates on chip, only the pooled output leaves
    assert [n[f"sa1.mlp{i}"]["dram_bytes_features_out"] for i in (1, 2, 3)] == [0, 0, 512 * 128]
    assert n["sa1.mlp1"]["fused"] == "yes"


def test_pointnet2_ablations(capsys, tmp_path):
    """--no-cache: every gathered row is a one-row DRAM read through the non-blocking MMU; --no-fusion: every layer's
    output through DRAM. Both by hand on SA2's grouping and SA1's first layer."""
    _, out, _ = sim(capsys, tmp_path, "--model", "pointnet2", out="a")
    base = json.loads(out)
    code, out, err = sim(capsys, tmp_path, "--model", "pointnet2", "--no-cache", out="b")
    assert code == 0, err
    nc = json.loads(out)
    g = by_name(nc)["sa2.group"]
    rows = 128 * 64 * (128 // 16)                      # 128 centres x 64 neighbours x 8 rows of 16 channels
    assert g["gathers"] == rows and g["cache_hits"] == 0
    # 128 ops of 512 one-row reads, LAT 100, 16 MSHRs: read i of an op is accepted in cycle
    # 1 + (i // 16) * 101 + i % 16 (an MSHR frees LAT + 1 cycles after its read), its row returns 101 cycles
    # later, and the op ends the cycle after its last row: 103 + 31 * 101 + 15 cycles
    assert g["mmu_cycles"] == 128 * (103 + 31 * 101 + 15)
    assert g["dram_bytes_features_in"] == rows * 16
    assert g["dram_bytes_staging"] == rows * 16 == by_name(base)["sa2.group"]["dram_bytes_staging"]   # X staged
    m1 = by_name(base)["sa2.mlp1"]                 # reads its X from the staging area as its program reads it
    assert m1["dram_bytes_staging"] == 128 * 64 * 131 * -(-128 // _gemm_header(EDGE, 128 * 64, 131, 128)["tile"]["N"])
    assert m1["dram_bytes_features_in"] == 0
    assert nc["cache_hit_rate"] == 0.0 and nc["ablation"] == {"cache": False, "fusion": True}
    assert nc["dram_bytes"] > base["dram_bytes"] and nc["cycles"] > base["cycles"]
    code, out, err = sim(capsys, tmp_path, "--model", "pointnet2", "--no-fusion", out="c")
    assert code == 0, err
    nf = json.loads(out)
    m1 = by_name(nf)["sa1.mlp1"]
    tn = _gemm_header(EDGE, 512 * 32, 3, 64)["tile"]["N"]
    assert m1["dram_bytes_features_in"] == 512 * 32 * 3 * -(-64 // tn) and m1["dram_bytes_features_out"] == \
        512 * 32 * 64 * 4
    assert "sa1.maxpool" in by_name(nf) and by_name(nf)["sa1.mlp1"]["fused"] == "no"
    assert nf["dram_bytes"] > base["dram_bytes"] and nf["cycles"] >= base["cycles"]


def _gemm_header(cfg, m, k, n):
    from lego.prog.compiler import compile_gemm
    from accelerators.pointacc.matrix import mxu_prog
    return compile_gemm({"prog": mxu_prog(cfg)}, {"M": m, "N": n, "K": k}, latency=cfg.dram_latency_cycles)[0]


def test_no_cache_gather_blocking_and_non_blocking():
    """The --no-cache gather on the blocking MMU (mshrs 1): ops + rows x (LAT + 3); on 2 MSHRs and LAT 10, one
    op of 5 one-row reads: accepted in cycles 1, 2, 12, 13, 23 (a read every LAT + 1 cycles per MSHR), rows
    back 11 cycles later, so the op ends in cycle 23 + 11 + 1 = 35."""
    import dataclasses
    from accelerators.pointacc.costs import Costs
    rows = np.array([7, 3, 3, 9, 1])
    blk = Costs(dataclasses.replace(EDGE, mmu_mshrs=1), cache=False)
    blk.layer("g", "group")
    blk.gather(rows, ops=2)
    assert blk.rec["mmu_cycles"] == 2 + 5 * (EDGE.dram_latency_cycles + 3)
    nb = Costs(dataclasses.replace(EDGE, mmu_mshrs=2, mmu_queue=4, dram_latency_cycles=10), cache=False)
    nb.layer("g", "group")
    nb.gather(rows, ops=1)
    assert nb.rec["mmu_cycles"] == 35
    assert nb.rec["dram_bytes_features_in"] == 5 * EDGE.feature_row_bytes


def test_dgcnn_and_fusion_on_minkunet(crop_npy):
    r = simulate(EDGE, "dgcnn", load_cloud(DATA_DIR / "spot_10k_normal.txt"))
    n = {x["layer"]: x for x in r.extra["layers"]}
    assert "1 pass per query, 4 merge stages (RTL)" in n["ec1.knn"]["notes"]    # k = 20 > W 16, KS 4
    assert "feature-space kNN" in n["ec2.knn"]["notes"]
    assert not any("modeled" in x["notes"] for x in n.values() if x["layer"].endswith(".knn"))
    srv = simulate(PointAccConfig.preset("server"), "dgcnn", load_cloud(DATA_DIR / "spot_10k_normal.txt"))
    assert "passes" not in {x["layer"]: x for x in srv.extra["layers"]}["ec1.knn"]["notes"]   # W = 32
    xyz = np.load(crop_npy)
    on, off = simulate(EDGE, "minkunet", xyz), simulate(EDGE, "minkunet", xyz, fusion=False)
    assert on.total_dram_bytes == off.total_dram_bytes and on.cycles == off.cycles   # sparse convs: no fusion


@pytest.mark.parametrize("argv, msg", [
    (["--cloud", "{d}/empty.bin"], "empty cloud (0 points)"),
    (["--cloud", "{d}/trunc.bin"], "truncated KITTI .bin: 17 bytes is not a multiple of 16"),
    (["--cloud", "{d}/nan.npy"], "1 of 2 points have NaN or Inf coordinates (first at row 1)"),
    (["--cloud", "{d}/far.npy"], "--cloud: coordinates out of the quantization range"),
    (["--model", "pointnet3"], "--model: unknown model 'pointnet3' for pointacc (allowed: pointnet2, dgcnn, minkunet)"),
    (["--model", "dgcnn", "--cloud", "{d}/small.npy"], "--k: 20 neighbours > n = 10 points of the cloud"),
    (["--model", "dgcnn", "--k", "0"], "--k: must be >= 1, got 0"),
    (["--model", "pointnet2", "--radius", "0"], "--radius: must be > 0, got 0.0"),
    (["--model", "pointnet2", "--radius", "-0.1"], "--radius: must be > 0, got -0.1"),
    (["--model", "pointnet2", "--radius", "1e9"], "--radius: 1000000000.0 exceeds 4"),
    (["--voxel", "0"], "--voxel: must be a positive number of metres, got 0.0"),
    (["--voxel", "1000"], "point_buffer: voxelization: one voxel holds 15724 points, more than the point buffer"),
    (["--config", "{d}/bad.yaml"], "sorter_width: must be a power of two >= 2, got 12"),
    (["--preset", "tiny", "--model", "pointnet2"], "point_buffer: FPS needs all 1024 points on chip"),
    (["--no-cach"], "--no-cach: unknown option for lego sim (did you mean --no-cache?)"),
])
def test_bad_inputs(capsys, tmp_path, argv, msg):
    d = tmp_path
    (d / "empty.bin").write_bytes(b"")
    (d / "trunc.bin").write_bytes(b"\0" * 17)
    np.save(d / "nan.npy", np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 2.0]]))
    np.save(d / "far.npy", np.array([[0.0, 0.0, 0.0], [1e5, 1.0, 2.0]]))
    np.save(d / "small.npy", np.random.default_rng(0).random((10, 3)))
    (d / "bad.yaml").write_text("preset: edge\nsorter_width: 12\n")
    code, out, err = sim(capsys, tmp_path, *[a.format(d=d) for a in argv])
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("lego: error: "), err
    assert msg in err, err
    assert not (tmp_path / "o").exists()                       # nothing half-written


def test_tiling_is_exact():
    """Kernel maps of x-slab tiles (a 3,000-point buffer), each tile's pairs for its own outputs, add up to
    the full frame's map: submanifold (one neighbour slab each side) and strided (whole coarse slabs)."""
    c = ref.voxelize(load_cloud(FRAME), 0.05)[0].astype(np.int64)
    full = ref.submanifold_kernel_map(c, 3, 1)
    tiles = x_tiles(c[:, 0], 3000, 1, 1, "t")
    assert len(tiles) > 20 and max(hi - lo for lo, hi, _, _ in tiles) <= 3000
    got = [[] for _ in range(27)]
    for lo, hi, clo, chi in tiles:
        for o, p in enumerate(ref.submanifold_kernel_map(c[lo:hi], 3, 1).pairs):
            g = p + lo
            got[o].append(g[(g[:, 1] >= clo) & (g[:, 1] < chi)])
    assert all(np.array_equal(np.concatenate(got[o]), full.pairs[o]) for o in range(27))
    out, fk = ref.strided_kernel_map(c, 2, 2, 1)
    got, base = [[] for _ in range(8)], 0
    for lo, hi, clo, chi in x_tiles(c[:, 0], 3000, 2, 0, "t"):
        assert (lo, hi) == (clo, chi)
        o2, km = ref.strided_kernel_map(c[lo:hi], 2, 2, 1)
        for o, p in enumerate(km.pairs):
            got[o].append(p + np.array([lo, base]))
        base += len(o2)
    assert base == len(out) and all(np.array_equal(np.concatenate(got[o]), fk.pairs[o]) for o in range(8))
    with pytest.raises(LegoError, match="^point_buffer: t: one x slab .* more than the point buffer \\(64\\)"):
        x_tiles(c[:, 0], 64, 1, 1, "t")


def test_read_stream_cache_exact():
    """ReadStreamCache = CacheModel's hits/misses on read streams, state carried over, repeated passes."""
    rng = np.random.default_rng(7)
    for t in range(150):
        sets, ways, br = int(2 ** rng.integers(0, 4)), int(rng.integers(1, 6)), int(2 ** rng.integers(0, 3))
        cm, fc = CacheModel(sets, ways, br), ReadStreamCache(sets, ways, br)
        for _ in range(3):
            rows = rng.integers(0, int(rng.integers(1, 80)), int(rng.integers(0, 150)))
            if rng.random() < 0.4:
                rows = np.sort(rows)
            rep = int(rng.integers(1, 4))
            cm.reset_stats()
            for x in np.tile(rows, rep):
                cm.access(int(x), False)
            assert fc.run(rows, rep) == (cm.stats.hits, cm.stats.misses), t


def test_empty_cloud_is_refused_by_name():
    with pytest.raises(LegoError) as e:
        simulate(PointAccConfig(), "pointnet2", np.zeros((0, 3)))
    assert str(e.value) == "--cloud: empty cloud (0 points)"


def test_job_cycles_dispatch_by_hand():
    from accelerators.pointacc.cycles import job_cycles, kernel_map_cycles
    from accelerators.pointacc.driver import Job
    geo = Geometry(capacity=64, lanes=4, sorter_width=8, max_neighbors=16, coord_bits=16, sorter_latency=3)
    # FPS, n = 10, m = 3: NR = ceil(10/4) = 3 rows, 1 + (m - 1)(NR + 4) = 15
    assert job_cycles(geo, Job("fps", {"n": 10, "m": 3}, []), None) == 15
    # kNN, n = 10, 2 queries, k = 3: NB = 2 blocks of 8, NRI = 2 x 8/4 = 4, 2 x (4 + 3 + 3 + 7) = 34
    assert job_cycles(geo, Job("knn", {"n": 10, "m": 2, "k": 3}, []), None) == 34
    pts = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 2], [4, 0, 2]])
    job = Job("kernel_map_submanifold", {"n": 5, "ksize": 3}, [], info={"tensor_stride": 2})
    assert job_cycles(geo, job, pts) == kernel_map_cycles(geo, pts, 3, 2) != kernel_map_cycles(geo, pts, 3, 1)


def test_merge_steps_by_hand():
    from accelerators.pointacc.cycles import merge_steps_reference
    # in [1, 3, 5], out [1, 2, 5]: 1 = 1 hit; 2 < 3 next out; 5 > 3 next in; 5 = 5 hit -> 4 steps, 2 hits
    assert merge_steps_reference([1, 3, 5], [1, 2, 5], [True, True, True]) == (4, 2)
    # the first output masked off: skipped (1 step); 2 > 1 next in; 2 < 3 next out; 5 > 3; 5 = 5 -> (5, 1)
    assert merge_steps_reference([1, 3, 5], [1, 2, 5], [False, True, True]) == (5, 1)


def test_mmu_cycles_by_hand():
    from accelerators.pointacc.cycles import mmu_cycles
    m = CacheModel(2, 1, 4)                    # 2 sets x 1 way, 4 rows a block: block b sits in set b % 2
    # rows 0 (block 0: miss), 1 (block 0: hit), 4 (block 1: miss), 8 (block 2: miss, evicts clean 0),
    # 0 (block 0: miss, evicts clean 2): 1 + 1 + 4 x (LAT 1 + 4 + 2) = 30
    g = mmu_cycles(m, "gather", [0, 1, 4, 8, 0])
    assert (g["cycles"], g["hits"], g["misses"], g["writebacks"], g["fills"]) == (30, 1, 4, 0, [0, 1, 2, 0])
    s = mmu_cycles(m, "scatter", [0, 4])        # both hit, both blocks now dirty: 1 + 2
    assert (s["cycles"], s["hits"], s["misses"]) == (3, 2, 0)
    f = mmu_cycles(m, "flush")                  # 2 x 1 tags + (4 + 1) x 2 dirty + 1 = 13
    assert (f["cycles"], f["writebacks"], f["written"]) == (13, 2, [0, 1])
    assert mmu_cycles(m, "flush")["cycles"] == 2 + 0 + 1


def test_kernel_map_scan_costs_n_out_plus_one_per_offset():
    # the same 6 points with keys increasing (pairs come out in index order: no scan) and reversed (every
    # offset scans its n_out + 1 = 7 entries): 27 offsets x 7 cycles apart, the sort cost being the same
    from accelerators.pointacc.cycles import kernel_map_breakdown, kernel_map_cycles
    geo = Geometry(capacity=64, lanes=4, sorter_width=8, max_neighbors=16, coord_bits=16, sorter_latency=3)
    pts = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1], [2, 0, 1]])
    inc, rev = kernel_map_breakdown(geo, pts, 3), kernel_map_breakdown(geo, pts[::-1], 3)
    assert inc["direct"] and not rev["direct"] and sorted(inc["steps"]) == sorted(rev["steps"])
    assert kernel_map_cycles(geo, pts[::-1], 3) - kernel_map_cycles(geo, pts, 3) == 27 * 7 + (rev["sort"] - inc["sort"])


def test_simulate_summary_keys_and_rounding():
    xyz = np.random.default_rng(3).uniform(0, 1, (1024, 3))
    r = simulate(PointAccConfig(), "pointnet2", xyz)
    s = r.extra
    assert s["gathers"] == sum(L["gathers"] for L in s["layers"]) > 0
    for L in s["layers"]:
        for v in L.values():
            if isinstance(v, float):
                assert round(v, 3) == v


def test_dgcnn_feature_knn_cycles_by_hand():
    """DGCNN's EdgeConv 2-4 kNN in feature space as pointacc_top runs it (tests/accelerators/pointacc/
    test_pointacc_top_featknn.py checks the composition on the RTL): an MMU gather of CH = ceil(feature_dims /
    FL) rows a point (C's own rows, then a shared zero row for the padding chunks) through a cold cache, then
    OP_KNNF over CH rows a point, + 4. Server: CH = 2 (C = 64: one zero row a point); by hand for the blocking
    MMU (hit 1, miss LAT + B + 2, + 1), with the cache model for the non-blocking one."""
    from accelerators.pointacc.cycles import knn_feature_cycles, mmu_cycles
    cloud = load_cloud(DATA_DIR / "spot_10k_normal.txt")
    for mshrs in (1, 16):
        cfg = PointAccConfig.preset("server").replace(mmu_mshrs=mshrs)
        g = Geometry.from_config(cfg)
        n = {x["layer"]: x for x in simulate(cfg, "dgcnn", cloud).extra["layers"]}
        lat, B = cfg.dram_latency_cycles, cfg.cache_block_rows
        for name, c in (("ec2.knn", 64), ("ec3.knn", 64), ("ec4.knn", 128)):
            knnf = knn_feature_cycles(g, 1024, 1024, 20, 128, 64)
            assert knnf == 1024 * (1024 * 2 + 15 + 20 + 8)
            chc = c // 64
            rows = [p * chc + j if j < chc else 1024 * chc for p in range(1024) for j in range(2)]
            if mshrs == 1:
                misses = 1024 * chc // B + (chc < 2)           # sequential feature rows; the zero row once
                gather = 1 + (2048 - misses) + misses * (lat + B + 2)
            else:
                gather = mmu_cycles(CacheModel(cfg.cache_sets, cfg.cache_ways, B), "gather", rows, lat, mshrs,
                                    cfg.mmu_queue)["cycles"]
            assert n[name]["map_cycles"] == gather + knnf + 4, (mshrs, name)
            assert n[name]["gathers"] == 2048 + 1024 * 20 * chc              # + the grouping gather
            assert "OP_KNNF" in n[name]["notes"] and "gathered by the MMU" in n[name]["notes"]


# ------------------------------------------------------------------ the programmable array (implicit GEMM)
def _cloud(n: int, seed: int) -> np.ndarray:
    """n unique integer points in a 12^3 box (random), sorted lexicographically."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(12 ** 3, n, replace=False)
    p = np.stack([flat // 144, (flat // 12) % 12, flat % 12], axis=1).astype(np.int64)
    return p[np.lexsort(p.T[::-1])]


def _oracle_conv(cfg, pts: np.ndarray, c_in: int, c_out: int) -> dict:
    """The implicit-GEMM plan as documented (model.py, costs.conv_plan), built independently: pairs by a dict of
    the points (no kernel-map code), T = the largest multiple of lcm(R, C) with T*27*rpp <= 65536, the gather
    stream t, d, j with the zero row after the feature rows' last block, each program timed by compile_gemm."""
    from lego.prog.compiler import compile_gemm
    from accelerators.pointacc.matrix import mxu_prog
    R, C, B = cfg.mxu_rows, cfg.mxu_cols, cfg.cache_block_rows
    offs = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]
    where = {tuple(p): i for i, p in enumerate(pts.tolist())}
    n, rpp = len(pts), -(-c_in // R)
    zero = -(-(n * rpp) // B) * B
    src = [[where.get((x + a, y + b, z + c), -1) for a, b, c in offs] for x, y, z in pts.tolist()]
    rows = [s * rpp + j if s >= 0 else zero for t in range(n) for s in src[t] for j in range(rpp)]
    pairs = sum(s >= 0 for r in src for s in r)
    lcm = R * C // math.gcd(R, C)
    T = min(n, (65536 // (27 * rpp)) // lcm * lcm)
    K = 27 * rpp * R
    progs = []
    for m in [min(T, n - s) for s in range(0, n, T)]:
        h = compile_gemm({"prog": mxu_prog(cfg)}, {"M": m, "N": c_out, "K": K}, latency=cfg.dram_latency_cycles)[0]
        progs.append((m, int(h["predicted"]["cycles"]), h["tile"]))
    return {"rows": rows, "zero": zero, "pairs": pairs, "T": T, "K": K, "progs": progs, "rpp": rpp}


@pytest.mark.parametrize("c_in, c_out, n", [(40, 32, 200), (640, 48, 300)])
def test_sparse_conv_implicit_gemm_independent(c_in, c_out, n):
    """A sparse convolution (3x3x3 submanifold, edge preset R = C = 16) against the oracle: mxu_cycles = the sum of
    compile_gemm's predicted cycles over the tile plan; gathers = sum T*taps*rpp in t, d, j order with the zero row
    a distinct address; staging = T*K written + X as the program reads it (once per N tile: 2*T*K where c_out fits
    one N tile); weights K*N once per M tile; Y int32; useful MACs by a numpy count; issued MACs = sum T*K*N. The
    second case (rpp 40) cuts the layer into 7 programs, the last a partial tile."""
    from accelerators.pointacc.costs import Costs, conv_plan
    pts = _cloud(n, 11)
    km = ref.submanifold_kernel_map(pts, 3, 1)
    o = _oracle_conv(EDGE, pts, c_in, c_out)
    ctx = Costs(EDGE)
    ctx.layer("conv", "sparse_conv", n, n, c_in, c_out)
    ctx.sparse_conv(km, n, c_in, c_out)
    r = ctx.rec
    K = o["K"]
    assert len(o["progs"]) == (1 if c_in == 40 else 7) and r["mxu_programs"] == len(o["progs"])
    assert r["mxu_cycles"] == sum(c for _, c, _ in o["progs"]) > 0
    assert r["gathers"] == sum(m * 27 * o["rpp"] for m, _, _ in o["progs"]) == n * 27 * o["rpp"]
    assert r["dram_bytes_staging"] == sum(m * K + m * K * -(-c_out // t["N"]) for m, _, t in o["progs"])
    if c_out <= min(t["N"] for _, _, t in o["progs"]):
        assert r["dram_bytes_staging"] == sum(2 * m * K for m, _, _ in o["progs"])
    assert r["dram_bytes_weights"] == sum(K * c_out * -(-m // t["M"]) for m, _, t in o["progs"])
    assert r["dram_bytes_features_out"] == n * c_out * 4
    assert r["macs"] == o["pairs"] * c_in * c_out
    assert r["mxu_macs_issued"] == n * K * c_out
    pl = conv_plan(EDGE, km, n, c_in)
    assert pl["T"] == o["T"] and pl["rows"].tolist() == o["rows"] and pl["zero"] == o["zero"]
    feature_rows = {x for x in o["rows"] if x != o["zero"]}
    assert o["zero"] not in feature_rows and o["zero"] >= n * o["rpp"] and o["zero"] % EDGE.cache_block_rows == 0
    assert o["rows"].count(o["zero"]) == (n * 27 - o["pairs"]) * o["rpp"] > 0


def test_sparse_conv_one_tile_gather_equals_the_mmu_model():
    """One output tile = one MMU op: the layer's gather cycles, hits and misses equal cycles.mmu_cycles on a cold
    CacheModel (the bench's exact MMU model) over the oracle's stream, blocking and non-blocking."""
    from accelerators.pointacc.costs import Costs
    from accelerators.pointacc.cycles import mmu_cycles
    pts = _cloud(150, 5)
    km = ref.submanifold_kernel_map(pts, 3, 1)
    for mshrs in (1, 16):
        cfg = EDGE.replace(mmu_mshrs=mshrs)
        o = _oracle_conv(cfg, pts, 40, 16)
        ctx = Costs(cfg)
        ctx.layer("conv", "sparse_conv", 150, 150, 40, 16)
        ctx.sparse_conv(km, 150, 40, 16)
        want = mmu_cycles(CacheModel(cfg.cache_sets, cfg.cache_ways, cfg.cache_block_rows), "gather", o["rows"],
                          cfg.dram_latency_cycles, mshrs, cfg.mmu_queue)
        assert (ctx.rec["mmu_cycles"], ctx.rec["cache_hits"], ctx.rec["cache_misses"]) == \
            (want["cycles"], want["hits"], want["misses"]), mshrs


def test_conv_tile_respects_the_tag():
    from accelerators.pointacc.costs import conv_tile
    srv = PointAccConfig.preset("server")
    assert conv_tile(srv, 27, 1, 10 ** 6) == 2368 and 2368 * 27 <= 65536 < (2368 + 64) * 27
    assert conv_tile(srv, 8, 4, 10 ** 6) == 2048 and conv_tile(srv, 27, 2, 100) == 100
    assert conv_tile(srv, 27, 1000, 5) == 2                 # below lcm(R, C): not rounded
    with pytest.raises(LegoError, match="^mxu_rows: one output site stages 70000 rows"):
        conv_tile(srv, 7, 10000, 5)

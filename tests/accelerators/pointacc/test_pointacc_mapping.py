"""PointAcc mapping unit RTL: every op bit-exact vs sw_reference.pointacc and cycle-exact vs
accelerators.pointacc.cycles, under Icarus and Verilator (bench: mapping_bench.py), on random
clouds and crops of the bundled Ouster frames; host-side checks; verilator -Wall lint.

(The file is not called test_mapping.py: tests/simulator/test_mapping.py exists and pytest's
default import mode needs unique basenames.)

Three parameterizations sit side by side in one generated top:
  u0  capacity 64,   L 2, W 4,  KM 8,  CB 21          small random clouds, every op and corner
  u1  capacity 4096, L 8, W 16, KM 32, CB 21, SPC 2   4096-point Ouster crop (FPS, kNN, ball query,
                                                      downsample), voxelized crops for downsample / kernel maps
  u2  capacity 128,  L 4, W 4,  KM 8,  CB 12          L = W, 12-bit coordinates
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np
import pytest

from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.costs import Costs, x_tiles
from accelerators.pointacc.cycles import (ball_query_cycles, fps_cycles, job_cycles, kernel_map_breakdown, knn_cycles,
                                          merge_steps_reference)
from accelerators.pointacc.driver import Geometry, decode, expected, make_job, results_equal
from accelerators.pointacc.mapping import MappingUnit
from lego.errors import LegoError
from lego.toolchain import run_cocotb
from lego.units.harness import SideBySide, emit, lint
from sw_reference import pointacc as ref

HERE = Path(__file__).parent
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

UNITS = {
    "u0": dict(capacity=64, lanes=2, sorter_width=4, max_neighbors=8, coord_bits=21),
    "u1": dict(capacity=4096, lanes=8, sorter_width=16, max_neighbors=32, coord_bits=21, sorter_stages_per_cycle=2),
    "u2": dict(capacity=128, lanes=4, sorter_width=4, max_neighbors=8, coord_bits=12),
}
FRAME = "ouster_os1_128_frame0.bin"
SERVER = PointAccConfig.preset("server").mapping_params()


def geo_of(params) -> Geometry:
    return Geometry.from_params(**params)


def ouster_crop(n: int, frame: str = FRAME) -> np.ndarray:
    """The n points nearest the sensor in max(|x|, |y|), in file order, quantized to centimetres."""
    xyz = load_cloud(DATA_DIR / frame)
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:n])
    return ref.quantize(xyz[keep], 100.0)


def voxel_crop(n_pts: int, voxel: float, frame: str = FRAME) -> np.ndarray:
    """Unique voxel coordinates (sorted, as voxelize returns them) of a crop."""
    xyz = load_cloud(DATA_DIR / frame)
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:n_pts])
    return ref.voxelize(xyz[keep], voxel)[0]


def random_cloud(rng, n, lo, hi):
    return rng.integers(lo, hi + 1, (n, 3)).astype(np.int64)


def unique_cloud(rng, n, span):
    """n unique integer coordinates in [-span, span]^3, in random order."""
    assert n <= (2 * span + 1) ** 3, (n, span)
    pts = set()
    while len(pts) < n:
        pts.add(tuple(int(v) for v in rng.integers(-span, span + 1, 3)))
    arr = np.array(sorted(pts), dtype=np.int64)
    return arr[rng.permutation(n)]


def jobs_u0(rng):
    g = geo_of(UNITS["u0"])
    big = (1 << 20) - 1
    out = []
    c = random_cloud(rng, 37, -6, 6)
    out.append(("fps", c, None, dict(m=9)))
    out.append(("fps", random_cloud(rng, 1, -3, 3), None, dict(m=1)))
    dup = np.repeat(random_cloud(rng, 5, -2, 2), 3, axis=0)[:13]           # m > distinct points
    out.append(("fps", dup, None, dict(m=11)))
    ext = np.array([[-big - 1, -big - 1, -big - 1], [big, big, big], [0, 0, 0], [big, -big - 1, 5]] * 4)
    out.append(("fps", ext, None, dict(m=6)))                                # extreme distances
    c = random_cloud(rng, 50, -5, 5)
    q = np.concatenate([c[[0, 7, 49]], random_cloud(rng, 3, -7, 7)])
    out.append(("knn", c, q, dict(k=4)))
    out.append(("knn", ext, np.array([[1, 2, 3], [big, big, big]]), dict(k=4)))
    out.append(("knn", random_cloud(rng, 4, -1, 1), random_cloud(rng, 2, -1, 1), dict(k=4)))
    out.append(("knn", random_cloud(rng, 64, -3, 3), random_cloud(rng, 3, -3, 3), dict(k=3)))   # full buffer
    c = random_cloud(rng, 60, -8, 8)
    q = np.concatenate([c[[3, 59]], [[100, 100, 100]], random_cloud(rng, 3, -8, 8)])
    out.append(("ball_query", c, q, dict(radius=4, k=8)))                   # early stop, pad, no hit
    out.append(("ball_query", c, q[:3], dict(radius=2, k=3)))
    out.append(("ball_query", ext, np.array([[0, 0, 0]]), dict(radius=(1 << 31) - 1, k=5)))    # r2 saturates
    d = random_cloud(rng, 64, -9, 9)
    out.append(("downsample", d, None, dict(stride=1)))
    out.append(("downsample", d, None, dict(stride=4)))
    out.append(("downsample", random_cloud(rng, 1, -9, 9), None, dict(stride=2)))
    out.append(("downsample", ext, None, dict(stride=1 << 19)))
    u = unique_cloud(rng, 40, 3)
    out.append(("kernel_map_submanifold", u, None, dict(kernel_size=3)))                # scan path
    srt = u[np.argsort(ref.coord_keys(u), kind="stable")]
    out.append(("kernel_map_submanifold", srt, None, dict(kernel_size=3)))              # direct path
    out.append(("kernel_map_submanifold", srt[:9], None, dict(kernel_size=2, tensor_stride=2)))
    out.append(("kernel_map_submanifold", u[:5], None, dict(kernel_size=1)))
    out.append(("kernel_map_strided", u, None, dict(kernel_size=2, stride=2)))
    out.append(("kernel_map_strided", u * 2, None, dict(kernel_size=3, stride=2, tensor_stride=2)))
    edge = np.array([[-big - 1, 0, 0], [big, 0, 0], [big, big, big], [-big - 1, -big - 1, -big - 1]])
    out.append(("kernel_map_submanifold", edge, None, dict(kernel_size=3)))           # shifts leave the range
    return g, out


def jobs_u1(rng):
    g = geo_of(UNITS["u1"])
    crop = ouster_crop(4096)
    out = []
    out.append(("fps", crop, None, dict(m=6)))
    qi = rng.choice(4096, 3, replace=False)
    out.append(("knn", crop, crop[qi], dict(k=16)))
    ci = ref.fps(crop, 5)
    out.append(("ball_query", crop, crop[ci], dict(radius=40, k=32)))
    out.append(("downsample", crop, None, dict(stride=8)))          # the same 4096 points: 8 cm sites
    vox = voxel_crop(2048, 0.1)[:600]
    out.append(("downsample", vox, None, dict(stride=2)))
    out.append(("kernel_map_strided", vox, None, dict(kernel_size=2, stride=2)))
    out.append(("kernel_map_submanifold", vox[:200], None, dict(kernel_size=3)))
    shuf = vox[:100][rng.permutation(100)]
    out.append(("kernel_map_submanifold", shuf, None, dict(kernel_size=3)))
    return g, out


def jobs_full_frame(rng, frame):
    """Server-size workloads (slow): 8192-point crops, 3136-voxel kernel maps."""
    g = geo_of(SERVER)
    crop = ouster_crop(8192, frame)
    out = [("fps", crop, None, dict(m=24))]
    out.append(("knn", crop, crop[rng.choice(8192, 12, replace=False)], dict(k=16)))
    out.append(("ball_query", crop, crop[ref.fps(crop, 24)], dict(radius=30, k=64)))
    out.append(("downsample", crop, None, dict(stride=8)))
    vox = voxel_crop(4096, 0.05, frame)
    out.append(("kernel_map_submanifold", vox, None, dict(kernel_size=3)))
    out.append(("kernel_map_strided", vox, None, dict(kernel_size=2, stride=2)))
    shuf = vox[:1024][rng.permutation(1024)]
    out.append(("kernel_map_submanifold", shuf, None, dict(kernel_size=3)))
    return g, out


def jobs_u2(rng):
    g = geo_of(UNITS["u2"])
    out = []
    c = random_cloud(rng, 100, -2048, 2047)
    out.append(("fps", c, None, dict(m=5)))
    out.append(("knn", c, random_cloud(rng, 3, -2048, 2047), dict(k=4)))
    out.append(("ball_query", c, c[:4], dict(radius=900, k=8)))
    out.append(("downsample", c, None, dict(stride=256)))
    u = unique_cloud(rng, 70, 4)
    out.append(("kernel_map_strided", u, None, dict(kernel_size=3, stride=2)))
    out.append(("kernel_map_submanifold", u, None, dict(kernel_size=2)))
    return g, out


def build_jobs(specs_fn, rng):
    g, specs = specs_fn(rng)
    jobs, prev = [], None
    for op, pts, qs, kw in specs:
        job = make_job(g, op, pts, queries=qs, **kw)
        same = prev is not None and prev.shape == pts.shape and (prev == pts).all()
        jobs.append({"job": job, "points": pts, "queries": qs, "load": not same})
        prev = pts
    return g, jobs


def make_design(d: Path, units_spec, seed: int = 2021) -> dict:
    """Emit a side-by-side top of the units and write the stimulus of their job lists.
    units_spec: [(prefix, MappingUnit kwargs, job-list function)]."""
    rng = np.random.default_rng(seed)
    top = SideBySide([(p, MappingUnit(**kw)) for p, kw, _ in units_spec])
    src = emit(d / "lego_pointacc_mapping_top.v", top, "lego_pointacc_mapping_top")
    units = []
    for prefix, kw, fn in units_spec:
        g, jobs = build_jobs(lambda r: fn(r, kw), rng)
        for j in jobs:
            j["expected"] = expected(j["job"], j["points"], j["queries"])
            j["cycles"] = job_cycles(g, j["job"], j["points"], j["queries"])
        units.append({"prefix": prefix, "geo": g, "jobs": jobs})
    stim = {"units": [{"prefix": u["prefix"], "max_cycles_per_job": max(j["cycles"] for j in u["jobs"]) + 100,
                       "jobs": [{"points": j["job"].points if j["load"] else None, "ports": j["job"].ports,
                                 "queries": j["job"].queries} for j in u["jobs"]]} for u in units]}
    (d / "stim.json").write_text(json.dumps(stim))
    return {"dir": d, "src": src, "units": units}


def simulate(design, engine: str) -> dict:
    d = design["dir"]
    result = d / f"result_{engine}.json"
    t0 = time.monotonic()
    ok = run_cocotb(engine=engine, sources=[design["src"]], top="lego_pointacc_mapping_top",
                    test_module="mapping_bench", test_dir=HERE, build_dir=d / f"build_{engine}",
                    extra_env={"MAP_STIM": str(d / "stim.json"), "MAP_RESULT": str(result)})
    assert ok, f"cocotb bench failed under {engine} (log: {d / f'build_{engine}' / 'sim.log'})"
    res = json.loads(result.read_text())
    res["wall_s"] = time.monotonic() - t0
    return res


def check_exact(sim, design) -> None:
    bad = []
    for u, got in zip(design["units"], sim["units"]):
        for i, (j, r) in enumerate(zip(u["jobs"], got)):
            res = decode(j["job"], [tuple(b) for b in r["beats"]], u["geo"])
            what = f"{u['prefix']} job {i} {j['job'].op} n={j['job'].ports['n']}"
            if not results_equal(res, j["expected"]):
                bad.append(f"{what}: result differs from sw_reference.pointacc")
            if not (r["measured"] == r["cycles_port"] == j["cycles"]):
                bad.append(f"{what}: measured {r['measured']}, port {r['cycles_port']}, model {j['cycles']}")
            if r["stray"]:
                bad.append(f"{what}: beats after done")
    assert not bad, "\n".join(bad)


DEFAULT_SET = [("u0", UNITS["u0"], lambda r, kw: jobs_u0(r)), ("u1", UNITS["u1"], lambda r, kw: jobs_u1(r)),
               ("u2", UNITS["u2"], lambda r, kw: jobs_u2(r))]


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("mapping_rtl"), DEFAULT_SET)


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def sim(request, design):
    return simulate(design, request.param)


def test_bit_exact(sim, design):
    bad = []
    for u, got in zip(design["units"], sim["units"]):
        for i, (j, r) in enumerate(zip(u["jobs"], got)):
            res = decode(j["job"], [tuple(b) for b in r["beats"]], u["geo"])
            if not results_equal(res, j["expected"]):
                bad.append(f"{u['prefix']} job {i} {j['job'].op} {j['job'].ports}")
            assert r["stray"] == 0
    assert not bad, "\n".join(bad)


def test_cycle_exact(sim, design):
    bad = []
    for u, got in zip(design["units"], sim["units"]):
        for i, (j, r) in enumerate(zip(u["jobs"], got)):
            if not (r["measured"] == r["cycles_port"] == j["cycles"]):
                bad.append(f"{u['prefix']} job {i} {j['job'].op}: measured {r['measured']}, port "
                           f"{r['cycles_port']}, model {j['cycles']}")
    assert not bad, "\n".join(bad)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["verilator", "icarus"])
def test_full_frames_slow(tmp_path, engine, monkeypatch):
    """The server configuration (point buffer 8192, L 8, W 16, KM 64) on both Ouster frames:
    8192-point FPS / kNN / ball query / downsample, kernel maps on 3136 voxels."""
    if engine == "verilator":
        monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")   # long run: optimize the model
    spec = [("s1", SERVER, lambda r, kw: jobs_full_frame(r, "ouster_os1_128_frame0.bin")),
            ("s2", SERVER, lambda r, kw: jobs_full_frame(r, "ouster_os2_128_frame0.bin"))]
    design = make_design(tmp_path, spec)
    check_exact(simulate(design, engine), design)


def frame_slab_jobs(rng, frame):
    """The whole frame at 0.05 m in the network model's x-slab jobs (costs.x_tiles: one-voxel slabs, one
    neighbour slab each side, as Costs.kmap_sub plans a submanifold map at tensor stride 1)."""
    vox = ref.voxelize(load_cloud(DATA_DIR / frame), 0.05)[0].astype(np.int64)
    tiles = x_tiles(vox[:, 0], SERVER["capacity"], 1, 1, "submanifold kernel map")
    return geo_of(SERVER), [("kernel_map_submanifold", vox[lo:hi], None, dict(kernel_size=3)) for lo, hi, _, _ in tiles]


# frame -> (voxels at 0.05 m, pairs of the full-frame 3x3x3 submanifold map, the network model's map_cycles)
WHOLE_FRAMES = {"ouster_os1_128_frame0.bin": (103_091, 307_421, 5_490_049),
                "ouster_os2_128_frame0.bin": (110_390, 390_324, 5_800_282)}


@pytest.mark.slow
@pytest.mark.parametrize("frame", sorted(WHOLE_FRAMES))
def test_whole_frame_kernel_map_slow(tmp_path, monkeypatch, frame):
    """A whole Ouster frame's 3x3x3 submanifold map (OS-1: 103,091 voxels, OS-2: 110,390) on the server unit
    under Verilator, in the model's 7 x-slab jobs: every job bit- and cycle-exact; the union of the jobs' core
    pairs (outputs a job owns, indices shifted to the frame) == sw_reference's full-frame map per offset; the
    total (loads + jobs) == the network model's map_cycles for the frame (bench/pointacc_mapping.py's server
    figure for OS-1)."""
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    n_vox, n_pairs, map_cycles = WHOLE_FRAMES[frame]
    design = make_design(tmp_path, [("s1", SERVER, lambda r, kw: frame_slab_jobs(r, frame))])
    sim = simulate(design, "verilator")
    check_exact(sim, design)
    vox = ref.voxelize(load_cloud(DATA_DIR / frame), 0.05)[0].astype(np.int64)
    tiles = x_tiles(vox[:, 0], SERVER["capacity"], 1, 1, "submanifold kernel map")
    (unit,), (got,) = design["units"], sim["units"]
    assert len(tiles) == len(unit["jobs"]) == len(got) == 7
    union = [[] for _ in range(27)]
    for (lo, hi, c_lo, c_hi), j, r in zip(tiles, unit["jobs"], got):
        for o, p in enumerate(decode(j["job"], [tuple(b) for b in r["beats"]], unit["geo"])):
            p = p + lo
            union[o].append(p[(p[:, 1] >= c_lo) & (p[:, 1] < c_hi)])
    assert len(vox) == n_vox
    full = ref.submanifold_kernel_map(vox, 3, 1)
    assert full.n_pairs == n_pairs
    for o in range(27):
        assert np.array_equal(np.concatenate(union[o]), full.pairs[o]), f"offset {o}"
    costs = Costs(PointAccConfig.preset("server"))
    costs.layer("frame", "map")
    costs.kmap_sub(vox, 1)
    total = sum(len(j["points"]) + r["measured"] for j, r in zip(unit["jobs"], got))
    assert total == costs.rec["map_cycles"] == map_cycles
    assert costs.rec["map_jobs"] == 7
    print(f"whole frame: {len(vox)} voxels, {len(tiles)} jobs, {total} cycles, "
          f"{[r['measured'] for r in got]} per job, {sim['wall_s']:.0f} s")


# frame -> (voxels at 0.05 m, output sites and pairs of the 2x2x2 stride-2 map, the network model's map_cycles)
WHOLE_FRAMES_STRIDED = {"ouster_os1_128_frame0.bin": (103_091, 77_741, 103_091, 1_629_069),
                        "ouster_os2_128_frame0.bin": (110_390, 79_112, 110_390, 1_713_257)}


def _rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a).reshape(-1, 2)
    return a[np.lexsort(a.T[::-1])]


@pytest.mark.slow
@pytest.mark.parametrize("frame", sorted(WHOLE_FRAMES_STRIDED))
def test_whole_frame_strided_kernel_map_slow(tmp_path, monkeypatch, frame):
    """A whole Ouster frame's 2x2x2 stride-2 (downsampling) kernel map on the server unit under Verilator, in the
    network model's x-slab jobs (Costs.kmap_down: slabs of whole 2-voxel cells, no halo): every job bit- and
    cycle-exact; the union of the jobs' pairs (input indices shifted by the slab's first voxel, output indices by
    the outputs of the slabs before) == sw_reference's full-frame strided map per offset; the total (loads + jobs)
    == the network model's map_cycles for the frame."""
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    n_vox, n_out, n_pairs, map_cycles = WHOLE_FRAMES_STRIDED[frame]
    vox = ref.voxelize(load_cloud(DATA_DIR / frame), 0.05)[0].astype(np.int64)
    assert len(vox) == n_vox
    tiles = x_tiles(vox[:, 0], SERVER["capacity"], 2, 0, "strided kernel map")
    design = make_design(tmp_path, [("s1", SERVER, lambda r, kw: (
        geo_of(SERVER), [("kernel_map_strided", vox[lo:hi], None, dict(kernel_size=2, stride=2))
                         for lo, hi, _, _ in tiles]))])
    sim = simulate(design, "verilator")
    check_exact(sim, design)
    (unit,), (got,) = design["units"], sim["units"]
    assert len(tiles) == len(unit["jobs"]) == len(got) == 7
    out_all, full = ref.strided_kernel_map(vox, 2, 2, 1)
    assert len(out_all) == n_out and full.n_pairs == n_pairs
    union, outs = [[] for _ in range(len(full.pairs))], 0
    for (lo, hi, _, _), j, r in zip(tiles, unit["jobs"], got):
        n_tile_out = len(ref.strided_kernel_map(vox[lo:hi], 2, 2, 1)[0])
        for o, p in enumerate(decode(j["job"], [tuple(b) for b in r["beats"]], unit["geo"])):
            union[o].append(np.asarray(p).reshape(-1, 2) + np.array([lo, outs]))
        outs += n_tile_out
    assert outs == n_out
    for o in range(len(full.pairs)):
        assert np.array_equal(_rows(np.concatenate(union[o])), _rows(full.pairs[o])), f"offset {o}"
    costs = Costs(PointAccConfig.preset("server"))
    costs.layer("frame", "map")
    costs.kmap_down(vox, 1)
    total = sum(len(j["points"]) + r["measured"] for j, r in zip(unit["jobs"], got))
    assert total == costs.rec["map_cycles"] == map_cycles
    print(f"whole frame strided: {len(vox)} voxels, {len(tiles)} jobs, {total} cycles, "
          f"{[r['measured'] for r in got]} per job, {sim['wall_s']:.0f} s")


# The bench's whole-frame neighbour workload (bench/pointacc_mapping.py): the 16,384 points of the OS-1 frame
# nearest the sensor in cm, FPS 16,384 -> 4,096, the picks as kNN queries / ball-query centres.
FRAME_N, FRAME_M, FRAME_K = 16384, 4096, 16
FRAME_BALL_RADIUS = 20          # cm (the bench's ball-query radius)
FRAME_FPS_CYCLES = 8_419_325    # n + fps_cycles, measured at RTL (test_whole_frame_fps_slow)
FRAME_KNN_CYCLES = 8_560_640    # n + knn_cycles
FRAME_BALL_CYCLES = 4_326_731   # n + ball_query_cycles
# the same workload on each frame: n + ball_query_cycles (data-dependent; kNN's and FPS's depend on n, m, k only)
FRAMES_BALL_CYCLES = {"ouster_os1_128_frame0.bin": FRAME_BALL_CYCLES, "ouster_os2_128_frame0.bin": 5_015_255}
FRAME_BALL_FEW = 273            # centres with fewer than k = 16 hits at 20 cm (the rest have >= 16)


@functools.lru_cache(maxsize=None)
def frame_workload(frame: str = FRAME) -> tuple[np.ndarray, np.ndarray]:
    """(points (16384, 3) int64 in cm, the FPS picks (4096,)): the bench's workload."""
    xyz = load_cloud(DATA_DIR / frame)
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:FRAME_N])
    pts = ref.quantize(xyz[keep], 100.0).astype(np.int64)
    return pts, ref.fps(pts, FRAME_M)


def brute_d2(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Exact int64 squared distances (Q, N) by broadcasting (not sw_reference's per-axis loop)."""
    diff = q[:, None, :] - p[None, :, :]
    return np.einsum("qnd,qnd->qn", diff, diff)


def knn_oracle(p: np.ndarray, q: np.ndarray, k: int, chunk: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force kNN: per query the first k of a stable argsort on the exact distances (ties: lower index)."""
    idx, dist = [], []
    for s in range(0, len(q), chunk):
        d2 = brute_d2(q[s:s + chunk], p)
        order = np.argsort(d2, axis=1, kind="stable")[:, :k]
        idx.append(order)
        dist.append(np.take_along_axis(d2, order, axis=1))
    return np.concatenate(idx), np.concatenate(dist)


def ball_oracle(p: np.ndarray, c: np.ndarray, radius: int, k: int) -> np.ndarray:
    """cKDTree candidates within radius + 1/2 (a superset: d2 <= r^2 < (r + 1/2)^2), kept where the exact integer
    d2 <= r^2; the first k in index order, padded with the first hit, -1 for no hit."""
    from scipy.spatial import cKDTree
    out = np.full((len(c), k), -1, dtype=np.int64)
    for i, cand in enumerate(cKDTree(p).query_ball_point(c, radius + 0.5)):
        cand = np.sort(np.asarray(cand, dtype=np.int64))
        hits = cand[((p[cand] - c[i]) ** 2).sum(axis=1) <= radius * radius][:k]
        if hits.size:
            out[i] = hits[0]
            out[i, :hits.size] = hits
    return out


def test_whole_frame_workload_model():
    """The bench's whole-frame kNN / ball-query workload on the host (no RTL): sw_reference's kNN and ball query
    equal the independent oracles (brute-force stable argsort; cKDTree with the exact integer radius check) and
    cKDTree's distances; the radius gives most centres > k hits and some fewer; the model figures are the bench's."""
    pts, sel = frame_workload()
    q = pts[sel]
    idx, d2 = ref.knn(pts, q, FRAME_K)
    o_idx, o_d2 = knn_oracle(pts, q, FRAME_K)
    assert np.array_equal(idx, o_idx) and np.array_equal(d2, o_d2)
    from scipy.spatial import cKDTree
    kd = cKDTree(pts).query(q, FRAME_K)[0]
    assert np.array_equal(np.rint(kd * kd).astype(np.int64), d2)
    assert (d2[:, 0] == 0).all() and (np.diff(d2, axis=1) >= 0).all()
    ties = (d2[:, 1:] == d2[:, :-1]).sum()
    assert ties > 1000                                             # equal distances: the tie rule is exercised
    ball = ref.ball_query(pts, q, FRAME_BALL_RADIUS, FRAME_K)
    assert np.array_equal(ball, ball_oracle(pts, q, FRAME_BALL_RADIUS, FRAME_K))
    r2, on, hits = FRAME_BALL_RADIUS ** 2, 0, []
    for s in range(0, len(q), 256):                 # in chunks: the whole (4096, 16384) int64 matrix is 0.5 GB
        d2_all = brute_d2(q[s:s + 256], pts)
        on += int((d2_all == r2).sum())
        hits.append((d2_all <= r2).sum(axis=1))
    hits = np.concatenate(hits)
    assert on == 415                                                # on the radius: the inclusive rule matters
    assert (hits < FRAME_K).sum() == FRAME_BALL_FEW and hits.min() >= 1 and (hits > FRAME_K).sum() > 3700
    geo = geo_of(SERVER)
    assert FRAME_N + fps_cycles(geo, FRAME_N, FRAME_M) == FRAME_FPS_CYCLES
    assert FRAME_N + knn_cycles(geo, FRAME_N, FRAME_M, FRAME_K) == FRAME_KNN_CYCLES
    assert FRAME_N + ball_query_cycles(geo, pts, q, FRAME_BALL_RADIUS, FRAME_K) == FRAME_BALL_CYCLES


def run_frame_job(tmp_path, op: str, pts: np.ndarray, queries, **kw):
    """One job on the server unit under Verilator (optimized model): check_exact, then (job, decoded result,
    loads + measured cycles, simulation wall seconds)."""
    design = make_design(tmp_path, [("s1", SERVER, lambda r, _: (geo_of(SERVER), [(op, pts, queries, kw)]))])
    sim = simulate(design, "verilator")
    check_exact(sim, design)
    (unit,), (got,) = design["units"], sim["units"]
    job = unit["jobs"][0]["job"]
    res = decode(job, [tuple(b) for b in got[0]["beats"]], unit["geo"])
    return job, res, len(pts) + got[0]["measured"], sim["wall_s"]


@pytest.mark.slow
@pytest.mark.parametrize("frame", ["ouster_os1_128_frame0.bin", "ouster_os2_128_frame0.bin"])
def test_whole_frame_fps_slow(tmp_path, monkeypatch, frame):
    """FPS 16,384 -> 4,096 on the server unit under Verilator: the 16,384 points of the frame nearest the
    sensor in cm (for OS-1 bench/pointacc_mapping.py's workload), bit-exact against sw_reference's FPS (ties to the
    lowest index) and cycle-exact; loads + job == the bench's figure, n + fps_cycles = 8,419,325 (n and m only)."""
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    pts, sel = frame_workload(frame)
    _, got, total, wall = run_frame_job(tmp_path, "fps", pts, None, m=FRAME_M)
    assert np.array_equal(np.asarray(got).ravel()[:FRAME_M], sel)
    assert total == FRAME_N + fps_cycles(geo_of(SERVER), FRAME_N, FRAME_M) == FRAME_FPS_CYCLES
    print(f"whole frame FPS ({frame}): {len(pts)} -> {FRAME_M}, {total} cycles, {wall:.0f} s")


@pytest.mark.slow
@pytest.mark.parametrize("frame", ["ouster_os1_128_frame0.bin", "ouster_os2_128_frame0.bin"])
def test_whole_frame_knn_slow(tmp_path, monkeypatch, frame):
    """kNN k = 16 on the server unit under Verilator: the 4,096 FPS picks as queries over the frame's 16,384
    points nearest the sensor (for OS-1 the bench's; one job, one pass a query); indices and distances
    bit-exact against sw_reference's kNN and against the brute-force oracle (stable argsort, ties to the lower
    index); loads + job == the model, n + knn_cycles = 8,560,640 on both frames."""
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    pts, sel = frame_workload(frame)
    _, (idx, d2), total, wall = run_frame_job(tmp_path, "knn", pts, pts[sel], k=FRAME_K)
    o_idx, o_d2 = knn_oracle(pts, pts[sel], FRAME_K)
    assert np.array_equal(idx, o_idx) and np.array_equal(d2, o_d2)
    assert total == FRAME_N + knn_cycles(geo_of(SERVER), FRAME_N, FRAME_M, FRAME_K) == FRAME_KNN_CYCLES
    print(f"whole frame kNN ({frame}): {FRAME_M} queries x {len(pts)} points, k {FRAME_K}, {total} cycles, "
          f"{wall:.0f} s")


@pytest.mark.slow
@pytest.mark.parametrize("frame", ["ouster_os1_128_frame0.bin", "ouster_os2_128_frame0.bin"])
def test_whole_frame_ball_query_slow(tmp_path, monkeypatch, frame):
    """Ball query (radius 20 cm, k = 16) on the server unit under Verilator, the 4,096 FPS picks as centres over
    the frame's 16,384 points nearest the sensor (OS-1: the bench's; 273 centres with fewer than 16 hits: padded
    rows, full scans); bit-exact against sw_reference's ball query and the cKDTree oracle; loads + job == the
    model, n + ball_query_cycles = 4,326,731 (OS-1) and 5,015,255 (OS-2)."""
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    pts, sel = frame_workload(frame)
    _, got, total, wall = run_frame_job(tmp_path, "ball_query", pts, pts[sel], radius=FRAME_BALL_RADIUS, k=FRAME_K)
    assert np.array_equal(got, ball_oracle(pts, pts[sel], FRAME_BALL_RADIUS, FRAME_K))
    model = FRAME_N + ball_query_cycles(geo_of(SERVER), pts, pts[sel], FRAME_BALL_RADIUS, FRAME_K)
    assert total == model == FRAMES_BALL_CYCLES[frame]
    print(f"whole frame ball query ({frame}): {FRAME_M} centres x {len(pts)} points, r {FRAME_BALL_RADIUS} cm, k {FRAME_K}, "
          f"{total} cycles, {wall:.0f} s")


def test_real_crop_sizes(design):
    """The default set runs FPS, kNN, ball query and downsample on a 4096-point Ouster crop (unit u1)."""
    u1 = design["units"][1]
    assert [(j["job"].op, j["job"].info["n"]) for j in u1["jobs"][:4]] == \
        [("fps", 4096), ("knn", 4096), ("ball_query", 4096), ("downsample", 4096)]
    crop = u1["jobs"][3]["points"]
    assert len(u1["jobs"][3]["expected"][0]) == len(np.unique(crop // 8, axis=0)) == 2058   # 8 cm sites


# ------------------------------------------------------------------------------ host-side checks
def test_driver_refusals():
    g = geo_of(UNITS["u0"])
    pts = np.zeros((65, 3), dtype=np.int64)
    with pytest.raises(LegoError, match="^point_buffer: a cloud of 65 points exceeds the point buffer of 64"):
        make_job(g, "fps", pts, m=3)
    c = np.arange(30).reshape(10, 3)
    with pytest.raises(LegoError, match="^max_neighbors: kNN k = 9 exceeds the unit's kNN limit"):
        make_job(g, "knn", c, queries=c[:2], k=9)
    with pytest.raises(LegoError, match="^max_neighbors"):
        make_job(g, "ball_query", c, queries=c[:2], k=9, radius=3)
    with pytest.raises(LegoError, match="^stride: .*power of two"):
        make_job(g, "downsample", c, stride=3)
    with pytest.raises(LegoError, match="^coord_bits"):
        make_job(geo_of(UNITS["u2"]), "fps", np.array([[4096, 0, 0]]), m=1)
    with pytest.raises(LegoError, match="^points: duplicate"):
        make_job(g, "kernel_map_submanifold", np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(LegoError, match="^m: "):
        make_job(g, "fps", c, m=11)
    with pytest.raises(LegoError, match="^op: unknown"):
        make_job(g, "sort", c)
    with pytest.raises(ValueError, match="^sorter_width"):
        MappingUnit(64, 2, 6)
    with pytest.raises(ValueError, match="^point_buffer"):
        MappingUnit(62, 2, 4)
    with pytest.raises(ValueError, match="^distance_lanes"):
        MappingUnit(64, 8, 4)


def test_merge_step_formula():
    """kernel_map_breakdown's closed form equals a step-by-step merge."""
    rng = np.random.default_rng(3)
    g = geo_of(UNITS["u0"])
    for trial in range(30):
        span = int(rng.integers(1, 4))
        u = unique_cloud(rng, int(rng.integers(1, min(40, (2 * span + 1) ** 3 // 2))), span)
        b = kernel_map_breakdown(g, u, 3)
        ins = np.sort(ref.coord_keys(u))
        out = u[np.argsort(ref.coord_keys(u), kind="stable")]
        for o, delta in enumerate(ref.kernel_offsets(3)):
            sh = out + delta
            ok = np.ones(len(sh), dtype=bool)
            steps, hits = merge_steps_reference(list(ins), list(ref.coord_keys(sh)), ok)
            assert (steps, hits) == (b["steps"][o], b["hits"][o])


@pytest.mark.parametrize("params", [UNITS["u0"], UNITS["u2"], dict(capacity=8192, lanes=8, sorter_width=16,
                                                                  max_neighbors=64, coord_bits=21)])
def test_verilator_lint(tmp_path, params):
    src = emit(tmp_path / "lego_pointacc_mapping.v", MappingUnit(**params), "lego_pointacc_mapping")
    res = lint(src, "lego_pointacc_mapping", tmp_path)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]

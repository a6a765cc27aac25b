"""``lego sim DIR`` of a generated PointAcc directory: one bench case through ``pointacc_top`` against
``sw_reference.pointacc`` (bit-exact) and the cycle model (cycle-exact).

The case (``make_case``): ``points``, the unique 5 cm voxels of a crop of the bundled Ouster OS-1 frame
(the ``n`` voxels nearest the return closest to 8 m ahead of the sensor for seed 0, nearest a random point of
the frame for another seed, by max(|dx|, |dy|),
coordinates relative to the centre of the crop's bounding box, in the order the sensor produced them), ``feats`` (n x R int8)
and ``weight`` (27 x R x C int8) drawn from the seed. The jobs (``BenchPlan``):

* mapping unit: FPS (m samples), kNN (the first FPS picks as queries, k), ball query (same centres,
  radius 3 voxels, K), downsample (stride 2), submanifold kernel map (K = 3), strided kernel map
  (K = 2, stride 2);
* sparse convolution (K = 3, submanifold) on the MMU and the matrix unit as an *implicit GEMM* per output tile
  of T sites (``costs.conv_plan``, the network model's plan: T = all n sites when n * 27 fits the MMU's 16-bit
  tag, else tiles of 65536 // 27 rounded down to a multiple of lcm(R, C)):
  X is T x 27R int8, row t = the 27 offsets' input rows of output site t, each the input row paired with t at
  that offset or the all-zero DRAM row ``CONV_ZERO_ROW``; one MMU gather of the T * 27 rows (t major, offset
  minor) staged into X (``mxu_stage`` = 1), then one program GEMM(M = T, K = 27R, N = C) by the weights
  reshaped to 27R x C: the array accumulates every offset on chip, and its Y is the layer's output
  (``sw_reference.pointacc.sparse_conv``, int32), no host arithmetic. The cache state carries over from tile to
  tile; DRAM answers after ``BENCH_DRAM_LATENCY`` cycles (the MMU's row port and the array's AXI port alike).
* one PointNet++ set-abstraction layer on the FPS / ball-query jobs' centres and map (``sa_step``): an MMU gather
  of the map's rows ``[x, y, z, feats]`` staged into X, then the layer's GEMM program; the host
  subtracts the centres' coordinate term, applies ReLU and requantization and max-pools (``set_abstraction``);
  last on the reset (after the offsets, or after the feature kNN rerun); skipped (``sa_skip``) when a
  coordinate does not fit int8.
* with the feature kNN path (``feature_points`` > 0), DGCNN's EdgeConv neighbour search: ``ffeats``
  (nf = min(32, feature_points) points x feature_dims random ``feature_bits``-bit features, drawn from the
  seed; or ``--inputs``) lie in DRAM from row ``FEATURE_DRAM_BASE``, ceil(C / FL) rows a point; an MMU
  gather streams them into the feature buffer (``map_fld_src`` = 1), then OP_KNNF ranks every point's
  neighbours (k = min(20, max(W, max_neighbors), nf); k > KS*W: ceil(k / (KS*W)) passes). Two such steps: ``fknn`` (the nf points) and ``fknn_tied`` (a map that
  gathers each of the first points three times: duplicated features, ties to the lower index, cache hits).

Order on one reset (``steps``): FPS, kNN, fknn, the kNN again (no reload: a mode switch back must give
the first kNN's beats and cycles), ball query, downsample, the kernel maps, the convolution tiles,
fknn_tied; then a reset and fknn again (its beats, cycles and MMU counters must equal the first fknn's;
fknn_tied left some of its rows cached, so a reset that kept the cache would show).
Without the feature path: the mapping jobs, then the convolution tiles.

Outputs (Report.outputs): fps, knn_idx, knn_d2, ball, down_coords, down_inverse, kmap_sub and
kmap_str (one row (offset, in, out) per pair), conv (n x C int64: the int32 outputs), sa (M x C int8); with the feature path fknn_idx,
fknn_d2, fknn_tied_idx, fknn_tied_d2. ``cycles`` is the sum over the jobs; ``extra['jobs']`` lists each
job's measured and predicted cycles (a feature kNN step: ``cycles.gather_knn_feature_cycles``).
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from simulator.report import Report
from sw_reference import pointacc as ref

from ..rtlbench import ENGINES, build_dir, check_run, check_waves, run_cached
from .cache_model import CacheModel
from .costs import conv_plan
from .cloud import DATA_DIR, load_cloud
from .config import PointAccConfig
from .cycles import (feature_gather_entries, gather_gemm_cycles, gather_knn_feature_cycles, job_cycles,
                     knn_feature_cycles, mmu_cycles)
from .driver import Geometry, decode, expected, make_job, results_equal
from .featdist import check_feature_job, feature_rows
from .mapping import OP_KNNF
from .matrix import gemm_program, pack_int8
from .sa_step import SA_DRAM_BASE, sa_decode, sa_entries, sa_expected, sa_input_rows, sa_skip, sa_weight

__all__ = ["ENGINES", "BENCH_FRAME", "BENCH_VOXEL_M", "BENCH_POINTS", "BENCH_DRAM_LATENCY", "make_case",
           "BenchPlan", "plan", "run_design", "bench_prediction", "output_tensors", "input_tensors"]

BENCH_FRAME = "ouster_os1_128_frame0.bin"
BENCH_VOXEL_M = 0.05
BENCH_POINTS = 256              # voxels of the crop (at most the point buffer)
BENCH_DRAM_LATENCY = 8          # cycles from a DRAM read request to its first beat
BENCH_CENTRE_XY = (8.0, 0.0)    # seed 0: the crop around the return nearest 8 m ahead of the sensor
BALL_RADIUS = 3                 # voxels
CONV_KERNEL = 3
BENCH_FEATURE_POINTS = 32       # points of the feature kNN (at most feature_points)
BENCH_FEATURE_K = 20            # DGCNN's k (at most the sorter width and the points)
FEATURE_DRAM_BASE = 1 << 20     # DRAM row of the feature kNN's first feature row (past the conv's rows)
CONV_ZERO_ROW = 1 << 18         # the all-zero DRAM row an implicit-GEMM slot without a pair gathers


# ------------------------------------------------------------------------------------------ case
def bench_points(cfg: PointAccConfig) -> int:
    return min(BENCH_POINTS, cfg.point_buffer)


def bench_feature_points(cfg: PointAccConfig) -> int:
    return min(BENCH_FEATURE_POINTS, cfg.feature_points)


def bench_ffeats(cfg: PointAccConfig, seed: int = 0) -> np.ndarray:
    """The feature kNN's features (nf, feature_dims) int64, uniform over the feature_bits range (own stream)."""
    rng = np.random.default_rng([seed, 7])
    lo, hi = -(1 << (cfg.feature_bits - 1)), (1 << (cfg.feature_bits - 1)) - 1
    return rng.integers(lo, hi + 1, (bench_feature_points(cfg), cfg.feature_dims)).astype(np.int64)


def make_case(cfg: PointAccConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """The default inputs: points (n, 3) int64, feats (n, R) int8, weight (27, R, C) int8; with the feature
    kNN path ffeats (nf, feature_dims) int64."""
    n = bench_points(cfg)
    xyz = load_cloud(DATA_DIR / BENCH_FRAME).astype(np.float64)
    rng = np.random.default_rng(seed)
    ahead = int(np.argmin(((xyz[:, :2] - np.array(BENCH_CENTRE_XY)) ** 2).sum(axis=1)))
    centre = xyz[ahead] if seed == 0 else xyz[int(rng.integers(len(xyz)))]
    order = np.argsort(np.abs(xyz[:, :2] - centre[:2]).max(axis=1), kind="stable")
    vox = np.floor(xyz / BENCH_VOXEL_M).astype(np.int64)
    keys = ref.coord_keys(vox[order])
    _, first = np.unique(keys, return_index=True)
    file_idx = np.sort(order[np.sort(first)[:n]])
    points = vox[file_idx]
    points = points - (points.min(axis=0) + points.max(axis=0)) // 2      # centred on the crop's box
    feats = rng.integers(-128, 128, (len(points), cfg.mxu_rows)).astype(np.int8)
    weight = rng.integers(-128, 128, (CONV_KERNEL ** 3, cfg.mxu_rows, cfg.mxu_cols)).astype(np.int8)
    case = {"points": points, "feats": feats, "weight": weight,
            "sa_weight": sa_weight(cfg.mxu_rows, cfg.mxu_cols, seed)}
    if cfg.feature_points:
        case["ffeats"] = bench_ffeats(cfg, seed)
    return case


def input_tensors(cfg: PointAccConfig) -> dict:
    n, cb = bench_points(cfg), cfg.coord_bits
    return {"points": {"shape": [n, 3], "dtype": f"int{cb}", "bits": cb, "role": "input",
                       "what": "integer coordinates (unique: the kernel maps need unique sites)"},
            "feats": {"shape": [n, cfg.mxu_rows], "dtype": "int8", "bits": 8, "role": "input",
                      "what": "int8 features, one MMU row per point"},
            "weight": {"shape": [CONV_KERNEL ** 3, cfg.mxu_rows, cfg.mxu_cols], "dtype": "int8", "bits": 8,
                       "role": "input", "what": "sparse-conv weights in sw_reference.pointacc offset order"},
            "sa_weight": {"shape": [cfg.mxu_rows, cfg.mxu_cols], "dtype": "int8", "bits": 8, "role": "input",
                          "optional": True, "what": "the set-abstraction layer's weights (rows: x, y, z, then "
                                                    "feats[:, :R-3]); default: drawn from the seed"},
            **({"ffeats": {"shape": [bench_feature_points(cfg), cfg.feature_dims], "dtype": f"int{cfg.feature_bits}",
                           "bits": cfg.feature_bits, "role": "input", "optional": True,
                           "what": "feature kNN features (DGCNN EdgeConv), gathered from DRAM by the MMU; "
                                   "default: drawn from the seed"}} if cfg.feature_points else {})}


def _check_inputs(cfg: PointAccConfig, inputs: dict, seed: int = 0) -> dict[str, np.ndarray]:
    out = {}
    for name, t in input_tensors(cfg).items():
        if name not in inputs:
            if t.get("optional"):
                out[name] = (bench_ffeats(cfg, seed) if name == "ffeats"
                             else sa_weight(cfg.mxu_rows, cfg.mxu_cols, seed))
                continue
            raise LegoError(f"--inputs: tensor '{name}' missing (needs: points, feats, weight)")
        a = np.asarray(inputs[name])
        if list(a.shape) != t["shape"]:
            raise LegoError(f"--inputs: tensor '{name}' has shape {list(a.shape)}, expected {t['shape']}")
        if name == "ffeats" and not np.issubdtype(a.dtype, np.integer):
            raise LegoError(f"--inputs: tensor 'ffeats' must be integer, got {a.dtype}")
        out[name] = a.astype(np.int8 if t["dtype"] == "int8" else np.int64)
    return out


# ------------------------------------------------------------------------------------------ plan
@dataclass
class BenchPlan:
    cfg: PointAccConfig
    geo: Geometry
    case: dict
    jobs: list = field(default_factory=list)       # (name, Job, points, queries)
    expected: dict = field(default_factory=dict)   # output name -> array
    map_cycles: list = field(default_factory=list)
    conv: list = field(default_factory=list)       # per offset with pairs: {offset, rows, outs, cycles...}
    feat: list = field(default_factory=list)       # feature kNN steps: {name, entries, job, cycles, ...}
    sa: list = field(default_factory=list)         # the set-abstraction step (0 or 1): {entries, cycles, ...}
    sa_skip: str = ""                              # why the points cannot run it ('' when they can)
    steps: list = field(default_factory=list)      # run order: ("map", i), ("feat", i), ("conv", i), ("reset",)
    mxu_prog: dict = field(default_factory=dict)   # the matrix unit's ``prog`` manifest section (matrix.mxu_prog)

    @property
    def cycles(self) -> int:
        return sum(self.job_cycles())

    def job_cycles(self) -> list[int]:
        """Every job's exact cycles in report order: mapping jobs, offsets, the SA step, feature kNN steps."""
        return (list(self.map_cycles) + [c["cycles"] for c in self.conv] + [a["cycles"] for a in self.sa]
                + [f["cycles"] for f in self.feat])


def _pairs_table(pairs) -> np.ndarray:
    rows = [np.column_stack([np.full(len(p), o, dtype=np.int64), p]) for o, p in enumerate(pairs) if len(p)]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 3), dtype=np.int64)


def tied_sources(n: int) -> np.ndarray:
    """The tied feature kNN's map: buffer point p holds the features of point p mod ceil(n/3), each of those
    points three times (the last maybe fewer), copies ceil(n/3) indices apart."""
    return np.arange(n, dtype=np.int64) % max(1, -(-n // 3))


def _feature_step(cfg: PointAccConfig, geo: Geometry, cache: CacheModel, name: str, ffeats, src, k: int,
                  dram_latency: int) -> dict:
    """One feature kNN step: the MMU gather of the buffer rows (points ffeats[src]), then OP_KNNF querying
    every point; the golden result and the exact cycles (the cache model carries its state)."""
    f, q = check_feature_job(geo, np.asarray(ffeats)[src], range(len(src)), k)
    n = len(f)
    entries = feature_gather_entries(n, geo.feature_dims, geo.feature_lanes, src, FEATURE_DRAM_BASE)
    mc = mmu_cycles(cache, "gather", [r for r, _ in entries], dram_latency, cfg.mmu_mshrs, cfg.mmu_queue)
    knnf = knn_feature_cycles(geo, n, len(q), k, geo.feature_dims, geo.feature_lanes)
    idx, d2 = ref.knn(f, f[q], k)
    return {"name": name, "n": n, "k": k, "queries": q, "entries": entries, "feats": f,
            "ports": {"op": OP_KNNF, "n": n, "m": len(q), "k": k, "r2": 0, "shift": 0, "ksize": 0, "tstride": 0},
            "mmu_cycles": mc["cycles"], "hits": mc["hits"], "misses": mc["misses"], "knnf_cycles": knnf,
            "cycles": gather_knn_feature_cycles(mc["cycles"], knnf), "idx": idx, "d2": d2}


def gather_gemm(bp: BenchPlan, cache: CacheModel, rows: list[int], dram_latency: int, taps: int = 1) -> dict:
    """One gather-GEMM of the rows ``rows`` by K x C weights, ``taps`` gathered rows to a row of X (K = taps * R):
    the MMU's replay on ``cache`` (its state carries), the array's program and the exact cycles."""
    cfg = bp.cfg
    if len(rows) > 1 << 16:
        raise LegoError(f"points: a gather-GEMM of {len(rows)} map entries exceeds the MMU's 16-bit tag "
                        "(65536 staged rows)")
    mc = mmu_cycles(cache, "gather", rows, dram_latency, cfg.mmu_mshrs, cfg.mmu_queue)
    g = gemm_program(bp.mxu_prog, len(rows) // taps, taps * cfg.mxu_rows, cfg.mxu_cols, dram_latency)
    if g["dram"]["X"]["stride"] != taps * cfg.mxu_rows:        # the stager writes row tag at tag * R
        raise AssertionError(f"the program's X rows are {g['dram']['X']['stride']} bytes apart, the stager's "
                             f"{taps * cfg.mxu_rows}")
    return {"mmu_cycles": mc["cycles"], "hits": mc["hits"], "misses": mc["misses"], "program": g,
            "cycles": gather_gemm_cycles(mc["cycles"], g["cycles"])}


def plan(cfg: PointAccConfig, case: dict, mxu_prog: dict, dram_latency: int = BENCH_DRAM_LATENCY) -> BenchPlan:
    """The jobs, their golden outputs and their exact cycles (LegoError if the hardware cannot run them)."""
    geo = Geometry.from_config(cfg)
    p = np.asarray(case["points"], dtype=np.int64)
    n = len(p)
    bp = BenchPlan(cfg, geo, case, mxu_prog=mxu_prog)
    if n < 1:
        raise LegoError("points: empty cloud (0 points)")
    keys = ref.coord_keys(np.clip(p, ref.COORD_MIN, ref.COORD_MAX))
    if np.unique(keys).size != n:
        raise LegoError("points: duplicate coordinates; a kernel map needs unique coordinates")
    m = min(16, n)
    fps_job = make_job(geo, "fps", p, m=m)
    sel = ref.fps(p, m)
    q = p[sel[:min(8, m)]]
    k = min(16, geo.max_knn, n)                 # > W where max_neighbors > W: ceil(k / (KS*W)) passes
    kb = min(16, geo.max_neighbors)
    specs = [("fps", fps_job, None),
             ("knn", make_job(geo, "knn", p, queries=q, k=k), q),
             ("ball_query", make_job(geo, "ball_query", p, queries=q, radius=BALL_RADIUS, k=kb), q),
             ("downsample", make_job(geo, "downsample", p, stride=2), None),
             ("kernel_map_submanifold", make_job(geo, "kernel_map_submanifold", p, kernel_size=CONV_KERNEL), None),
             ("kernel_map_strided", make_job(geo, "kernel_map_strided", p, kernel_size=2, stride=2), None)]
    fpath = bool(geo.feature_points)
    if fpath:                                   # the kNN again after the feature kNN steps (a mode switch back)
        specs.append(("knn_again", specs[1][1], q))
    for name, job, qs in specs:
        bp.jobs.append((name, job, p, qs))
        bp.map_cycles.append(job_cycles(geo, job, p, qs))
    res = {name: expected(job, p, qs) for name, job, _, qs in bp.jobs}
    bp.expected = {"fps": res["fps"], "knn_idx": res["knn"][0], "knn_d2": res["knn"][1], "ball": res["ball_query"],
                   "down_coords": res["downsample"][0].astype(np.int64), "down_inverse": res["downsample"][1],
                   "kmap_sub": _pairs_table(res["kernel_map_submanifold"]),
                   "kmap_str": _pairs_table(res["kernel_map_strided"])}
    # sparse convolution on the submanifold map
    feats, weight = np.asarray(case["feats"]), np.asarray(case["weight"])
    km = ref.submanifold_kernel_map(p, CONV_KERNEL)
    bp.expected["conv"] = ref.sparse_conv(feats, weight, km, n)
    cache = CacheModel(cfg.cache_sets, cfg.cache_ways, cfg.cache_block_rows)
    if fpath:                                   # the first feature kNN, before the offsets (the cache state carries)
        ff = np.asarray(case["ffeats"], dtype=np.int64)
        nf = len(ff)
        kf = min(BENCH_FEATURE_K, geo.max_knn, nf)
        bp.feat.append(_feature_step(cfg, geo, cache, "fknn", ff, np.arange(nf), kf, dram_latency))
    R = cfg.mxu_rows
    cp = conv_plan(cfg, km, n, R, zero=CONV_ZERO_ROW)        # the network model's implicit-GEMM plan, rpp = 1
    for i, (start, m) in enumerate(zip(cp["starts"].tolist(), cp["tiles"])):
        rows = cp["rows"][start:start + m * cp["taps"]].tolist()
        lo = start // cp["taps"]
        bp.conv.append({"offset": f"tile {i}", "sites": [lo, lo + m], "rows": rows,
                        **gather_gemm(bp, cache, rows, dram_latency, taps=cp["taps"])})
    nmap = len(bp.jobs)
    if fpath:
        # the tied feature kNN after the offsets: its rows (the first points' features) stay cached, so the
        # feature kNN after the reset would hit them if the reset left the cache valid
        nt = nf - nf // 4
        bp.feat.append(_feature_step(cfg, geo, cache, "fknn_tied", ff, tied_sources(nt), min(geo.max_knn, nt),
                                     dram_latency))
        cold = CacheModel(cfg.cache_sets, cfg.cache_ways, cfg.cache_block_rows)     # after the reset
        bp.feat.append(_feature_step(cfg, geo, cold, "fknn_rerun", ff, np.arange(nf), kf, dram_latency))
        bp.expected.update({"fknn_idx": bp.feat[0]["idx"], "fknn_d2": bp.feat[0]["d2"],
                            "fknn_tied_idx": bp.feat[1]["idx"], "fknn_tied_d2": bp.feat[1]["d2"]})
        bp.steps = ([("map", 0), ("map", 1), ("feat", 0), ("map", nmap - 1)]
                    + [("map", i) for i in range(2, nmap - 1)] + [("conv", i) for i in range(len(bp.conv))]
                    + [("feat", 1), ("reset",), ("feat", 2)])
    else:
        bp.steps = [("map", i) for i in range(nmap)] + [("conv", i) for i in range(len(bp.conv))]
    # PointNet++ set abstraction on the FPS / ball-query jobs' centres and map, last (the cache state carries:
    # after the offsets, or after the reset and the feature kNN rerun)
    bp.sa_skip = sa_skip(p, R)
    if not bp.sa_skip:
        sa = sa_expected(p, feats, np.asarray(case["sa_weight"]), len(q), BALL_RADIUS, kb)
        if not (np.array_equal(sa.neighbors, bp.expected["ball"]) and np.array_equal(sa.center_index, sel[:len(q)])):
            raise AssertionError("set abstraction: its FPS / ball query differ from the bench's jobs")
        entries = sa_entries(sa.neighbors)
        bp.sa.append({"entries": entries, "centers": sa.centers.astype(np.int64), "k": kb,
                      **gather_gemm(bp, cold if fpath else cache, [r for r, _ in entries], dram_latency)})
        bp.expected["sa"] = sa.features
        bp.steps.append(("conv", len(bp.conv)))       # run by the bench as one more gather-GEMM
    return bp


def stimulus(bp: BenchPlan, dram_latency: int) -> dict:
    cfg = bp.cfg
    jobs, prev = [], None
    for _, job, pts, _ in bp.jobs:
        same = prev is not None and prev.shape == pts.shape and bool((prev == pts).all())
        jobs.append({"points": None if same else job.points, "ports": job.ports, "queries": job.queries})
        prev = pts
    feats, weight = np.asarray(bp.case["feats"]), np.asarray(bp.case["weight"])
    wk = weight.reshape(-1, weight.shape[-1])          # (27R, C): row d*R + r = weight[d, r]
    conv = [_gemm_stimulus(c, c["offset"], c["rows"], wk) for c in bp.conv]
    longest = max(bp.job_cycles() + [0])
    dram = {str(i): pack_int8(f) for i, f in enumerate(feats)}
    dram[str(CONV_ZERO_ROW)] = 0
    if bp.sa:
        a = bp.sa[0]
        conv.append(_gemm_stimulus(a, "sa", [r for r, _ in a["entries"]], np.asarray(bp.case["sa_weight"])))
        for i, row in enumerate(sa_input_rows(np.asarray(bp.case["points"]), feats, cfg.mxu_rows)):
            dram[str(SA_DRAM_BASE + i)] = pack_int8(row)
    feat = []
    if bp.feat:
        ff = np.asarray(bp.case["ffeats"], dtype=np.int64)
        for a, w in enumerate(feature_rows(ff, cfg.feature_bits, cfg.feature_lanes)):
            dram[str(FEATURE_DRAM_BASE + a)] = w
        feat = [{"name": f["name"], "entries": [[int(r), int(t)] for r, t in f["entries"]],
                 "job": {"points": None, "ports": f["ports"], "queries": [int(x) for x in f["queries"]]}}
                for f in bp.feat]
    return {"map_jobs": jobs, "conv": conv, "feat": feat, "steps": [list(s) for s in bp.steps], "dram": dram,
            "dram_latency": dram_latency, "block_rows": cfg.cache_block_rows, "mxu_rows": cfg.mxu_rows,
            "mxu_dram_bytes": max([c["program"]["dram_bytes"] for c in bp.conv + bp.sa] + [0]),
            "max_cycles_per_job": longest + 200}


def _strided(a: np.ndarray, stride: int, dtype) -> bytes:
    """A matrix's bytes, row-major, rows ``stride`` bytes apart (zero padding between)."""
    a = np.ascontiguousarray(np.asarray(a).astype(dtype))
    rows = a.reshape(len(a), -1).view(np.uint8)
    out = np.zeros((len(a), stride), dtype=np.uint8)
    out[:, :rows.shape[1]] = rows
    return out.tobytes()


def _gemm_stimulus(c: dict, name, rows: list[int], weight: np.ndarray) -> dict:
    """The bench's record of one gather-GEMM: the MMU map (row, tag = place in X), the weights' bytes, the
    stager's base, the program and Y's bytes to read back."""
    g = c["program"]
    d = g["dram"]
    return {"offset": name, "entries": [[int(r), i] for i, r in enumerate(rows)],
            "w": [d["W"]["addr"], _strided(weight, d["W"]["stride"], np.int8).hex()],
            "stage_base": d["X"]["addr"], "program": g["words"], "names": g["names"],
            "watchdog": 4 * g["cycles"] + 1000, "y": [d["Y"]["addr"], d["Y"]["shape"][0] * d["Y"]["stride"]]}


def _y_matrix(hexdata: str, c: dict, cols: int) -> np.ndarray:
    """The (M, C) int32 results of a gather-GEMM from the bytes read back."""
    d = c["program"]["dram"]["Y"]
    raw = np.frombuffer(bytes.fromhex(hexdata), dtype=np.uint8).reshape(d["shape"][0], d["stride"])
    return raw[:, :4 * cols].copy().view("<i4").astype(np.int64)


# ------------------------------------------------------------------------------------------ runs
def output_tensors(cfg: PointAccConfig, bp: BenchPlan | None = None) -> dict:
    """Manifest entries of the bench outputs (shapes of the default case when ``bp`` is given)."""
    idx = {"dtype": "int32", "bits": 32, "role": "output"}
    db = 2 * cfg.coord_bits + 2
    t = {"fps": dict(idx, what="FPS picks"), "knn_idx": dict(idx, what="kNN indices, (d2, index) order"),
         "knn_d2": {"dtype": f"int{min(64, db + 1)}", "bits": min(64, db + 1), "role": "output",
                    "what": "kNN squared distances"},
         "ball": dict(idx, what="ball-query neighbours (-1: no hit)"),
         "down_coords": dict(idx, what="downsample(points, 2): unique coarse sites"),
         "down_inverse": dict(idx, what="downsample inverse map"),
         "kmap_sub": dict(idx, what="submanifold K=3 map: rows (offset, in, out)"),
         "kmap_str": dict(idx, what="strided K=2 s=2 map: rows (offset, in, out)"),
         "conv": {"dtype": "int64", "bits": 64, "role": "output",
                  "what": "sparse_conv(feats, weight, submanifold K=3 map) accumulators"},
         "sa": {"dtype": "int8", "bits": 8, "role": "output",
                "what": "set_abstraction(points, feats[:, :R-3], kNN centres, ball radius and K, one layer "
                        "sa_weight): the max-pooled int8 features per centre"}}
    if cfg.feature_points:
        fd = {"dtype": "int64", "bits": 64, "role": "output"}
        t.update({"fknn_idx": dict(idx, what="feature kNN (OP_KNNF after an MMU gather) indices, (d2, index) order"),
                  "fknn_d2": dict(fd, what="feature kNN squared feature distances"),
                  "fknn_tied_idx": dict(idx, what="feature kNN on duplicated features (ties to the lower index)"),
                  "fknn_tied_d2": dict(fd, what="its squared feature distances")})
    if bp is not None:
        for k, v in bp.expected.items():
            t[k]["shape"] = list(np.asarray(v).shape)
    return t


def run_rtl(design_dir: Path, engine: str, stim: dict, waves: Path | None = None) -> dict | None:
    """Run tb/tb_pointacc.py on the directory's pointacc_top; the measured record, or None (a failed run)."""
    design_dir = Path(design_dir)
    if not (design_dir / "pointacc_top.v").is_file() or not (design_dir / "tb" / "tb_pointacc.py").is_file():
        raise LegoError(f"DIR: '{design_dir}' lacks pointacc_top.v or tb/tb_pointacc.py (regenerate the design)")
    check_waves(engine, waves)
    bd = build_dir(engine, "pointacc", [design_dir / "pointacc_top.v"], waves)
    with tempfile.TemporaryDirectory(prefix="pointacc-run-") as td:
        sp, rp = Path(td) / "stim.json", Path(td) / "result.json"
        sp.write_text(json.dumps(stim))
        run_cached(bd, engine=engine, waves=waves, waves_required=False, sources=[design_dir / "pointacc_top.v"],
                   top="pointacc_top", test_module="tb_pointacc", test_dir=design_dir / "tb",
                   extra_env={"PA_STIM": str(sp), "PA_RESULT": str(rp)})
        return json.loads(rp.read_text()) if rp.is_file() else None


def _measured_outputs(bp: BenchPlan, got: dict, extra_out: dict | None = None) -> tuple[dict, list[str]]:
    """Decode the RTL's beats into the outputs; the problems found (beats after done, tags). With the
    feature path, ``extra_out['reruns']``: what the kNN after the feature kNN and the feature kNN after
    the reset returned (indices, distances, measured cycles; they must equal the first passes)."""
    extra_out = {} if extra_out is None else extra_out
    cfg, geo = bp.cfg, bp.geo
    bad = []
    res = {}
    for (name, job, _, _), rec in zip(bp.jobs, got["map"]):
        res[name] = decode(job, [tuple(b) for b in rec["beats"]], geo)
        if rec["stray"]:
            bad.append(f"{name}: beats after done")
    outs = {"fps": res["fps"], "knn_idx": res["knn"][0], "knn_d2": res["knn"][1], "ball": res["ball_query"],
            "down_coords": res["downsample"][0].astype(np.int64), "down_inverse": res["downsample"][1],
            "kmap_sub": _pairs_table(res["kernel_map_submanifold"]),
            "kmap_str": _pairs_table(res["kernel_map_strided"])}
    n = len(bp.case["points"])
    acc = np.zeros((n, cfg.mxu_cols), dtype=np.int64)
    for c, rec in zip(bp.conv, got["conv"]):
        if rec["accepted"] != len(c["rows"]) or rec["rows"] != len(c["rows"]):
            bad.append(f"conv {c['offset']}: {rec['rows']} rows staged for {len(c['rows'])} slots")
        acc[c["sites"][0]:c["sites"][1]] = _y_matrix(rec["y"], c, cfg.mxu_cols)
    outs["conv"] = acc
    for a, rec in zip(bp.sa, got["conv"][len(bp.conv):]):
        ne = len(a["entries"])
        if rec["accepted"] != ne or rec["rows"] != ne:
            bad.append(f"set abstraction: {rec['rows']} rows staged for {ne} map entries")
        outs["sa"] = sa_decode(_y_matrix(rec["y"], a, cfg.mxu_cols), a["centers"], np.asarray(bp.case["sa_weight"]),
                               a["k"])
    if bp.feat:
        fres = []
        for f, rec in zip(bp.feat, got["feat"]):
            beats = np.array([b[:2] for b in rec["beats"]], dtype=np.int64).reshape(-1, 2)
            if len(beats) != len(f["queries"]) * f["k"]:
                bad.append(f"{f['name']}: {len(beats)} result beats, expected {len(f['queries']) * f['k']}")
                beats = np.zeros((len(f["queries"]) * f["k"], 2), dtype=np.int64)
            if rec["stray"]:
                bad.append(f"{f['name']}: beats after done")
            if rec["tags"] != [t for _, t in f["entries"]]:
                bad.append(f"{f['name']}: {len(rec['tags'])} feature-buffer writes, not the map's rows in order")
            sh = (len(f["queries"]), f["k"])
            fres.append((beats[:, 0].reshape(sh), beats[:, 1].reshape(sh)))
        outs.update({"fknn_idx": fres[0][0], "fknn_d2": fres[0][1], "fknn_tied_idx": fres[1][0],
                     "fknn_tied_d2": fres[1][1]})
        extra_out["reruns"] = {
            "fknn_rerun": {"idx": fres[2][0].tolist(), "d2": fres[2][1].tolist(), "cycles": got["feat"][2]["measured"],
                           "hits": got["feat"][2]["hits"], "misses": got["feat"][2]["misses"]},
            "fknn": {"cycles": got["feat"][0]["measured"], "hits": got["feat"][0]["hits"],
                     "misses": got["feat"][0]["misses"]}}
        a, b = got["feat"][0], got["feat"][2]
        if not (results_equal(fres[2], fres[0]) and
                [b[x] for x in ("measured", "mmu_cycles_port", "hits", "misses")] ==
                [a[x] for x in ("measured", "mmu_cycles_port", "hits", "misses")]):
            bad.append("fknn after a reset: outputs, cycles or MMU counters differ from the first pass")
        names = [nm for nm, *_ in bp.jobs]
        i, j = names.index("knn"), names.index("knn_again")
        extra_out["reruns"]["knn_again"] = {"idx": res["knn_again"][0].tolist(), "d2": res["knn_again"][1].tolist(),
                                            "cycles": got["map"][j]["measured"]}
        if not (results_equal(res["knn_again"], res["knn"]) and got["map"][j]["measured"] == got["map"][i]["measured"]):
            bad.append("knn after the feature kNN: outputs or cycles differ from the first kNN")
    return outs, bad


def _compare(expected: dict, got: dict) -> tuple[bool, float]:
    ok, err = True, 0.0
    for k, v in expected.items():
        g = got.get(k)
        if g is None or not results_equal(v, g):
            ok = False
            a, b = np.asarray(v), np.asarray(g) if g is not None else None
            err = max(err, float(np.abs(a - b).max()) if b is not None and a.shape == b.shape and a.size
                      else float("inf"))
    return ok, err


def _job_names(bp: BenchPlan) -> list[str]:
    return ([name for name, *_ in bp.jobs] + [f"conv_{c['offset'].replace(' ', '_')}" for c in bp.conv]
            + ["set_abstraction"] * len(bp.sa) + [f["name"] for f in bp.feat])


def run_design(design_dir: Path, engine: str, inputs: dict | None = None, seed: int = 0,
               waves: Path | None = None, dram_latency: int = BENCH_DRAM_LATENCY) -> Report:
    """``lego sim DIR --engine E``: the bench case (``make_case``, or ``inputs``) through the directory's
    pointacc_top (icarus, verilator: measured outputs and cycles) or the cycle model (cycle: the model's
    cycles and the golden outputs)."""
    t0 = time.perf_counter()
    design_dir = Path(design_dir)
    check_run("PointAcc", engine, waves)
    cfg = PointAccConfig.from_yaml(design_dir / "config.yaml")
    man = json.loads((design_dir / "manifest.json").read_text())
    prog = man["mxu"]["prog"]
    case = _check_inputs(cfg, inputs, seed) if inputs is not None else make_case(cfg, seed)
    bp = plan(cfg, case, prog, dram_latency)
    names = _job_names(bp)
    pred = bp.job_cycles()
    gathers = bp.conv + bp.sa + bp.feat
    extra = {"cycles_predicted": bp.cycles, "dram_latency": dram_latency, "seed": seed,
             "inputs": "given" if inputs is not None else f"{BENCH_FRAME} crop, {len(case['points'])} voxels of "
                                                          f"{BENCH_VOXEL_M} m",
             "mxu_programs": [{"job": nm, "mode": c["program"]["mode"], "tile": c["program"]["tile"],
                               "cycles": c["program"]["cycles"]} for nm, c in zip(_job_names(bp)[len(bp.jobs):],
                                                                                  bp.conv + bp.sa)],
             "mmu": {"hits": sum(c["hits"] for c in gathers), "misses": sum(c["misses"] for c in gathers)}}
    if bp.sa_skip:
        extra["set_abstraction"] = f"not run: {bp.sa_skip}"
    if engine == "cycle":
        extra["jobs"] = [{"job": nm, "cycles": p, "cycles_predicted": p} for nm, p in zip(names, pred)]
        return Report(engine="cycle", cycles=bp.cycles, outputs=dict(bp.expected), match=True, max_abs_err=0.0,
                      sim_seconds=time.perf_counter() - t0, extra=extra)
    got = run_rtl(design_dir, engine, stimulus(bp, dram_latency), waves)
    if (got is None or len(got.get("map", [])) != len(bp.jobs) or len(got.get("conv", [])) != len(bp.conv) + len(bp.sa)
            or len(got.get("feat", [])) != len(bp.feat)):
        return Report(engine=engine, cycles=-1, match=False, sim_seconds=time.perf_counter() - t0,
                      extra=extra | {"error": f"the {engine} bench measured nothing (a hang or a failed build)"})
    outs, bad = _measured_outputs(bp, got, extra)
    ok, err = _compare(bp.expected, outs)
    gf = got.get("feat", [])
    measured = ([r["measured"] for r in got["map"]] + [r["measured"] for r in got["conv"]]
                + [r["measured"] for r in gf])
    # the cycles port: the mapping unit's for a mapping job, the MMU's for an offset; a feature kNN step
    # checks both (MMU gather, then OP_KNNF)
    ports = ([r["cycles_port"] for r in got["map"]] + [(r["mmu_cycles_port"], r["prog_cycles_port"]) for r in got["conv"]]
             + [(r["mmu_cycles_port"], r["cycles_port"]) for r in gf])
    pred_ports = (bp.map_cycles + [(c["mmu_cycles"], c["program"]["cycles"]) for c in bp.conv + bp.sa]
                  + [(f["mmu_cycles"], f["knnf_cycles"]) for f in bp.feat])
    extra["jobs"] = [{"job": nm, "cycles": m_, "cycles_predicted": p, "cycles_port": cp,
                      "cycles_port_predicted": pp}
                     for nm, m_, p, cp, pp in zip(names, measured, pred, ports, pred_ports)]
    extra["mmu_measured"] = {"hits": sum(r["hits"] for r in got["conv"] + gf),
                             "misses": sum(r["misses"] for r in got["conv"] + gf)}
    if measured != pred and sum(measured) != sum(pred):
        bad.append("per-job cycles differ from the cycle model")
    if ports != pred_ports:
        bad.append("a unit's cycles port differs from the cycle model")
    if measured != pred and sum(measured) == sum(pred):
        bad.append("per-job cycles differ from the cycle model (the totals agree)")
    if extra["mmu_measured"] != extra["mmu"]:
        bad.append("MMU hits/misses differ from the cache model")
    if bad:
        extra["problems"] = bad
    return Report(engine=engine, cycles=int(sum(measured)), outputs=outs, match=ok and not bad, max_abs_err=err,
                  sim_seconds=time.perf_counter() - t0, extra=extra)


def bench_prediction(cfg: PointAccConfig, mxu_prog: dict) -> tuple[dict, BenchPlan]:
    """What ``lego sim DIR`` counts on the default case (report.json ``cycles``)."""
    bp = plan(cfg, make_case(cfg, 0), mxu_prog)
    cyc = bp.job_cycles()
    return ({"predicted": bp.cycles, "jobs": dict(zip(_job_names(bp), cyc, strict=True)),
             "inputs": f"{BENCH_FRAME} crop, {len(bp.case['points'])} voxels of {BENCH_VOXEL_M} m",
             "seed": 0, "dram_latency": BENCH_DRAM_LATENCY}, bp)

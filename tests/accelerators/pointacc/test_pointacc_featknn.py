"""PointAcc mapping unit, feature-space kNN (OP_KNNF, the feature-distance stage of
accelerators/pointacc/featdist.py): neighbour indices and distances bit-exact against
sw_reference.pointacc.knn (the golden model of DGCNN's EdgeConv kNN) and against an independent
oracle (numpy stable argsort of exact int64 distances), RTL cycles equal to
accelerators.pointacc.cycles.knn_feature_cycles, under Icarus and Verilator (bench:
featknn_bench.py); host-side refusals; verilator -Wall lint.

Units side by side in one generated top:
  f0  capacity 64,  L 2, W 4,  C 5,  8-bit, FL 2, NF 32    random features, C not a multiple of FL,
                                                          duplicate points (ties), k = W, n = 1
  f1  capacity 128, L 4, W 8,  C 16, 8-bit, FL 4, NF 128   features derived from a 128-point Ouster
      CB 12, SPC 2                                          crop; random 16-dim features
  f2  capacity 64,  L 2, W 16, C 3,  4-bit, FL 1, NF 48    FL = 1, narrow features (many ties)
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from accelerators.pointacc.cycles import knn_feature_cycles
from accelerators.pointacc.driver import Geometry
from accelerators.pointacc.featdist import check_feature_job, feature_rows
from accelerators.pointacc.mapping import OP_KNNF, MappingUnit
from lego.errors import LegoError
from lego.toolchain import run_cocotb
from lego.units.harness import SideBySide, emit, lint
from sw_reference import pointacc as ref

HERE = Path(__file__).parent
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")
FRAME = "ouster_os1_128_frame0.bin"

UNITS = {
    "f0": dict(capacity=64, lanes=2, sorter_width=4, max_neighbors=8, coord_bits=21,
               feature_dims=5, feature_bits=8, feature_lanes=2, feature_points=32),
    "f1": dict(capacity=128, lanes=4, sorter_width=8, max_neighbors=8, coord_bits=12, sorter_stages_per_cycle=2,
               feature_dims=16, feature_bits=8, feature_lanes=4, feature_points=128),
    "f2": dict(capacity=64, lanes=2, sorter_width=16, max_neighbors=16, coord_bits=21,
               feature_dims=3, feature_bits=4, feature_lanes=1, feature_points=48),
}


def geo_of(kw) -> Geometry:
    return Geometry.from_params(**kw)


def rand_feats(rng, n, c, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return rng.integers(lo, hi + 1, (n, c)).astype(np.int64)


def crop_feats(n: int, c: int) -> np.ndarray:
    """int8 features derived from the n points of an Ouster crop nearest the sensor: the centred
    coordinates (cm) through a fixed integer projection to c dims, scaled and clipped to int8."""
    xyz = load_cloud(DATA_DIR / FRAME)
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:n])
    q = ref.quantize(xyz[keep], 100.0)
    q = q - np.round(q.mean(axis=0)).astype(np.int64)
    proj = np.random.default_rng(7).integers(-3, 4, (3, c)).astype(np.int64)
    f = q @ proj
    scale = max(1, int(np.abs(f).max()) // 127 + 1)
    return np.clip(f // scale, -128, 127).astype(np.int64)


def jobs_f0(rng):
    c, b = 5, 8
    out = []
    f = rand_feats(rng, 30, c, b)
    out.append((f, [0, 7, 29, 13], 4))
    dup = np.repeat(rand_feats(rng, 4, c, b), 5, axis=0)[:19]            # ties forced by duplicates
    out.append((dup, [0, 1, 18, 5, 10], 4))
    out.append((dup, [3, 4], 1))                                          # same features: no reload
    out.append((rand_feats(rng, 1, c, b), [0], 1))                        # n = 1
    ext = np.array([[-128] * c, [127] * c, [0] * c, [127, -128, 127, -128, 127]] * 8)   # extreme, full buffer
    out.append((ext, [0, 1, 3, 31], 4))
    out.append((rand_feats(rng, 9, c, 3), [8, 2], 3))                    # small values, many ties
    return out


def jobs_f1(rng):
    out = []
    f = crop_feats(128, 16)
    out.append((f, [0, 17, 64, 127, 100, 3], 8))
    out.append((rand_feats(rng, 77, 16, 8), [76, 0, 40], 5))
    dup = np.concatenate([f[:40], f[:40], f[10:20]])                    # real features, duplicated
    out.append((dup, [0, 45, 89], 8))
    return out


def jobs_f2(rng):
    out = []
    out.append((rand_feats(rng, 48, 3, 4), [0, 47, 20, 21], 16))
    out.append((rand_feats(rng, 17, 3, 4), [16, 1], 7))
    return out


def oracle(feats, queries, k):
    """Independent oracle: exact int64 squared distances, numpy stable argsort (ties to the lower index)."""
    f = np.asarray(feats, dtype=np.int64)
    d = ((f[queries][:, None, :] - f[None, :, :]) ** 2).sum(axis=2)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def make_design(d: Path, spec, seed: int = 2021) -> dict:
    rng = np.random.default_rng(seed)
    top = SideBySide([(p, MappingUnit(**kw)) for p, kw, _ in spec])
    src = emit(d / "lego_pointacc_featknn_top.v", top, "lego_pointacc_featknn_top")
    units = []
    for prefix, kw, fn in spec:
        jobs, prev = [], None
        for feats, qs, k in fn(rng):
            feats, qs = check_feature_job(geo_of(kw), feats, qs, k)
            same = prev is not None and prev.shape == feats.shape and (prev == feats).all()
            prev = feats
            jobs.append({"feats": feats, "queries": list(qs), "k": k, "load": not same,
                         "cycles": knn_feature_cycles(geo_of(kw), len(feats), len(qs), k, kw["feature_dims"],
                                                      kw["feature_lanes"])})
        units.append({"prefix": prefix, "kw": kw, "jobs": jobs})
    stim = {"units": [{"prefix": u["prefix"], "max_cycles_per_job": max(j["cycles"] for j in u["jobs"]) + 200,
                       "jobs": [{"rows": feature_rows(j["feats"], u["kw"]["feature_bits"], u["kw"]["feature_lanes"])
                                 if j["load"] else None,
                                 "ports": {"op": OP_KNNF, "n": len(j["feats"]), "m": len(j["queries"]), "k": j["k"]},
                                 "queries": [int(q) for q in j["queries"]]} for j in u["jobs"]]} for u in units]}
    (d / "stim.json").write_text(json.dumps(stim))
    return {"dir": d, "src": src, "units": units}


def simulate(design, engine: str) -> dict:
    d = design["dir"]
    result = d / f"result_{engine}.json"
    t0 = time.monotonic()
    ok = run_cocotb(engine=engine, sources=[design["src"]], top="lego_pointacc_featknn_top",
                    test_module="featknn_bench", test_dir=HERE, build_dir=d / f"build_{engine}",
                    extra_env={"FKNN_STIM": str(d / "stim.json"), "FKNN_RESULT": str(result)})
    assert ok, f"cocotb bench failed under {engine} (log: {d / f'build_{engine}' / 'sim.log'})"
    res = json.loads(result.read_text())
    res["wall_s"] = time.monotonic() - t0
    return res


def check(sim, design) -> list[str]:
    bad = []
    for u, got in zip(design["units"], sim["units"]):
        for i, (j, r) in enumerate(zip(u["jobs"], got)):
            what = f"{u['prefix']} job {i} n={len(j['feats'])} k={j['k']}"
            beats = np.array(r["beats"], dtype=np.int64).reshape(-1, 2)
            m, k = len(j["queries"]), j["k"]
            if beats.shape[0] != m * k:
                bad.append(f"{what}: {beats.shape[0]} beats, expected {m * k}")
                continue
            idx, dist = beats[:, 0].reshape(m, k), beats[:, 1].reshape(m, k)
            g_idx, g_d = ref.knn(j["feats"], j["feats"][j["queries"]], k)
            o_idx, o_d = oracle(j["feats"], j["queries"], k)
            if not (np.array_equal(idx, g_idx) and np.array_equal(dist, g_d)):
                bad.append(f"{what}: differs from sw_reference.pointacc.knn")
            if not (np.array_equal(idx, o_idx) and np.array_equal(dist, o_d)):
                bad.append(f"{what}: differs from the argsort oracle")
            if not (r["measured"] == r["cycles_port"] == j["cycles"]):
                bad.append(f"{what}: measured {r['measured']}, port {r['cycles_port']}, model {j['cycles']}")
            if r["stray"]:
                bad.append(f"{what}: beats after done")
    return bad


DEFAULT_SET = [("f0", UNITS["f0"], jobs_f0), ("f1", UNITS["f1"], jobs_f1), ("f2", UNITS["f2"], jobs_f2)]


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("featknn_rtl"), DEFAULT_SET)


@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_featknn_exact(design, engine):
    bad = check(simulate(design, engine), design)
    assert not bad, "\n".join(bad)


def jobs_big(rng):
    """DGCNN-like sizes (slow): C 64 (FL 16) on 1000 random points and on 1024 features derived from the
    Ouster crop, k = W = 32."""
    c = 64
    out = [(rand_feats(rng, 1000, c, 8), [0, 999, 500, 17], 32)]
    f = crop_feats(1024, c)
    out.append((f, list(rng.choice(1024, 6, replace=False)), 20))
    dup = np.concatenate([f[:300], f[:300], rand_feats(rng, 100, c, 8)])
    out.append((dup, [0, 299, 300, 650], 32))
    return out


BIG = dict(capacity=1024, lanes=8, sorter_width=32, max_neighbors=64, coord_bits=21,
           feature_dims=64, feature_bits=8, feature_lanes=16, feature_points=1024)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["verilator", "icarus"])
def test_featknn_big_slow(tmp_path, engine, monkeypatch):
    if engine == "verilator":
        monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    design = make_design(tmp_path, [("b0", BIG, jobs_big)])
    bad = check(simulate(design, engine), design)
    assert not bad, "\n".join(bad)


def test_host_refusals():
    g = geo_of(UNITS["f0"])
    f = np.zeros((10, 5), dtype=np.int64)
    with pytest.raises(LegoError, match="^feature_points: 33 points exceed the feature buffer of 32"):
        check_feature_job(g, np.zeros((33, 5), dtype=np.int64), [0], 1)
    with pytest.raises(LegoError, match="^feature_dims: features have C = 6"):
        check_feature_job(g, np.zeros((10, 6), dtype=np.int64), [0], 1)
    with pytest.raises(LegoError, match="^feature_bits: feature 128 outside"):
        check_feature_job(g, f + 128, [0], 1)
    with pytest.raises(LegoError, match="^max_neighbors: kNN k = 9 exceeds the unit's kNN limit"):
        check_feature_job(g, f, [0], 9)
    with pytest.raises(LegoError, match="^k: must be in 1..8"):
        check_feature_job(g, f, [0], 0)
    with pytest.raises(LegoError, match="^queries"):
        check_feature_job(g, f, [10], 1)
    with pytest.raises(LegoError, match="^feature_points: the unit has no feature kNN path"):
        check_feature_job(Geometry.from_params(64, 2, 4, 8), f, [0], 1)
    with pytest.raises(ValueError, match="^feature_lanes"):
        MappingUnit(**dict(UNITS["f0"], feature_lanes=6))
    with pytest.raises(ValueError, match="^feature_points"):
        MappingUnit(**dict(UNITS["f0"], feature_points=65))
    with pytest.raises(ValueError, match="^feature_bits: distances of"):
        MappingUnit(**dict(UNITS["f1"], feature_bits=16, feature_dims=1024, feature_lanes=4))
    with pytest.raises(ValueError, match="^feature_dims"):
        MappingUnit(**dict(UNITS["f0"], feature_dims=0))


@pytest.mark.parametrize("name", ["f0", "f1"])
def test_verilator_lint(tmp_path, name):
    src = emit(tmp_path / "lego_pointacc_mapping.v", MappingUnit(**UNITS[name]), "lego_pointacc_mapping")
    res = lint(src, "lego_pointacc_mapping", tmp_path)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]


def test_xyz_verilog_unchanged_without_features(tmp_path):
    """feature_points = 0 builds no feature path: the same Verilog as a unit built without the feature
    arguments (the xyz paths' RTL is untouched by OP_KNNF)."""
    base = dict(capacity=64, lanes=2, sorter_width=4, max_neighbors=8, coord_bits=21)
    a = emit(tmp_path / "a.v", MappingUnit(**base), "m").read_text()
    b = emit(tmp_path / "b.v", MappingUnit(**base, feature_dims=5, feature_lanes=2, feature_points=0), "m").read_text()
    assert a == b and "fld_en" not in a

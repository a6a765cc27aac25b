"""PointAcc mapping unit: kNN with k > sorter_width (W) in RTL, ceil(k / (KS*W)) passes per query (KS =
knn_merge_stages: the merger and KS - 1 cascade stages keep the running best KS*W), each pass ranking only
the entries after the previous pass's last (distance, index).

Every job is checked bit-exact against sw_reference.pointacc.knn (the golden model) and against an
independent oracle written here (numpy int64 squared distances, np.lexsort on (distance, index)), and
its measured cycles and ``cycles`` port against accelerators.pointacc.cycles.knn_cycles and against the
schedule written out by hand; under Icarus and Verilator (bench: mapping_bench.py, one reset per unit,
jobs back to back). Five units side by side:

  k0  capacity 64,  L 2, W 4, KM 16, CB 21          k = 5, 8, 11, 16 (W+1, 2W, 2W+3, KM)
  k1  capacity 128, L 4, W 8, KM 24, CB 12, SPC 2   k = 9, 16, 19, 24
  c0  k0 with knn_merge_stages 4 (one pass for every k); c1  k1 with KS 2 (16 a pass); c2  k1 (SPC 1), KS 3

A feature unit (W 4, KM 16, C 5) multi-pass and with KS 4. Clouds: random, heavily tied (3^3 distinct
positions, many duplicates), an Ouster crop, k = n. A run-twice
sequence on each unit (k > W, then k <= W, then the first job again) must repeat the first job's beats
and cycles. Host refusals (k > max(W, max_neighbors), k > n), also through ``lego sim --accelerator
pointacc --model dgcnn --k``.
"""
from __future__ import annotations

import numpy as np
import pytest

from accelerators.pointacc.cycles import knn_cycles, knn_passes
from accelerators.pointacc.driver import decode, make_job
from lego.cli import main as lego_main
from lego.errors import LegoError
from sw_reference import pointacc as ref
from test_pointacc_mapping import (check_exact, geo_of, make_design, ouster_crop, random_cloud,  # noqa: E402
                                   simulate)

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

KUNITS = {
    "k0": dict(capacity=64, lanes=2, sorter_width=4, max_neighbors=16, coord_bits=21),
    "k1": dict(capacity=128, lanes=4, sorter_width=8, max_neighbors=24, coord_bits=12, sorter_stages_per_cycle=2),
    # the merge cascade (knn_merge_stages KS): k0's geometry with every k in one pass (KS 4 = KM / W),
    # k1's with KS 2 (16 a pass: k = 9, 16 in one pass, 19, 24 in two) and KS 3 (one pass, 24 = 3W entries)
    "c0": dict(capacity=64, lanes=2, sorter_width=4, max_neighbors=16, coord_bits=21, knn_merge_stages=4),
    "c1": dict(capacity=128, lanes=4, sorter_width=8, max_neighbors=24, coord_bits=12, sorter_stages_per_cycle=2,
               knn_merge_stages=2),
    "c2": dict(capacity=128, lanes=4, sorter_width=8, max_neighbors=24, coord_bits=12, knn_merge_stages=3),
}


def knn_jobs(rng, kw):
    """(op, points, queries, kwargs) of one unit; the run-twice triple is the last three jobs."""
    w, cap, km = kw["sorter_width"], kw["capacity"], kw["max_neighbors"]
    lim = (1 << (kw["coord_bits"] - 1)) - 1
    out = []
    rnd = random_cloud(rng, cap - 3, -lim, lim)
    qs = np.concatenate([rnd[[0, 7, cap - 4]], random_cloud(rng, 2, -lim, lim)])
    for k in (w + 1, 2 * w, 2 * w + 3, km):
        out.append(("knn", rnd, qs, dict(k=k)))
    tied = random_cloud(rng, cap, -1, 1)                      # 27 positions: long runs of equal distances
    tq = np.concatenate([tied[[0, 5]], np.array([[0, 0, 0], [1, 1, 1], [2, -2, 0]])])
    for k in (w + 1, 2 * w, 2 * w + 3):
        out.append(("knn", tied, tq, dict(k=k)))
    crop = ouster_crop(cap)
    while np.abs(crop).max() > lim:                            # fit the crop into the unit's coordinates
        crop = np.floor_divide(crop, 2)
    out.append(("knn", crop, crop[rng.choice(cap, 6, replace=False)], dict(k=2 * w + 3)))
    small = random_cloud(rng, 2 * w + 3, -20, 20)              # k = n: the last pass has dead entries left
    out.append(("knn", small, small[[0, 2 * w + 2]], dict(k=2 * w + 3)))
    out.append(("knn", small, small[[1]], dict(k=w + 1)))
    # run twice: k > W, k <= W, the first again (one reset, back to back)
    out.append(("knn", tied, tq, dict(k=2 * w + 3)))
    out.append(("knn", tied, tq[:2], dict(k=w)))
    out.append(("knn", tied, tq, dict(k=2 * w + 3)))
    return geo_of(kw), out


def oracle(points, queries, k):
    """Independent kNN: exact int64 squared distances, lexsort by (distance, index)."""
    p = np.asarray(points, dtype=np.int64)
    idx, d2 = [], []
    for q in np.asarray(queries, dtype=np.int64):
        d = ((p - q) ** 2).sum(axis=1)
        order = np.lexsort((np.arange(len(p)), d))[:k]
        idx.append(order)
        d2.append(d[order])
    return np.array(idx, dtype=np.int64), np.array(d2, dtype=np.int64)


def hand_cycles(geo, n, n_queries, k):
    """The schedule by hand: per query and pass 1 + NRI + 3 + SL + 1 + 2, plus k beats in all; a pass
    ranks KS*W neighbours (KS = knn_merge_stages; the cascade's stages settle before their beats)."""
    nri = -(-n // geo.sorter_width) * geo.sorter_width // geo.lanes
    passes = -(-k // (geo.knn_merge_stages * geo.sorter_width))
    return n_queries * (passes * (1 + nri + 3 + geo.sorter_latency + 1 + 2) + k)


SET = [(p, kw, knn_jobs) for p, kw in KUNITS.items()]


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("ksort_rtl"), SET, seed=77)


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def sim(request, design):
    return simulate(design, request.param)


def test_jobs_cover_k_above_w(design):
    for u in design["units"]:
        w = u["geo"].sorter_width
        ks = sorted({j["job"].ports["k"] for j in u["jobs"]})
        assert {w + 1, 2 * w, 2 * w + 3, u["geo"].max_neighbors} <= set(ks), ks
        assert any(j["job"].ports["k"] <= w for j in u["jobs"])


def test_knn_k_above_w_exact(sim, design):
    """Golden model, the oracle, the cycle model and the hand schedule, job by job."""
    check_exact(sim, design)                  # golden model + measured = port = knn_cycles
    bad = []
    for u, got in zip(design["units"], sim["units"]):
        g = u["geo"]
        for i, (j, r) in enumerate(zip(u["jobs"], got)):
            job = j["job"]
            k, n, mq = job.ports["k"], job.ports["n"], job.ports["m"]
            idx, d2 = decode(job, [tuple(b) for b in r["beats"]], g)
            o_idx, o_d2 = oracle(j["points"], j["queries"], k)
            if not ((idx == o_idx).all() and (d2 == o_d2).all()):
                bad.append(f"{u['prefix']} job {i} k={k}: differs from the lexsort oracle")
            if r["measured"] != hand_cycles(g, n, mq, k) or \
                    knn_passes(g, k) != -(-k // (g.knn_merge_stages * g.sorter_width)):
                bad.append(f"{u['prefix']} job {i} k={k}: measured {r['measured']}, hand {hand_cycles(g, n, mq, k)}")
    assert not bad, "\n".join(bad)


def test_run_twice(sim, design):
    """k > W, then k <= W, then the first job again on one reset: the same beats and cycles."""
    for u, got in zip(design["units"], sim["units"]):
        a, b, c = got[-3:]
        ja, jb = u["jobs"][-3]["job"], u["jobs"][-2]["job"]
        assert ja.ports["k"] > u["geo"].sorter_width >= jb.ports["k"]
        assert c["beats"] == a["beats"] and c["measured"] == a["measured"] == c["cycles_port"]
        # and the k <= W job in between equals its own golden result (check_exact covers it too)
        assert b["measured"] == knn_cycles(u["geo"], jb.ports["n"], jb.ports["m"], jb.ports["k"])


def test_hand_schedule_tiny(sim, design):
    """One tiny case written out: n = 11 points (W 4, L 2: NB 3 blocks, NRI 6 rows, SL 3), 2 queries,
    k = 11. Per query: accept 1 + issue 6 + 3 (to P3) + SL 3 + 1 (last merge step, cycle T) + 2 (H
    flushed, seen) + 11 beats. With the cascade (c0, KS 4) stage s settles at T + s <= T + 2 < the
    cycle of beat 4s (T + 3 + 4s): one pass, 2 (1 + 6 + 3 + 3 + 1 + 2 + 11) = 54 cycles. Multi-pass
    (k0, KS 1): 3 passes, 2 (3 (1 + 6 + 3 + 3 + 1 + 2) + 11) = 118."""
    want = {"c0": 54, "k0": 118}
    for u, got in zip(design["units"], sim["units"]):
        if u["prefix"] not in want:
            continue
        hits = [r["measured"] for j, r in zip(u["jobs"], got)
                if j["job"].ports["n"] == 11 and j["job"].ports["m"] == 2 and j["job"].ports["k"] == 11]
        assert hits == [want[u["prefix"]]], (u["prefix"], hits)


def test_merge_stage_refusals():
    """MappingUnit refuses knn_merge_stages outside 1..ceil(max(W, KM) / W), naming the field."""
    from accelerators.pointacc.mapping import MappingUnit
    for bad in (0, 5, True, 2.0):
        with pytest.raises(ValueError, match=r"^knn_merge_stages: must be in 1..4 \(ceil\(max\(sorter_width, "
                                             rf"max_neighbors\) / sorter_width\)\), got {bad!r}$"):
            MappingUnit(**dict(KUNITS["k0"], knn_merge_stages=bad))
    assert MappingUnit(**KUNITS["c0"]).ks == 4


def test_k_le_w_cycles_unchanged():
    """For k <= W the model is the one-pass formula of before: NRI + SL + k + 7 per query."""
    for kw in KUNITS.values():
        g = geo_of(kw)
        for n in (1, 7, kw["capacity"]):
            nri = -(-n // g.sorter_width) * g.sorter_width // g.lanes
            for k in range(1, min(n, g.sorter_width) + 1):
                assert knn_cycles(g, n, 3, k) == 3 * (nri + g.sorter_latency + k + 7)


def test_refusals():
    g = geo_of(KUNITS["k0"])
    c = np.arange(60).reshape(20, 3)
    with pytest.raises(LegoError, match=r"^max_neighbors: kNN k = 17 exceeds the unit's kNN limit "
                                        r"max\(sorter_width, max_neighbors\) = 16$"):
        make_job(g, "knn", c, queries=c[:2], k=17)
    with pytest.raises(LegoError, match="^k: must be in 1..20, got 21$"):
        make_job(geo_of(dict(KUNITS["k0"], max_neighbors=32)), "knn", c, queries=c[:2], k=21)
    with pytest.raises(LegoError, match="^k: must be in 1..10, got 11$"):
        make_job(g, "knn", c[:10], queries=c[:2], k=11)
    assert make_job(g, "knn", c, queries=c[:2], k=16).ports["k"] == 16
    r_idx, _ = ref.knn(c, c[:2], 16)
    assert r_idx.shape == (2, 16)


@pytest.mark.parametrize("args, msg", [
    (["--k", "65"], "max_neighbors: kNN k = 65 exceeds the unit's kNN limit max(sorter_width, max_neighbors) = 64"),
    (["--k", "2000"], "--k: 2000 neighbours > n = 1024 points of the cloud"),
])
def test_cli_k_refusals(tmp_path, capsys, args, msg):
    code = lego_main(["sim", "--accelerator", "pointacc", "--model", "dgcnn", "--out", str(tmp_path / "o"), *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err == f"lego: error: {msg}\n"
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ feature kNN (OP_KNNF), k > W
FUNIT = dict(capacity=64, lanes=2, sorter_width=4, max_neighbors=16, coord_bits=21,
             feature_dims=5, feature_bits=8, feature_lanes=2, feature_points=32)
FUNIT_C = dict(FUNIT, knn_merge_stages=4)          # the merge cascade: every k in one pass


def feat_jobs(rng):
    """(features, queries, k) in order; the run-twice triple is the last three jobs."""
    import test_pointacc_featknn as fk
    w = FUNIT["sorter_width"]
    f = fk.rand_feats(rng, 30, 5, 8)
    out = [(f, [0, 7, 29], k) for k in (w + 1, 2 * w, 2 * w + 3, FUNIT["max_neighbors"])]
    dup = np.repeat(fk.rand_feats(rng, 4, 5, 2), 8, axis=0)              # 4 distinct rows x 8: ties
    out.append((dup, [0, 9, 31], 2 * w + 3))
    out.append((fk.crop_feats(32, 5), [0, 13, 31], 2 * w + 3))          # from the Ouster crop
    small = fk.rand_feats(rng, 2 * w + 3, 5, 8)
    out.append((small, [0, 2 * w + 2], 2 * w + 3))                     # k = n
    out += [(dup, [1, 30], 2 * w + 3), (dup, [1], w), (dup, [1, 30], 2 * w + 3)]
    return out


@pytest.fixture(scope="module")
def fdesign(tmp_path_factory):
    import test_pointacc_featknn as fk
    return fk.make_design(tmp_path_factory.mktemp("ksort_feat"),
                          [("kf", FUNIT, feat_jobs), ("kc", FUNIT_C, feat_jobs)], seed=5)


@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_feature_knn_k_above_w(fdesign, engine):
    """Golden model, argsort oracle and knn_feature_cycles (featknn's check), the hand schedule, and the
    run-twice triple."""
    import test_pointacc_featknn as fk
    from accelerators.pointacc.cycles import knn_feature_cycles
    sim = fk.simulate(fdesign, engine)
    bad = fk.check(sim, fdesign)
    assert not bad, "\n".join(bad)
    ch = -(-FUNIT["feature_dims"] // FUNIT["feature_lanes"])
    for u, got, kw in zip(fdesign["units"], sim["units"], (FUNIT, FUNIT_C)):
        g = geo_of(kw)
        assert {j["k"] for j in u["jobs"]} >= {5, 8, 11, 16}
        for j, r in zip(u["jobs"], got):
            n, mq, k = len(j["feats"]), len(j["queries"]), j["k"]
            passes = -(-k // (kw.get("knn_merge_stages", 1) * g.sorter_width))
            hand = mq * (passes * (1 + n * ch + 4 + 1 + g.sorter_latency + 1 + 1) + k)
            assert r["measured"] == hand == knn_feature_cycles(g, n, mq, k, kw["feature_dims"], kw["feature_lanes"])
        a, b, c = got[-3:]
        assert c["beats"] == a["beats"] and c["measured"] == a["measured"]


@pytest.mark.parametrize("ks, passes", [(0, 1), (1, 2)])
def test_dgcnn_edge_knn_by_hand(ks, passes):
    """DGCNN on the edge preset (k = 20 > W = 16): the kNN layers' map cycles are the RTL schedule by
    hand, one pass a query with the preset's merge cascade (knn_merge_stages 0: auto, 4 stages), two
    with knn_merge_stages 1 (NRI 256, SL 10; the feature kNN walks CH = feature_dims / FL = 128 / 16 = 8
    rows a point whatever C is) plus the loads: the xyz points, or the MMU gather of the feature rows
    (C's own C / 16 rows a point, then a shared zero row; the cache model replays it) + 4."""
    from accelerators.pointacc.cache_model import CacheModel
    from accelerators.pointacc.cloud import DATA_DIR, load_cloud
    from accelerators.pointacc.config import PointAccConfig
    from accelerators.pointacc.cycles import mmu_cycles
    from accelerators.pointacc.model import simulate
    cfg = PointAccConfig.preset("edge").replace(knn_merge_stages=ks)
    r = simulate(cfg, "dgcnn", load_cloud(DATA_DIR / "spot_10k_normal.txt"))
    n = {x["layer"]: x for x in r.extra["layers"]}
    note = f"{passes} pass{'es' if passes > 1 else ''} per query, {4 if ks == 0 else 1} merge stage"
    assert n["ec1.knn"]["map_cycles"] == 1024 * (passes * (256 + 10 + 7) + 20) + 1024
    assert note in n["ec1.knn"]["notes"]
    B = cfg.cache_block_rows
    for name, chc in (("ec2.knn", 4), ("ec3.knn", 4), ("ec4.knn", 8)):
        rows = [p * chc + j if j < chc else -(-1024 * chc // B) * B for p in range(1024) for j in range(8)]
        gather = mmu_cycles(CacheModel(cfg.cache_sets, cfg.cache_ways, B), "gather", rows, cfg.dram_latency_cycles,
                            cfg.mmu_mshrs, cfg.mmu_queue)["cycles"]
        assert n[name]["map_cycles"] == gather + 1024 * (passes * (1024 * 8 + 10 + 8) + 20) + 4
        assert note in n[name]["notes"] and "modeled" not in n[name]["notes"]


def test_network_model_refusals():
    """The network model's xyz and feature kNN refuse k > max(W, KM) each (naming max_neighbors) and
    k > n (naming k); k = max(W, KM) is accepted."""
    from accelerators.pointacc.config import PointAccConfig
    from accelerators.pointacc.costs import Costs
    c = Costs(PointAccConfig.preset("edge"), cache=False)
    c.layer("x", "mapping")
    pts = random_cloud(np.random.default_rng(1), 100, -50, 50)
    for call in (lambda k: c.knn_xyz(pts, k), lambda k: c.knn_feature(100, 8, k)):
        with pytest.raises(LegoError, match="^max_neighbors: kNN k = 65 exceeds"):
            call(65)
        with pytest.raises(LegoError, match="^k: 101 > n = 100 points"):
            call(101)
        call(64)


EDGE_LIKE = dict(capacity=1024, lanes=4, sorter_width=16, max_neighbors=64, coord_bits=21)


def edge_jobs(rng, kw):
    """The edge preset's mapping geometry (L 4, W 16, KM 64) on a 1024-point Ouster crop: DGCNN's k = 20,
    2W + 3, KM; a voxelized (heavily tied) copy; k <= W in between."""
    crop = ouster_crop(1024)
    qs = crop[rng.choice(1024, 8, replace=False)]
    coarse = np.floor_divide(crop, 50)                          # 50 cm cells: many equal distances
    out = [("knn", crop, qs, dict(k=k)) for k in (20, 35, 64, 16)]
    out += [("knn", coarse, coarse[:6], dict(k=k)) for k in (20, 64)]
    return geo_of(kw), out


@pytest.mark.slow
@pytest.mark.parametrize("ks", [1, 4])
@pytest.mark.parametrize("engine", ["verilator", "icarus"])
def test_edge_geometry_slow(tmp_path, engine, ks, monkeypatch):
    """The edge geometry multi-pass (KS 1) and with the edge preset's merge cascade (KS 4: one pass)."""
    if engine == "verilator":
        monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    design = make_design(tmp_path, [("e0", dict(EDGE_LIKE, knn_merge_stages=ks), edge_jobs)], seed=20)
    sim = simulate(design, engine)
    check_exact(sim, design)
    u, got = design["units"][0], sim["units"][0]
    for j, r in zip(u["jobs"], got):
        k = j["job"].ports["k"]
        idx, d2 = decode(j["job"], [tuple(b) for b in r["beats"]], u["geo"])
        o_idx, o_d2 = oracle(j["points"], j["queries"], k)
        assert (idx == o_idx).all() and (d2 == o_d2).all()
        assert r["measured"] == hand_cycles(u["geo"], j["job"].ports["n"], j["job"].ports["m"], k)

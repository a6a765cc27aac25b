"""DGCNN's feature-space kNN on the generated pointacc_top (`lego gen --accelerator pointacc`, then
`lego sim DIR`): the features come from DRAM through the MMU's gather path into the feature buffer
(map_fld_src = 1), OP_KNNF ranks them, the indices leave map_out_* like the xyz kNN's.

Checked on the bench's own run (tb/tb_pointacc.py, Icarus and Verilator):

* the neighbours of every point (random features, k = min(20, W, nf)) and of a tied case (a gather map that
  reads each feature row three times: duplicated features, ties to the lower index) equal
  sw_reference.pointacc.knn AND an independent oracle here (numpy int64 squared distances, stable argsort);
* each step's cycles equal, by hand, MMU gather cycles (the cache model replayed on the rows the test
  lays out itself, in the bench's order: the first feature kNN, the convolution's gathers (the kernel
  map's input rows), the tied feature kNN; cold after the reset) + OP_KNNF's
  n ceil(C/FL) + SL + k + 8 per query + 4; the MMU's and the mapping unit's cycles ports and the MMU's
  hit/miss counters match;
* mode switches on one reset: xyz kNN -> feature kNN -> xyz kNN again gives the first kNN's indices,
  distances and cycles; after a reset the feature kNN again gives the first pass's outputs, cycles and
  MMU counters (the tied step just before the reset left rows of it in the cache: a reset that kept the
  cache would show as hits).

Also: the model's step by hand (blocking MMU), `--inputs` with ffeats (given ties; bad values and shapes exit
2 with one line), the config fields that bound the gather (exit 2 naming the field). `-m slow`: the same
checks on the default (edge) preset under Verilator (C 128, FL 16, nf 32, k 16).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from accelerators.pointacc.bench import FEATURE_DRAM_BASE, make_case, plan
from accelerators.pointacc.cache_model import CacheModel
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.cycles import mmu_cycles
from accelerators.pointacc.driver import Geometry
from accelerators.pointacc.matrix import mxu_prog
from lego.api import simulate
from lego.cli import main
from sw_reference import pointacc as ref

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")
TINY = PointAccConfig.preset("tiny")
LAT = 8                                     # the bench's DRAM latency


def oracle(feats, queries, k):
    """Independent oracle: exact int64 squared distances, numpy stable argsort (ties to the lower index)."""
    f = np.asarray(feats, dtype=np.int64)
    q = np.asarray(list(queries), dtype=np.int64)
    d = ((f[q][:, None, :] - f[None, :, :]) ** 2).sum(axis=2)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def steps_by_hand(cfg: PointAccConfig, ff: np.ndarray):
    """(name, features in the buffer, k, DRAM rows gathered) of the three feature kNN steps, laid out here:
    point p's features in DRAM rows FEATURE_DRAM_BASE + p*CH .. + CH - 1, buffer point p of the tied step
    holding point p mod ceil(nt/3) (nt = nf - nf//4)."""
    nf, ch = len(ff), -(-cfg.feature_dims // cfg.feature_lanes)
    nt = nf - nf // 4
    src_t = [p % -(-nt // 3) for p in range(nt)]
    km = max(cfg.sorter_width, cfg.max_neighbors)                       # k > KS*W: ceil(k / (KS*W)) passes
    k = min(20, km, nf)

    def rows(src):
        return [FEATURE_DRAM_BASE + s * ch + j for s in src for j in range(ch)]
    return [("fknn", ff, k, rows(range(nf))), ("fknn_tied", ff[src_t], min(km, nt), rows(src_t)),
            ("fknn_rerun", ff, k, rows(range(nf)))]


def check_feature_knn(cfg: PointAccConfig, rep, case: dict) -> None:
    ff = case["ffeats"]
    assert rep.match and not rep.extra.get("problems"), rep.extra.get("problems") or rep.extra.get("error")
    assert rep.cycles == rep.extra["cycles_predicted"]
    out = {k: np.asarray(v) for k, v in rep.outputs.items()}
    jobs = {j["job"]: j for j in rep.extra["jobs"]}
    geo = Geometry.from_config(cfg)
    ch = -(-cfg.feature_dims // cfg.feature_lanes)
    cache = CacheModel(cfg.cache_sets, cfg.cache_ways, cfg.cache_block_rows)
    conv_rows = [pr[:, 0].tolist() for pr in ref.submanifold_kernel_map(case["points"], 3).pairs if len(pr)]
    for name, f, k, rows in steps_by_hand(cfg, ff):
        n = len(f)
        if name == "fknn_tied":                                         # after the convolution's gathers
            for r in conv_rows:
                mmu_cycles(cache, "gather", r, LAT, cfg.mmu_mshrs, cfg.mmu_queue)
        if name == "fknn_rerun":                                        # after the reset: a cold cache
            cache = CacheModel(cfg.cache_sets, cfg.cache_ways, cfg.cache_block_rows)
        mc = mmu_cycles(cache, "gather", rows, LAT, cfg.mmu_mshrs, cfg.mmu_queue)
        kp = -(-k // (cfg.merge_stages * cfg.sorter_width))             # passes per query (KS merge stages)
        knnf = n * (kp * (n * ch + geo.sorter_latency + 8) + k)         # n queries: every point
        j = jobs[name]
        assert j["cycles"] == mc["cycles"] + knnf + 4 == j["cycles_predicted"], (name, j, mc["cycles"], knnf)
        assert tuple(j["cycles_port"]) == (mc["cycles"], knnf), (name, j)
        if name == "fknn_rerun":
            continue
        key = "fknn" if name == "fknn" else "fknn_tied"
        g_idx, g_d = ref.knn(f, f, k)
        o_idx, o_d = oracle(f, range(n), k)
        assert np.array_equal(out[f"{key}_idx"], g_idx) and np.array_equal(out[f"{key}_d2"], g_d), name
        assert np.array_equal(out[f"{key}_idx"], o_idx) and np.array_equal(out[f"{key}_d2"], o_d), name
        if name == "fknn_tied":                                          # ties really decided: equal d2, lower index first
            d, i = out["fknn_tied_d2"], out["fknn_tied_idx"]
            tie = (d[:, 1:] == d[:, :-1])
            assert tie.sum() >= n and (i[:, 1:] > i[:, :-1])[tie].all()
    # mode switches: xyz kNN after the feature kNN, feature kNN after a reset
    rr = rep.extra["reruns"]
    assert np.array_equal(rr["knn_again"]["idx"], out["knn_idx"]) and np.array_equal(rr["knn_again"]["d2"], out["knn_d2"])
    assert rr["knn_again"]["cycles"] == jobs["knn"]["cycles"] == jobs["knn_again"]["cycles"]
    assert np.array_equal(rr["fknn_rerun"]["idx"], out["fknn_idx"]) and np.array_equal(rr["fknn_rerun"]["d2"], out["fknn_d2"])
    assert [rr["fknn_rerun"][x] for x in ("cycles", "hits", "misses")] == [rr["fknn"][x] for x in ("cycles", "hits", "misses")]
    assert rr["fknn"]["misses"] >= 1


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pointacc_fknn") / "tiny"
    assert main(["gen", "--accelerator", "pointacc", "--preset", "tiny", "--out", str(d)]) == 0
    return d


@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_top_feature_knn(tiny_dir, engine):
    """`lego sim DIR` (lego.api.simulate) on the tiny top: nf 16 points of C 8 int8 features, FL 2, W 4, k 8 (two passes a query)."""
    rep = simulate(tiny_dir, engine)
    check_feature_knn(TINY, rep, make_case(TINY, 0))


def test_feature_step_by_hand():
    """The bench's feature steps without a simulator: the blocking MMU's gather (hit 1, miss LAT + B + 2, + 1)
    and OP_KNNF, composed with + 4; sequential rows: one miss per block of B rows."""
    cfg = TINY.replace(mmu_mshrs=1)
    bp = plan(cfg, make_case(cfg, 0), mxu_prog(cfg))
    f0 = bp.feat[0]
    n, ch, B = 16, 4, cfg.cache_block_rows
    assert [r for r, _ in f0["entries"]] == [FEATURE_DRAM_BASE + a for a in range(n * ch)]
    assert [t for _, t in f0["entries"]] == list(range(n * ch))
    assert (f0["hits"], f0["misses"]) == (n * ch - n * ch // B, n * ch // B)
    assert f0["mmu_cycles"] == 1 + f0["hits"] + f0["misses"] * (LAT + B + 2)
    assert f0["knnf_cycles"] == n * (2 * (n * ch + bp.geo.sorter_latency + 8) + 8)   # k 8 = 2 W: two passes
    assert f0["cycles"] == f0["mmu_cycles"] + f0["knnf_cycles"] + 4
    assert bp.feat[2]["cycles"] == f0["cycles"]          # the rerun after the reset: a cold cache again
    assert bp.feat[1]["hits"] > 0 and [s[0] for s in bp.steps[-4:]] == ["feat", "reset", "feat", "conv"]
    assert bp.steps[-1] == ("conv", len(bp.conv)) and len(bp.sa) == 1     # the set abstraction, last


def test_inputs_ffeats(capsys, tiny_dir, tmp_path):
    """--inputs with ffeats: given features (many ties) run exact on the cycle engine; without ffeats the seed's;
    a value outside int8 or a wrong shape exits 2 with one line naming the tensor."""
    case = make_case(TINY, 0)
    ff = np.random.default_rng(5).integers(-2, 3, (16, 8)).astype(np.int8)
    p = tmp_path / "in.npz"
    np.savez(p, points=case["points"], feats=case["feats"], weight=case["weight"], ffeats=ff)
    assert main(["sim", str(tiny_dir), "--engine", "cycle", "--inputs", str(p), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert np.array_equal(r["outputs"]["fknn_idx"], oracle(ff, range(16), 8)[0])
    np.savez(p, points=case["points"], feats=case["feats"], weight=case["weight"])
    assert main(["sim", str(tiny_dir), "--engine", "cycle", "--inputs", str(p), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert np.array_equal(r["outputs"]["fknn_idx"], oracle(case["ffeats"], range(16), 8)[0])
    for bad, msg in ((np.full((16, 8), 200, dtype=np.int16), "tensor 'ffeats' has values outside int8"),
                     (np.zeros((15, 8), dtype=np.int8), "tensor 'ffeats' has shape [15, 8], expected [16, 8]")):
        np.savez(p, points=case["points"], feats=case["feats"], weight=case["weight"], ffeats=bad)
        code = main(["sim", str(tiny_dir), "--engine", "cycle", "--inputs", str(p)])
        cap = capsys.readouterr()
        assert code == 2 and cap.out == "" and cap.err.count("\n") == 1 and msg in cap.err, cap.err


@pytest.mark.parametrize("line, msg", [
    ("feature_lanes: 8", "feature_lanes: feature_lanes * feature_bits = 64 bits exceed one gathered MMU row of "
                         "8 * feature_row_bytes = 32 bits"),
    ("point_buffer: 65536\nfeature_points: 16384\nfeature_dims: 8\nfeature_lanes: 1\nfeature_bits: 4",
     "feature_points: 131072 feature-buffer rows"),
])
def test_gather_bounds_refused(capsys, tmp_path, line, msg):
    """The fields that bound the gather into the feature buffer: exit 2, one line naming the field, no directory."""
    y = tmp_path / "c.yaml"
    y.write_text("preset: tiny\n" + line + "\n")
    code = main(["gen", "--accelerator", "pointacc", "--config", str(y), "--out", str(tmp_path / "o")])
    cap = capsys.readouterr()
    assert code == 2 and cap.err.count("\n") == 1 and msg in cap.err, cap.err
    assert not (tmp_path / "o").exists()
    # without the feature path the same widths are fine
    y.write_text("preset: tiny\n" + line + "\nfeature_points: 0\n")
    PointAccConfig.from_yaml(y)


def test_top_without_feature_path():
    """feature_points = 0: no feature path in the top (no map_fld_* ports, no source select, no feature
    buffer), no feature_knn host protocol; the bench has no feature steps (its order as before)."""
    from accelerators.pointacc.gen import build_files
    cfg = TINY.replace(feature_points=0)
    b = build_files(cfg)
    v = b.sources["pointacc_top.v"]
    assert "fld" not in v and "featdist" not in v and "feature_knn" not in b.manifest["host_protocol"]
    assert "ffeats" not in b.manifest["tensors"] and "fknn_idx" not in b.manifest["tensors"]
    bp = plan(cfg, make_case(cfg, 0), mxu_prog(cfg))
    assert not bp.feat and [s[0] for s in bp.steps] == ["map"] * 6 + ["conv"] * (len(bp.conv) + 1)  # + the SA


@pytest.mark.slow
def test_top_feature_knn_edge_slow(tmp_path, monkeypatch):
    """The default (edge) preset under Verilator: nf 32 points of C 128 int8 features, FL 16 (8 rows a
    point), W 16, k 16, the 16-MSHR MMU."""
    monkeypatch.setenv("MAKEFLAGS", "OPT_FAST=-O1 OPT_GLOBAL=-O1")
    d = tmp_path / "edge"
    assert main(["gen", "--accelerator", "pointacc", "--out", str(d)]) == 0
    cfg = PointAccConfig.preset("edge")
    check_feature_knn(cfg, simulate(d, "verilator"), make_case(cfg, 0))

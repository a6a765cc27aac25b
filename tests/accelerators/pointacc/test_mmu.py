"""PointAcc MMU RTL: gather / scatter / scatter-add / flush through the cache, under Icarus and
Verilator (bench: mmu_bench.py). Hits, misses, write-backs, the DRAM request sequence and the
cycles must equal the Python cache model (accelerators.pointacc.cache_model) and
cycles.mmu_cycles exactly (blocking units m0-m3, mshrs 1; non-blocking n0-n3, 4 MSHRs, DRAM latency
20, 1, 20, 100: gathers, scatters and scatter-adds); gathered rows and the final DRAM image must equal the
logical memory contents (a plain dict of rows, and a numpy replay of the ops, both independent of the
cache). Workloads: random maps with locality, maps with many duplicate and conflicting rows (one set
over-subscribed: dirty victims), and the gather/scatter-add streams of a real sparse convolution (the
submanifold kernel map of a voxelized Ouster crop). Also: verilator -Wall lint, and the mshrs = 1
Verilog against the blocking MMU's.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelerators.pointacc.cache_model import CacheModel
from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.cycles import mmu_cycles
from accelerators.pointacc.dram import nb_gather_cycles
from accelerators.pointacc.mmu import MMU, OP_FLUSH, OP_GATHER, OP_SCATTER, OP_SCATTER_ADD
from lego.toolchain import run_cocotb
from lego.units.harness import SideBySide, emit, lint
from mmu_bench import dram_init
from sw_reference import pointacc as ref

HERE = Path(__file__).parent
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")
OPS = {"gather": OP_GATHER, "scatter": OP_SCATTER, "scatter_add": OP_SCATTER_ADD, "flush": OP_FLUSH, "nop": 0}
OUT_BASE = 8192          # output feature rows of the sparse convolution start here

# prefix: (MMU kwargs, DRAM latency)
UNITS = {
    "m0": (dict(lanes=4, lane_bits=8, block_rows=4, sets=8, ways=2, addr_bits=16), 6),
    "m1": (dict(lanes=2, lane_bits=16, block_rows=1, sets=4, ways=3, addr_bits=16), 1),
    "m2": (dict(lanes=8, lane_bits=8, block_rows=2, sets=1, ways=4, addr_bits=16), 11),
    "m3": (dict(lanes=1, lane_bits=32, block_rows=8, sets=16, ways=1, addr_bits=16), 3),
    # non-blocking gathers (mshrs 4): the same caches at DRAM latencies 20, 1, 20, 100
    "n0": (dict(lanes=4, lane_bits=8, block_rows=4, sets=8, ways=2, addr_bits=16, mshrs=4, queue=8), 20),
    "n1": (dict(lanes=2, lane_bits=16, block_rows=1, sets=4, ways=3, addr_bits=16, mshrs=4, queue=8), 1),
    "n2": (dict(lanes=8, lane_bits=8, block_rows=2, sets=1, ways=4, addr_bits=16, mshrs=4, queue=4), 20),
    "n3": (dict(lanes=1, lane_bits=32, block_rows=8, sets=16, ways=1, addr_bits=16, mshrs=4, queue=16), 100),
}


def sparse_conv_map(n_points: int = 800, voxel: float = 0.1):
    """(in rows, out rows) of a submanifold 3x3x3 convolution on a voxelized Ouster crop, offset by
    offset in kernel-map order: gather input i, scatter-add into output o."""
    xyz = load_cloud(DATA_DIR / "ouster_os1_128_frame0.bin")
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:n_points])
    vox, _ = ref.voxelize(xyz[keep], voxel)
    km = ref.submanifold_kernel_map(vox, 3)
    pairs = np.concatenate(km.pairs)
    return pairs[:, 0], pairs[:, 1] + OUT_BASE, len(vox)


def local_rows(rng, n, lo, hi):
    """Rows with locality: runs of nearby rows and some random jumps."""
    rows, cur = [], int(rng.integers(lo, hi))
    for _ in range(n):
        if rng.random() < 0.2:
            cur = int(rng.integers(lo, hi))
        else:
            cur = int(np.clip(cur + rng.integers(-3, 4), lo, hi - 1))
        rows.append(cur)
    return rows


def conflict_rows(rng, n, kw, base=OUT_BASE):
    """Rows with many duplicates and set conflicts: six blocks of one set (more than the ways: dirty
    victims), each entry the previous row again (40 %), a row of the same block (20 %) or a random row of the
    six blocks."""
    br, sets = kw["block_rows"], kw["sets"]
    blocks = [base // br + k * sets for k in range(6)]
    rows, cur = [], blocks[0] * br
    for _ in range(n):
        u = rng.random()
        if u < 0.4:
            pass
        elif u < 0.6:
            cur = cur - cur % br + int(rng.integers(br))
        else:
            cur = blocks[int(rng.integers(len(blocks)))] * br + int(rng.integers(br))
        rows.append(cur)
    return rows


def build_unit(prefix, kw, lat, rng, conv):
    rw = kw["lanes"] * kw["lane_bits"]
    seed = int(rng.integers(1 << 30))
    lb, lanes = kw["lane_bits"], kw["lanes"]
    model = CacheModel(kw["sets"], kw["ways"], kw["block_rows"])
    model_b = CacheModel(kw["sets"], kw["ways"], kw["block_rows"])     # the same jobs on the blocking MMU
    logic: dict[int, int] = {}

    def value(r):
        return logic.get(r, dram_init(r, seed, rw))

    def add(a, b):
        return sum((((a >> (i * lb)) + (b >> (i * lb))) & ((1 << lb) - 1)) << (i * lb) for i in range(lanes))

    specs = [("nop", []), ("gather", []), ("gather", local_rows(rng, 70, 0, 300)),
             ("scatter_add", local_rows(rng, 60, OUT_BASE, OUT_BASE + 120)),
             ("scatter", local_rows(rng, 25, 0, 300)),
             ("gather", local_rows(rng, 50, 0, 300) + local_rows(rng, 20, OUT_BASE, OUT_BASE + 120)),
             ("flush", []),
             ("gather", list(conv[0])), ("scatter_add", list(conv[1])),
             ("gather", local_rows(rng, 20, OUT_BASE, OUT_BASE + 200)),
             ("flush", []), ("flush", [])]
    # duplicates and conflicting indices: same rows back to back, same blocks, one set over-subscribed
    specs += [("scatter_add", conflict_rows(rng, 90, kw)), ("scatter", conflict_rows(rng, 60, kw)),
              ("scatter_add", conflict_rows(rng, 60, kw) + local_rows(rng, 30, OUT_BASE, OUT_BASE + 40)),
              ("gather", conflict_rows(rng, 40, kw)), ("scatter", [OUT_BASE + 1] * 5 + [OUT_BASE] * 3),
              ("scatter_add", [OUT_BASE + 1] * 6 + [OUT_BASE + 2, OUT_BASE + 1] * 3), ("flush", [])]
    jobs = []
    for op, rows in specs:
        rows = [int(r) for r in rows]
        entries, beats = [], []
        for r in rows:
            tag = int(rng.integers(1 << 16))
            data = int.from_bytes(rng.bytes((rw + 7) // 8), "little") & ((1 << rw) - 1)
            entries.append([int(r), tag, data])
            if op == "gather":
                beats.append([value(r), tag])
            elif op == "scatter":
                logic[r] = data
            elif op == "scatter_add":
                logic[r] = add(value(r), data)
        if op == "nop":
            exp = {"cycles": 1, "hits": 0, "misses": 0, "writebacks": 0, "fills": [], "written": []}
            reqs, blocking = [], 1
        else:
            exp = mmu_cycles(model, op, [e[0] for e in entries], lat, kw.get("mshrs", 1), kw.get("queue", 8))
            blocking = mmu_cycles(model_b, op, [e[0] for e in entries], lat)["cycles"]
            reqs = []
            if op == "flush":
                for b in exp["written"]:
                    reqs += [["w", b * kw["block_rows"] + i] for i in range(kw["block_rows"])]
            else:
                for ev in model.stats.events:
                    if not ev.hit:
                        wb = [] if ev.writeback is None else \
                            [["w", ev.writeback * kw["block_rows"] + i] for i in range(kw["block_rows"])]
                        # blocking: the victim's rows, then the read; non-blocking: the read, then the rows
                        rd = [["r", ev.fill * kw["block_rows"]]]
                        reqs += wb + rd if kw.get("mshrs", 1) == 1 else rd + wb
        jobs.append({"op": op, "entries": entries, "beats": beats, "exp": exp, "reqs": reqs, "blocking": blocking})
    return {"prefix": prefix, "kw": kw, "latency": lat, "seed": seed, "row_bits": rw, "jobs": jobs,
            "logic": logic}


def make_design(d, units_spec, seed=7):
    top = SideBySide([(p, MMU(**kw)) for p, (kw, _) in units_spec.items()])
    src = emit(d / "lego_pointacc_mmu_top.v", top, "lego_pointacc_mmu_top")
    rng = np.random.default_rng(seed)
    conv_in, conv_out, nvox = sparse_conv_map()
    units = [build_unit(p, kw, lat, rng, (conv_in, conv_out)) for p, (kw, lat) in units_spec.items()]
    stim = {"units": [{"prefix": u["prefix"], "latency": u["latency"], "block_rows": u["kw"]["block_rows"],
                       "row_bits": u["row_bits"], "seed": u["seed"],
                       "max_cycles_per_job": max(j["exp"]["cycles"] for j in u["jobs"]) + 50,
                       "jobs": [{"op": OPS[j["op"]], "entries": j["entries"]} for j in u["jobs"]]}
                      for u in units]}
    (d / "stim.json").write_text(json.dumps(stim))
    return {"dir": d, "src": src, "units": units, "conv_pairs": len(conv_in), "voxels": nvox}


def run_sim(design, engine):
    d = design["dir"]
    result = d / f"result_{engine}.json"
    ok = run_cocotb(engine=engine, sources=[design["src"]], top="lego_pointacc_mmu_top", test_module="mmu_bench",
                    test_dir=HERE, build_dir=d / f"build_{engine}",
                    extra_env={"MMU_STIM": str(d / "stim.json"), "MMU_RESULT": str(result)})
    assert ok, f"cocotb bench failed under {engine} (log: {d / f'build_{engine}' / 'sim.log'})"
    return json.loads(result.read_text())


def check_data(sim, design):
    for u, got in zip(design["units"], sim["units"]):
        dram = {int(a): v for a, v in got[-1]["dram"].items()}
        for i, (j, r) in enumerate(zip(u["jobs"], got)):
            assert r["accepted"] == len(j["entries"]), f"{u['prefix']} job {i}"
            assert r["beats"] == j["beats"], f"{u['prefix']} job {i} ({j['op']}): gathered rows"
        # after the final flush, DRAM holds the logical memory
        for row, v in u["logic"].items():
            assert dram.get(row, dram_init(row, u["seed"], u["row_bits"])) == v, f"{u['prefix']} row {row}"


def numpy_oracle(u):
    """Scatter / scatter-add / gather replayed on a numpy array of the touched rows (lanes as columns,
    wrapping adds by np.add.at, a scatter's last write per row winning): per job the gathered rows, and the
    final image. Independent of the bench's dict oracle and of the cache."""
    lanes, lb = u["kw"]["lanes"], u["kw"]["lane_bits"]
    mask = np.uint64((1 << lb) - 1)
    sh = np.arange(lanes, dtype=np.uint64) * np.uint64(lb)
    rows = sorted({e[0] for j in u["jobs"] for e in j["entries"]})
    pos = {r: i for i, r in enumerate(rows)}

    def split(vals):
        return (np.array(vals, dtype=object)[:, None] >> sh.astype(object) & int(mask)).astype(np.uint64)

    mem = split([dram_init(r, u["seed"], u["row_bits"]) for r in rows]) if rows else None
    beats = []
    for j in u["jobs"]:
        if not j["entries"]:
            beats.append([])
            continue
        ix = np.array([pos[e[0]] for e in j["entries"]])
        data = split([e[2] for e in j["entries"]])
        if j["op"] == "gather":
            beats.append([[int(sum(int(v) << (i * lb) for i, v in enumerate(mem[x]))), e[1]]
                          for x, e in zip(ix, j["entries"])])
            continue
        beats.append([])
        if j["op"] == "scatter_add":
            np.add.at(mem, ix, data)
            mem &= mask
        else:
            last = len(ix) - 1 - np.unique(ix[::-1], return_index=True)[1]
            mem[ix[last]] = data[last]
    image = {r: int(sum(int(v) << (i * lb) for i, v in enumerate(mem[p]))) for r, p in pos.items()}
    return beats, image


def check_numpy_oracle(sim, design):
    for u, got in zip(design["units"], sim["units"]):
        beats, image = numpy_oracle(u)
        for i, (b, r) in enumerate(zip(beats, got)):
            assert r["beats"] == b, f"{u['prefix']} job {i} ({u['jobs'][i]['op']}): gathered rows vs numpy"
        dram = {int(a): v for a, v in got[-1]["dram"].items()}
        bad = [r for r, v in image.items() if dram.get(r, dram_init(r, u["seed"], u["row_bits"])) != v]
        assert not bad, f"{u['prefix']}: {len(bad)} rows differ from the numpy oracle, first {bad[:5]}"


def check_counts_cycles(sim, design):
    bad = []
    for u, got in zip(design["units"], sim["units"]):
        for i, (j, r) in enumerate(zip(u["jobs"], got)):
            e = j["exp"]
            want = (e["cycles"], e["cycles"], e["hits"], e["misses"], e["writebacks"])
            have = (r["measured"], r["cycles"], r["hits"], r["misses"], r["writebacks"])
            if want != have or r["reqs"] != j["reqs"]:
                bad.append(f"{u['prefix']} job {i} {j['op']}: (measured, port, hits, misses, wb) {have} != {want}"
                           + ("" if r["reqs"] == j["reqs"] else "; DRAM requests differ"))
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    return make_design(tmp_path_factory.mktemp("mmu_rtl"), UNITS)


@pytest.fixture(scope="module", params=["icarus", "verilator"])
def sim(request, design):
    return run_sim(design, request.param)


def test_data_exact(sim, design):
    check_data(sim, design)
    check_numpy_oracle(sim, design)


def test_hits_misses_cycles_exact(sim, design):
    check_counts_cycles(sim, design)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_preset_mmus_at_latency_100(tmp_path, engine):
    """The edge and tiny presets' MMUs (16 MSHRs / queue 64, 4 / 8) and the edge MMU made blocking
    (mshrs 1), DRAM latency 100, on the same random and real-map jobs: exact as above; the non-blocking
    gather of the real map is faster than the blocking one."""
    edge, tiny = PointAccConfig.preset("edge").mmu_params(), PointAccConfig.preset("tiny").mmu_params()
    spec = {"e0": (edge, 100), "e1": ({**edge, "mshrs": 1}, 100), "t0": (tiny, 100)}
    design = make_design(tmp_path, spec, seed=8)
    sim = run_sim(design, engine)
    check_data(sim, design)
    check_numpy_oracle(sim, design)
    check_counts_cycles(sim, design)
    for job in (7, 8):      # the real map's gather and scatter-add
        e0, e1 = (u["jobs"][job]["exp"] for u in design["units"][:2])
        assert (e0["hits"], e0["misses"], e0["writebacks"]) == (e1["hits"], e1["misses"], e1["writebacks"])
        assert e0["cycles"] < e1["cycles"]


def test_real_map_workload(design):
    assert design["conv_pairs"] > 1500 and design["voxels"] > 200
    # the caches with 4- and 8-row blocks catch the locality of the sorted map (m1 holds 12 single
    # rows and m2 8 rows: mostly misses there)
    for u in design["units"]:
        g = u["jobs"][7]["exp"]
        if u["prefix"] in ("m0", "m3", "n0", "n3"):
            assert g["hits"] > g["misses"], (u["prefix"], g["hits"], g["misses"])
    # the non-blocking units' scatter-add of the real map (mostly dirty victims) beats the blocking MMU at
    # their latencies (the RTL's cycles are these, test_hits_misses_cycles_exact)
    for u in design["units"]:
        if u["prefix"].startswith("n"):
            j = u["jobs"][8]
            assert j["op"] == "scatter_add" and j["exp"]["writebacks"] > j["exp"]["misses"] // 2
            assert j["exp"]["cycles"] < j["blocking"], (u["prefix"], j["exp"]["cycles"], j["blocking"])


def test_cache_model_policy():
    """LRU ages, lowest invalid way first, write-back of dirty victims, flush order."""
    c = CacheModel(sets=1, ways=2, block_rows=1)
    assert [c.access(r, False).hit for r in (0, 1, 0, 2, 1)] == [False, False, True, False, False]
    # 0,1 fill ways 0,1; 0 hits; 2 evicts the LRU (1); 1 evicts the LRU (0)
    assert c.lookup(0)[2] is None and c.lookup(2)[2] is not None
    c = CacheModel(sets=2, ways=1, block_rows=2)
    e1 = c.access(0, True)      # block 0 -> set 0, dirty
    e2 = c.access(4, False)     # block 2 -> set 0: evicts dirty block 0
    assert (e1.hit, e2.hit, e2.writeback, e2.fill) == (False, False, 0, 2)
    c.access(2, True)           # block 1 -> set 1
    assert c.flush() == [1] and c.dirty_blocks() == 0
    with pytest.raises(ValueError, match="^cache_sets"):
        CacheModel(3, 1, 1)
    with pytest.raises(ValueError, match="^cache_block_rows"):
        MMU(block_rows=3)
    with pytest.raises(ValueError, match="^cache_sets"):
        MMU(sets=6)


def test_preset_mmu_params():
    for name in ("server", "edge", "tiny"):
        p = PointAccConfig.preset(name).mmu_params()
        u = MMU(**p)                  # constructible from the presets (not elaborated here)
        u._MustUse__silence = True    # amaranth's "created but never used" warning
        assert p["sets"] * p["ways"] * p["block_rows"] * p["lanes"] == PointAccConfig.preset(name).cache_bytes


@pytest.mark.parametrize("kw", [UNITS["m0"][0], UNITS["m1"][0], UNITS["m3"][0], UNITS["n0"][0], UNITS["n2"][0],
                                pytest.param(PointAccConfig.preset("edge").mmu_params(), marks=pytest.mark.slow,
                                             id="edge")])
def test_verilator_lint(tmp_path, kw):
    src = emit(tmp_path / "lego_pointacc_mmu.v", MMU(**kw), "lego_pointacc_mmu")
    res = lint(src, "lego_pointacc_mmu", tmp_path)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]


def _old_blocking(model, op, rows, lat):
    """The blocking MMU's cycles as the formula stood before the non-blocking MMU (independent of dram.py)."""
    model.reset_stats()
    for r in rows:
        model.access(int(r), op != "gather")
    st, br = model.stats, model.block_rows
    return 1 + st.hits + st.misses * (lat + br + 2) + st.writebacks * (br + 1)


def test_mshrs1_is_the_old_blocking_formula():
    """Property (seeded random geometries, streams and latencies): mmu_cycles with mshrs = 1 is the old
    blocking formula for gathers, scatters and scatter-adds alike; mshrs > 1 is dram.nb_gather_cycles for all
    three (same hits and misses)."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        sets, ways, br = int(rng.choice([1, 2, 4, 8])), int(rng.integers(1, 4)), int(rng.choice([1, 2, 4]))
        lat, n = int(rng.integers(1, 120)), int(rng.integers(0, 200))
        rows = rng.integers(0, int(rng.integers(1, 200)), size=n).tolist()
        op = str(rng.choice(["gather", "scatter", "scatter_add"]))
        warm = rng.integers(0, 100, size=20).tolist()
        a, b, c = (CacheModel(sets, ways, br) for _ in range(3))
        for m in (a, b, c):
            for r in warm:
                m.access(r, True)
        got = mmu_cycles(a, op, rows, lat)["cycles"]
        assert got == _old_blocking(b, op, rows, lat)
        nb = mmu_cycles(c, op, rows, lat, 4, 8)
        assert nb["cycles"] == nb_gather_cycles(nb["kinds"], nb["dists"], lat, br, 4, 8)


def test_nb_timing_c_equals_reference_and_stream_cache():
    """dram.nb_stream_cycles (compiled) = its Python reference = per-op mmu_cycles on CacheModel; the network
    model's ReadStreamCache.events gives the same timing as CacheModel, op by op, over two passes."""
    from accelerators.pointacc.cache_model import ReadStreamCache
    from accelerators.pointacc.dram import nb_stream_cycles
    rng = np.random.default_rng(5)
    for _ in range(150):
        sets, ways, br = int(rng.choice([1, 2, 4])), int(rng.integers(1, 4)), int(rng.choice([1, 2, 4]))
        n = int(rng.integers(1, 300))
        rows = rng.integers(0, int(rng.integers(2, 100)), size=n)
        st = np.unique(np.concatenate([[0], rng.integers(0, n, size=int(rng.integers(0, 4)))]))
        lat, q = int(rng.integers(1, 60)), int(rng.choice([2, 4, 8, 16]))
        m = int(rng.integers(2, q + 1))
        cm, want = CacheModel(sets, ways, br), 0
        for _ in range(2):
            for a, b in zip(st, list(st[1:]) + [n]):
                want += mmu_cycles(cm, "gather", rows[a:b].tolist(), lat, m, q)["cycles"]
        rc, got, ref_py = ReadStreamCache(sets, ways, br), 0, 0
        for _ in range(2):
            k, d = rc.events(rows)
            got += nb_stream_cycles(k, d, st, lat, br, m, q)
            ref_py += nb_stream_cycles(k, d, st, lat, br, m, q, use_c=False)
        assert want == got == ref_py


def test_nb_timing_c_equals_reference_with_dirty_misses():
    """dram.nb_stream_cycles (compiled) = its Python reference = per-op mmu_cycles on scatter / scatter-add /
    gather streams through a warm CacheModel (dirty victims), seeded."""
    from accelerators.pointacc.dram import nb_stream_cycles
    rng = np.random.default_rng(9)
    dirty = 0
    for _ in range(150):
        sets, ways, br = int(rng.choice([1, 2, 4])), int(rng.integers(1, 4)), int(rng.choice([1, 2, 4]))
        lat, q = int(rng.integers(1, 60)), int(rng.choice([2, 4, 8, 16]))
        m = int(rng.integers(2, q + 1))
        cm, want, ks, ds, st = CacheModel(sets, ways, br), 0, [], [], []
        for _ in range(int(rng.integers(1, 5))):
            rows = rng.integers(0, int(rng.integers(2, 100)), size=int(rng.integers(1, 120))).tolist()
            r = mmu_cycles(cm, str(rng.choice(["gather", "scatter", "scatter_add"])), rows, lat, m, q)
            want += r["cycles"]
            st.append(len(ks))
            ks += r["kinds"]
            ds += r["dists"]
        dirty += ks.count(2)
        got = nb_stream_cycles(ks, ds, st, lat, br, m, q)
        assert got == nb_stream_cycles(ks, ds, st, lat, br, m, q, use_c=False) == want
    assert dirty > 1000, dirty


def test_nb_hand_values():
    """dram.nb_gather_cycles by hand: LAT 10, B 2, 2 MSHRs, queue 4."""
    from accelerators.pointacc.dram import nb_gather_cycles
    # four hits: accepted in cycles 1..4, popped 2..5, drain 6
    assert nb_gather_cycles([0] * 4, [0] * 4, 10, 2, 2, 4) == 6
    # miss at 1 (ready 13), hit at 2 waits behind it: pops 13, 14; drain 15
    assert nb_gather_cycles([1, 0], [0, 0], 10, 2, 2, 4) == 15
    # three misses: issued 1, 3 (B apart), the third waits for an MSHR: 1 + 10 + 2 = 13; pops 13, 15, 25
    assert nb_gather_cycles([1, 1, 1], [0, 0, 0], 10, 2, 2, 4) == 26
    # queue of 4: a miss then 4 hits: hits at 2, 3, 4; the 4th waits for the miss's pop (13) -> 14
    assert nb_gather_cycles([1, 0, 0, 0, 0], [0] * 5, 10, 2, 2, 4) == 13 + 4 + 1
    # a miss whose victim was read by the entry just before: waits for that entry's pop
    assert nb_gather_cycles([1, 1], [0, 1], 10, 2, 2, 4) == (1 + 12) + 1 + 12 + 1
    # a dirty victim: accepted at 2 like a clean miss (its write-back runs beside), ready 2 + 12; drain 15
    assert nb_gather_cycles([0, 2], [0, 0], 10, 2, 2, 4) == 15
    # the write-back holds the request port B cycles: the next read waits B + 1 = 3 after a dirty miss
    # (issued 1, 4; the second ready 16, its pop 16) against B = 2 after a clean one (1, 3; pop 15)
    assert nb_gather_cycles([2, 1], [0, 0], 10, 2, 2, 4) == 17
    assert nb_gather_cycles([1, 1], [0, 0], 10, 2, 2, 4) == 16


# sha256 of the Verilog of blocking MMUs (mshrs = 1) with the `(* src = ... *)` attributes removed, emitted at
# commit d4ed8bb (before the non-blocking scatters): mshrs = 1 must elaborate exactly the old blocking MMU.
BLOCKING_VERILOG_SHA256 = {
    "m0": "1b1be92998350530efeaea250b5e070bc57b5a9605598781e82a55146c84a405",
    "m1": "72c947fb17fc894c7bb72691a8cfc06941bfc87dac49cc1e4139112faff8afc4",
    "tiny1": "e780f1cebec93daf31dd9218d3b8a494ce4ba41f7ccb4594c338cd14a5173df7",
}


def test_mshrs1_verilog_is_the_old_blocking_mmu(tmp_path):
    import hashlib
    import re
    kws = {"m0": UNITS["m0"][0], "m1": UNITS["m1"][0],
           "tiny1": {**PointAccConfig.preset("tiny").mmu_params(), "mshrs": 1}}
    for name, kw in kws.items():
        src = Path(emit(tmp_path / f"{name}.v", MMU(**kw), "lego_pointacc_mmu")).read_text()
        text = re.sub(r'\(\* src = "[^"]*" \*\)\s*', "", src)
        assert hashlib.sha256(text.encode()).hexdigest() == BLOCKING_VERILOG_SHA256[name], \
            f"{name}: the mshrs = 1 Verilog differs from the blocking MMU of d4ed8bb (or the Amaranth version changed)"

"""cocotb benches of tb/spatten_units.v (every unit of spatten_top side by side): each unit, and the units
chained by the bench as the pipeline, bit-exact against sw_reference.spatten on random inputs; the top-k
engine and the cascade pruner's selections also cycle-exact against their models.
Env: SPATTEN_CFG (config.yaml of the RTL), SPATTEN_CASES, SPATTEN_MAX_N (at most this many elements per
top-k, softmax or query case, default and at most cfg.topk_max_n: a quick run of a large design)."""
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.gen import unit_prune_depth
from accelerators.spatten.model import topk_cycles
from accelerators.spatten.rtl_model import selection_cycles
from lego.units.lanes import pack, unpack
from sw_reference.spatten import fixed
from sw_reference.spatten.cascade import _select, attention_query_int
from sw_reference.spatten.topk import keep_count, topk_engine, topk_reference

CFG = SpAttenConfig.from_yaml(os.environ["SPATTEN_CFG"])
CASES = int(os.environ.get("SPATTEN_CASES", "20"))
K, R = CFG.keys_per_cycle, CFG.values_per_cycle   # keys / V rows per beat
N_MAX = min(CFG.topk_max_n, max(CFG.topk_parallelism + 1, int(os.environ.get("SPATTEN_MAX_N") or CFG.topk_max_n)))


def chunks(xs, n):
    return [xs[i:i + n] for i in range(0, len(xs), n)]


class U:
    """Access a unit's ports through its prefix."""
    def __init__(self, dut, prefix):
        self.__dict__["_d"], self.__dict__["_p"] = dut, prefix

    def __getattr__(self, n):
        return getattr(self._d, f"{self._p}_{n}")

    def __setattr__(self, n, v):
        getattr(self._d, f"{self._p}_{n}").value = v

    def get(self, n):
        return int(getattr(self._d, f"{self._p}_{n}").value)


async def reset(dut):
    Clock(dut.clk, 10, unit="ns").start()
    for name in ("topk_start", "topk_in_valid", "softmax_in_valid", "requant_in_valid", "qk_in_valid",
                 "kfetch_in_valid", "vfetch_in_valid", "pv_in_valid", "tokimp_clear", "tokimp_add_valid",
                 "headimp_clear", "headimp_add_valid", "prune_clear", "prune_add_valid", "prune_sel_start",
                 "prune_sel_reset"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


async def run_topk(dut, vals, k):
    t = U(dut, "topk")
    p, w, nmax = CFG.topk_parallelism, CFG.prob_bits, CFG.topk_max_n
    iw = max(1, (nmax - 1).bit_length())
    n = len(vals)
    rows = [list(vals[r * p:(r + 1) * p]) for r in range(-(-n // p))]
    t.start, t.n, t.k = 1, n, k
    await FallingEdge(dut.clk)
    t.start = 0
    cyc, r, got = 1, 0, []
    while True:
        if t.get("out_valid"):
            got += unpack(t.get("out_index"), t.get("out_count"), iw, signed=False)
        if t.get("done"):
            break
        if t.get("in_ready") and r < len(rows):
            t.in_valid, t.in_data = 1, pack(rows[r], w)
            r += 1
        else:
            t.in_valid = 0
        await FallingEdge(dut.clk)
        cyc += 1
        assert cyc < 100000, "top-k engine hung"
    t.in_valid = 0
    await FallingEdge(dut.clk)
    return got, cyc, t.get("kth")


async def run_softmax(dut, scores, dq, rng=None):
    """Scores in beats of K (the last one partial; its unused lanes carry random scores, which must be
    ignored); the probabilities of the valid lanes."""
    s = U(dut, "softmax")
    s.dq = dq
    rng = rng or np.random.default_rng(0)
    lim = (1 << (CFG.score_bits - 1)) - 1
    beats = chunks([int(x) for x in scores], K)
    out, j = [], 0
    while True:
        if s.get("out_valid"):
            out.extend(unpack(s.get("out_prob"), s.get("out_count"), CFG.prob_bits, False))
            if s.get("out_last"):
                break
        if s.get("in_ready") and j < len(beats):
            b = beats[j] + [int(x) for x in rng.integers(-lim, lim + 1, K - len(beats[j]))]
            s.in_valid, s.in_score, s.in_count = 1, pack(b, CFG.score_bits), len(beats[j])
            s.in_last = int(j == len(beats) - 1)
            j += 1
        else:
            s.in_valid = 0
        await FallingEdge(dut.clk)
    s.in_valid = 0
    await FallingEdge(dut.clk)
    return out


async def run_requant(dut, probs):
    r = U(dut, "requant")
    r.threshold = CFG.threshold_q
    for j, pv in enumerate(probs):
        r.in_valid, r.first, r.last, r.p = 1, int(j == 0), int(j == len(probs) - 1), int(pv)
        await FallingEdge(dut.clk)
    r.in_valid = 0
    assert r.get("out_valid") == 1
    return r.get("need_requant"), r.get("max_prob")


async def run_fetch(dut, unit, rows, use_lsb):
    """One beat of K (kfetch) or R (vfetch) rows through a KVFetcher; the values of the given rows."""
    f = U(dut, unit)
    lb = CFG.kv_lsb_bits
    rows = np.asarray(rows).reshape(-1, CFG.head_dim)
    msb, lsb = fixed.split_msb_lsb(rows.reshape(-1), lb)
    f.in_valid, f.msb, f.lsb, f.use_lsb = 1, pack(msb, CFG.kv_msb_bits), pack(lsb, lb), int(use_lsb)
    await FallingEdge(dut.clk)
    f.in_valid = 0
    return np.array(unpack(f.get("value"), rows.size, CFG.kv_bits, True)).reshape(rows.shape)


async def clear(dut, u):
    """Pulse the unit's clear for one cycle and wait until it is no longer busy."""
    u.clear = 1
    await FallingEdge(dut.clk)
    u.clear = 0
    while u.get("busy"):
        await FallingEdge(dut.clk)


async def wait_valid(dut, u, limit=64):
    """The lego-generated datapaths answer a fixed number of cycles later (their LP-scheduled latency)."""
    for _ in range(limit):
        if u.get("out_valid"):
            return
        await FallingEdge(dut.clk)
    raise AssertionError(f"{u._p}: no out_valid within {limit} cycles")


async def run_qk(dut, q, krows):
    """One beat of up to K keys; their scores."""
    u = U(dut, "qk")
    krows = np.asarray(krows).reshape(-1, CFG.head_dim)
    u.in_valid, u.q, u.k = 1, pack(q, CFG.q_bits), pack(krows.reshape(-1), CFG.kv_bits)
    await FallingEdge(dut.clk)
    u.in_valid = 0
    await wait_valid(dut, u)
    return unpack(u.get("score"), len(krows), CFG.score_bits, True)


async def run_pv(dut, probs, vrows, rng=None):
    """Σ p_j v_j in beats of R rows (a partial last beat's unused lanes: p = 0, random v)."""
    u = U(dut, "pv")
    rng = rng or np.random.default_rng(0)
    lim = (1 << (CFG.kv_bits - 1)) - 1
    pb, vb = chunks(list(probs), R), chunks([list(v) for v in vrows], R)
    for j, (ps, vs) in enumerate(zip(pb, vb)):
        pad = R - len(ps)
        vs = vs + rng.integers(-lim, lim + 1, (pad, CFG.head_dim)).tolist()
        u.in_valid, u.first, u.last = 1, int(j == 0), int(j == len(pb) - 1)
        u.p, u.v = pack(list(ps) + [0] * pad, CFG.prob_bits), pack([x for v in vs for x in v], CFG.kv_bits)
        await FallingEdge(dut.clk)
    u.in_valid = 0
    await wait_valid(dut, u)
    return unpack(u.get("out"), CFG.head_dim, CFG.pv_acc_bits, True)


def rand_qkv(rng, n):
    lim_q, lim_kv = (1 << (CFG.q_bits - 1)) - 1, (1 << (CFG.kv_bits - 1)) - 1
    q = rng.integers(-lim_q, lim_q + 1, CFG.head_dim)
    k = rng.integers(-lim_kv, lim_kv + 1, (n, CFG.head_dim))
    v = rng.integers(-lim_kv, lim_kv + 1, (n, CFG.head_dim))
    return q, k, v


def rand_dq(rng):
    return fixed.dequant_scale(1 / ((1 << (CFG.q_bits - 1)) - 1), float(rng.uniform(0.5, 8.0)) / ((1 << (CFG.kv_bits - 1)) - 1),
                               CFG.head_dim, CFG)


@cocotb.test()
async def topk_engine_random(dut):
    await reset(dut)
    rng = random.Random(1)
    p, w, nmax = CFG.topk_parallelism, CFG.prob_bits, N_MAX
    fixed_cases = [(nmax, nmax // 4), (1, 1), (p, 1), (p + 1, p + 1), (nmax, 1), (nmax, nmax)]
    for c in range(max(CASES, len(fixed_cases))):
        n, k = fixed_cases[c] if c < len(fixed_cases) else (None, None)
        if n is None:
            n = rng.randint(1, nmax)
            k = rng.randint(1, n)
        hi = rng.choice([(1 << w) - 1, 7, 1])
        vals = [rng.randint(0, hi) for _ in range(n)]
        got, cyc, kth = await run_topk(dut, vals, k)
        ref = topk_engine(vals, k, p)
        assert got == topk_reference(vals, k).tolist() == ref.indices.tolist(), f"case {c} n={n} k={k}: {got}"
        assert kth == ref.kth, f"case {c}: kth {kth} != {ref.kth}"
        assert cyc == ref.cycles, f"case {c} n={n} k={k}: RTL {cyc} cycles, model {ref.cycles}"
        assert cyc == topk_cycles(vals, k, CFG)  # the trace cycle model's top-k count


@cocotb.test()
async def softmax_and_requant_random(dut):
    await reset(dut)
    rng = np.random.default_rng(2)
    for c in range(CASES):
        n = int(rng.integers(1, N_MAX + 1))
        q, k, _ = rand_qkv(rng, n)
        if c % 3 == 0:
            k = k // 16  # flatter rows: exercise requant
        scores = fixed.dot_scores(q, k)
        dq = rand_dq(rng)
        got = await run_softmax(dut, scores, dq, rng)
        ref = fixed.softmax_fixed(scores, dq, CFG)
        assert got == ref.tolist(), f"case {c}: softmax mismatch n={n} dq={dq}"
        need, mx = await run_requant(dut, ref)
        assert (need, mx) == (int(fixed.need_requant(ref, CFG)), int(ref.max())), f"case {c}: requant"


@cocotb.test()
async def datapath_units_random(dut):
    await reset(dut)
    rng = np.random.default_rng(3)
    for c in range(CASES):
        q, k, v = rand_qkv(rng, K + R + 3)
        for unit, lanes in (("kfetch", K), ("vfetch", R)):
            for use in (0, 1):
                got = await run_fetch(dut, unit, k[:lanes], use)
                msb = fixed.split_msb_lsb(k[:lanes], CFG.kv_lsb_bits)[0]
                ref = k[:lanes] if use else fixed.fetch_value(msb, None, CFG.kv_lsb_bits)
                assert got.tolist() == np.asarray(ref).tolist(), f"case {c}: {unit} use_lsb={use}"
        nk = int(rng.integers(1, K + 1))
        s = await run_qk(dut, q, k[:nk])
        assert s == fixed.dot_scores(q, k[:nk]).tolist(), f"case {c}: qk ({nk} keys)"
        nv = int(rng.integers(1, len(v) + 1))
        probs = rng.integers(0, 1 << CFG.prob_bits, nv)
        got = await run_pv(dut, probs, v[:nv], rng)
        assert got == fixed.pv_product(probs, v[:nv]).tolist(), f"case {c}: pv ({nv} rows)"


@cocotb.test()
async def importance_accumulators(dut):
    """tokimp takes K adds per cycle (distinct entries, random lane enables), headimp one."""
    await reset(dut)
    rng = np.random.default_rng(4)
    iw = max(1, (CFG.topk_max_n - 1).bit_length())
    for unit, depth, lanes in (("tokimp", CFG.topk_max_n, K), ("headimp", 64, 1)):
        u = U(dut, unit)
        uiw = iw if unit == "tokimp" else 6
        await clear(dut, u)
        ref = np.zeros(depth, dtype=np.int64)
        top = (1 << CFG.importance_bits) - 1
        for _ in range(CASES * 10):
            idx = rng.choice(depth, size=lanes, replace=False)
            val = rng.integers(0, 1 << CFG.prob_bits, lanes)
            en = rng.integers(0, 2, lanes) if lanes > 1 else np.ones(1, dtype=np.int64)
            u.add_valid, u.add_index, u.add_value = pack(en, 1), pack(idx, uiw), pack(val, CFG.prob_bits)
            for x in range(lanes):
                if en[x]:
                    ref[idx[x]] = min(ref[idx[x]] + int(val[x]), top)
            await FallingEdge(dut.clk)
        u.add_valid = 0
        for i in range(depth):
            u.rd_index = i
            await FallingEdge(dut.clk)
            assert u.get("rd_value") == ref[i], f"{unit}[{i}]"


@cocotb.test()
async def cascade_pruner_random(dut):
    """Cascades of token selections on random cumulative importance (ties included), bit-exact with the
    reference's _select, and n + 3 (+ top-k engine) cycles per selection."""
    await reset(dut)
    u = U(dut, "prune")
    rng = np.random.default_rng(6)
    depth, top = unit_prune_depth(CFG), (1 << CFG.importance_bits) - 1
    for seq in range(max(2, CASES // 5)):
        n = int(rng.integers(2, depth + 1))
        await clear(dut, u)
        imp = np.zeros(depth, dtype=np.int64)
        for i in range(n):
            val = int(rng.integers(0, 8 if seq % 2 else 1 << CFG.prob_bits))
            u.add_valid, u.add_index, u.add_value = 1, i, val
            imp[i] = min(imp[i] + val, top)
            await FallingEdge(dut.clk)
        u.add_valid = 0
        u.sel_reset = 1
        await FallingEdge(dut.clk)
        u.sel_reset = 0
        alive = np.ones(n, dtype=bool)
        for ratio in (0.75, 0.5, 1.0, 0.25):
            m_alive = int(alive.sum())
            kk = keep_count(m_alive, ratio)
            want = _select(imp[:n], alive, ratio, CFG, False)
            u.sel_n, u.sel_keep, u.sel_start = n, kk, 1
            await FallingEdge(dut.clk)
            u.sel_start = 0
            cyc = 1
            while not u.get("sel_done"):
                await FallingEdge(dut.clk)
                cyc += 1
            assert cyc == selection_cycles(CFG, n, imp[:n][alive], kk), f"seq {seq} ratio {ratio}: {cyc} cycles"
            assert u.get("sel_count") == int(want.sum())
            got = []
            for i in range(n):
                u.alive_index = i
                await FallingEdge(dut.clk)
                got.append(bool(u.get("alive")))
            assert got == want.tolist(), f"seq {seq} ratio {ratio}: alive mask"
            alive = want


@cocotb.test()
async def pipeline_query(dut):
    """The units chained as the SpAtten pipeline for one query: K MSB fetch -> Q.K -> softmax -> requant
    decision [-> K LSB fetch -> Q.K -> softmax] -> top-k of V rows -> V fetch -> P.V."""
    await reset(dut)
    rng = np.random.default_rng(5)
    for c in range(max(4, CASES // 4)):
        n = int(rng.integers(2, N_MAX + 1))
        q, k, v = rand_qkv(rng, n)
        if c % 2:
            k = k // 8
        dq = rand_dq(rng)
        v_keep = float(rng.choice([0.2, 0.5, 1.0]))
        ref = attention_query_int(q, k, v, CFG, dq, v_keep)

        async def scores_for(use_lsb):
            out = []
            for j in range(0, n, K):                     # beats of K keys
                kv = await run_fetch(dut, "kfetch", k[j:j + K], use_lsb)
                out.extend(await run_qk(dut, q, kv))
            return out
        probs = await run_softmax(dut, await scores_for(0), dq, rng)
        need, _ = await run_requant(dut, probs)
        if need:
            probs = await run_softmax(dut, await scores_for(1), dq, rng)
        assert bool(need) == ref.requant and probs == ref.probs.tolist(), f"case {c}: probabilities"
        m = keep_count(n, v_keep)
        sel = list(range(n)) if m == n else (await run_topk(dut, probs, m))[0]
        assert sel == ref.v_sel.tolist(), f"case {c}: V selection"
        vrows = np.concatenate([await run_fetch(dut, "vfetch", v[sel[i:i + R]], 0) for i in range(0, len(sel), R)])
        out = await run_pv(dut, [probs[j] for j in sel], vrows, rng)
        assert out == ref.out.tolist(), f"case {c}: attention output"

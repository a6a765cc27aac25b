"""accelerators/spatten/units/lego_datapath.py: the lego-generated Q.K and P.V arrays in Amaranth's
simulator. Their latency is measured (in_valid / last -> out_valid), not read from the objects: it is the
oracle for ``rtl_model.datapath_latencies`` (what the manifest records and the exact cycle model uses);
the scores and sums are checked against sw_reference.spatten.fixed."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.gen import lanes_config, small_config
from accelerators.spatten.rtl_model import datapath_latencies
from accelerators.spatten.units.lego_datapath import PVArray, QKArray
from lego.units.lanes import pack, unpack
from sw_reference.spatten import fixed


def measure_qk(cfg, rng):
    """One beat of keys_per_cycle keys; (cycles from the in_valid cycle to the out_valid cycle, scores, want)."""
    u = QKArray(cfg.head_dim, cfg.q_bits, cfg.kv_bits, cfg.topk_max_n, cfg.keys_per_cycle)
    q = rng.integers(-(1 << (cfg.q_bits - 1)) + 1, 1 << (cfg.q_bits - 1), cfg.head_dim)
    k = rng.integers(-(1 << (cfg.kv_bits - 1)) + 1, 1 << (cfg.kv_bits - 1), (cfg.keys_per_cycle, cfg.head_dim))
    res = {}

    async def bench(ctx):
        ctx.set(u.in_valid, 1)
        ctx.set(u.q, pack(q, cfg.q_bits))
        ctx.set(u.k, pack(k.reshape(-1), cfg.kv_bits))
        await ctx.tick()
        ctx.set(u.in_valid, 0)
        for cyc in range(1, 40):
            if ctx.get(u.out_valid):
                res["cycles"] = cyc
                res["scores"] = unpack(ctx.get(u.score), cfg.keys_per_cycle, u.score_bits)
                return
            await ctx.tick()

    _sim(u, bench)
    return res["cycles"], res["scores"], fixed.dot_scores(q, k).tolist()


def measure_pv(cfg, rng, beats=3):
    """``beats`` beats of values_per_cycle rows; (cycles from the ``last`` beat's cycle to out_valid, out, want)."""
    R, d = cfg.values_per_cycle, cfg.head_dim
    u = PVArray(d, cfg.prob_bits, cfg.kv_bits, cfg.pv_acc_bits, cfg.topk_max_n, R)
    p = rng.integers(0, 1 << cfg.prob_bits, beats * R)
    v = rng.integers(-(1 << (cfg.kv_bits - 1)) + 1, 1 << (cfg.kv_bits - 1), (beats * R, d))
    res = {}

    async def bench(ctx):
        for j in range(beats):
            ctx.set(u.in_valid, 1)
            ctx.set(u.first, int(j == 0))
            ctx.set(u.last, int(j == beats - 1))
            ctx.set(u.p, pack(p[j * R:(j + 1) * R], cfg.prob_bits))
            ctx.set(u.v, pack(v[j * R:(j + 1) * R].reshape(-1), cfg.kv_bits))
            await ctx.tick()
        ctx.set(u.in_valid, 0)
        for cyc in range(1, 40):
            if ctx.get(u.out_valid):
                res["cycles"] = cyc
                res["out"] = unpack(ctx.get(u.out), d, cfg.pv_acc_bits)
                return
            await ctx.tick()

    _sim(u, bench)
    return res["cycles"], res["out"], fixed.pv_product(p, v).tolist()


def _sim(u, bench):
    sim = Simulator(u)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("cfg,hand", [(small_config(), (4, 3)), (lanes_config(), (4, 4)),
                                      (SpAttenConfig.preset("eighth").replace(topk_max_n=64), (5, 3))])
def test_latency_measured(cfg, hand):
    """Measured latencies equal rtl_model.datapath_latencies (the manifest's) and the values recorded by
    hand from earlier runs (a change of lego's scheduling shows up here first)."""
    rng = np.random.default_rng(cfg.head_dim + cfg.keys_per_cycle)
    qk_cycles, scores, want_s = measure_qk(cfg, rng)
    pv_cycles, out, want_o = measure_pv(cfg, rng)
    assert scores == want_s and out == want_o
    assert (qk_cycles, pv_cycles) == datapath_latencies(cfg) == hand

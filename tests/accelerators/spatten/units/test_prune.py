"""CascadePruner (units/prune.py) in Amaranth's simulator: cascades of selections on random cumulative
importance, bit-exact with sw_reference.spatten.cascade._select (pruned entries stay pruned); the
selection's measured cycle count is the documented scan + decide + top-k engine + done (the engine's
cycles from sw_reference.spatten.topk, themselves measured on the RTL in tests/lego/units). (Icarus and
Verilator: the units bench, tb_spatten.py.)"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from accelerators.spatten.gen import small_config
from accelerators.spatten.rtl_model import selection_cycles
from accelerators.spatten.units.prune import CascadePruner
from sw_reference.spatten.cascade import _select
from sw_reference.spatten.topk import keep_count, topk_engine


@pytest.mark.parametrize("depth,p,ties", [(64, 16, False), (24, 8, True)])
def test_cascade_selection_matches_reference(depth, p, ties):
    cfg = small_config().replace(topk_parallelism=p)
    u = CascadePruner(depth, 16, 20, p)
    rng = np.random.default_rng(depth)
    log = []

    async def tb(ctx):
        for seq in range(3):
            n = int(rng.integers(2, depth + 1))
            imp = np.zeros(depth, dtype=np.int64)
            ctx.set(u.clear, 1)
            await ctx.tick()
            ctx.set(u.clear, 0)
            while ctx.get(u.busy):
                await ctx.tick()
            for i in range(n):
                for _ in range(2):
                    v = int(rng.integers(0, 4 if ties else 1 << 16))
                    ctx.set(u.add_valid, 1)
                    ctx.set(u.add_index, i)
                    ctx.set(u.add_value, v)
                    imp[i] = min(imp[i] + v, (1 << 20) - 1)
                    await ctx.tick()
            ctx.set(u.add_valid, 0)
            ctx.set(u.sel_reset, 1)
            await ctx.tick()
            ctx.set(u.sel_reset, 0)
            alive = np.ones(n, dtype=bool)
            for ratio in (0.7, 0.5, 1.0, 0.3):
                m_alive = int(alive.sum())
                kk = keep_count(m_alive, ratio)
                want = _select(imp[:n], alive, ratio, cfg, False)
                ctx.set(u.sel_n, n)
                ctx.set(u.sel_keep, kk)
                ctx.set(u.sel_start, 1)
                await ctx.tick()
                ctx.set(u.sel_start, 0)
                cyc = 1
                while not ctx.get(u.sel_done):
                    await ctx.tick()
                    cyc += 1
                got = []
                for i in range(n):
                    ctx.set(u.alive_index, i)
                    got.append(bool(ctx.get(u.alive)))
                eng = 0 if kk >= m_alive else topk_engine(imp[:n][alive], kk, p).cycles
                log.append((n, m_alive, kk, cyc, eng))
                assert got == want.tolist(), (seq, ratio)
                assert ctx.get(u.sel_count) == int(want.sum())
                assert cyc == n + 3 + eng, log[-1]
                assert cyc == selection_cycles(cfg, n, imp[:n][alive], kk)
                alive = want
                await ctx.tick()

    sim = Simulator(u)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert any(e for *_, e in log)

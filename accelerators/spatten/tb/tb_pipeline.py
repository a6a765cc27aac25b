"""cocotb bench of spatten_top (the per-query pipeline) against sw_reference.spatten.cascade:
attention output, requant decision and cumulative token importance, bit-exact, with K/V memories that
answer in order after a random latency. Env: SPATTEN_CFG, SPATTEN_CASES, SPATTEN_MAX_N (at most this many
tokens per context, default and at most cfg.topk_max_n: a quick run of a large design)."""
import os
import random

import cocotb
import numpy as np
from beats import request_beat, response_beat
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from accelerators.spatten.config import SpAttenConfig
from lego.units.lanes import pack, unpack
from sw_reference.spatten import fixed
from sw_reference.spatten.cascade import CascadeState, attention_query_int, spatten_layer
from sw_reference.spatten.topk import keep_count

CFG = SpAttenConfig.from_yaml(os.environ["SPATTEN_CFG"])
CASES = int(os.environ.get("SPATTEN_CASES", "20"))
IW = max(1, (CFG.topk_max_n - 1).bit_length())
N_MAX = min(CFG.topk_max_n, int(os.environ.get("SPATTEN_MAX_N") or CFG.topk_max_n))


async def run_request(dut, rng, q, k, v, kv, dq, n=None, head=0):
    """One request; k/v hold every token's row (the memory answers by token index); the pipeline's keys
    are the first n alive tokens (n defaults to all rows)."""
    n = len(k) if n is None else n
    lb = CFG.kv_lsb_bits
    kmsb, klsb = fixed.split_msb_lsb(k, lb)
    vmsb, vlsb = fixed.split_msb_lsb(v, lb)
    while not int(dut.req_ready.value):
        await FallingEdge(dut.clk)
    dut.req_valid.value = 1
    dut.req_n.value, dut.req_kv.value, dut.req_dq.value, dut.req_head.value = n, kv, dq, head
    dut.req_q.value = pack(q, CFG.q_bits)
    await FallingEdge(dut.clk)
    dut.req_valid.value = 0
    kq, vq, cyc, vrows = [], [], 0, []
    while True:
        cyc += 1
        assert cyc < 200000, "pipeline hung"
        if int(dut.out_valid.value):
            return unpack(int(dut.out_data.value), CFG.head_dim, CFG.pv_acc_bits), int(dut.out_requant.value), vrows
        for mem, queue in (("k", kq), ("v", vq)):
            if int(getattr(dut, f"{mem}req_valid").value):   # beats answered in order, 1-3 cycles later
                idxs = request_beat(dut, mem, IW)
                queue.append((max(queue[-1][0] if queue else 0, cyc + rng.randint(1, 3)), idxs))
                if mem == "v":
                    vrows.extend(idxs)
        for mem, rows_msb, rows_lsb, queue in (("k", kmsb, klsb, kq), ("v", vmsb, vlsb, vq)):
            due = bool(queue) and queue[0][0] <= cyc
            getattr(dut, f"{mem}resp_valid").value = int(due)
            if due:
                idxs = queue.pop(0)[1]
                getattr(dut, f"{mem}resp_msb").value = response_beat(rows_msb, idxs, CFG.kv_msb_bits)
                getattr(dut, f"{mem}resp_lsb").value = response_beat(rows_lsb, idxs, lb)
        await FallingEdge(dut.clk)


async def start(dut):
    Clock(dut.clk, 10, unit="ns").start()
    for s in ("req_valid", "req_head", "kresp_valid", "vresp_valid", "imp_clear", "tok_sel_start",
              "tok_sel_reset", "head_clear", "head_sel_start", "head_sel_reset"):
        getattr(dut, s).value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    dut.imp_clear.value = dut.head_clear.value = 1
    await FallingEdge(dut.clk)
    dut.imp_clear.value = dut.head_clear.value = 0
    while int(dut.imp_busy.value) or int(dut.head_busy.value):
        await FallingEdge(dut.clk)


async def select(dut, pre, n, keep):
    """Run one cascade selection (tok_ or head_) and return the alive mask of entries < n."""
    getattr(dut, f"{pre}sel_n").value, getattr(dut, f"{pre}sel_keep").value = n, keep
    getattr(dut, f"{pre}sel_start").value = 1
    await FallingEdge(dut.clk)
    getattr(dut, f"{pre}sel_start").value = 0
    while not int(getattr(dut, f"{pre}sel_done").value):
        await FallingEdge(dut.clk)
    return await read_alive(dut, pre, n)


async def read_alive(dut, pre, n):
    out = []
    for i in range(n):
        getattr(dut, f"{pre}alive_index").value = i
        await FallingEdge(dut.clk)
        out.append(bool(int(getattr(dut, f"{pre}alive").value)))
    return np.array(out)


@cocotb.test()
async def cascade_layers(dut):
    """Three layers of SpAtten through spatten_top, against sw_reference.spatten.cascade.spatten_layer:
    cascade token and head pruning between layers (selections in RTL), local V pruning, progressive
    quantization; per request the output and V rows, per layer the token/head importance and alive sets."""
    await start(dut)
    rng = np.random.default_rng(11)
    prng = random.Random(11)
    heads, lq = min(3, CFG.max_heads), 2
    n = int(rng.integers(N_MAX // 2, N_MAX + 1))
    lim_q, lim_kv = (1 << (CFG.q_bits - 1)) - 1, (1 << (CFG.kv_bits - 1)) - 1
    state = CascadeState(n, heads)
    for layer, (tok_keep, head_keep, v_keep) in enumerate([(1.0, 1.0, 0.5), (0.6, 0.67, 1.0), (0.5, 0.5, 0.3)]):
        q = rng.integers(-lim_q, lim_q + 1, (heads, lq, CFG.head_dim))
        k = rng.integers(-lim_kv, lim_kv + 1, (heads, n, CFG.head_dim)) // (1 + 7 * (layer % 2))
        v = rng.integers(-lim_kv, lim_kv + 1, (heads, n, CFG.head_dim))
        dq = fixed.dequant_scale(1 / lim_q, 4.0 / lim_kv, CFG.head_dim, CFG)
        tok_before, head_before = state.token_alive.copy(), state.head_alive.copy()
        _, results = spatten_layer(q, k, v, state, CFG, token_keep=tok_keep, head_keep=head_keep,
                                   v_keep=v_keep, dq=dq)
        tok = await select(dut, "tok_", n, keep_count(int(tok_before.sum()), tok_keep))
        hd = await select(dut, "head_", heads, keep_count(int(head_before.sum()), head_keep))
        assert tok.tolist() == state.token_alive.tolist(), f"layer {layer}: alive tokens"
        assert hd.tolist() == state.head_alive.tolist(), f"layer {layer}: alive heads"
        keys = np.flatnonzero(tok)
        for h in np.flatnonzero(hd):
            for i in range(lq):
                r = results[(int(h), i)]
                kv = keep_count(len(keys), v_keep)
                out, req, vrows = await run_request(dut, prng, q[h, i], k[h], v[h], kv, dq, n=len(keys), head=int(h))
                assert req == int(r.requant), f"layer {layer} head {h} query {i}: requant"
                assert vrows == keys[r.v_sel].tolist(), f"layer {layer} head {h} query {i}: V rows"
                assert out == r.out.tolist(), f"layer {layer} head {h} query {i}: output"
        for j in range(n):
            dut.imp_rd_index.value = j
            await FallingEdge(dut.clk)
            assert int(dut.imp_rd_value.value) == state.token_importance[j], f"layer {layer}: token imp [{j}]"
        for h in range(heads):
            dut.head_rd_index.value = h
            await FallingEdge(dut.clk)
            assert int(dut.head_rd_value.value) == state.head_importance[h], f"layer {layer}: head imp [{h}]"
    assert not state.token_alive.all() and not state.head_alive.all()


@cocotb.test()
async def pipeline_requests(dut):
    await start(dut)
    rng = np.random.default_rng(7)
    prng = random.Random(7)
    n = int(rng.integers(N_MAX // 2, N_MAX + 1))  # one context, several queries/heads accumulate importance
    importance = np.zeros(n, dtype=np.int64)
    lim_q, lim_kv = (1 << (CFG.q_bits - 1)) - 1, (1 << (CFG.kv_bits - 1)) - 1
    requants = 0
    for c in range(CASES):
        q = rng.integers(-lim_q, lim_q + 1, CFG.head_dim)
        k = rng.integers(-lim_kv, lim_kv + 1, (n, CFG.head_dim))
        if c % 2:
            k = k // 8  # flatter softmax: progressive quantization refetches the LSBs
        v = rng.integers(-lim_kv, lim_kv + 1, (n, CFG.head_dim))
        dq = fixed.dequant_scale(1 / lim_q, float(rng.uniform(0.5, 8.0)) / lim_kv, CFG.head_dim, CFG)
        kv = int(rng.choice([max(1, n // 5), n // 2, n]))
        ref = attention_query_int(q, k, v, CFG, dq, kv / n)
        out, req, vrows = await run_request(dut, prng, q, k, v, kv, dq)
        assert req == int(ref.requant), f"case {c}: requant {req} != {ref.requant}"
        assert vrows == ref.v_sel.tolist(), f"case {c}: V rows fetched"
        assert out == ref.out.tolist(), f"case {c}: attention output"
        importance = np.minimum(importance + ref.probs, (1 << CFG.importance_bits) - 1)
        requants += req
    for j in range(n):
        dut.imp_rd_index.value = j
        await FallingEdge(dut.clk)
        assert int(dut.imp_rd_value.value) == importance[j], f"token importance [{j}]"
    assert requants > 0, "no case exercised progressive quantization"

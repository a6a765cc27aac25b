"""cocotb bench of spatten_top (the per-query pipeline) against sw_reference.spatten.cascade:
attention output, requant decision and cumulative token importance, bit-exact, with K/V memories that
answer in order after a random latency. Env: SPATTEN_REPO, SPATTEN_CFG, SPATTEN_CASES."""
import os
import random
import sys

sys.path.insert(0, os.environ["SPATTEN_REPO"])

import cocotb  # noqa: E402
import numpy as np  # noqa: E402
from cocotb.clock import Clock  # noqa: E402
from cocotb.triggers import FallingEdge  # noqa: E402

from accelerators.spatten.config import SpAttenConfig  # noqa: E402
from sw_reference.spatten import fixed  # noqa: E402
from sw_reference.spatten.cascade import attention_query_int  # noqa: E402

CFG = SpAttenConfig.from_yaml(os.environ["SPATTEN_CFG"])
CASES = int(os.environ.get("SPATTEN_CASES", "20"))


def pack(vals, w):
    return sum((int(v) & ((1 << w) - 1)) << (i * w) for i, v in enumerate(vals))


def unpack(x, n, w):
    out = []
    for i in range(n):
        v = (x >> (i * w)) & ((1 << w) - 1)
        out.append(v - (1 << w) if v >> (w - 1) else v)
    return out


async def run_request(dut, rng, q, k, v, kv, dq):
    n = len(k)
    lb = CFG.kv_lsb_bits
    kmsb, klsb = fixed.split_msb_lsb(k, lb)
    vmsb, vlsb = fixed.split_msb_lsb(v, lb)
    acc = CFG.prob_bits + CFG.kv_bits + CFG.topk_max_n.bit_length() + 1
    while not int(dut.req_ready.value):
        await FallingEdge(dut.clk)
    dut.req_valid.value = 1
    dut.req_n.value, dut.req_kv.value, dut.req_dq.value = n, kv, dq
    dut.req_q.value = pack(q, CFG.q_bits)
    await FallingEdge(dut.clk)
    dut.req_valid.value = 0
    kq, vq, cyc, vrows = [], [], 0, []
    while True:
        cyc += 1
        assert cyc < 200000, "pipeline hung"
        if int(dut.out_valid.value):
            return unpack(int(dut.out_data.value), CFG.head_dim, acc), int(dut.out_requant.value), vrows
        if int(dut.kreq_valid.value):
            due = max([kq[-1][0] if kq else 0, cyc + rng.randint(1, 3)])
            kq.append((due, int(dut.kreq_index.value)))
        if int(dut.vreq_valid.value):
            due = max([vq[-1][0] if vq else 0, cyc + rng.randint(1, 3)])
            vq.append((due, int(dut.vreq_index.value)))
            vrows.append(int(dut.vreq_index.value))
        if kq and kq[0][0] <= cyc:
            j = kq.pop(0)[1]
            dut.kresp_valid.value = 1
            dut.kresp_msb.value = pack(kmsb[j], CFG.kv_msb_bits)
            dut.kresp_lsb.value = pack(klsb[j], lb)
        else:
            dut.kresp_valid.value = 0
        if vq and vq[0][0] <= cyc:
            j = vq.pop(0)[1]
            dut.vresp_valid.value = 1
            dut.vresp_msb.value = pack(vmsb[j], CFG.kv_msb_bits)
            dut.vresp_lsb.value = pack(vlsb[j], lb)
        else:
            dut.vresp_valid.value = 0
        await FallingEdge(dut.clk)


@cocotb.test()
async def pipeline_requests(dut):
    Clock(dut.clk, 10, unit="ns").start()
    for s in ("req_valid", "kresp_valid", "vresp_valid", "imp_clear"):
        getattr(dut, s).value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    dut.imp_clear.value = 1
    await FallingEdge(dut.clk)
    dut.imp_clear.value = 0
    rng = np.random.default_rng(7)
    prng = random.Random(7)
    nmax = CFG.topk_max_n
    n = int(rng.integers(nmax // 2, nmax + 1))  # one context, several queries/heads accumulate importance
    importance = np.zeros(nmax, dtype=np.int64)
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
        importance[:n] = np.minimum(importance[:n] + ref.probs, (1 << CFG.importance_bits) - 1)
        requants += req
    for j in range(n):
        dut.imp_rd_index.value = j
        await FallingEdge(dut.clk)
        assert int(dut.imp_rd_value.value) == importance[j], f"token importance [{j}]"
    assert requants > 0, "no case exercised progressive quantization"

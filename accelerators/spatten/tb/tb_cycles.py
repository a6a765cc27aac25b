"""cocotb bench: spatten_top's cycle counts against the exact model ``accelerators.spatten.rtl_model``.

Replays trace rows back to back (each request presented as soon as req_ready) with K/V memories that
answer in order after a FIXED latency (a request seen in cycle c is answered in cycle c + L). Per
request: outputs, requant decision and V rows bit-exact with attention_query_int (sw_reference), and the
measured cycles (accept cycle = 0, out_valid cycle = the count) == ``request_cycles``; the sequence total
(first accept cycle to last out_valid cycle) == ``replay()['total']``.
Env: SPATTEN_CFG, SPATTEN_MANIFEST (default: next to SPATTEN_CFG),
SPATTEN_TRACE (default accelerators.spatten.model.DEFAULT_TRACE), SPATTEN_TRACE_ROWS ("N": the first N rows, or
"a:b"), SPATTEN_MEM_LATENCY (comma list, each replayed in turn), SPATTEN_SEED,
SPATTEN_CYCLES_COVERAGE (1: also the kv >= n path and pruned rows), SPATTEN_RESULT (a JSON file: what
was measured on the trace rows, per memory latency; written before the checks, so also on a mismatch)."""
import json
import os
from pathlib import Path

import cocotb
import numpy as np
from beats import request_beat, response_beat
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from accelerators.spatten import rtl_model
from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.model import DEFAULT_TRACE, DENSE_TRACE, load_trace
from lego.units.lanes import pack, unpack
from sw_reference.spatten import fixed

CFG = SpAttenConfig.from_yaml(os.environ["SPATTEN_CFG"])
MAN = json.loads(Path(os.environ.get("SPATTEN_MANIFEST", Path(os.environ["SPATTEN_CFG"]).parent
                                      / "manifest.json")).read_text())
QK_LAT, PV_LAT = MAN["datapaths"]["qk"]["latency"], MAN["datapaths"]["pv"]["latency"]
TRACE = Path(os.environ.get("SPATTEN_TRACE") or DEFAULT_TRACE)
ROWS = os.environ.get("SPATTEN_TRACE_ROWS", "4")
LATENCIES = [int(x) for x in os.environ.get("SPATTEN_MEM_LATENCY", "1,3").split(",") if x.strip()]
SEED = int(os.environ.get("SPATTEN_SEED", "1"))
COVERAGE = os.environ.get("SPATTEN_CYCLES_COVERAGE", "1") == "1"
RESULT = os.environ.get("SPATTEN_RESULT")
IW = max(1, (CFG.topk_max_n - 1).bit_length())


def select(rows, spec):
    a, _, b = spec.partition(":")
    return rows[int(a):int(b)] if _ else rows[:int(a)]


async def reset(dut):
    """Every input port of the manifest (but clk) to 0, then rst for two cycles."""
    for p in MAN["ports"]:
        if p["direction"] == "in" and p["name"] != "clk":
            getattr(dut, p["name"]).value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)


async def run_sequence(dut, reqs, lat):
    """Drive reqs (request_data dicts) back to back; returns (accept cycle, out cycle, out, requant,
    V rows) per request. The loop body runs at each falling edge: outputs are this cycle's, inputs
    driven now are sampled at the edge that closes this cycle."""
    lb = CFG.kv_lsb_bits
    res, kq, vq, cyc, cur = [], [], [], 0, None
    while len(res) < len(reqs):
        assert cyc < 200000, "pipeline hung"
        if cur is not None and int(dut.out_valid.value):
            res.append((cur["accept"], cyc, unpack(int(dut.out_data.value), CFG.head_dim, CFG.pv_acc_bits),
                        int(dut.out_requant.value), cur["vrows"]))
            cur = None
        if int(dut.kreq_valid.value):
            kq.append((cyc + lat, request_beat(dut, "k", IW)))
        if int(dut.vreq_valid.value):
            vq.append((cyc + lat, request_beat(dut, "v", IW)))
            cur["vrows"].extend(vq[-1][1])
        dut.req_valid.value = 0
        if cur is None and len(res) < len(reqs) and int(dut.req_ready.value):
            r = reqs[len(res)]
            cur = dict(r, accept=cyc, vrows=[])
            cur["kmsb"], cur["klsb"] = fixed.split_msb_lsb(r["k"], lb)
            cur["vmsb"], cur["vlsb"] = fixed.split_msb_lsb(r["v"], lb)
            dut.req_valid.value = 1
            dut.req_n.value, dut.req_kv.value, dut.req_dq.value = r["n"], r["kv"], r["dq"]
            dut.req_q.value = pack(r["q"], CFG.q_bits)
        for q, valid, msb, lsb, mk, lk in ((kq, dut.kresp_valid, dut.kresp_msb, dut.kresp_lsb, "kmsb", "klsb"),
                                            (vq, dut.vresp_valid, dut.vresp_msb, dut.vresp_lsb, "vmsb", "vlsb")):
            assert not q or q[0][0] >= cyc, "fixed-latency memory fell behind"
            if q and q[0][0] == cyc:
                idxs = q.pop(0)[1]
                valid.value = 1
                msb.value = response_beat(cur[mk], idxs, CFG.kv_msb_bits)
                lsb.value = response_beat(cur[lk], idxs, lb)
            else:
                valid.value = 0
        await FallingEdge(dut.clk)
        cyc += 1
    return res


def record(lat, reqs, refs, res, model):
    """Append what was measured at memory latency ``lat`` to SPATTEN_RESULT (if set)."""
    if not RESULT:
        return
    p = Path(RESULT)
    data = json.loads(p.read_text()) if p.is_file() else {}
    data[str(lat)] = {"cycles": [out_c - acc_c for acc_c, out_c, *_ in res], "total": res[-1][1] - res[0][0],
                      "out": [r[2] for r in res], "ref": [ref.out.tolist() for ref in refs],
                      "requant": [r[3] for r in res], "n": [r["n"] for r in reqs], "kv": [r["kv"] for r in reqs],
                      "model_cycles": model["cycles"], "model_total": model["total"]}
    p.write_text(json.dumps(data))


async def check(dut, rows, lat, label, log=False):
    rng = np.random.default_rng(SEED)
    reqs = [rtl_model.request_data(CFG, row, rng) for row in rows]
    refs = [rtl_model.reference(CFG, r) for r in reqs]
    model = rtl_model.replay(CFG, rows, SEED, lat, QK_LAT, PV_LAT)
    res = await run_sequence(dut, reqs, lat)
    if log:
        record(lat, reqs, refs, res, model)
    for i, (r, ref, (acc_c, out_c, out, req, vrows)) in enumerate(zip(reqs, refs, res)):
        tag = f"{label} L={lat} row {i} (n={r['n']}, kv={r['kv']}, requant={int(ref.requant)})"
        assert req == int(ref.requant), f"{tag}: requant {req}"
        assert vrows == ref.v_sel.tolist(), f"{tag}: V rows fetched"
        assert out == ref.out.tolist(), f"{tag}: attention output"
        want = rtl_model.request_cycles(CFG, r["n"], r["kv"], bool(ref.requant), ref.probs, lat, QK_LAT, PV_LAT)
        assert want == model["cycles"][i]
        dut._log.info(f"{tag}: measured {out_c - acc_c} cycles, model {want}")
        assert out_c - acc_c == want, f"{tag}: measured {out_c - acc_c} cycles, model {want}"
    total = res[-1][1] - res[0][0]
    dut._log.info(f"{label} L={lat}: total measured {total}, model {model['total']}")
    assert total == model["total"], f"{label} L={lat}: total {total} != model {model['total']}"


@cocotb.test()
async def cycles_trace(dut):
    """The configured trace rows at each configured memory latency."""
    Clock(dut.clk, 10, unit="ns").start()
    rows = select(load_trace(TRACE), ROWS)
    for lat in LATENCIES:
        await reset(dut)
        await check(dut, rows, lat, TRACE.name, log=True)


@cocotb.test(skip=not COVERAGE)
async def cycles_coverage(dut):
    """kv >= n (no top-k: the dense trace) and token-pruned rows (n < max_n), vfifo throttling (L > 4)."""
    Clock(dut.clk, 10, unit="ns").start()
    trace = load_trace(DEFAULT_TRACE)
    pruned = list({r.key_fetch: r for r in reversed(trace) if r.key_fetch < r.seq_len}.values())[-4:]
    cases = [(load_trace(DENSE_TRACE)[:2], "dense"), (pruned, "pruned")]
    for lat in (2, 6):
        for rows, label in cases:
            await reset(dut)
            await check(dut, rows, lat, label)

"""Exact cycle model of the generated ``spatten_top`` (accelerators/spatten/units/pipeline.py).

Unlike the paper-level model in accelerators/spatten/model.py (keys_per_cycle, DRAM channels, request overlap),
this one predicts the RTL's cycle counts exactly, for K/V memories that answer in order after a FIXED
latency ``L = mem_latency >= 1`` (a request seen in cycle c is answered in cycle c + L).

Lanes: a K-side *beat* carries K = cfg.keys_per_cycle keys and a V-side beat R = cfg.values_per_cycle rows;
below, B = ceil(n / K) K beats and VB = ceil(kv / R) V beats (K = R = 1: one key / row per cycle).

Measurement: cycle 0 is the cycle in which ``req_valid & req_ready`` are high (its closing clock edge
accepts the request; the FSM is in IDLE); ``request_cycles`` is the index of the cycle in which
``out_valid`` is high (the DONE state). Derivation, straight from the FSMs:
  KSTREAM pass starting in cycle S: K beats in S .. S+B-1 (one per cycle, no back-pressure); beat j
    answered in S+j+L, registered by the KVFetcher (1 cycle), scored by QKArray (``qk_latency``), so the
    last beat reaches the softmax in S+B-1+L+1+Lqk. Softmax: EXP B cycles, DIV recip_bits+1 cycles,
    OUT B cycles (so its latency after the last beat is 2B + recip_bits + 1, it depends on n);
    DECIDE is the cycle after ``out_last``: pass = 3B + L + Lqk + recip_bits + 2 cycles from S to DECIDE.
  Pass 1 starts in cycle 1; on requant DECIDE restarts KSTREAM the next cycle (pass 2, the LSBs).
  IMP: B cycles. kv >= n: VSTREAM follows. Else TKSTART (1 cycle), the top-k engine's done comes
    ``topk_cycles(probs, kv)`` cycles after its start cycle, VSTREAM the cycle after done.
  VSTREAM: V beat i in cycle r_i = max(r_{i-1} + 1, r_{i-4} + L + 1) (r_0 = VSTREAM's first cycle:
    the 4-deep vfifo is written by a request and read by its response); the last response at
    r_{VB-1} + L, VFetcher + PVArray (``pv_latency``) -> pv.out_valid, DONE the cycle after.
Back to back, the next request is accepted in the IDLE cycle right after DONE (``IDLE_GAP`` = 1 cycle
between one request's out_valid cycle and the next one's cycle 0), so a sequence of R requests spans
sum(request_cycles) + (R - 1) * IDLE_GAP cycles from the first accept cycle to the last out_valid cycle.
Not covered: variable or out-of-order memory latency, ``imp_clear`` (the accumulator is busy for
max_n cycles and holds req_ready low), and anything outside spatten_top (DRAM). The cascade selections
between layers: ``selection_cycles``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.model import TraceRow, topk_cycles
from sw_reference.spatten import fixed
from sw_reference.spatten.cascade import attention_query_int
from sw_reference.spatten.topk import keep_count, topk_engine

FETCH_LATENCY = 1   # KVFetcher: one register stage (units/datapath.py)
VFIFO_DEPTH = 4     # V requests in flight (QueryPipeline's vfifo)
IDLE_GAP = 1        # DONE -> IDLE: the next request is accepted one cycle after out_valid


def beats(n: int, lanes: int) -> int:
    return -(-n // lanes)


def softmax_cycles(cfg: SpAttenConfig, n: int) -> int:
    """Softmax cycles from the last beat's cycle to its ``out_last`` cycle: EXP B + DIV + OUT B."""
    return 2 * beats(n, cfg.keys_per_cycle) + cfg.recip_bits + 1


def kstream_pass_cycles(cfg: SpAttenConfig, n: int, mem_latency: int, qk_latency: int) -> int:
    """From a KSTREAM pass's first cycle to its DECIDE cycle."""
    b = beats(n, cfg.keys_per_cycle)
    return (b - 1) + mem_latency + FETCH_LATENCY + qk_latency + softmax_cycles(cfg, n) + 1


def v_request_cycles(first: int, m: int, mem_latency: int) -> list[int]:
    """Cycles of the m V beats: one per cycle while fewer than VFIFO_DEPTH are unanswered."""
    r: list[int] = []
    for i in range(m):
        t = first if i == 0 else r[-1] + 1
        if i >= VFIFO_DEPTH:
            t = max(t, r[i - VFIFO_DEPTH] + mem_latency + 1)
        r.append(t)
    return r


def request_cycles(cfg: SpAttenConfig, n: int, kv: int, requant: bool, probs, mem_latency: int,
                   qk_latency: int, pv_latency: int) -> int:
    """Cycles from the accept cycle (req_valid & req_ready high, cycle 0) to the out_valid cycle.

    n: alive keys (1..max_n); kv: V rows kept (clamped to n, >= 1); requant: the LSB pass ran;
    probs: the final probabilities (only used when kv < n: the top-k engine's data-dependent cycles)."""
    if not 1 <= n <= cfg.topk_max_n:
        raise ValueError(f"n={n} out of 1..{cfg.topk_max_n}")
    if mem_latency < 1:
        raise ValueError(f"mem_latency must be >= 1, got {mem_latency}")
    kv = min(kv, n)
    if kv < 1:
        raise ValueError("kv must be >= 1")
    passes = 2 if (requant and cfg.kv_lsb_bits > 0) else 1
    decide = 0
    for _ in range(passes):                      # KSTREAM starts the cycle after IDLE / DECIDE
        decide += 1 + kstream_pass_cycles(cfg, n, mem_latency, qk_latency)
    imp_last = decide + beats(n, cfg.keys_per_cycle)   # IMP: B cycles after DECIDE
    if kv >= n:
        vstart = imp_last + 1
    else:
        probs = [int(p) for p in probs]
        if len(probs) != n:
            raise ValueError(f"probs has {len(probs)} entries, n={n}")
        tkstart = imp_last + 1
        vstart = tkstart + topk_cycles(probs, kv, cfg) + 1   # done cycle, then VSTREAM
    last_req = v_request_cycles(vstart, beats(kv, cfg.values_per_cycle), mem_latency)[-1]
    pv_out = last_req + mem_latency + FETCH_LATENCY + pv_latency
    return pv_out + 1                            # DONE


def selection_cycles(cfg: SpAttenConfig, n: int, alive_values, keep: int) -> int:
    """A cascade token/head selection (units/prune.py, ``tok_sel_*``/``head_sel_*``): cycles from the edge
    that samples ``sel_start`` to the ``sel_done`` cycle. ``alive_values``: the importance of the alive
    entries < n, in index order. Scan n + 1, DECIDE, DONE; plus the top-k engine when keep < alive."""
    vals = [int(v) for v in alive_values]
    eng = topk_engine(vals, keep, cfg.topk_parallelism).cycles if 1 <= keep < len(vals) else 0
    return n + 3 + eng


@lru_cache(maxsize=16)
def datapath_latencies(cfg: SpAttenConfig) -> tuple[int, int]:
    """(qk_latency, pv_latency): the LP-scheduled latencies lego gives the Q.K and P.V arrays of cfg (what
    the manifest records)."""
    from accelerators.spatten.units.lego_datapath import PVArray, QKArray
    d, n = cfg.head_dim, cfg.topk_max_n
    units = (QKArray(d, cfg.q_bits, cfg.kv_bits, n, cfg.keys_per_cycle),
             PVArray(d, cfg.prob_bits, cfg.kv_bits, cfg.pv_acc_bits, n, cfg.values_per_cycle))
    for u in units:  # built for their latency only: no UnusedElaboratable warnings
        u._MustUse__silence = u.dp._MustUse__silence = True
    return units[0].latency, units[1].latency


def scale_row(cfg: SpAttenConfig, row: TraceRow) -> tuple[int, int]:
    """(n, kv) of the request replaying a trace row on cfg.

    n = key_fetch when the row's seq_len fits the engine (seq_len <= topk_max_n); otherwise the keys
    alive are scaled to the capacity, n = round(topk_max_n * key_fetch / seq_len) (at least 1), which
    keeps the trace's token-pruning ratio. kv = keep_count(n, value_fetch / key_fetch): the row's local
    V-pruning ratio, as attention_query_int applies it."""
    kf = max(1, row.key_fetch)
    if row.seq_len <= cfg.topk_max_n:
        n = min(kf, cfg.topk_max_n)
    else:
        n = int(min(cfg.topk_max_n, max(1, np.floor(cfg.topk_max_n * kf / row.seq_len + 0.5))))
    return n, keep_count(n, min(1.0, row.value_fetch / kf))


def request_data(cfg: SpAttenConfig, row: TraceRow, rng: np.random.Generator) -> dict:
    """Random integer request for a trace row (shared by replay() and tb/tb_cycles.py): q, k, v (full
    kv_bits integers), dq, n, kv. The requant decision is left to the data (dq drawn so both occur)."""
    n, kv = scale_row(cfg, row)
    lim_q, lim_kv = (1 << (cfg.q_bits - 1)) - 1, (1 << (cfg.kv_bits - 1)) - 1
    q = rng.integers(-lim_q, lim_q + 1, cfg.head_dim)
    k = rng.integers(-lim_kv, lim_kv + 1, (n, cfg.head_dim))
    v = rng.integers(-lim_kv, lim_kv + 1, (n, cfg.head_dim))
    dq = fixed.dequant_scale(1 / lim_q, float(rng.uniform(0.25, 4.0)) / lim_kv, cfg.head_dim, cfg)
    return {"q": q, "k": k, "v": v, "dq": int(dq), "n": n, "kv": kv}


def reference(cfg: SpAttenConfig, data: dict):
    """attention_query_int on one request_data() result (requant, probs, v_sel, out)."""
    return attention_query_int(data["q"], data["k"], data["v"], cfg, data["dq"], data["kv"] / data["n"])


def replay(cfg: SpAttenConfig, rows, seed: int, mem_latency: int,
           qk_latency: int | None = None, pv_latency: int | None = None) -> dict:
    """Replay trace rows back to back (each request presented as soon as req_ready). Returns per-request
    n, kv, requant and cycles (request_cycles), ``total`` = sum(cycles) + (R - 1) * IDLE_GAP (the first
    accept cycle to the last out_valid cycle) and ``outputs`` (each request's O, attention_query_int)."""
    if qk_latency is None or pv_latency is None:
        qk_latency, pv_latency = datapath_latencies(cfg)
    rng = np.random.default_rng(seed)
    reqs, outs = [], []
    for row in rows:
        data = request_data(cfg, row, rng)
        ref = reference(cfg, data)
        c = request_cycles(cfg, data["n"], data["kv"], bool(ref.requant), ref.probs, mem_latency,
                           qk_latency, pv_latency)
        reqs.append({"n": data["n"], "kv": data["kv"], "requant": bool(ref.requant), "cycles": c})
        outs.append(ref.out.tolist())
    cycles = [r["cycles"] for r in reqs]
    total = sum(cycles) + max(0, len(cycles) - 1) * IDLE_GAP
    return {"mem_latency": mem_latency, "qk_latency": qk_latency, "pv_latency": pv_latency,
            "requests": reqs, "cycles": cycles, "total": total, "outputs": outs}

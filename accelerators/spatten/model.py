"""SpAtten accelerator-level cycle model: replays the authors' GPT-2 workload traces (``simulate`` -> Report).

One trace row = one request: a query of (iteration, layer, head) against the keys that survived cascade
token pruning. Each request runs through the pipeline stages below, grouped in two pipeline halves that
overlap across consecutive requests (the front of request i+1 runs while the back of request i does;
the K/V buffers hold 2 x 1024 keys at 2048 lines, and the DRAM is shared, so a step also lasts at least
the sum of both halves' DRAM cycles). ``cycles_serial`` is the same with no overlap at all.
  front: K fetch (MSBs) || Q.K  ->  softmax (exp + sum, reciprocal, normalize)  ->  requant decision
         [requant: K LSB fetch || Q.K recompute -> softmax again]
  back:  local-V top-k (quick-select engine, exact cycles of the RTL engine) -> V fetch || P.V
  plus, on rows that mark it, the cascade token-pruning top-k over the context.

DRAM: each K/V row is one burst of ceil(bytes/32) 32-byte transactions on one channel; rows are spread
round-robin over the channels; a channel moves bandwidth/channels bytes per cycle. ``dram_bytes`` is the
K/V payload (trace arithmetic: rows x D x bits / 8, per tensor K and V; K includes the LSBs refetched on
requant); ``dram_bytes_bus`` counts whole transactions.

Dense baseline (``dram_bytes_dense_*``, ``ops_dense``): every head of the model at every (iteration,
layer) of the trace, all L keys and values at 8 (or 32) bits. Cascade head pruning removes a pruned head's
rows from the later layers of a trace, so each (iteration, layer) counts its rows' dense figures scaled
by heads / heads present; ``heads`` (``model_heads``) is the head count of the trace's first layer (no
head is pruned before it; at least the largest head id + 1).

Latencies (cycles) are the authors' behaviour-model figures (bert.cpp): Q.K = 1 + 1 + 9, softmax =
7 (dequantize) + 21 (exp) + 23 (accumulate) + 29 (divide) + 7 (quantize), P.V = 3.

Energy: the project's table (``simulator/energy.py``) at ``cfg.node_nm``: multipliers (``mul_pj``: the
8-bit row by partial products), adders (``add_pj``), SRAM accesses (``sram_access_pj``: the fit through
Horowitz's 8 KB / 32 KB / 1 MB points), HBM2 (``hbm2_byte``: 3.9 pJ/bit, O'Connor et al. MICRO 2017).
Dynamic energy only: no leakage, no clock tree.
"""
from __future__ import annotations

import csv
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from simulator import energy as E
from simulator.report import Report
from sw_reference.spatten.topk import topk_engine

from .config import SpAttenConfig

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_TRACE = DATA / "summary-gpt2-small-wikitext2-per8.csv"
DENSE_TRACE = DATA / "summary-gpt2-small-wikitext2-per8-step1+dedic.csv"

QK_LATENCY = 1 + 1 + 9
SOFTMAX_TO_SUM = 7 + 21 + 23
DIVIDE_LATENCY = 29
QUANTIZE_LATENCY = 7
REQUANT_DECISION_LATENCY = 4      # max-reduction tree over the keys of one cycle + compare
PV_LATENCY = 3
FULL_PRECISION_BITS = 32          # trace bit width -1 = full precision (fp32)
DQ_BITS = 24                      # the softmax's dequantization scale (units/softmax.py: dq)
EXP_BITS = 16                     # exp LUT entries (Q1.15)
SUM_BITS = 32                     # the softmax's running sum of exps
NORM_BITS = 26                    # the normalize multiplier's reciprocal operand (behaviour model)
SOFTMAX_SRAM_BYTES = 8192         # the softmax's LUT / exp buffer, as one 8 KB SRAM
TOPK_BUFFERS = 5                  # top-k engine: input buffer + 4 work buffers of topk_max_n values


@dataclass(frozen=True)
class TraceRow:
    iteration: int
    layer: int
    head: int
    d: int
    seq_len: int
    key_fetch: int
    value_fetch: int
    k_bits: int
    v_bits: int
    q_bits: int
    requant: bool
    requant_bits: int
    accumulate: bool
    topk: int            # cascade token-pruning top-k after this request (-1: none)


def _bits(x: str) -> int:
    v = int(float(x))
    return FULL_PRECISION_BITS if v < 0 else v


def load_trace(path: Path) -> list[TraceRow]:
    """The request rows of a SpAtten trace CSV (the trailing config-name line is skipped); LegoError
    naming ``--trace`` for a file that cannot be read or is not such a CSV."""
    p = Path(path)
    try:
        fh = p.open(newline="")
    except OSError as e:
        raise LegoError(f"--trace: cannot read '{p}' ({e.strerror})") from None
    rows = []
    with fh:
        rd = csv.DictReader(fh)
        need = {"layer_id", "head_id", "embedding_length_D", "sentence_length_L", "key_fetch_num",
                "value_fetch_num", "quant_key_bit", "quant_value_bit"}
        if rd.fieldnames is None or not need <= set(rd.fieldnames):
            raise LegoError(f"--trace: '{p}' is not a SpAtten trace CSV (needs columns {', '.join(sorted(need))})")
        for r in rd:
            if not r.get("layer_id"):
                continue  # trailing config-name line
            try:
                rows.append(TraceRow(
                    iteration=int(r.get("iteration_id") or 0), layer=int(r["layer_id"]), head=int(r["head_id"]),
                    d=int(float(r["embedding_length_D"])), seq_len=int(r["sentence_length_L"]),
                    key_fetch=int(r["key_fetch_num"]), value_fetch=int(r["value_fetch_num"]),
                    k_bits=_bits(r["quant_key_bit"]), v_bits=_bits(r["quant_value_bit"]),
                    q_bits=_bits(r.get("quant_query_bit", "16")),
                    requant=r.get("if_requant") == "True", requant_bits=max(0, int(float(r.get("auto_requant_incre") or 0))),
                    accumulate=r.get("if_accumulate_importance") == "True",
                    topk=int(r["topk"]) if r.get("if_topk") == "True" else -1))
            except (ValueError, KeyError) as e:
                raise LegoError(f"--trace: bad row in '{p}' ({e})") from None
    if not rows:
        raise LegoError(f"--trace: '{p}' has no request rows")
    return rows


def topk_cycles(values, k: int, cfg: SpAttenConfig) -> int:
    """Exact cycles of the RTL top-k engine on these values (start cycle to done cycle)."""
    return topk_engine(values, k, cfg.topk_parallelism).cycles


@lru_cache(maxsize=4096)
def _topk_cycles_random(n: int, k: int, p: int) -> int:
    """Engine cycles on a reproducible random input of length n (the trace has no values)."""
    rng = np.random.default_rng(n * 7919 + k)
    return topk_engine(rng.integers(0, 1 << 16, n), k, p).cycles


def model_heads(rows: list[TraceRow]) -> int:
    """Heads of the model the trace was taken on: those of its first (iteration, layer), which cascade head
    pruning has not touched yet, and at least the largest head id + 1."""
    first = (rows[0].iteration, rows[0].layer)
    return max(len({r.head for r in rows if (r.iteration, r.layer) == first}), max(r.head for r in rows) + 1)


def dense_baseline(rows: list[TraceRow], heads: int | None = None) -> tuple[int, int]:
    """(K/V elements, ops) of the dense model on the trace's (iteration, layer)s: 2*L*D elements and
    4*L*D ops (Q.K and P.V MACs, 2 ops each) per request, for every one of ``heads`` heads (default
    ``model_heads``): a layer whose pruned heads are missing from the trace counts its rows' figures
    times heads / heads present."""
    heads = model_heads(rows) if heads is None else heads
    groups: dict[tuple[int, int], list[TraceRow]] = defaultdict(list)
    for r in rows:
        groups[(r.iteration, r.layer)].append(r)
    elems = 0.0
    for g in groups.values():
        present = len({r.head for r in g})
        elems += sum(2 * r.seq_len * r.d for r in g) * heads / present
    e = int(round(elems))
    return e, 2 * e


class _Dram:
    def __init__(self, cfg: SpAttenConfig):
        self.cfg = cfg
        self.tx_per_channel = np.zeros(cfg.dram_channels, dtype=np.int64)
        self.next_channel = 0
        self.payload: dict[str, float] = {"K": 0.0, "V": 0.0}
        self.bus = 0
        ch_bytes_per_cycle = cfg.dram_bytes_per_cycle / cfg.dram_channels
        self.cycles_per_tx = cfg.dram_transaction_bytes / ch_bytes_per_cycle

    def fetch(self, tensor: str, rows: int, row_bytes: float) -> float:
        """Fetch ``rows`` rows of ``row_bytes`` each; returns the cycles the busiest channel needs."""
        if rows <= 0:
            return 0.0
        c = self.cfg.dram_channels
        tx = math.ceil(row_bytes / self.cfg.dram_transaction_bytes)
        per = np.full(c, rows // c, dtype=np.int64)
        rem = rows % c
        idx = (self.next_channel + np.arange(rem)) % c
        per[idx] += 1
        self.next_channel = (self.next_channel + rem) % c
        self.tx_per_channel += per * tx
        self.payload[tensor] += rows * row_bytes
        self.bus += rows * tx * self.cfg.dram_transaction_bytes
        return float(per.max() * tx * self.cycles_per_tx)


def energy_source() -> str:
    return "; ".join(E.primitive(n).source for n in ("mul8", "add8", "add32", "hbm2_byte")) + \
        "; SRAM: simulator.energy.sram_access_pj (fit through Horowitz's 8 KB / 32 KB / 1 MB points)"


def simulate(cfg: SpAttenConfig | None = None, trace_csv: Path | None = None) -> Report:
    """Replay a trace on ``cfg`` (default: preset ``eighth`` on ``DEFAULT_TRACE``). The Report carries the
    cycles, the K/V DRAM payload per tensor and the energy per component; ``extra`` the dense baselines,
    reductions, GOPS, stage cycles and the rest (see the module docstring)."""
    t0 = time.perf_counter()
    cfg = cfg or SpAttenConfig.preset("eighth")
    trace_csv = Path(trace_csv) if trace_csv is not None else DEFAULT_TRACE
    rows = load_trace(trace_csv)
    dram = _Dram(cfg)
    kpc, vpc, p = cfg.keys_per_cycle, cfg.values_per_cycle, cfg.topk_parallelism
    st = dict(qk=0.0, softmax=0.0, requant=0.0, topk_v=0.0, pv=0.0, topk_token=0.0)
    macs_qk = macs_pv = 0
    softmax_elems = 0
    topk_elem_rounds = 0
    requant_rows = 0
    back_prev = dram_back_prev = 0.0
    overlapped = 0.0
    for r in rows:
        d = r.d
        n, m = r.key_fetch, r.value_fetch
        front = back = dram_front = dram_back = 0.0

        def k_pass(bits: int) -> None:
            nonlocal front, dram_front
            dram_c = dram.fetch("K", n, d * bits / 8)
            dram_front += dram_c
            qk = max(dram_c, math.ceil(n / kpc)) + QK_LATENCY
            sm = SOFTMAX_TO_SUM + DIVIDE_LATENCY + math.ceil(n / kpc) + QUANTIZE_LATENCY
            st["qk"] += qk
            st["softmax"] += sm
            st["requant"] += REQUANT_DECISION_LATENCY
            front += qk + sm + REQUANT_DECISION_LATENCY

        k_pass(r.k_bits)
        macs_qk += n * d
        softmax_elems += n
        if r.requant and r.requant_bits > 0:
            requant_rows += 1
            k_pass(r.requant_bits)
            macs_qk += n * d
            softmax_elems += n
        if 0 < m < n:
            c = _topk_cycles_random(n, m, p)
            st["topk_v"] += c
            back += c
            topk_elem_rounds += c * p
        vb = r.v_bits + (r.requant_bits if (r.requant and cfg.requant_values) else 0)
        dram_c = dram.fetch("V", m, d * vb / 8)
        dram_back += dram_c
        pv = max(dram_c, math.ceil(m / vpc)) + PV_LATENCY
        st["pv"] += pv
        back += pv
        macs_pv += m * d
        if r.topk > 0 and r.topk < r.seq_len:
            c = _topk_cycles_random(r.seq_len, r.topk, p)
            st["topk_token"] += c
            back += c
            topk_elem_rounds += c * p
        overlapped += max(front, back_prev, dram_front + dram_back_prev)
        back_prev, dram_back_prev = back, dram_back
    overlapped += back_prev
    cycles_serial = int(math.ceil(sum(st.values())))
    cycles = int(math.ceil(overlapped))
    seconds = cycles / (cfg.clock_ghz * 1e9)
    heads = model_heads(rows)
    dense_kv_elems, ops_dense = dense_baseline(rows, heads)
    dense_int8, dense_fp32 = dense_kv_elems * 1, dense_kv_elems * 4
    payload = dram.payload["K"] + dram.payload["V"]
    # ---- energy (pJ), simulator/energy.py at cfg.node_nm ---------------------------------------------
    node = cfg.node_nm
    kv_buffer_bytes = cfg.buffer_lines * cfg.qk_multipliers * 12 / 8          # K/V buffer lines of 12-bit words
    topk_bytes = TOPK_BUFFERS * cfg.topk_max_n * cfg.prob_bits / 8
    energy = {
        "dram": payload * E.energy_pj("hbm2_byte", node),
        "qk_mac": macs_qk * (E.mul_pj(cfg.q_bits, cfg.kv_bits, node) + E.add_pj(cfg.score_bits, node)),
        "pv_mac": macs_pv * (E.mul_pj(cfg.prob_bits, cfg.kv_bits, node) + E.add_pj(cfg.pv_acc_bits, node)),
        # written once, read once, every bit fetched from DRAM
        "kv_buffer": payload * 8 * 2 * E.sram_access_pj(kv_buffer_bytes, 1, node),
        # per score: dequantize (score x dq), exp LUT read and exp buffer write (16 bits each), running sum,
        # normalize (exp x reciprocal), quantize
        "softmax": softmax_elems * (E.mul_pj(cfg.score_bits, DQ_BITS, node)
                                    + 2 * E.sram_access_pj(SOFTMAX_SRAM_BYTES, EXP_BITS, node)
                                    + E.add_pj(SUM_BITS, node) + E.mul_pj(EXP_BITS, NORM_BITS, node)
                                    + E.add_pj(EXP_BITS, node)),
        # per element and round: a comparator (an adder's width) and a buffer read + write
        "topk": topk_elem_rounds * (E.add_pj(cfg.prob_bits, node)
                                    + 2 * E.sram_access_pj(topk_bytes, cfg.prob_bits, node)),
        "importance": softmax_elems * E.add_pj(cfg.importance_bits, node),
    }
    energy_pj = float(sum(energy.values()))
    gops = ops_dense / seconds / 1e9
    extra = {
        "config": cfg.name,
        "trace": trace_csv.name,
        "requests": len(rows),
        "model_heads": heads,
        "seconds": seconds,
        "stage_cycles": {k: int(round(v)) for k, v in st.items()},
        "dram_bytes_bus": int(dram.bus),
        "dram_transactions_per_channel": dram.tx_per_channel.tolist(),
        "dram_bytes_dense_int8": int(dense_int8),
        "dram_bytes_dense_fp32": int(dense_fp32),
        "dram_reduction_vs_int8": dense_int8 / payload,
        "dram_reduction_vs_fp32": dense_fp32 / payload,
        "dram_reduction_vs_int8_bus": dense_int8 / dram.bus,
        "requant_requests": requant_rows,
        "ops_dense": int(ops_dense),
        "ops_executed": int(2 * (macs_qk + macs_pv)),
        "gops": gops,
        "cycles_serial": cycles_serial,
        "gops_serial": ops_dense / (cycles_serial / (cfg.clock_ghz * 1e9)) / 1e9,
        "gops_executed": 2 * (macs_qk + macs_pv) / seconds / 1e9,
        "gops_per_watt": ops_dense / (energy_pj * 1e-12) / 1e9,
        "gops_per_watt_no_dram": ops_dense / ((energy_pj - energy["dram"]) * 1e-12) / 1e9,
        "power_w": energy_pj * 1e-12 / seconds,
        "node_nm": node,
        "energy_source": energy_source(),
        "ops_definition": "dense-equivalent attention ops: 4*L*D per request of every head of the model",
    }
    return Report(engine="spatten-model", cycles=cycles,
                  dram_bytes={t: int(round(b)) for t, b in dram.payload.items()}, energy_pj=energy,
                  sim_seconds=time.perf_counter() - t0, extra=extra)

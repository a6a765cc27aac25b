"""SpAtten accelerator-level cycle model: replays the authors' GPT-2 workload traces.

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
K/V payload (trace arithmetic: rows x D x bits / 8); ``dram_bytes_bus`` counts whole transactions.

Latencies (cycles) are the authors' behaviour-model figures (bert.cpp): Q.K = 1 + 1 + 9, softmax =
7 (dequantize) + 21 (exp) + 23 (accumulate) + 29 (divide) + 7 (quantize), P.V = 3.

Energy table (pJ): Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm): 8b mult 0.2, 8b add 0.03,
64-bit SRAM read 10 (8 KB) / 20 (32 KB) / 100 (1 MB); HBM2 3.9 pJ/bit (O'Connor et al., "Fine-grained
DRAM", MICRO 2017). Multiplier energy scales with the product of operand widths, adders linearly,
SRAM per bit as sqrt(capacity) between the quoted points. Dynamic energy only: no leakage, no clock tree.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from accelerators.spatten.config import SpAttenConfig
from sw_reference.spatten.topk import topk_engine

DATA = Path(__file__).resolve().parent.parent / "accelerators" / "spatten" / "data"
DEFAULT_TRACE = DATA / "summary-gpt2-small-wikitext2-per8.csv"
DENSE_TRACE = DATA / "summary-gpt2-small-wikitext2-per8-step1+dedic.csv"

QK_LATENCY = 1 + 1 + 9
SOFTMAX_TO_SUM = 7 + 21 + 23
DIVIDE_LATENCY = 29
QUANTIZE_LATENCY = 7
REQUANT_DECISION_LATENCY = 4      # max-reduction tree over the keys of one cycle + compare
PV_LATENCY = 3
FULL_PRECISION_BITS = 32          # trace bit width -1 = full precision (fp32)

ENERGY_SOURCE = ("Horowitz ISSCC 2014 (45 nm): mult 0.2 pJ @8x8b, add 0.03 pJ @8b, SRAM 64b read "
                 "10/20/100 pJ @8KB/32KB/1MB; HBM2 3.9 pJ/bit (O'Connor et al. MICRO 2017)")
E_MUL8 = 0.2
E_ADD8 = 0.03
E_DRAM_BIT = 3.9


def e_mul(a_bits: int, b_bits: int) -> float:
    return E_MUL8 * a_bits * b_bits / 64.0


def e_add(bits: int) -> float:
    return E_ADD8 * bits / 8.0


def e_sram_bit(capacity_bytes: float) -> float:
    """pJ per bit read/written, sqrt(capacity) through Horowitz's 8 KB / 32 KB / 1 MB points."""
    return 10.0 / 64.0 * math.sqrt(max(capacity_bytes, 8192) / 8192.0)


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
    from lego.errors import LegoError
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


class _Dram:
    def __init__(self, cfg: SpAttenConfig):
        self.cfg = cfg
        self.tx_per_channel = np.zeros(cfg.dram_channels, dtype=np.int64)
        self.next_channel = 0
        self.payload = 0
        self.bus = 0
        ch_bytes_per_cycle = cfg.dram_bytes_per_cycle / cfg.dram_channels
        self.cycles_per_tx = cfg.dram_transaction_bytes / ch_bytes_per_cycle

    def fetch(self, rows: int, row_bytes: float) -> float:
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
        self.payload += rows * row_bytes
        self.bus += rows * tx * self.cfg.dram_transaction_bytes
        return float(per.max() * tx * self.cycles_per_tx)


def simulate(cfg: SpAttenConfig | None = None, trace_csv: Path | None = None) -> dict:
    """Replay a trace on ``cfg``; returns cycles, DRAM bytes (and dense baselines), GOPS and energy."""
    cfg = cfg or SpAttenConfig.preset("eighth")
    trace_csv = Path(trace_csv) if trace_csv is not None else DEFAULT_TRACE
    rows = load_trace(trace_csv)
    dram = _Dram(cfg)
    kpc, vpc, p = cfg.keys_per_cycle, cfg.values_per_cycle, cfg.topk_parallelism
    st = dict(qk=0.0, softmax=0.0, requant=0.0, topk_v=0.0, pv=0.0, topk_token=0.0)
    dense_kv_elems = 0
    ops_dense = 0
    macs_qk = macs_pv = 0
    softmax_elems = 0
    topk_elem_rounds = 0
    requant_rows = 0
    front_prev = back_prev = dram_back_prev = 0.0
    overlapped = 0.0
    for r in rows:
        d = r.d
        dense_kv_elems += 2 * r.seq_len * d
        ops_dense += 4 * r.seq_len * d
        n, m = r.key_fetch, r.value_fetch
        front = back = dram_front = dram_back = 0.0

        def k_pass(bits: int) -> None:
            nonlocal front, dram_front
            dram_c = dram.fetch(n, d * bits / 8)
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
        dram_c = dram.fetch(m, d * vb / 8)
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
    dense_int8 = dense_kv_elems * 1
    dense_fp32 = dense_kv_elems * 4
    # ---- energy (pJ) -------------------------------------------------------------------------------
    acc_bits = cfg.q_bits + cfg.kv_bits + 6
    sram_bit = e_sram_bit(cfg.buffer_lines * cfg.qk_multipliers * 12 / 8)
    topk_sram_bit = e_sram_bit(5 * cfg.topk_max_n * cfg.prob_bits / 8)
    energy = {
        "dram": dram.payload * 8 * E_DRAM_BIT,
        "qk_mac": macs_qk * (e_mul(cfg.q_bits, cfg.kv_bits) + e_add(acc_bits)),
        "pv_mac": macs_pv * (e_mul(cfg.prob_bits, cfg.kv_bits) + e_add(cfg.prob_bits + cfg.kv_bits + 10)),
        "kv_buffer": dram.payload * 8 * 2 * sram_bit,  # written once, read once
        "softmax": softmax_elems * (e_mul(acc_bits, 24) + 16 * 2 * e_sram_bit(8192) + e_add(32)
                                    + e_mul(16, 26) + e_add(16)),
        "topk": topk_elem_rounds * (e_add(cfg.prob_bits) + 2 * cfg.prob_bits * topk_sram_bit),
        "importance": softmax_elems * e_add(cfg.importance_bits),
    }
    energy_pj = float(sum(energy.values()))
    gops = ops_dense / seconds / 1e9
    return {
        "config": cfg.name,
        "trace": trace_csv.name,
        "requests": len(rows),
        "cycles": cycles,
        "seconds": seconds,
        "stage_cycles": {k: int(round(v)) for k, v in st.items()},
        "dram_bytes": int(round(dram.payload)),
        "dram_bytes_bus": int(dram.bus),
        "dram_transactions_per_channel": dram.tx_per_channel.tolist(),
        "dram_bytes_dense_int8": int(dense_int8),
        "dram_bytes_dense_fp32": int(dense_fp32),
        "dram_reduction_vs_int8": dense_int8 / dram.payload,
        "dram_reduction_vs_fp32": dense_fp32 / dram.payload,
        "dram_reduction_vs_int8_bus": dense_int8 / dram.bus,
        "requant_requests": requant_rows,
        "ops_dense": int(ops_dense),
        "ops_executed": int(2 * (macs_qk + macs_pv)),
        "gops": gops,
        "cycles_serial": cycles_serial,
        "gops_serial": ops_dense / (cycles_serial / (cfg.clock_ghz * 1e9)) / 1e9,
        "gops_executed": 2 * (macs_qk + macs_pv) / seconds / 1e9,
        "energy_pj": energy_pj,
        "energy_pj_by_component": energy,
        "gops_per_watt": ops_dense / (energy_pj * 1e-12) / 1e9,
        "gops_per_watt_no_dram": ops_dense / ((energy_pj - energy["dram"]) * 1e-12) / 1e9,
        "power_w": energy_pj * 1e-12 / seconds,
        "energy_source": ENERGY_SOURCE,
        "ops_definition": "dense-equivalent attention ops: 4*L*D per request (Q.K and P.V MACs, 2 ops each)",
    }


def main(argv=None) -> int:
    import argparse
    import json
    ap = argparse.ArgumentParser(description="SpAtten trace cycle model")
    ap.add_argument("--config", help="YAML config (default: preset eighth)")
    ap.add_argument("--preset", default="eighth")
    ap.add_argument("--trace", default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rtl-exact", action="store_true",
                    help="exact spatten_top cycles (accelerators.spatten.rtl_model) for the first --rows rows")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--mem-latency", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    cfg = SpAttenConfig.from_yaml(a.config) if a.config else SpAttenConfig.preset(a.preset)
    if a.rtl_exact:
        from accelerators.spatten.rtl_model import replay
        res = replay(cfg, load_trace(Path(a.trace) if a.trace else DEFAULT_TRACE)[:max(0, a.rows)], a.seed,
                     a.mem_latency)
        if a.json:
            print(json.dumps(res))
        else:
            for i, r in enumerate(res["requests"]):
                print(f"row {i:4d}  n {r['n']:5d}  kv {r['kv']:5d}  requant {int(r['requant'])}  cycles {r['cycles']}")
            print(f"total {res['total']} cycles (mem_latency {a.mem_latency}, qk {res['qk_latency']}, "
                  f"pv {res['pv_latency']})")
        return 0
    res = simulate(cfg, Path(a.trace) if a.trace else None)
    if a.json:
        print(json.dumps(res))
    else:
        for k in ("cycles", "dram_bytes", "dram_bytes_dense_int8", "dram_bytes_dense_fp32",
                  "dram_reduction_vs_int8", "dram_reduction_vs_fp32", "gops", "energy_pj", "gops_per_watt"):
            print(f"{k:28s} {res[k]:.4g}" if isinstance(res[k], float) else f"{k:28s} {res[k]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

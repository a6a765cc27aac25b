"""SpAtten algorithms on top of the bit-accurate numerics: cascade token pruning, cascade head pruning,
local V pruning and progressive quantization, in an integer mode (what the RTL computes) and a float
mode (for accuracy studies).

Integer mode conventions:
- Q is signed q_bits; K and V are signed kv_bits integers (their DRAM copy is split MSB | LSB);
- probabilities are unsigned Q0.prob_bits (``fixed.softmax_fixed``);
- token importance accumulates probabilities (sum over alive heads and queries), head importance
  accumulates |P.V| (sum over queries and dims), both saturating at 2**importance_bits - 1;
- every selection is ``topk.topk_engine`` (k largest, ties to the lower index, original order).
Float mode does the same with float softmax and float scores; K/V are fake-quantized (quantize,
keep MSBs or all bits, dequantize) so quantization error is what the hardware would see.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import fixed
from .topk import keep_count, topk_engine, topk_reference


@dataclass
class HeadResult:
    out: np.ndarray            # [D]: int (Q0.prob_bits * V units) or float
    probs: np.ndarray          # over the alive keys passed in
    requant: bool              # LSBs fetched and scores recomputed
    v_sel: np.ndarray          # indices (into the alive keys) whose V rows were fetched


def attention_query_int(q, k_full, v_full, cfg, dq: int, v_keep_ratio: float = 1.0,
                        progressive: bool = True) -> HeadResult:
    """One query against n alive keys, as the SpAtten pipeline computes it (integer mode)."""
    lsb = cfg.kv_lsb_bits
    k_use = fixed.msb_only(k_full, lsb) if progressive else np.asarray(k_full, dtype=np.int64)
    probs = fixed.softmax_fixed(fixed.dot_scores(q, k_use), dq, cfg)
    requant = False
    if progressive and lsb > 0 and fixed.need_requant(probs, cfg):
        requant = True
        probs = fixed.softmax_fixed(fixed.dot_scores(q, k_full), dq, cfg)
    v_use = v_full if (not progressive or (requant and cfg.requant_values)) else fixed.msb_only(v_full, lsb)
    n = len(probs)
    kv = keep_count(n, v_keep_ratio)
    sel = np.arange(n) if kv == n else topk_engine(probs, kv, cfg.topk_parallelism).indices
    return HeadResult(fixed.pv_product(probs, v_use, sel), probs, requant, sel)


def _fake_quant(x, bits, msb_bits, scale):
    qx, _ = fixed.quantize(x, bits, scale)
    if msb_bits < bits:
        qx = fixed.msb_only(qx, bits - msb_bits)
    return qx * scale


def attention_query_float(q, k, v, cfg, v_keep_ratio: float = 1.0, progressive: bool = True,
                          k_scale: float | None = None, v_scale: float | None = None,
                          quantize: bool = True) -> HeadResult:
    """Float mode: float scores and softmax, fake-quantized K/V (MSBs first, LSBs on low confidence)."""
    d = q.shape[-1]
    if quantize:
        ks = fixed.quant_scale(k, cfg.kv_bits) if k_scale is None else k_scale
        vs = fixed.quant_scale(v, cfg.kv_bits) if v_scale is None else v_scale
        k_full, v_full = _fake_quant(k, cfg.kv_bits, cfg.kv_bits, ks), _fake_quant(v, cfg.kv_bits, cfg.kv_bits, vs)
        k_msb = _fake_quant(k, cfg.kv_bits, cfg.kv_msb_bits, ks) if progressive else k_full
        v_msb = _fake_quant(v, cfg.kv_bits, cfg.kv_msb_bits, vs) if progressive else v_full
    else:
        k_full = k_msb = k
        v_full = v_msb = v
    probs = fixed.softmax_float(k_msb @ q / np.sqrt(d))
    requant = False
    if quantize and progressive and probs.max() < cfg.requant_threshold:
        requant = True
        probs = fixed.softmax_float(k_full @ q / np.sqrt(d))
    v_use = v_full if (requant and cfg.requant_values) else v_msb
    n = len(probs)
    kv = keep_count(n, v_keep_ratio)
    sel = np.arange(n) if kv == n else topk_reference(probs, kv)
    return HeadResult(probs[sel] @ v_use[sel], probs, requant, sel)


@dataclass
class CascadeState:
    """Cumulative importance and what is still alive, carried across layers."""
    n_tokens: int
    n_heads: int
    float_mode: bool = False
    token_importance: np.ndarray = field(init=False)
    head_importance: np.ndarray = field(init=False)
    token_alive: np.ndarray = field(init=False)
    head_alive: np.ndarray = field(init=False)

    def __post_init__(self):
        dt = np.float64 if self.float_mode else np.int64
        self.token_importance = np.zeros(self.n_tokens, dtype=dt)
        self.head_importance = np.zeros(self.n_heads, dtype=dt)
        self.token_alive = np.ones(self.n_tokens, dtype=bool)
        self.head_alive = np.ones(self.n_heads, dtype=bool)


def _select(values, alive, keep_ratio, cfg, float_mode):
    idx = np.flatnonzero(alive)
    k = keep_count(len(idx), keep_ratio)
    if k >= len(idx):
        return alive.copy()
    vals = values[idx]
    sel = topk_reference(vals, k) if float_mode else topk_engine(vals, k, cfg.topk_parallelism).indices
    out = np.zeros_like(alive)
    out[idx[sel]] = True
    return out


def prune_tokens(state: CascadeState, keep_ratio: float, cfg) -> None:
    """Cascade token pruning: keep the top keep_ratio of the alive tokens by cumulative importance."""
    state.token_alive = _select(state.token_importance, state.token_alive, keep_ratio, cfg, state.float_mode)


def prune_heads(state: CascadeState, keep_ratio: float, cfg) -> None:
    state.head_alive = _select(state.head_importance, state.head_alive, keep_ratio, cfg, state.float_mode)


def _sat(x, cfg):
    return np.minimum(x, (1 << cfg.importance_bits) - 1)


def spatten_layer(q, k, v, state: CascadeState, cfg, *, token_keep: float = 1.0, head_keep: float = 1.0,
                  v_keep: float = 1.0, progressive: bool = True, dq: int | None = None,
                  query_pos: np.ndarray | None = None, causal: bool = False, **float_kw):
    """One attention layer with SpAtten pruning. q: [H, Lq, D]; k, v: [H, L, D] (int in integer mode,
    float in float mode). Pruning (tokens, heads) happens before the layer; importance is accumulated
    after it. Returns (out [H, Lq, D] with zeros for pruned heads, per-query HeadResults)."""
    h_n, lq, d = q.shape
    prune_tokens(state, token_keep, cfg)
    prune_heads(state, head_keep, cfg)
    alive = np.flatnonzero(state.token_alive)
    out = np.zeros((h_n, lq, d), dtype=np.float64 if state.float_mode else np.int64)
    results = {}
    tok_acc = np.zeros(state.n_tokens, dtype=out.dtype)
    for h in np.flatnonzero(state.head_alive):
        head_acc = 0
        for i in range(lq):
            keys = alive
            if causal and query_pos is not None:
                keys = alive[alive <= query_pos[i]]
            if len(keys) == 0:
                continue
            if state.float_mode:
                r = attention_query_float(q[h, i], k[h, keys], v[h, keys], cfg, v_keep, progressive, **float_kw)
            else:
                r = attention_query_int(q[h, i], k[h, keys], v[h, keys], cfg, dq, v_keep, progressive)
            out[h, i] = r.out
            results[(int(h), i)] = r
            tok_acc[keys] += r.probs
            head_acc += np.abs(r.out).sum()
        state.head_importance[h] += head_acc
    state.token_importance += tok_acc
    if not state.float_mode:
        state.token_importance = _sat(state.token_importance, cfg)
        state.head_importance = _sat(state.head_importance, cfg)
    return out, results

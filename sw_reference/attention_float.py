"""Float64 references for attention and SpAtten-style pruning.

Layout everywhere: q (B, H, Lq, D); k, v (B, H, Lk, D).
Causal masking is bottom-right aligned: query i may see key j iff
j <= i + (Lk - Lq).  (Lq == Lk: the usual GPT mask; Lq == 1: decode, sees all.)
A query that sees no key (causal with Lq > Lk) gets zero probabilities and a zero output.

SpAtten pieces (HPCA'21, cascade pruning):
  * token importance  s_tok[b, j] += sum_h sum_i p[b, h, i, j]
  * head importance   s_head[b, h] += sum_i sum_d |out[b, h, i, d]|
  * selection         top-k by sw_reference.topk order (larger first, then lower
                      index), returned in ascending index order so the compacted
                      cache keeps token order
  * compaction        gather of the kept K/V rows
  * pruned attention  dense attention over the compacted cache
"""
from __future__ import annotations

import math

import numpy as np

from sw_reference.topk import topk

__all__ = [
    "attention", "attention_probs", "attention_int8", "token_importance",
    "head_importance", "n_keep", "select_tokens", "select_heads", "compact_kv",
    "pruned_attention",
]


def _check_qkv(q, k, v=None):
    q = np.asarray(q)
    k = np.asarray(k)
    if q.ndim != 4:
        raise ValueError(f"q: expected (B, H, Lq, D), got shape {q.shape}")
    if k.ndim != 4 or k.shape[:2] != q.shape[:2] or k.shape[3] != q.shape[3]:
        raise ValueError(f"k: expected (B, H, Lk, D) matching q {q.shape}, got {k.shape}")
    if v is not None:
        v = np.asarray(v)
        if v.shape != k.shape:
            raise ValueError(f"v: expected shape {k.shape}, got {v.shape}")
    return q, k, v


def _mask(lq, lk):
    i = np.arange(lq)[:, None]
    j = np.arange(lk)[None, :]
    return j <= i + (lk - lq)


def _softmax(s):
    """Row softmax; a row with no visible key (all -inf) gets all-zero probabilities."""
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    z = e.sum(axis=-1, keepdims=True)
    return e / np.where(z > 0, z, 1.0)


def attention_probs(q, k, causal=False, scale=None):
    q, k, _ = _check_qkv(q, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    s = np.matmul(q.astype(np.float64), np.swapaxes(k.astype(np.float64), -1, -2)) * scale
    if causal:
        s = np.where(_mask(q.shape[2], k.shape[2]), s, -np.inf)
    return _softmax(s)


def attention(q, k, v, causal=False, scale=None):
    """softmax(q k^T * scale [+ causal mask]) v, in float64."""
    q, k, v = _check_qkv(q, k, v)
    p = attention_probs(q, k, causal, scale)
    return np.matmul(p, v.astype(np.float64))


def attention_int8(q, k, v, q_scale, k_scale, causal=False, scale=None):
    """int8 Q.K^T (exact int32), dequantised by q_scale*k_scale*scale, fp softmax, then P.V."""
    q, k, v = _check_qkv(q, k, v)
    if q.dtype != np.int8:
        raise ValueError(f"q: dtype must be int8, got {q.dtype}")
    if k.dtype != np.int8:
        raise ValueError(f"k: dtype must be int8, got {k.dtype}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    # |q.k| < 2**14 * D: exact in float64, so BLAS can do the integer product
    s = np.matmul(q.astype(np.float64), np.swapaxes(k.astype(np.float64), -1, -2))
    s *= float(q_scale) * float(k_scale) * scale
    if causal:
        s = np.where(_mask(q.shape[2], k.shape[2]), s, -np.inf)
    return np.matmul(_softmax(s), v.astype(np.float64))


def _accumulate(s, prev):
    """``s`` plus the previous layers' cumulative importance ``prev`` (same shape), when given."""
    if prev is not None:
        prev = np.asarray(prev, dtype=np.float64)
        if prev.shape != s.shape:
            raise ValueError(f"prev: expected shape {s.shape}, got {prev.shape}")
        s = s + prev
    return s


def token_importance(q, k, causal=False, scale=None, prev=None):
    """Cumulative token importance (B, Lk): column sums of probabilities over heads and queries."""
    p = attention_probs(q, k, causal, scale)
    s = p.sum(axis=(1, 2))
    return _accumulate(s, prev)


def head_importance(out, prev=None):
    """Cumulative head importance (B, H): sum of |out| over queries and dims."""
    out = np.asarray(out)
    if out.ndim != 4:
        raise ValueError(f"out: expected (B, H, Lq, D), got shape {out.shape}")
    s = np.abs(out.astype(np.float64)).sum(axis=(2, 3))
    return _accumulate(s, prev)


def n_keep(keep, length: int) -> int:
    """Number of kept items: an int count, or a ratio in (0, 1] -> max(1, round(ratio*length))."""
    if isinstance(keep, (int, np.integer)) and not isinstance(keep, bool):
        n = int(keep)
    elif isinstance(keep, float) and 0.0 < keep <= 1.0:
        n = max(1, int(round(keep * length)))
    else:
        raise ValueError(f"keep: must be an int count or a ratio in (0, 1], got {keep!r}")
    if not 1 <= n <= length:
        raise ValueError(f"keep: count {n} outside [1, {length}]")
    return n


def select_tokens(importance, keep):
    """Indices (B, n) of the kept tokens, ascending. importance is cast to float32 first."""
    imp = np.asarray(importance, dtype=np.float32)
    if imp.ndim != 2:
        raise ValueError(f"importance: expected (B, L), got shape {imp.shape}")
    n = n_keep(keep, imp.shape[1])
    _, idx = topk(imp, n, largest=True, sorted=False)
    return idx


def select_heads(importance, keep):
    """Indices (B, n) of the kept heads, ascending (same rule as select_tokens)."""
    return select_tokens(importance, keep)


def compact_kv(k, v, idx):
    """Gather kept rows: k, v (B, H, L, D), idx (B, n) -> (B, H, n, D) each."""
    k = np.asarray(k)
    v = np.asarray(v)
    idx = np.asarray(idx)
    if idx.ndim != 2 or idx.shape[0] != k.shape[0]:
        raise ValueError(f"idx: expected (B, n) with B={k.shape[0]}, got {idx.shape}")
    if idx.min() < 0 or idx.max() >= k.shape[2]:
        raise ValueError("idx: token index out of range")
    g = idx[:, None, :, None]
    kc = np.take_along_axis(k, np.broadcast_to(g, (k.shape[0], k.shape[1], idx.shape[1], 1)), axis=2)
    vc = np.take_along_axis(v, np.broadcast_to(g, (v.shape[0], v.shape[1], idx.shape[1], 1)), axis=2)
    return kc, vc


def pruned_attention(q, k, v, importance, keep, scale=None):
    """SpAtten token-pruned attention: select top tokens, compact K/V, attend. Returns (out, idx)."""
    q, k, v = _check_qkv(q, k, v)
    idx = select_tokens(importance, keep)
    kc, vc = compact_kv(k, v, idx)
    return attention(q, kc, vc, causal=False, scale=scale), idx

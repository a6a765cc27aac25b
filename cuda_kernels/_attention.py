"""Attention API: dense (fp16/bf16, int8 Q.K), decode, SpAtten importance/selection/compaction."""
from __future__ import annotations

import math

import numpy as np

from sw_reference import attention_float as ref

from . import _runtime as rt
from ._select import topk

MOD = "attention.cu"
# prefill kernel per head dim: 1 / 2 = mma.sync kernel with 16 / 32 rows per warp (64- / 128-row
# blocks); "wgmma" = the sm_90a kernel in attention_sm90a.cu (D = 128, fp16/bf16 only).
# Chosen from bench/gpu_kernels.py on the H100 (wgmma: 0.85 vs 0.94 ms at 1x32x4096x128).
FLASH_MT = {64: 1, 128: "wgmma"}
WGMMA_WG = 2  # warpgroups per block of the wgmma kernel (2 or 3)


def _shape4(x, name):
    s = tuple(x.shape)
    if len(s) != 4:
        raise ValueError(f"{name}: expected (B, H, L, D), got shape {s}")
    return s


def _check(q, k, v, head_dims=(64, 128)):
    bq, hq, lq, dq = _shape4(q, "q")
    bk, hk, lk, dk = _shape4(k, "k")
    if (bk, hk, dk) != (bq, hq, dq):
        raise ValueError(f"k: shape {tuple(k.shape)} does not match q {tuple(q.shape)}")
    if v is not None and tuple(v.shape) != tuple(k.shape):
        raise ValueError(f"v: shape {tuple(v.shape)} must equal k {tuple(k.shape)}")
    if rt.gpu_available() and dq not in head_dims:
        raise ValueError(f"q: head dim D={dq} not supported on the GPU path (use {head_dims})")
    if lq < 1 or lk < 1:
        raise ValueError("q: sequence lengths must be >= 1")
    return bq, hq, lq, lk, dq


def _scale(scale, d):
    if scale is None:
        return 1.0 / math.sqrt(d)
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: must be a positive finite float, got {scale!r}")
    return float(scale)


def _fp_dtype(x):
    import torch

    if rt.is_torch(x) and x.dtype in (torch.float16, torch.bfloat16):
        return x.dtype
    return torch.float16


def _tname(dt):
    import torch

    return "bf16" if dt == torch.bfloat16 else "f16"


def _wgmma_ok() -> bool:
    """The sm_90a module needs nvcc (NVRTC through CuPy cannot target sm_90a here) and an sm_90 GPU."""
    if "ok" not in _WGMMA:
        try:
            import torch

            _WGMMA["ok"] = torch.cuda.get_device_capability() == (9, 0) and rt.module("attention_sm90a.cu") is not None
        except Exception as e:  # compile failure: use the mma.sync kernel
            import warnings

            warnings.warn(f"cuda_kernels: wgmma attention unavailable ({type(e).__name__}); using mma.sync")
            _WGMMA["ok"] = False
    return _WGMMA["ok"]


_WGMMA: dict = {}


def _flash(q, k, v, causal, scale, want_lse=False, int8=False):
    import torch

    b, h, lq, d = q.shape
    lk = k.shape[2]
    o = torch.empty((b, h, lq, d), dtype=v.dtype, device=v.device)
    lse = torch.empty((b, h, lq), dtype=torch.float32, device=v.device) if want_lse else None
    mt = FLASH_MT[d]
    if mt == "wgmma" and not int8 and d == 128 and _wgmma_ok():
        nwg = WGMMA_WG
        grid = ((lq + 64 * nwg - 1) // (64 * nwg), b * h)
        smem = 2 * 64 * nwg * 128 + 8 * 64 * 128 + 1024  # Q + 2 stages of K and V + alignment
        rt.launch("attention_sm90a.cu", f"flash_wgmma_{_tname(v.dtype)}_d128_w{nwg}", grid, 128 * nwg,
                  (rt.ptr(q), rt.ptr(k), rt.ptr(v), rt.ptr(o), rt.ptr(lse), rt.i32(lq), rt.i32(lk),
                   rt.f32(scale), rt.i32(int(causal))), smem)
        return o, lse
    if mt == "wgmma" or (int8 and d == 64):
        mt = 2 if d == 128 else 1
    br = 64 * mt
    qkb = d if int8 else 2 * d
    smem = (br + 128) * (qkb + 16) + 128 * (2 * d + 16)
    name = f"flash_fwd_{'i8' if int8 else ''}{_tname(v.dtype)}_d{d}_m{mt}"
    grid = ((lq + br - 1) // br, b * h)
    rt.launch(MOD, name, grid, 128, (rt.ptr(q), rt.ptr(k), rt.ptr(v), rt.ptr(o), rt.ptr(lse),
                                     rt.i32(lq), rt.i32(lk), rt.f32(scale), rt.i32(int(causal))), smem)
    return o, lse


def _decode(q, k, v, scale, want_lse=False):
    import torch

    b, h, _, d = q.shape
    lk = k.shape[2]
    bh = b * h
    nsplit = max(1, min(-(-1056 // bh), -(-lk // 256)))
    chunk = -(-lk // nsplit)
    chunk = -(-chunk // 64) * 64
    nsplit = -(-lk // chunk)
    dev = v.device
    o = torch.empty((b, h, 1, d), dtype=v.dtype, device=dev)
    lse = torch.empty((b, h, 1), dtype=torch.float32, device=dev) if want_lse else None
    one = nsplit == 1
    opart = None if one else torch.empty((bh, nsplit, d), dtype=torch.float32, device=dev)
    mpart = None if one else torch.empty((bh, nsplit), dtype=torch.float32, device=dev)
    lpart = None if one else torch.empty((bh, nsplit), dtype=torch.float32, device=dev)
    tn = _tname(v.dtype)
    rt.launch(MOD, f"decode_part_{tn}_d{d}", (nsplit, bh), 128,
              (rt.ptr(q), rt.ptr(k), rt.ptr(v), rt.ptr(opart), rt.ptr(mpart), rt.ptr(lpart),
               rt.ptr(o), rt.ptr(lse), rt.i32(lk), rt.i32(chunk), rt.f32(scale)))
    if one:
        return o, lse
    rt.launch(MOD, f"decode_combine_{tn}", bh, d,
              (rt.ptr(opart), rt.ptr(mpart), rt.ptr(lpart), rt.ptr(o), rt.ptr(lse),
               rt.i32(nsplit), rt.i32(d)))
    return o, lse


def _fp_inputs(q, k, v):
    dt = _fp_dtype(q)
    return rt.to_dev(q, dt), rt.to_dev(k, dt), rt.to_dev(v, dt)


def attention(q, k, v, causal: bool = False, scale=None):
    """Fused attention forward, (B, H, Lq, D) x (B, H, Lk, D). fp16/bf16 on the GPU (float32
    inputs are cast to fp16); Lq == 1 uses the split-K decode kernel. Causal is bottom-right."""
    _, _, lq, _, d = _check(q, k, v)
    sc = _scale(scale, d)
    if not isinstance(causal, bool):
        raise ValueError(f"causal: must be a bool, got {causal!r}")
    if not rt.gpu_available():
        rt.note_fallback()
        qn = np.asarray(q)
        return ref.attention(qn, k, v, causal, sc).astype(qn.dtype if qn.dtype.kind == "f" else np.float32)
    qd, kd, vd = _fp_inputs(q, k, v)
    o, _ = _decode(qd, kd, vd, sc) if lq == 1 else _flash(qd, kd, vd, causal, sc)
    return rt.like_input(o, q)


def attention_int8(q, k, v, q_scale: float, k_scale: float, causal: bool = False, scale=None):
    """int8 Q.K^T on tensor cores (exact int32), softmax in fp32, P.V in fp16/bf16 (v's dtype)."""
    _, _, _, _, d = _check(q, k, v)
    sc = _scale(scale, d)
    for name, s in (("q_scale", q_scale), ("k_scale", k_scale)):
        if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
            raise ValueError(f"{name}: must be a positive finite float, got {s!r}")
    if str(q.dtype).split(".")[-1] != "int8":
        raise ValueError(f"q: dtype must be int8, got {q.dtype}")
    if str(k.dtype).split(".")[-1] != "int8":
        raise ValueError(f"k: dtype must be int8, got {k.dtype}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.attention_int8(np.asarray(q), np.asarray(k), v, q_scale, k_scale, causal, sc).astype(np.float32)
    import torch

    qd, kd = rt.to_dev(q, torch.int8), rt.to_dev(k, torch.int8)
    vd = rt.to_dev(v, _fp_dtype(v))
    o, _ = _flash(qd, kd, vd, causal, sc * q_scale * k_scale, int8=True)
    return rt.like_input(o, v if rt.is_torch(v) else q)


def token_importance(q, k, causal: bool = False, scale=None, prev=None):
    """SpAtten cumulative token importance (B, Lk), float32 on the GPU."""
    b, h, lq, lk, d = _check(q, k, None)
    sc = _scale(scale, d)
    if prev is not None and tuple(prev.shape) != (b, lk):
        raise ValueError(f"prev: expected shape {(b, lk)}, got {tuple(prev.shape)}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.token_importance(q, k, causal, sc, prev).astype(np.float32)
    import torch

    qd, kd = rt.to_dev(q, _fp_dtype(q)), rt.to_dev(k, _fp_dtype(q))
    _, lse = _decode(qd, kd, kd, sc, True) if lq == 1 else _flash(qd, kd, kd, causal, sc, True)
    pd = None if prev is None else rt.to_dev(prev, torch.float32)
    imp = torch.empty((b, lk), dtype=torch.float32, device=qd.device)
    rt.launch(MOD, f"token_importance_{_tname(qd.dtype)}", ((lk + 127) // 128, b), 128,
              (rt.ptr(qd), rt.ptr(kd), rt.ptr(lse), rt.ptr(pd), rt.ptr(imp), rt.i32(h), rt.i32(lq),
               rt.i32(lk), rt.i32(d), rt.f32(sc), rt.i32(int(causal))))
    return rt.like_input(imp, q)


def head_importance(out, prev=None):
    """SpAtten cumulative head importance (B, H) = prev + sum |out| over queries and dims."""
    b, h, lq, d = _shape4(out, "out")
    if prev is not None and tuple(prev.shape) != (b, h):
        raise ValueError(f"prev: expected shape {(b, h)}, got {tuple(prev.shape)}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.head_importance(out, prev).astype(np.float32)
    import torch

    od = rt.to_dev(out, _fp_dtype(out))
    pd = None if prev is None else rt.to_dev(prev, torch.float32)
    imp = torch.empty((b, h), dtype=torch.float32, device=od.device)
    rt.launch(MOD, f"head_importance_{_tname(od.dtype)}", b * h, 256,
              (rt.ptr(od), rt.ptr(pd), rt.ptr(imp), rt.i32(lq * d)))
    return rt.like_input(imp, out)


def select_tokens(importance, keep):
    """Kept token indices (B, n), ascending; top-n by importance (ties: lower index)."""
    if len(tuple(importance.shape)) != 2:
        raise ValueError(f"importance: expected (B, L), got shape {tuple(importance.shape)}")
    n = ref.n_keep(keep, importance.shape[1])
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.select_tokens(np.asarray(importance, dtype=np.float32), n)
    import torch

    _, idx = topk(rt.to_dev(importance, torch.float32), n, largest=True, sorted=False)
    return rt.like_input(idx, importance)


def compact_kv(k, v, idx):
    """Gather the kept K/V rows: (B, H, L, D) -> (B, H, n, D)."""
    b, h, L, d = _shape4(k, "k")
    if tuple(v.shape) != tuple(k.shape):
        raise ValueError(f"v: shape {tuple(v.shape)} must equal k {tuple(k.shape)}")
    if len(tuple(idx.shape)) != 2 or idx.shape[0] != b:
        raise ValueError(f"idx: expected (B, n) with B={b}, got {tuple(idx.shape)}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.compact_kv(k, v, idx)
    import torch

    kd, vd = rt.to_dev(k), rt.to_dev(v)
    ix = rt.to_dev(idx, torch.int64)
    n = ix.shape[1]
    kc = torch.empty((b, h, n, d), dtype=kd.dtype, device=kd.device)
    vc = torch.empty_like(kc)
    chunks = d * kd.element_size() // 16
    grid = (min(max(1, n * chunks // 256), 1024), b * h)
    rt.launch(MOD, "compact_kv", grid, 256, (rt.ptr(kd), rt.ptr(vd), rt.ptr(ix), rt.ptr(kc), rt.ptr(vc),
                                             rt.i32(h), rt.i32(L), rt.i32(n), rt.i32(chunks)))
    return rt.like_input(kc, k), rt.like_input(vc, v)


def pruned_attention(q, k, v, importance, keep, scale=None):
    """SpAtten token pruning: select top tokens by importance, compact K/V, attend (non-causal).
    Returns (out, idx). For repeated decode steps compact once with compact_kv and call attention."""
    _check(q, k, v)
    if not rt.gpu_available():
        rt.note_fallback()
        out, idx = ref.pruned_attention(q, k, v, importance, keep, scale)
        qn = np.asarray(q)
        return out.astype(qn.dtype if qn.dtype.kind == "f" else np.float32), idx
    idx = select_tokens(importance, keep)
    kc, vc = compact_kv(rt.to_dev(k, _fp_dtype(q)), rt.to_dev(v, _fp_dtype(q)), rt.to_dev(idx))
    out = attention(rt.to_dev(q, _fp_dtype(q)), kc, vc, False, scale)
    return rt.like_input(out, q), rt.like_input(idx, q)

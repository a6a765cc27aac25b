"""Attention golden models: bit-exact fixed point (what the RTL computes) and float.

    S = Q·Kᵀ (int8 × int8 → int32)
    P = softmax_fx(S, MULT) with MULT = softmax_params(sq·sk/√D)    (unsigned, PB = 15 fraction bits)
    O = P·V (int16 × int8 → int32)                                   O_real = O · sv / 2**15

Error of the fixed-point pipeline against the float model: relative L2 ≤ 2 % at the default widths
(tests/sw_reference/test_attention.py measures it).
"""
from __future__ import annotations

import math

import numpy as np

from .attention_float import attention
from .ops import wrap
from .softmax_fx import softmax_fx, softmax_params

PB = 15
SCALES = {"Q": 1 / 32, "K": 1 / 32, "V": 1 / 64}


def attention_mult(D: int, sq: float = SCALES["Q"], sk: float = SCALES["K"]) -> int:
    return softmax_params(sq * sk / math.sqrt(D))


def attention_fx(Q, K, V, mult: int, acc_bits: int = 32):
    S = wrap(np.asarray(Q, np.int64) @ np.asarray(K, np.int64).T, acc_bits)
    P = softmax_fx(S, mult, pb=PB)
    O = wrap(P @ np.asarray(V, np.int64), acc_bits)
    return S, P, O


def attention_float(Qr, Kr, Vr):
    """Float attention on real-valued (L, D) tensors (the (B, H, L, D) model of attention_float.py)."""
    return attention(Qr[None, None], Kr[None, None], Vr[None, None])[0, 0]


def relative_l2(Q, K, V, scales=SCALES) -> float:
    D = Q.shape[1]
    _, _, O = attention_fx(Q, K, V, attention_mult(D, scales["Q"], scales["K"]))
    of = attention_float(Q * scales["Q"], K * scales["K"], V * scales["V"])
    ox = O * scales["V"] / 2 ** PB
    return float(np.linalg.norm(ox - of) / np.linalg.norm(of))

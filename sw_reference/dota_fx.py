"""Bit-exact integer model of DOTA's datapath: what the generated RTL (``lego gen --accelerator dota``)
computes, noise-free, with the photonic cores as a digital twin.

**The crossbar GEMM.** Y = M1 · M2 with M1 [N1 x D] (DAC codes, signed or unsigned ``in_bits``) and M2
[D x N2] (signed ``in_bits`` codes). The reduction runs in chunks of ``n_lambda`` elements (one per WDM
wavelength): chunk q holds d = q*Nl .. q*Nl + Nl - 1 (zero beyond D). A *step* k drives the C cores of a
tile with chunks k*C .. k*C + C - 1 (core c takes chunk k*C + c), so an output takes S = ceil(D / (Nl*C))
steps. Per output (i, j):

    p[k, c] = sum over the chunk k*C + c of m1[i, d] * m2[d, j]           (one core, one step: exact)
    ADC sharing (the C cores of a tile sum their photocurrents):  x[k] = sum_c p[k, c]
      windows of tau steps, w = 0 .. ceil(S / tau) - 1:  v[w] = sum over k in [w*tau, (w+1)*tau) of x[k]
      Y[i, j] = sum_w adc(v[w])
    no ADC sharing (one converter array per core):  v[w, c] = sum over the window of p[k, c]
      Y[i, j] = sum_w sum_c adc(v[w, c])

    adc(v) = clamp(rne(v / 2**adc_shift), -2**(adc_bits-1), 2**(adc_bits-1) - 1)

rne rounds half to even (numpy's round, as the noise model's ADC). With ``adc_shift = 0`` and an ADC
wide enough never to clamp, Y is the exact integer product (``accelerators.dota.noise.crossbar_matmul(...,
noise=False).exact``); with one conversion per output (S <= tau with sharing) and ``alpha_y = alpha_x *
alpha_w * 2**adc_shift``, Y is that function's ``y_codes``. Nothing wraps: the integrator and the
accumulator are as wide as their worst case (``integ_bits``, ``acc_bits``).

**Attention head** (``attention_head_fx``): S = gemm(Q, K^T) (M1 = Q [L x dh], M2 = K^T), P =
softmax_fx(S, mult) with PB = 15 fraction bits (sw_reference.softmax_fx), the DAC codes of P as unsigned
``in_bits`` (P is >= 0): Pc = min(rne(P / 2**(PB - in_bits)), 2**in_bits - 1), then O = gemm(Pc, V) with
M1 unsigned (M1 = Pc [L x L], M2 = V [L x dh]).

**Linear layer** (``linear_fx``): Y = gemm(W, X) with M1 = W [out x in] (weights) and M2 = X [in x tokens]
(activations), and an optional epilogue that makes the next layer's DAC codes (signed ``in_bits``):
``gelu`` (sw_reference.gelu_fx on Y clamped to int16) or ``layernorm`` (sw_reference.layernorm_fx over
each token's features, i.e. each column of Y).
"""
from __future__ import annotations

import numpy as np

from .gelu_fx import gelu_fx
from .layernorm_fx import layernorm_fx
from .softmax_fx import softmax_fx

PB = 15                 # fraction bits of the softmax output
GELU_IN_BITS = 16       # the GELU unit's input width: Y is clamped to it
POSTS = (None, "gelu", "layernorm")


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def bitlen(n: int) -> int:
    """Bits of the unsigned value n (0 for 0)."""
    return int(n).bit_length()


def rne_shift(v, s: int):
    """rne(v / 2**s) for integer arrays: round half to even (s >= 0)."""
    v = np.asarray(v, dtype=np.int64)
    if s < 0:
        raise ValueError(f"rne_shift: shift must be >= 0, got {s}")
    if s == 0:
        return v
    q = v >> s
    r = v - (q << s)                                   # 0 <= r < 2**s
    half = np.int64(1) << (s - 1)
    up = (r > half) | ((r == half) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def sat(v, bits: int):
    """Clamp to signed ``bits``."""
    return np.clip(np.asarray(v, dtype=np.int64), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def adc(v, bits: int, shift: int):
    """The ADC of one conversion: clamp(rne(v / 2**shift)) to signed ``bits``."""
    return sat(rne_shift(v, shift), bits)


def steps(d: int, n_lambda: int, cores: int) -> int:
    """S: steps per output (each step feeds the C cores one chunk of n_lambda elements each)."""
    return cdiv(cdiv(d, n_lambda), cores)


def conversions(d: int, n_lambda: int, cores: int, tau: int, adc_share: bool = True) -> int:
    """ADC conversions per output: ceil(S / tau), times C without ADC sharing."""
    w = cdiv(steps(d, n_lambda, cores), tau)
    return w if adc_share else w * cores


def integ_bits(in_bits: int, n_lambda: int, cores: int, tau: int, adc_share: bool = True) -> int:
    """Width of the analog integral v in the twin (signed): |m1 * m2| <= 2**(2 in_bits - 1) (unsigned m1)."""
    terms = n_lambda * tau * (cores if adc_share else 1)
    return 2 * in_bits + bitlen(terms) + 1


def acc_bits(adc_bits: int, max_conversions: int) -> int:
    """Width of the digital accumulator: the sum of max_conversions signed adc_bits codes."""
    return adc_bits + bitlen(max(max_conversions, 1))


def _windows(m1, m2, n_lambda: int, cores: int, tau: int, adc_share: bool) -> np.ndarray:
    """v: [N1, W, N2] with sharing, [N1, W, C, N2] without (the integrals each conversion sees)."""
    m1 = np.asarray(m1, dtype=np.int64)
    m2 = np.asarray(m2, dtype=np.int64)
    if m1.ndim != 2 or m2.ndim != 2 or m1.shape[1] != m2.shape[0]:
        raise ValueError(f"dota_fx: need M1 [N1 x D] and M2 [D x N2], got {m1.shape} and {m2.shape}")
    n1, d = m1.shape
    n2 = m2.shape[1]
    s = steps(d, n_lambda, cores)
    w = cdiv(s, tau)
    dp = w * tau * cores * n_lambda                    # padded reduction length (zeros contribute 0)
    a = np.zeros((n1, dp), np.int64)
    a[:, :d] = m1
    b = np.zeros((dp, n2), np.int64)
    b[:d] = m2
    a = a.reshape(n1, w, tau, cores, n_lambda)
    b = b.reshape(w, tau, cores, n_lambda, n2)
    if adc_share:
        return np.einsum("iwtcl,wtclj->iwj", a, b)
    return np.einsum("iwtcl,wtclj->iwcj", a, b)


def crossbar_gemm_fx(m1, m2, *, n_lambda: int, cores: int, tau: int, adc_bits: int, adc_shift: int,
                     adc_share: bool = True) -> np.ndarray:
    """Y [N1 x N2] (int64): see the module docstring."""
    v = _windows(m1, m2, n_lambda, cores, tau, adc_share)
    codes = adc(v, adc_bits, adc_shift)
    return codes.sum(axis=tuple(range(1, codes.ndim - 1)))


def auto_adc_shift(m1, m2, *, n_lambda: int, cores: int, tau: int, adc_bits: int, adc_share: bool = True) -> int:
    """The smallest shift at which no conversion of this GEMM clamps (a calibrated ADC gain): the host's
    choice for a job (``rne(max|v| / 2**s)`` within ``2**(adc_bits-1) - 1``)."""
    v = _windows(m1, m2, n_lambda, cores, tau, adc_share)
    lo, hi = int(v.min()), int(v.max())
    top = (1 << (adc_bits - 1)) - 1
    s = 0
    while int(rne_shift(np.array([hi]), s)[0]) > top or int(rne_shift(np.array([lo]), s)[0]) < -top - 1:
        s += 1
    return s


def requant_unsigned(p, pb: int, bits: int) -> np.ndarray:
    """DAC codes of a non-negative fixed-point value with ``pb`` fraction bits: min(rne(p / 2**(pb - bits)),
    2**bits - 1) (unsigned ``bits``)."""
    if pb < bits:
        raise ValueError(f"requant_unsigned: pb={pb} < bits={bits}")
    return np.minimum(rne_shift(p, pb - bits), (1 << bits) - 1)


def attention_head_fx(Q, K, V, *, n_lambda: int, cores: int, tau: int, in_bits: int, adc_bits: int,
                      adc_shift_qk: int, adc_shift_pv: int, mult: int, adc_share: bool = True) -> dict:
    """One head: S = Q.K^T -> P = softmax_fx(S) -> Pc (unsigned DAC codes) -> O = Pc.V; every stage."""
    geo = dict(n_lambda=n_lambda, cores=cores, tau=tau, adc_bits=adc_bits, adc_share=adc_share)
    S = crossbar_gemm_fx(Q, np.asarray(K).T, adc_shift=adc_shift_qk, **geo)
    P = softmax_fx(S, mult, pb=PB)
    Pc = requant_unsigned(P, PB, in_bits)
    O = crossbar_gemm_fx(Pc, V, adc_shift=adc_shift_pv, **geo)
    return {"S": S, "P": P, "Pc": Pc, "O": O}


def linear_fx(W, X, *, n_lambda: int, cores: int, tau: int, in_bits: int, adc_bits: int, adc_shift: int,
              adc_share: bool = True, post: str | None = None, gelu: tuple | None = None,
              ln: dict | None = None) -> dict:
    """Y = W.X (M1 = W [out x in], M2 = X [in x tokens]) and the epilogue's DAC codes Z [out x tokens]:
    ``gelu`` (``gelu=(c, g, mult, shift)``: gelu_fx of clamp(Y, int16) to signed in_bits) or ``layernorm``
    (``ln=dict(gamma, beta, out_shift, frac_bits, eps)``: layernorm_fx over each column of Y, to signed
    in_bits)."""
    if post not in POSTS:
        raise ValueError(f"linear_fx: post must be one of {POSTS}, got {post!r}")
    Y = crossbar_gemm_fx(W, X, n_lambda=n_lambda, cores=cores, tau=tau, adc_bits=adc_bits, adc_shift=adc_shift,
                         adc_share=adc_share)
    out = {"Y": Y}
    if post == "gelu":
        c, g, m, sh = gelu
        out["Z"] = gelu_fx(sat(Y, GELU_IN_BITS), c, g, m, sh, in_bits=GELU_IN_BITS, out_bits=in_bits)
    elif post == "layernorm":
        out["Z"] = layernorm_fx(Y.T, ln["gamma"], ln["beta"], out_shift=ln["out_shift"], frac_bits=ln["frac_bits"],
                                eps=ln["eps"], out_bits=in_bits).T
    return out

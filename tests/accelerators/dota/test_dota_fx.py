"""sw_reference.dota_fx: the integer golden model of the DOTA datapath (hand-computed cases, a scalar
transcription, and its relation to the noise model's noise-free crossbar)."""
import numpy as np
import pytest

from accelerators.dota import load_config
from accelerators.dota.noise import crossbar_matmul, quantize
from sw_reference import dota_fx as fx
from sw_reference.softmax_fx import softmax_fx


def test_rne_and_adc():
    v = np.arange(-40, 41)
    for s in range(0, 5):
        assert (fx.rne_shift(v, s) == np.round(v / 2 ** s).astype(np.int64)).all(), s
    assert fx.adc([100, -100, 5, 6, 7, -6], 4, 1).tolist() == [7, -8, 2, 3, 4, -3]


def test_hand_gemm():
    # Nl = 2, C = 2, tau = 1, D = 6: chunks {0,1} {2,3} {4,5}; S = 2 steps: (chunks 0, 1) and (2, pad)
    m1 = np.array([[1, 2, 3, -4, 5, 6]])
    m2 = np.array([[1], [1], [1], [1], [1], [-1]])
    # step 0: chunk 0 (1+2=3) + chunk 1 (3-4=-1) = 2; step 1: chunk 2 (5-6 = -1)
    y = fx.crossbar_gemm_fx(m1, m2, n_lambda=2, cores=2, tau=1, adc_bits=4, adc_shift=0)
    assert y.tolist() == [[2 - 1]]
    # shift 1: rne(2/2) + rne(-1/2) = 1 + 0 (half to even)
    assert fx.crossbar_gemm_fx(m1, m2, n_lambda=2, cores=2, tau=1, adc_bits=4, adc_shift=1).tolist() == [[1]]
    # tau 2: one window 2 - 1 = 1 -> rne(1/2) = 0
    assert fx.crossbar_gemm_fx(m1, m2, n_lambda=2, cores=2, tau=2, adc_bits=4, adc_shift=1).tolist() == [[0]]
    # no sharing, tau 1: per core: 3, -1 (step 0), -1, 0 (step 1): shift 1 -> 2 + 0 + 0 + 0
    assert fx.crossbar_gemm_fx(m1, m2, n_lambda=2, cores=2, tau=1, adc_bits=4, adc_shift=1,
                               adc_share=False).tolist() == [[2]]
    # clamping: 3-bit ADC, shift 0, a window of 9
    assert fx.crossbar_gemm_fx([[3, 3]], [[1], [2]], n_lambda=2, cores=1, tau=1, adc_bits=3, adc_shift=0).tolist() \
        == [[3]]
    assert fx.conversions(768, 12, 2, 3) == 11 and fx.conversions(64, 12, 2, 3) == 1
    assert fx.conversions(64, 12, 2, 1, adc_share=False) == 6


def _scalar(m1, m2, nl, C, tau, bits, shift, share):
    """A loop transcription of the module docstring."""
    n1, d = len(m1), len(m1[0])
    n2 = len(m2[0])
    S = -(-(-(-d // nl)) // C)
    y = [[0] * n2 for _ in range(n1)]
    for i in range(n1):
        for j in range(n2):
            for w0 in range(0, S, tau):
                acc = [0] * C
                for k in range(w0, min(w0 + tau, S)):
                    for c in range(C):
                        for e in range(nl):
                            dd = (k * C + c) * nl + e
                            if dd < d:
                                acc[c] += int(m1[i][dd]) * int(m2[dd][j])
                vals = [sum(acc)] if share else acc
                for v in vals:
                    q = int(fx.rne_shift(np.array([v]), shift)[0])
                    y[i][j] += max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, q))
    return y


@pytest.mark.parametrize("nl,C,tau,share", [(3, 2, 2, True), (4, 1, 3, True), (2, 3, 1, False), (5, 2, 2, False)])
def test_matches_scalar_transcription(nl, C, tau, share):
    rng = np.random.default_rng(nl * 10 + C)
    m1 = rng.integers(-8, 8, (5, 23))
    m2 = rng.integers(-8, 8, (23, 4))
    for shift in (0, 2, 5):
        got = fx.crossbar_gemm_fx(m1, m2, n_lambda=nl, cores=C, tau=tau, adc_bits=4, adc_shift=shift, adc_share=share)
        assert got.tolist() == _scalar(m1.tolist(), m2.tolist(), nl, C, tau, 4, shift, share)


def test_lossless_adc_is_the_noise_models_exact_product():
    cfg = load_config()
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(7, 40)), rng.normal(size=(40, 9))
    r = crossbar_matmul(x, w, cfg, noise=False)
    wide = fx.integ_bits(4, 12, 2, 3) + 2
    y = fx.crossbar_gemm_fx(r.x_codes, r.w_codes, n_lambda=12, cores=2, tau=3, adc_bits=wide, adc_shift=0)
    assert (y == r.exact).all()


def test_one_conversion_is_the_noise_models_adc():
    """D <= C * Nl * tau: one conversion per output, and the ADC codes equal crossbar_matmul's y_codes at
    the step alpha_x * alpha_w * 2**shift (both round half to even, then clamp). Power-of-two steps keep the
    noise model's float arithmetic exact, so the ties (v / 2**shift = k + 1/2) round the same way."""
    cfg = load_config(bits=8)
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(6, 64)), rng.normal(size=(64, 5))
    xq, ax = quantize(x, 8, 2.0 ** -5)
    wq, aw = quantize(w, 8, 2.0 ** -6)
    ties = 0
    for shift in (3, 7, 9):
        ties += int((xq @ wq % 2 ** shift == 2 ** (shift - 1)).sum())
        r = crossbar_matmul(x, w, cfg, noise=False, alpha_x=ax, alpha_w=aw, alpha_y=ax * aw * 2 ** shift)
        y = fx.crossbar_gemm_fx(xq, wq, n_lambda=12, cores=2, tau=3, adc_bits=8, adc_shift=shift)
        assert (y == r.y_codes).all(), shift
    assert ties > 0                                   # the ties are exercised


def test_auto_shift_is_minimal_and_never_clamps():
    rng = np.random.default_rng(7)
    m1, m2 = rng.integers(-8, 8, (6, 30)), rng.integers(-8, 8, (30, 5))
    geo = dict(n_lambda=4, cores=2, tau=2, adc_bits=4)
    s = fx.auto_adc_shift(m1, m2, **geo)
    v = fx._windows(m1, m2, 4, 2, 2, True)
    assert (np.abs(fx.rne_shift(v, s)) <= 8).all() and ((fx.rne_shift(v, s) >= -8) & (fx.rne_shift(v, s) <= 7)).all()
    assert s == 0 or not ((fx.rne_shift(v, s - 1) >= -8) & (fx.rne_shift(v, s - 1) <= 7)).all()


def test_attention_and_linear_stages():
    rng = np.random.default_rng(11)
    L, dh = 6, 5
    Q, K, V = (rng.integers(-8, 8, (L, dh)) for _ in range(3))
    geo = dict(n_lambda=3, cores=2, tau=1, adc_bits=4)
    r = fx.attention_head_fx(Q, K, V, in_bits=4, adc_shift_qk=2, adc_shift_pv=3, mult=9000, **geo)
    assert (r["S"] == fx.crossbar_gemm_fx(Q, K.T, adc_shift=2, **geo)).all()
    assert (r["P"] == softmax_fx(r["S"], 9000, pb=15)).all()
    assert r["Pc"].min() >= 0 and r["Pc"].max() <= 15
    assert (r["Pc"] == np.minimum(np.round(r["P"] / 2 ** 11), 15)).all()
    assert (r["O"] == fx.crossbar_gemm_fx(r["Pc"], V, adc_shift=3, **geo)).all()
    W, X = rng.integers(-8, 8, (7, 9)), rng.integers(-8, 8, (9, 4))
    out = fx.linear_fx(W, X, in_bits=4, adc_shift=1, post="gelu", gelu=(3, 24, 40000, 22), **geo)
    assert out["Z"].shape == (7, 4) and out["Z"].min() >= -8 and out["Z"].max() <= 7
    ln = dict(gamma=np.full(7, 64), beta=np.zeros(7, np.int64), out_shift=15, frac_bits=10, eps=1)
    z = fx.linear_fx(W, X, in_bits=4, adc_shift=1, post="layernorm", ln=ln, **geo)["Z"]
    assert z.shape == (7, 4) and (np.abs(z.mean(axis=0)) < 2).all()

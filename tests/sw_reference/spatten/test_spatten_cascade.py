"""sw_reference.spatten.cascade: progressive quantization, cascade token/head pruning, float mode."""
import numpy as np
import pytest

from accelerators.spatten.config import SpAttenConfig
from sw_reference.spatten import fixed
from sw_reference.spatten.cascade import CascadeState, attention_query_float, attention_query_int, spatten_layer
from sw_reference.spatten.topk import keep_count

CFG = SpAttenConfig.preset("eighth")


def test_progressive_quantization_requants_flat_rows():
    rng = np.random.default_rng(1)
    q = rng.integers(-2047, 2048, 64)
    k = rng.integers(-8, 9, (100, 64))  # tiny keys -> flat softmax -> low confidence
    v = rng.integers(-511, 512, (100, 64))
    dq = fixed.dequant_scale(1 / 2047, 1 / 511, 64, CFG)
    r = attention_query_int(q, k, v, CFG, dq, 0.2)
    assert r.requant and len(r.v_sel) == 20
    k2 = rng.integers(-511, 512, (100, 64))
    dq2 = fixed.dequant_scale(1 / 2047, 16 / 511, 64, CFG)
    assert not attention_query_int(q, k2, v, CFG, dq2, 0.2).requant


@pytest.mark.parametrize("float_mode", [False, True])
def test_cascade_pruning_is_monotone(float_mode):
    rng = np.random.default_rng(2)
    h, n, d = 4, 40, 64
    st_ = CascadeState(n, h, float_mode=float_mode)
    dq = fixed.dequant_scale(1 / 2047, 4 / 511, d, CFG)
    alive_prev, heads_prev = st_.token_alive.copy(), st_.head_alive.copy()
    for _ in range(3):
        q = rng.integers(-2047, 2048, (h, 2, d))
        k = rng.integers(-511, 512, (h, n, d))
        if float_mode:
            q, k = q / 2047.0, k * 4 / 511.0
        spatten_layer(q, k, k, st_, CFG, token_keep=0.7, head_keep=0.75, v_keep=0.5, dq=dq)
        assert not (st_.token_alive & ~alive_prev).any() and not (st_.head_alive & ~heads_prev).any()
        alive_prev, heads_prev = st_.token_alive.copy(), st_.head_alive.copy()
    assert st_.token_alive.sum() == keep_count(keep_count(keep_count(n, 0.7), 0.7), 0.7)
    assert st_.head_alive.sum() == 2


def test_float_mode_unquantized_is_exact_attention():
    rng = np.random.default_rng(3)
    q, k, v = rng.normal(size=16), rng.normal(size=(30, 16)), rng.normal(size=(30, 16))
    r = attention_query_float(q, k, v, CFG, 1.0, progressive=False, quantize=False)
    s = k @ q / 4
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    assert np.allclose(r.out, p @ v)


def _msb_fake_quant_by_hand(x, bits, msb_bits, scale):
    """Round half away from zero to ``bits`` (saturating), keep the top ``msb_bits`` (floor), rescale."""
    lim = 2 ** (bits - 1) - 1
    qx = np.clip(np.sign(x) * np.floor(np.abs(x) / scale + 0.5), -lim, lim).astype(np.int64)
    lsb = bits - msb_bits
    return ((qx >> lsb) << lsb) * scale


@pytest.mark.parametrize("requant_values", [False, True])
def test_float_mode_confident_rows_use_the_value_msbs_and_keep_the_top_probabilities(requant_values):
    # one key far above the rest: confident (no requant), so V is read as MSBs whatever requant_values says
    rng = np.random.default_rng(11)
    d, n = 16, 12
    q = rng.normal(size=d)
    k = rng.normal(size=(n, d)) * 0.1
    k[5] = q * 3
    v = rng.normal(size=(n, d))
    cfg = CFG.replace(requant_values=requant_values)
    vs = float(np.abs(v).max()) / (2 ** (cfg.kv_bits - 1) - 1)
    r = attention_query_float(q, k, v, cfg, 0.5, progressive=True)
    assert not r.requant and cfg.kv_msb_bits < cfg.kv_bits
    # the 6 most probable keys (ties to the lower index), ascending
    want = sorted(sorted(range(n), key=lambda i: (-r.probs[i], i))[:6])
    assert list(r.v_sel) == want and len(want) == keep_count(n, 0.5)
    v_msb = _msb_fake_quant_by_hand(v, cfg.kv_bits, cfg.kv_msb_bits, vs)
    assert np.allclose(r.out, r.probs[want] @ v_msb[want], rtol=1e-12, atol=1e-12)


def test_int_mode_without_progressive_equals_progressive_on_keys_without_lsbs():
    # keys whose LSBs are 0: the MSB pass already sees the full keys, so both modes give the same probs and out
    rng = np.random.default_rng(4)
    lsb = CFG.kv_lsb_bits
    q = rng.integers(-2047, 2048, 32)
    k = rng.integers(-16, 16, (20, 32)) << lsb
    v = rng.integers(-16, 16, (20, 32)) << lsb
    dq = fixed.dequant_scale(1 / 2047, 16 / 511, 32, CFG)
    a = attention_query_int(q, k, v, CFG, dq, 1.0, progressive=False)
    b = attention_query_int(q, k, v, CFG, dq, 1.0, progressive=True)
    assert not a.requant and np.array_equal(a.probs, b.probs) and np.array_equal(a.out, b.out)
    assert int(a.probs.sum()) > 0


def test_causal_float_layer_against_masked_softmax_by_hand():
    rng = np.random.default_rng(9)
    L, d = 5, 8
    q, k, v = rng.normal(size=(1, L, d)), rng.normal(size=(1, L, d)), rng.normal(size=(1, L, d))
    st_ = CascadeState(L, 1, float_mode=True)
    out, res = spatten_layer(q, k, v, st_, CFG, query_pos=np.arange(L), causal=True, progressive=False,
                             quantize=False)
    imp = np.zeros(L)
    for i in range(L):                                   # query i sees keys 0..i only
        s = k[0, :i + 1] @ q[0, i] / np.sqrt(d)
        p = np.exp(s - s.max())
        p /= p.sum()
        assert np.allclose(out[0, i], p @ v[0, :i + 1], rtol=1e-12, atol=1e-12)
        assert len(res[(0, i)].probs) == i + 1
        imp[:i + 1] += p
    assert np.allclose(st_.token_importance, imp, rtol=1e-12, atol=1e-12)

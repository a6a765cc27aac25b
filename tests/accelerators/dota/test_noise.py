import math

import numpy as np
import pytest

from accelerators.dota import load_config
from accelerators.dota.noise import (NoiseParams, coupling_length_um, crossbar_matmul, predicted_moments, quantize,
                                     wavelengths_um, wdm_error)
from lego.errors import LegoError


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 33, 5), (64, 192, 48)])
def test_noise_off_is_the_exact_quantized_product(bits, shape):
    cfg = load_config(bits=bits)
    n1, d, n2 = shape
    rng = np.random.default_rng(sum(shape) + bits)
    x, w = rng.normal(0, 3, (n1, d)), rng.uniform(-1, 1, (d, n2))
    r = crossbar_matmul(x, w, cfg, noise=False, seed=123)
    # independent reference: LSQ step 2 mean|v| / sqrt(Qp), round-half-even, clamp to the signed range
    qn, qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    ax = max(2 * np.abs(x).mean() / math.sqrt(qp), 1e-4)
    aw = max(2 * np.abs(w).mean() / math.sqrt(qp), 1e-4)
    xq = np.clip(np.rint(np.clip(x / ax, qn, qp)), qn, qp).astype(np.int64)
    wq = np.clip(np.rint(np.clip(w / aw, qn, qp)), qn, qp).astype(np.int64)
    exact = xq @ wq
    assert np.array_equal(r.x_codes, xq) and np.array_equal(r.w_codes, wq)
    assert np.array_equal(r.exact, exact)
    assert np.array_equal(r.analog, exact.astype(float))                # bit-exact, not approximately
    ay = max(2 * np.abs(exact * ax * aw).mean() / math.sqrt(qp), 1e-4)
    yq = np.rint(np.clip(exact * ax * aw / ay, qn, qp)).astype(np.int64)
    assert r.alpha_y == pytest.approx(ay) and np.array_equal(r.y_codes, yq)
    assert np.allclose(r.y, yq * ay)


def test_seeded_and_selectable():
    cfg = load_config()
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(8, 24)), rng.normal(size=(24, 8))
    a, b = crossbar_matmul(x, w, cfg, seed=5), crossbar_matmul(x, w, cfg, seed=5)
    c = crossbar_matmul(x, w, cfg, seed=6)
    assert np.array_equal(a.analog, b.analog) and not np.array_equal(a.analog, c.analog)
    only_wdm = crossbar_matmul(x, w, cfg, noise=("wdm",), seed=1)
    assert np.array_equal(only_wdm.analog, crossbar_matmul(x, w, cfg, noise="wdm", seed=99).analog)  # deterministic
    with pytest.raises(LegoError) as e:
        crossbar_matmul(x, w, cfg, noise=("shot",))
    assert str(e.value) == "noise: unknown source 'shot' (allowed: input, phase, wdm, output)"
    with pytest.raises(LegoError) as e:
        crossbar_matmul(x, w.T, cfg)
    assert str(e.value) == "x, w: need [N1 x D] and [D x N2], got (8, 24) and (8, 24)"
    with pytest.raises(LegoError) as e:
        crossbar_matmul(x, w, cfg, layer="conv")
    assert str(e.value) == "layer: must be one of linear, qk, sv, got 'conv'"


def test_effective_sigmas():
    cfg = load_config()
    assert NoiseParams.from_cli(0.03, 0.05, 2.0) == {"sigma_in": 0.015, "sigma_out": 0.025, "sigma_phase_deg": 1.0}
    lin, att = NoiseParams.from_config(cfg, "linear"), NoiseParams.from_config(cfg, "qk")
    assert (lin.sigma_in, lin.sigma_out, lin.sigma_phase_deg) == (0.015, 0.025, 2.0)
    assert att.sigma_phase_deg == 1.0 and att.n_lambda == 12 and att.wdm_spacing_nm == 0.4


def test_wdm_dispersion():
    lam = wavelengths_um(12, 0.4)                    # even count: the centre is skipped
    assert lam[5] == pytest.approx(1.55 - 0.0004) and lam[6] == pytest.approx(1.55 + 0.0004)
    assert 1.55 not in np.round(lam, 9) and len(lam) == 12
    assert wavelengths_um(5, 1.0) == pytest.approx([1.548, 1.549, 1.55, 1.551, 1.552])
    e = wdm_error(13, 0.4)
    assert e[6] == pytest.approx(0.0, abs=1e-12)   # the 1.55 um carrier splits 50:50
    assert np.all(np.diff(e) > 0) and np.abs(e).max() < 0.01
    # by hand at the outermost channel of 12: lambda = 1.55 - 6 * 0.4 nm
    lc = lambda l: (-5.44 * (l - 1.55) + 3.53) * math.exp(0.1 / (0.185 * (l - 1.55) + 0.15))  # noqa: E731
    assert coupling_length_um(1.5476) == pytest.approx(lc(1.5476))
    assert wdm_error(12, 0.4)[0] == pytest.approx(2 * math.sin(math.pi / 4 * lc(1.55) / lc(1.5476)) ** 2 - 1)
    # the offset the detector adds, in code units: sum_d e_d (x_d^2 - w_d^2) / 2
    cfg = load_config()
    x, w = np.array([[1.0, -2.0, 3.0]]), np.array([[2.0], [1.0], [-1.0]])
    r = crossbar_matmul(x, w, cfg, noise="wdm", alpha_x=1.0, alpha_w=1.0)
    ee = wdm_error(12, 0.4)[:3]
    assert r.analog[0, 0] == pytest.approx(r.exact[0, 0] + (ee @ r.x_codes[0] ** 2 - ee @ r.w_codes[:, 0] ** 2) / 2)


def _samples(x, w, cfg, sources, n, layer="linear"):
    return np.array([crossbar_matmul(x, w, cfg, noise=sources, seed=s, layer=layer).analog[0] for s in range(n)])


@pytest.mark.parametrize("sources,layer", [(("input",), "linear"), (("phase",), "linear"), (("phase",), "qk"),
                                           (("output",), "linear"), (("input", "phase", "wdm", "output"), "linear")])
def test_noise_statistics_match_the_formulas(sources, layer):
    cfg = load_config(bits=8)
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(1, 48)), rng.normal(size=(48, 6))
    n = 1500
    ys = _samples(x, w, cfg, sources, n, layer)
    base = crossbar_matmul(x, w, cfg, noise=False)
    mean, std = predicted_moments(base.x_codes[0], base.w_codes, NoiseParams.from_config(cfg, layer), sources)
    assert np.all(np.abs(ys.mean(0) - mean) < 4.5 * std / math.sqrt(n))
    assert np.allclose(ys.std(0), std, rtol=0.12)


def test_relative_noise_levels():
    cfg = load_config(bits=8)
    x, w = np.full((1, 1), 3.0), np.full((1, 1), -2.0)
    n = 4000
    exact = crossbar_matmul(x, w, cfg, noise=False).exact[0, 0]
    out = _samples(x, w, cfg, ("output",), n)[:, 0] / exact - 1
    assert abs(out.mean()) < 4 * 0.025 / math.sqrt(n) and out.std() == pytest.approx(0.025, rel=0.06)
    inp = _samples(x, w, cfg, ("input",), n)[:, 0] / exact - 1     # (1 + a)(1 + b) - 1
    assert inp.std() == pytest.approx(math.sqrt(2 * 0.015 ** 2 + 0.015 ** 4), rel=0.06)
    ph = _samples(x, w, cfg, ("phase",), n)[:, 0] / exact           # cos(phi), phi ~ N(0, 2 deg)
    s = math.radians(2.0)
    sd_cos = math.sqrt((1 + math.exp(-2 * s * s)) / 2 - math.exp(-s * s))
    assert abs(ph.mean() - math.exp(-s * s / 2)) < 4 * sd_cos / math.sqrt(n) and ph.max() <= 1.0


def test_quantize():
    codes, a = quantize(np.array([-10.0, -0.26, 0.25, 0.75, 10.0]), 4, alpha=0.5)
    assert codes.tolist() == [-8, -1, 0, 2, 7] and a == 0.5           # half to even: 0.5 -> 0, 1.5 -> 2
    u, _ = quantize(np.array([-1.0, 3.0, 100.0]), 4, alpha=1.0, signed=False)
    assert u.tolist() == [0, 3, 15]


def test_given_steps_are_used_as_given():
    # explicit DAC/ADC steps: codes by hand. x codes = x / 1, w codes = w / 0.5; y = (x @ w) real, ADC step 2
    cfg = load_config(bits=8)
    x = np.array([[1.0, -2.0, 3.0], [0.0, 4.0, -1.0]])
    w = np.array([[0.5, -1.0], [1.5, 0.0], [-0.5, 2.0]])
    r = crossbar_matmul(x, w, cfg, noise=False, alpha_x=1.0, alpha_w=0.5, alpha_y=2.0)
    assert r.x_codes.tolist() == [[1, -2, 3], [0, 4, -1]] and r.w_codes.tolist() == [[1, -2], [3, 0], [-1, 4]]
    # x @ w = [[1*0.5 - 2*1.5 - 3*0.5, -1 + 6], [6 + 0.5, -2]] = [[-4, 5], [6.5, -2]]; / 2 -> round half even
    assert r.exact.tolist() == [[-8, 10], [13, -4]]                 # codes: real = codes * 1 * 0.5
    assert r.alpha_y == 2.0 and r.y_codes.tolist() == [[-2, 2], [3, -1]]
    # with noise on and alpha_y left out, the ADC step is the LSQ step of the noise-free product
    rn = crossbar_matmul(x, w, cfg, noise=True, seed=5, alpha_x=1.0, alpha_w=0.5)
    qp = 2 ** (cfg.act_bits - 1) - 1
    assert rn.alpha_y == pytest.approx(max(2 * np.abs(np.array([[-4, 5], [6.5, -2]])).mean() / math.sqrt(qp), 1e-4))

"""Functional (numpy) model of DOTA's photonic dot product with its noise sources (note section 8).

One crossbar GEMM ``y = x @ w`` with x [N1 x D] (operand M1's rows) and w [D x N2]:

1. DAC quantization (LSQ): codes = round(clamp(v / alpha, Qn, Qp)) at ``in_bits`` / ``w_bits``;
   signed Qn = -2^(b-1), Qp = 2^(b-1) - 1; unsigned Qn = 0, Qp = 2^b - 1; alpha defaults to the LSQ
   initialisation 2 * mean|v| / sqrt(Qp), clamped to >= 1e-4. Everything below is in code units.
2. Input (encoding) noise: v <- v + N(0, sigma_in) * |v|, on every element of both operands.
3. Phase drift: each product x[i,d] * w[d,j] is multiplied by cos(N(0, sigma_phi) * pi / 180), sampled
   independently per (row i, output j, element d): the balanced pair sees 2 x y cos(phi).
4. WDM dispersion of the coupler: element d rides wavelength d mod Nl; the coupler's power split
   kappa(lambda) = sin^2(pi/4 * Lc(1.55) / Lc(lambda)) misses 1/2 away from 1.55 um, and the balanced
   detector keeps an offset y += sum_d e_d (x_d^2 - w_d^2) / 2 with e = 2 kappa - 1 (in code units;
   the authors write it as e x^2 / (2r) - e w^2 r / 2 with r = alpha_x / alpha_w in real units).
5. Output (detection) noise: y <- y + N(0, sigma_out) * |y|.
6. ADC quantization of the output at ``act_bits`` with step alpha_y (default: LSQ init from the
   noise-free output).

With every source off the analog output is exactly the integer product of the codes (float64 holds it
exactly), and the ADC codes are its deterministic quantization. The sigmas are 1-sigma values; the
authors' command line takes 2-sigma (``NoiseParams.from_cli`` halves them). Linear layers get
``sigma_phase_linear_deg`` (the authors hard-code 2 deg there), attention gets ``sigma_phase_deg``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from lego.errors import LegoError

from .config import DotaConfig

SOURCES = ("input", "phase", "wdm", "output")
LAYERS = ("linear", "qk", "sv")
CENTER_UM = 1.55
GAP_UM = 0.1                    # coupler gap of the dispersion fit


@dataclass(frozen=True)
class NoiseParams:
    """Effective (1-sigma) noise of one layer kind."""

    sigma_in: float = 0.015
    sigma_out: float = 0.025
    sigma_phase_deg: float = 1.0
    wdm_spacing_nm: float = 0.4
    n_lambda: int = 12

    @classmethod
    def from_config(cls, cfg: DotaConfig, layer: str = "linear") -> "NoiseParams":
        if layer not in LAYERS:
            raise LegoError(f"layer: must be one of {', '.join(LAYERS)}, got {layer!r}")
        phase = cfg.sigma_phase_linear_deg if layer == "linear" else cfg.sigma_phase_deg
        return cls(cfg.sigma_in, cfg.sigma_out, phase, cfg.wdm_spacing_nm, cfg.n_lambda)

    @staticmethod
    def from_cli(input_noise: float = 0.03, output_noise: float = 0.05, phase_deg: float = 2.0) -> dict:
        """The authors' command-line noise values are 2-sigma: halve them (0.03/0.05/2 -> 0.015/0.025/1)."""
        return {"sigma_in": input_noise / 2, "sigma_out": output_noise / 2, "sigma_phase_deg": phase_deg / 2}


# ---- quantization ---------------------------------------------------------------------------------
def qrange(bits: int, signed: bool = True) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def lsq_alpha(v: np.ndarray, bits: int, signed: bool = True) -> float:
    """LSQ step initialisation: 2 * mean|v| / sqrt(Qp), at least 1e-4."""
    _, qp = qrange(bits, signed)
    return max(2 * float(np.mean(np.abs(v))) / math.sqrt(qp), 1e-4)


def quantize(v: np.ndarray, bits: int, alpha: float | None = None, signed: bool = True) -> tuple[np.ndarray, float]:
    """(integer codes, step): codes = round(clamp(v / alpha, Qn, Qp)), round half to even."""
    v = np.asarray(v, dtype=float)
    a = lsq_alpha(v, bits, signed) if alpha is None else float(alpha)
    if not a > 0:
        raise LegoError(f"alpha: must be > 0, got {alpha!r}")
    qn, qp = qrange(bits, signed)
    return np.round(np.clip(v / a, qn, qp)).astype(np.int64), a


# ---- WDM dispersion of the directional coupler ----------------------------------------------------
def wavelengths_um(n_lambda: int, spacing_nm: float) -> np.ndarray:
    """Channel grid around 1.55 um; an even count skips the centre."""
    dl = spacing_nm * 1e-3
    i = np.arange(n_lambda)
    if n_lambda % 2:
        return CENTER_UM + dl * (i - n_lambda // 2)
    half = n_lambda // 2
    return CENTER_UM + dl * np.where(i < half, i - half, i - half + 1)


def coupling_length_um(lam_um: np.ndarray | float) -> np.ndarray:
    """Fitted cross-over length of the 100 nm-gap coupler versus wavelength (um)."""
    x = np.asarray(lam_um, dtype=float) - CENTER_UM
    return (-5.44 * x + 3.53) * np.exp(GAP_UM / (0.185 * x + 0.15))


def wdm_error(n_lambda: int, spacing_nm: float) -> np.ndarray:
    """e = 2 kappa - 1 per channel for a coupler that splits 50:50 at 1.55 um."""
    lam = wavelengths_um(n_lambda, spacing_nm)
    kappa = np.sin(np.pi / 4 * coupling_length_um(CENTER_UM) / coupling_length_um(lam)) ** 2
    return 2 * kappa - 1


# ---- the crossbar ---------------------------------------------------------------------------------
@dataclass
class CrossbarResult:
    x_codes: np.ndarray         # DAC codes of x (int64)
    w_codes: np.ndarray
    alpha_x: float
    alpha_w: float
    exact: np.ndarray           # x_codes @ w_codes (int64): the noise-free dot products
    analog: np.ndarray          # detector output in code units (float64), after every enabled source
    y_codes: np.ndarray         # ADC codes (int64) at act_bits
    alpha_y: float              # ADC step in real units

    @property
    def y(self) -> np.ndarray:
        """The digitised output in real units."""
        return self.y_codes * self.alpha_y


def _sources(noise: bool | Iterable[str] | None) -> frozenset[str]:
    if noise is True:
        return frozenset(SOURCES)
    if noise is None or noise is False:
        return frozenset()
    if isinstance(noise, str):
        noise = (noise,)
    out = frozenset(noise)
    for s in out:
        if s not in SOURCES:
            raise LegoError(f"noise: unknown source {s!r} (allowed: {', '.join(SOURCES)})")
    return out


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise LegoError(f"seed: must be an integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def crossbar_matmul(x: np.ndarray, w: np.ndarray, cfg: DotaConfig, *, layer: str = "linear",
                    noise: bool | Iterable[str] | None = True, seed: int | np.random.Generator = 0,
                    alpha_x: float | None = None, alpha_w: float | None = None, alpha_y: float | None = None,
                    signed_x: bool = True, signed_w: bool = True, signed_y: bool = True,
                    params: NoiseParams | None = None) -> CrossbarResult:
    """x [N1 x D] @ w [D x N2] through DAC, photonic crossbar and ADC, with the ``noise`` sources on.

    ``noise``: True (all of ``SOURCES``), False/None (none), or a subset of ``SOURCES``. ``params``
    overrides the sigmas taken from ``cfg`` for ``layer``. The RNG is ``numpy.random.default_rng(seed)``.
    """
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise LegoError(f"x, w: need [N1 x D] and [D x N2], got {x.shape} and {w.shape}")
    on = _sources(noise)
    p = params or NoiseParams.from_config(cfg, layer)
    rng = _rng(seed)
    xq, ax = quantize(x, cfg.in_bits, alpha_x, signed_x)
    wq, aw = quantize(w, cfg.w_bits, alpha_w, signed_w)
    exact = xq @ wq
    xa, wa = xq.astype(float), wq.astype(float)
    if "input" in on:
        xa = xa + rng.normal(0.0, p.sigma_in, xa.shape) * np.abs(xa)
        wa = wa + rng.normal(0.0, p.sigma_in, wa.shape) * np.abs(wa)
    if "phase" in on:
        s = p.sigma_phase_deg * np.pi / 180
        y = np.empty((x.shape[0], w.shape[1]))
        rows = max(1, int(2 ** 22 // max(1, w.shape[0] * w.shape[1])))    # bound the [rows x D x N2] block
        for r0 in range(0, x.shape[0], rows):
            blk = xa[r0:r0 + rows]
            cos = np.cos(rng.normal(0.0, s, (blk.shape[0], w.shape[0], w.shape[1])))
            y[r0:r0 + rows] = np.einsum("id,dj,idj->ij", blk, wa, cos)
    else:
        y = xa @ wa
    if "wdm" in on:
        e = wdm_error(p.n_lambda, p.wdm_spacing_nm)[np.arange(x.shape[1]) % p.n_lambda]
        y = y + ((xa ** 2) @ e)[:, None] / 2 - (e @ (wa ** 2))[None, :] / 2
    if "output" in on:
        y = y + rng.normal(0.0, p.sigma_out, y.shape) * np.abs(y)
    real = y * ax * aw
    if alpha_y is None:
        alpha_y = lsq_alpha(exact * ax * aw, cfg.act_bits, signed_y)
    yq, ay = quantize(real, cfg.act_bits, alpha_y, signed_y)
    return CrossbarResult(xq, wq, ax, aw, exact, y, yq, ay)


def predicted_moments(x_codes: np.ndarray, w_codes: np.ndarray, params: NoiseParams,
                      sources: Iterable[str] = ("input", "phase", "output")) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the analog output (code units) of one row x [D] . w [D x N2]
    under independent input, phase and output noise. WDM, deterministic, adds its offset (from the
    noise-free codes) to the mean.

    With c1 = E[cos phi] = exp(-s^2/2), c2 = E[cos^2 phi] = (1 + exp(-2 s^2)) / 2 and g = (1 + sigma_in^2)^2:
    E[y] = c1 * sum x w;  Var[y] = sum x^2 w^2 (g c2 - c1^2);  output noise adds sigma_out^2 E[y^2].
    """
    on = _sources(tuple(sources))
    x, w = np.asarray(x_codes, float), np.asarray(w_codes, float)
    s = params.sigma_phase_deg * np.pi / 180 if "phase" in on else 0.0
    c1, c2 = math.exp(-s * s / 2), (1 + math.exp(-2 * s * s)) / 2
    g = (1 + params.sigma_in ** 2) ** 2 if "input" in on else 1.0
    mean = c1 * (x @ w)
    var = (x ** 2) @ (w ** 2) * (g * c2 - c1 * c1)
    if "wdm" in on:
        e = wdm_error(params.n_lambda, params.wdm_spacing_nm)[np.arange(x.shape[0]) % params.n_lambda]
        mean = mean + (e @ x ** 2) / 2 - (e @ w ** 2) / 2
    if "output" in on:
        var = var + params.sigma_out ** 2 * (var + mean ** 2)
    return mean, np.sqrt(var)

"""Layers of a model and how each lowers onto the programmable GEMM design (docs/programmable.md, "Models").

A layer lowers to ``G`` independent GEMMs ``Y_g[M,N] = X_g[M,K] @ W_g[K,N]``:

* gemm / matmul / fc: ``G = 1``;
* bmm: ``G = B`` (one GEMM per batch);
* conv2d (grouped and depthwise included): ``G = groups``, ``M = N·Ho·Wo``, ``K = (C/G)·R·S``,
  ``N = K_out/G``. On a design generated for gemm/bmm through **host im2col**: the host writes the
  expanded input matrix (``im2col``) into DRAM, so the DRAM traffic is that of the expanded matrix. On a
  design generated for conv2d/dwconv2d (``prog.im2col``) the load DMA gathers the windows from the NHWC
  input itself (``lego.prog.conv``: windowed LOADs, columns in ``(r, s, c)`` order, not the order below).

Row ``(n, ho, wo)`` of ``X_g`` holds, in column order ``(c, r, s)``, the input pixels
``x[n, g·C/G + c, ho·sh - pt + r·dh, wo·sw - pl + s·dw]`` (zero outside the image; ``(dh, dw)`` the dilation, 1
for a plain conv: the R x S taps span an effective window of ``(R-1)·dh + 1`` x ``(S-1)·dw + 1`` pixels);
``W_g[(c, r, s), k] = w[g·K_out/G + k, c, r, s]``; output channel ``g·K_out/G + k`` of pixel ``(n, ho, wo)`` is
``Y_g[(n, ho, wo), k]``. On a conv design a dilated layer takes the window generator too (its WIN_DH / WIN_DW
registers); this host path where ``--im2col host`` or ``auto`` says so, and on gemm designs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import LegoError


@dataclass(frozen=True)
class LayerSpec:
    """One layer: ``op`` a key of LOWER, ``dims`` its sizes (gemm: M N K; bmm: B M N K; conv2d: N C H W
    (input) K R S), conv ``stride`` (sh, sw), ``pads`` (top, left, bottom, right), ``groups``, ``dilation``
    (dh, dw: tap r of a window reads input row ``ho·sh - pt + r·dh``)."""

    name: str
    op: str
    dims: dict = field(default_factory=dict)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Lowered:
    G: int
    M: int
    N: int
    K: int

    @property
    def macs(self) -> int:
        return self.G * self.M * self.N * self.K

    @property
    def dims(self) -> dict[str, int]:
        return {"M": self.M, "N": self.N, "K": self.K}


def dilated(spec: LayerSpec) -> bool:
    return tuple(spec.dilation) != (1, 1)


def effective_kernel(spec: LayerSpec) -> tuple[int, int]:
    """The input pixels a window spans, per axis: ``(R - 1)·dh + 1``, ``(S - 1)·dw + 1``."""
    (dh, dw), d = spec.dilation, spec.dims
    return (d["R"] - 1) * dh + 1, (d["S"] - 1) * dw + 1


def conv_out(spec: LayerSpec) -> tuple[int, int]:
    d, (sh, sw), (pt, pl, pb, pr) = spec.dims, spec.stride, spec.pads
    re, se = effective_kernel(spec)
    return (d["H"] + pt + pb - re) // sh + 1, (d["W"] + pl + pr - se) // sw + 1


def _gemm(s: LayerSpec) -> Lowered:
    return Lowered(1, s.dims["M"], s.dims["N"], s.dims["K"])


def _bmm(s: LayerSpec) -> Lowered:
    return Lowered(s.dims["B"], s.dims["M"], s.dims["N"], s.dims["K"])


def _conv(s: LayerSpec) -> Lowered:
    d, g = s.dims, s.groups
    ho, wo = conv_out(s)
    return Lowered(g, d["N"] * ho * wo, d["K"] // g, d["C"] // g * d["R"] * d["S"])


LOWER = {"gemm": _gemm, "matmul": _gemm, "fc": _gemm, "bmm": _bmm, "conv2d": _conv, "dwconv2d": _conv}
KEYS = {"gemm": ("M", "N", "K"), "matmul": ("M", "N", "K"), "fc": ("M", "N", "K"), "bmm": ("B", "M", "N", "K"),
        "conv2d": ("N", "C", "H", "W", "K", "R", "S"), "dwconv2d": ("N", "C", "H", "W", "K", "R", "S")}


def check_spec(s: LayerSpec, field_name: str) -> None:
    """Sizes positive, groups dividing the channels, a window that fits the padded input."""
    where = f"{field_name}: layer '{s.name}'"
    if s.op not in LOWER:
        raise LegoError(f"{where}: op '{s.op}' cannot run on the GEMM design (allowed: {', '.join(LOWER)})")
    for k in KEYS[s.op]:
        v = s.dims.get(k)
        if not isinstance(v, int) or v < 1:
            raise LegoError(f"{where}: {k}={v} must be a positive integer")
    if s.op in ("conv2d", "dwconv2d"):
        if min(s.stride) < 1 or min(s.pads) < 0:
            raise LegoError(f"{where}: stride {list(s.stride)} must be >= 1 and pads {list(s.pads)} >= 0")
        if s.groups < 1 or s.dims["C"] % s.groups or s.dims["K"] % s.groups:
            raise LegoError(f"{where}: groups={s.groups} must divide C={s.dims['C']} and K={s.dims['K']}")
        if len(s.dilation) != 2 or not all(isinstance(v, int) and v >= 1 for v in s.dilation):
            raise LegoError(f"{where}: dilation {list(s.dilation)} must be two integers >= 1")
        if min(conv_out(s)) < 1:
            (pt, pl, pb, pr), (re, se) = s.pads, effective_kernel(s)
            eff = f" (dilation {'x'.join(map(str, s.dilation))}: {re}x{se} input pixels)" if dilated(s) else ""
            raise LegoError(f"{where}: the {s.dims['R']}x{s.dims['S']} window{eff} does not fit the padded "
                            f"{s.dims['H'] + pt + pb}x{s.dims['W'] + pl + pr} input")


def lower(s: LayerSpec) -> Lowered:
    return LOWER[s.op](s)


# ------------------------------------------------------------------------------ the host's side of conv

def im2col(x: np.ndarray, s: LayerSpec) -> np.ndarray:
    """The host's im2col of ``x`` [N, C, H, W] for conv layer ``s``: [G, N·Ho·Wo, (C/G)·R·S]."""
    d, g = s.dims, s.groups
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = s.stride, s.pads, s.dilation
    ho, wo = conv_out(s)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    cols = np.empty((d["N"], d["C"], d["R"], d["S"], ho, wo), dtype=x.dtype)
    for r in range(d["R"]):
        for c in range(d["S"]):
            i, j = r * dh, c * dw
            cols[:, :, r, c] = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
    cg = d["C"] // g
    cols = cols.reshape(d["N"], g, cg * d["R"] * d["S"], ho * wo)          # (n, g, (c, r, s), pixel)
    return cols.transpose(1, 0, 3, 2).reshape(g, d["N"] * ho * wo, cg * d["R"] * d["S"])


def conv_weights(w: np.ndarray, s: LayerSpec) -> np.ndarray:
    """``w`` [K_out, C/G, R, S] -> [G, (C/G)·R·S, K_out/G]."""
    g = s.groups
    kg = w.shape[0] // g
    return w.reshape(g, kg, -1).transpose(0, 2, 1)


def conv_output(y: np.ndarray, s: LayerSpec) -> np.ndarray:
    """``y`` [G, N·Ho·Wo, K_out/G] (the program's Y) -> [N, K_out, Ho, Wo]."""
    ho, wo = conv_out(s)
    g, _, kg = y.shape
    return y.reshape(g, s.dims["N"], ho, wo, kg).transpose(1, 0, 4, 2, 3).reshape(s.dims["N"], g * kg, ho, wo)

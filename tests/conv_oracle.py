"""One direct convolution for the tests: the independent oracle of every conv path (host im2col, the window
generator, dilation, groups). Loops over the output and the kernel taps with index arithmetic on the unpadded
input (zero outside the image); it shares nothing with ``lego.prog.lower``, ``lego.prog.conv`` or
``sw_reference``."""
from __future__ import annotations

import numpy as np


def wrap32(y: np.ndarray) -> np.ndarray:
    """int64 -> the int32 two's-complement wrap of an accumulator."""
    return ((y + (1 << 31)) % (1 << 32)) - (1 << 31)


def direct_conv(x, w, stride=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1), groups: int = 1) -> np.ndarray:
    """x [N, C, H, W], w [K, C/groups, R, S]; stride (sh, sw), pads (top, left, bottom, right), dil (dh, dw)
    -> [N, K, Ho, Wo] wrapped to int32: output (i, j) tap (u, v) reads input row i·sh - top + u·dh, column
    j·sw - left + v·dw (zero outside the image); group g's outputs read its C/groups input channels."""
    x, w = np.asarray(x, np.int64), np.asarray(w, np.int64)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    (sh, sw), (pt, pl, pb, pr), (dh, dw) = stride, pads, dil
    ho = (h + pt + pb - (r - 1) * dh - 1) // sh + 1
    wo = (wd + pl + pr - (s - 1) * dw - 1) // sw + 1
    kg = k // groups
    y = np.zeros((n, k, ho, wo), np.int64)
    for o in range(k):
        g = o // kg
        for i in range(ho):
            for j in range(wo):
                for u in range(r):
                    for v in range(s):
                        yy, xx = i * sh - pt + u * dh, j * sw - pl + v * dw
                        if 0 <= yy < h and 0 <= xx < wd:
                            y[:, o, i, j] += x[:, g * cg:(g + 1) * cg, yy, xx] @ w[o, :, u, v]
    return wrap32(y)


def direct_conv_nhwc(x, w, stride=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1)) -> np.ndarray:
    """The same on the programmable designs' layouts: x [N, H, W, C], w [G, R, S, Cg, Kg] -> [N, Ho, Wo, G·Kg]."""
    G, R, S, cg, kg = np.shape(w)
    wk = np.asarray(w).transpose(0, 4, 3, 1, 2).reshape(G * kg, cg, R, S)      # [K, Cg, R, S]
    y = direct_conv(np.asarray(x).transpose(0, 3, 1, 2), wk, stride, pads, dil, G)
    return y.transpose(0, 2, 3, 1)

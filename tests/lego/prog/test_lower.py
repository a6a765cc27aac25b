"""The conv lowering (host im2col + one GEMM per group) against a direct convolution loop written here,
on random data; the lowered GEMM shapes by hand."""
import numpy as np
import pytest

from lego.prog.lower import LayerSpec, conv_output, conv_weights, im2col, lower


def direct_conv(x, w, stride, pad, groups):
    """Plain loops: out[n, k, i, j] = sum over the group's channels and the window, zero padding."""
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    ho, wo = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    out = np.zeros((n, k, ho, wo), np.int64)
    kg = k // groups
    for b in range(n):
        for o in range(k):
            g = o // kg
            for i in range(ho):
                for j in range(wo):
                    acc = 0
                    for ci in range(cg):
                        for u in range(r):
                            for v in range(s):
                                y, z = i * stride - pad + u, j * stride - pad + v
                                if 0 <= y < h and 0 <= z < wd:
                                    acc += int(x[b, g * cg + ci, y, z]) * int(w[o, ci, u, v])
                    out[b, o, i, j] = acc
    return out


CASES = [  # N, C, H, W, K, R, S, stride, pad, groups
    (1, 3, 9, 9, 4, 3, 3, 2, 1, 1),
    (2, 4, 6, 7, 6, 3, 3, 1, 1, 2),
    (1, 5, 5, 5, 5, 3, 3, 1, 0, 5),     # depthwise
    (1, 2, 4, 4, 3, 1, 1, 2, 0, 1),
]


@pytest.mark.parametrize("case", CASES)
def test_im2col_matmul_equals_direct_convolution(case):
    n, c, h, wd, k, r, s, st, p, g = case
    spec = LayerSpec("c", "conv2d", {"N": n, "C": c, "H": h, "W": wd, "K": k, "R": r, "S": s}, (st, st),
                     (p, p, p, p), g)
    rng = np.random.default_rng(sum(case))
    x = rng.integers(-128, 128, (n, c, h, wd))
    w = rng.integers(-128, 128, (k, c // g, r, s))
    X, W = im2col(x, spec), conv_weights(w, spec)
    low = lower(spec)
    assert X.shape == (low.G, low.M, low.K) and W.shape == (low.G, low.K, low.N)
    y = np.stack([X[i] @ W[i] for i in range(g)])
    assert np.array_equal(conv_output(y, spec), direct_conv(x, w, st, p, g))


def test_lowered_shapes_by_hand():
    conv = LayerSpec("c", "conv2d", {"N": 2, "C": 8, "H": 10, "W": 10, "K": 12, "R": 3, "S": 3}, (2, 2),
                     (1, 1, 1, 1), 4)
    # Ho = Wo = (10 + 2 - 3) // 2 + 1 = 5; M = 2*5*5; K = (8/4)*3*3; N = 12/4
    assert (lower(conv).G, lower(conv).M, lower(conv).N, lower(conv).K) == (4, 50, 3, 18)
    bmm = LayerSpec("b", "bmm", {"B": 12, "M": 128, "N": 128, "K": 64})
    assert lower(bmm).macs == 12 * 128 * 128 * 64

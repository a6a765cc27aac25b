"""lego/affine/dataflow.py: presets, tiling of shapes that do not divide the array, legality."""
import itertools

import numpy as np
import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape


@pytest.mark.parametrize("preset", ["os", "ws", "is", "os-bcast"])
@pytest.mark.parametrize("wl,shape", [("gemm", "M=37,N=23,K=19"), ("conv2d", "C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1")])
def test_tiling_executes_every_iteration_exactly_once(wl, shape, preset):
    """Enumerate every (t, s) point of the tiled space-time map: the in-range points hit each iteration of
    the nest exactly once (exact coverage and injectivity, computed here, not by the legality check)."""
    w = builtin_workload(wl, parse_shape(shape, wl))
    df = make_dataflow(w, preset, (4, 8) if wl == "gemm" else (3, 4))
    t = df.time_coords()
    s = np.array(list(itertools.product(*(range(p) for p in df.P))))
    I = (t @ df.AT.T)[:, None, :] + (s @ df.AS.T)[None] + df.bvec
    I = I.reshape(-1, I.shape[-1])
    I = I[np.all((I >= 0) & (I < np.array(w.extents)), axis=1)]
    flat = np.ravel_multi_index(I.T, w.extents)
    assert len(flat) == w.macs and len(np.unique(flat)) == w.macs


def test_tiled_steps_by_hand():
    """GEMM 37x23x19 on 4x8, os: rows i, columns j tiled, k innermost: ceil(37/4)*ceil(23/8)*19 steps."""
    w = builtin_workload("gemm", parse_shape("M=37,N=23,K=19", "gemm"))
    assert make_dataflow(w, "os", (4, 8)).steps == 10 * 3 * 19
    assert make_dataflow(w, "ws", (4, 8)).steps == 5 * 3 * 37          # rows k, columns j, i innermost


def test_conv_preset_and_padding():
    w = builtin_workload("conv2d", parse_shape("H=7,W=7,STRIDE=2,PAD=1", "conv2d"))
    assert w.tensor("X").pad
    assert w.output.shape == (1, 8, 4, 4)       # (7 + 2 - 3) // 2 + 1 = 4

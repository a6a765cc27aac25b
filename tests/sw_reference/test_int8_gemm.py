import numpy as np
import pytest

from sw_reference.int8_gemm import int8_gemm


def test_exact_against_int64():
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (37, 300)).astype(np.int8)
    b = rng.integers(-128, 128, (19, 300)).astype(np.int8)
    assert np.array_equal(int8_gemm(a, b), a.astype(np.int64) @ b.astype(np.int64).T)
    ext = np.full((2, 4096), -128, np.int8)
    assert int8_gemm(ext, ext)[0, 0] == 4096 * 128 * 128


def test_bad_args():
    with pytest.raises(ValueError, match="^a:"):
        int8_gemm(np.zeros((2, 3), np.int16), np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="^b:"):
        int8_gemm(np.zeros((2, 3), np.int8), np.zeros((2, 4), np.int8))

"""cuda_kernels.dota: the GPU crossbar GEMM against sw_reference.dota_fx (the fallback here; the `gpu` case
runs where a CUDA device is; bench/dota_gpu.py is the model-sized cross-check)."""
import numpy as np
import pytest

from sw_reference import dota_fx as fx

CASES = [dict(n_lambda=12, cores=2, tau=3, adc_bits=4, adc_shift=3, adc_share=True),
         dict(n_lambda=5, cores=3, tau=1, adc_bits=8, adc_shift=5, adc_share=False)]


def _data(seed, n1=13, d=70, n2=9, bits=4):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    return rng.integers(lo, hi, (n1, d)), rng.integers(lo, hi, (d, n2))


def test_fallback_is_the_golden_model(monkeypatch):
    monkeypatch.setenv("CUDA_KERNELS_FALLBACK", "1")
    from cuda_kernels import _runtime as rt
    from cuda_kernels import dota
    rt.reset()
    try:
        for i, geo in enumerate(CASES):
            a, b = _data(i)
            with pytest.warns(RuntimeWarning) if i == 0 else _nothing():
                y = dota.crossbar_gemm(a, b, **geo)
            assert (y == fx.crossbar_gemm_fx(a, b, **geo)).all()
        with pytest.raises(ValueError, match="^m1, m2: need"):
            dota.crossbar_gemm(a, b.T, **CASES[0])
    finally:
        rt.reset()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@pytest.mark.gpu
def test_gpu_matches_golden():
    from cuda_kernels import dota
    from cuda_kernels._runtime import gpu_available
    if not gpu_available():
        pytest.skip("no CUDA device")
    for i, geo in enumerate(CASES):
        a, b = _data(i, 97, 800, 131, bits=geo["adc_bits"])
        assert (dota.crossbar_gemm(a, b, **geo) == fx.crossbar_gemm_fx(a, b, **geo)).all()
    q, k = _data(7, 64, 64, 64)
    p = np.abs(q)
    assert (dota.crossbar_gemm(p, k, m1_unsigned=True, **CASES[0])
            == fx.crossbar_gemm_fx(p, k, **CASES[0])).all()

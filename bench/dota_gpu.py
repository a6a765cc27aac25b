"""GPU cross-check of DOTA's quantized datapath (the named hook; needs a CUDA device, CuPy and PyTorch):
cuda_kernels.dota.crossbar_gemm against sw_reference.dota_fx (the RTL's golden model) on every GEMM shape
of DeiT-T/B and BERT-B (one head for Q.K^T and S.V), 4 and 8 bits, DOTA-B's geometry (12 wavelengths,
2 cores, tau 3, ADC sharing) and the crossbar option (tau 1, no sharing), with the host's ADC shift
(dota_fx.auto_adc_shift). Reports exact / not and the times of both.

    python bench/dota_gpu.py   -> table, bench/results/dota_gpu.json
Without a GPU it exits 2 and says the run is owed (nothing is written).
"""
from __future__ import annotations

import sys
import time

import numpy as np
from _common import save, table

from accelerators.dota.workloads import transformer
from sw_reference import dota_fx as fx

GEOS = {"all": dict(n_lambda=12, cores=2, tau=3, adc_share=True), "crossbar": dict(n_lambda=12, cores=2, tau=1,
                                                                                  adc_share=False)}


def main() -> int:
    from cuda_kernels import dota
    from cuda_kernels._runtime import gpu_available
    if not gpu_available():
        print("dota_gpu: no usable CUDA device here; the GPU cross-check is owed (run this on a GPU machine)")
        return 2
    import torch
    rows = []
    rng = np.random.default_rng(0)
    for model in ("deit-t", "deit-b", "bert-b"):
        for g in transformer(model).gemms:
            if g.name in ("embed", "head"):
                continue
            for bits in (4, 8):
                lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
                m1 = rng.integers(0 if g.kind == "sv" else lo, (1 << bits) if g.kind == "sv" else hi, (g.n1, g.d))
                m2 = rng.integers(lo, hi, (g.d, g.n2))
                for arch, geo in GEOS.items():
                    kw = dict(geo, adc_bits=bits)
                    sh = fx.auto_adc_shift(m1, m2, **kw)
                    t0 = time.perf_counter()
                    ref = fx.crossbar_gemm_fx(m1, m2, adc_shift=sh, **kw)
                    t_cpu = time.perf_counter() - t0
                    dota.crossbar_gemm(m1, m2, adc_shift=sh, m1_unsigned=g.kind == "sv", **kw)   # warm-up
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    y = dota.crossbar_gemm(m1, m2, adc_shift=sh, m1_unsigned=g.kind == "sv", **kw)
                    torch.cuda.synchronize()
                    t_gpu = time.perf_counter() - t0
                    rows.append({"model": model, "gemm": g.name, "n1": g.n1, "d": g.d, "n2": g.n2, "bits": bits,
                                 "arch": arch, "adc_shift": sh, "exact": bool((y == ref).all()),
                                 "cpu_ms": t_cpu * 1e3, "gpu_ms": t_gpu * 1e3})
    print(table(rows, list(rows[0])))
    ok = all(r["exact"] for r in rows)
    p = save("dota_gpu", {"device": torch.cuda.get_device_name(), "rows": rows, "all_exact": ok,
                          "note": "gpu_ms includes the host<->device copies (numpy in, numpy out)"})
    print(f"{'all exact' if ok else 'MISMATCH'}; wrote {p}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

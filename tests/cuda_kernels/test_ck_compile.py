"""CI check: every .cu under cuda_kernels/ compiles for sm_90 (the wgmma file for sm_90a);
skips only when nvcc is absent."""
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import cuda_kernels
from cuda_kernels._runtime import arch_flags

CU = sorted(Path(cuda_kernels.SRC_DIR).glob("*.cu"))


def test_all_sources_listed():
    assert {p.name for p in CU} == set(cuda_kernels.CU_FILES)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_nvcc_compiles_every_cu_for_sm90():
    with tempfile.TemporaryDirectory() as tmp:
        def build(src):
            arch = list(arch_flags(src.name))  # -arch=sm_90, or sm_90a for the wgmma file
            cmd = ["nvcc", *arch, "-std=c++17", "-c", str(src), "-o", str(Path(tmp) / (src.stem + ".o"))]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            return src.name, r.returncode, r.stderr[-3000:]

        with ThreadPoolExecutor(max_workers=len(CU)) as ex:
            results = list(ex.map(build, CU))
    bad = [(n, err) for n, rc, err in results if rc != 0]
    assert not bad, "\n".join(f"{n}:\n{e}" for n, e in bad)

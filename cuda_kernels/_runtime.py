"""Backend selection, CUDA module loading (CuPy RawModule / NVRTC) and launches.

GPU path: PyTorch owns memory and streams; CuPy compiles the .cu sources with NVRTC and
launches on PyTorch's current stream.  Without CuPy + PyTorch + a CUDA device (or with
CUDA_KERNELS_FALLBACK=1) every API call runs the numpy reference in ``sw_reference`` and
the package says so once.
"""
from __future__ import annotations

import functools
import os
import pathlib
import warnings

import numpy as np

SRC_DIR = pathlib.Path(__file__).resolve().parent
CU_FILES = ("attention.cu", "attention_sm90a.cu", "topk.cu", "pq_gemm.cu", "int8_gemm.cu", "pointcloud.cu",
            "dota_crossbar.cu")


def arch_flags(name: str) -> tuple:
    """*_sm90a.cu use wgmma, which needs the arch-specific sm_90a target."""
    return ("-gencode=arch=compute_90a,code=sm_90a",) if name.endswith("_sm90a.cu") else ("-arch=sm_90",)

_state = {"gpu": None, "warned": False, "reason": ""}


def gpu_available() -> bool:
    """True when the CUDA path can run (cached)."""
    if _state["gpu"] is None:
        ok, reason = False, ""
        if os.environ.get("CUDA_KERNELS_FALLBACK", "") == "1":
            reason = "CUDA_KERNELS_FALLBACK=1"
        else:
            try:
                import torch  # noqa: F401
                import cupy  # noqa: F401

                ok = bool(torch.cuda.is_available())
                reason = "" if ok else "torch sees no CUDA device"
            except Exception as e:  # ImportError or a broken driver
                reason = f"{type(e).__name__}: {e}"
        _state["gpu"], _state["reason"] = ok, reason
    return _state["gpu"]


def note_fallback() -> None:
    """Emit the one fallback warning of this process."""
    if not _state["warned"]:
        _state["warned"] = True
        warnings.warn(
            f"cuda_kernels: no usable GPU ({_state['reason']}); using the numpy sw_reference fallback",
            RuntimeWarning,
            stacklevel=3,
        )


def reset(force_fallback: bool | None = None) -> None:
    """Forget the cached backend decision (tests)."""
    _state["gpu"] = None if force_fallback is None else (not force_fallback)
    _state["warned"] = False
    if force_fallback:
        _state["reason"] = "forced"


NVCC_FLAGS = ("-O3", "-std=c++17", "-lineinfo")


def _build_cubin(name: str):
    """nvcc -cubin into a cache keyed by the sources' hash; None if nvcc is absent or fails."""
    import hashlib
    import shutil
    import subprocess
    import tempfile

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    h = hashlib.sha1()
    for f in (name, "common.cuh"):
        h.update((SRC_DIR / f).read_bytes())
    flags = NVCC_FLAGS + arch_flags(name)
    h.update(" ".join(flags).encode())
    cache = pathlib.Path(os.environ.get("CUDA_KERNELS_CACHE", pathlib.Path(tempfile.gettempdir()) / "cuda_kernels_cache"))
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{pathlib.Path(name).stem}-{h.hexdigest()[:16]}.cubin"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        r = subprocess.run([nvcc, *flags, "-cubin", str(SRC_DIR / name), "-o", str(tmp)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            warnings.warn(f"cuda_kernels: nvcc failed on {name}, trying NVRTC:\n{r.stderr[-2000:]}")
            return None
        os.replace(tmp, out)
    return out


@functools.lru_cache(maxsize=None)
def module(name: str):
    """Load a .cu file: nvcc-built cubin when nvcc is present, else NVRTC through CuPy."""
    import cupy

    cubin = _build_cubin(name)
    if cubin is not None:
        return cupy.RawModule(path=str(cubin))
    src = (SRC_DIR / name).read_text()
    return cupy.RawModule(code=src, options=("-std=c++17", f"-I{SRC_DIR}"))


_smem_set: dict = {}


@functools.lru_cache(maxsize=None)
def _function(mod: str, fn: str):
    return module(mod).get_function(fn)


def kernel(mod: str, fn: str, dyn_smem: int = 0):
    k = _function(mod, fn)
    if dyn_smem > _smem_set.get((mod, fn), 0):  # static + dynamic > 48 KB needs the opt-in
        k.max_dynamic_shared_size_bytes = int(dyn_smem)
        _smem_set[(mod, fn)] = int(dyn_smem)
    return k


_streams: dict = {}


def _stream():
    import cupy
    import torch

    ptr = torch.cuda.current_stream().cuda_stream
    s = _streams.get(ptr)
    if s is None:
        try:
            s = cupy.cuda.Stream.from_external(torch.cuda.current_stream())
        except Exception:
            s = cupy.cuda.ExternalStream(ptr)
        _streams[ptr] = s
    return s


def ptr(t) -> np.uint64:
    return np.uint64(0 if t is None else t.data_ptr())


def i32(x) -> np.int32:
    return np.int32(x)


def i64(x) -> np.int64:
    return np.int64(x)


def f32(x) -> np.float32:
    return np.float32(x)


def launch(mod: str, fn: str, grid, block, args, smem: int = 0) -> None:
    k = kernel(mod, fn, smem)
    grid = tuple(int(g) for g in (grid if isinstance(grid, tuple) else (grid,)))
    block = tuple(int(b) for b in (block if isinstance(block, tuple) else (block,)))
    if min(grid) <= 0:
        return
    with _stream():
        k(grid, block, tuple(args), shared_mem=int(smem))


def is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def to_dev(x, dtype=None):
    """numpy / torch -> contiguous torch CUDA tensor (optionally cast)."""
    import torch

    t = x if is_torch(x) else torch.from_numpy(np.ascontiguousarray(x))
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t.to("cuda", non_blocking=True).contiguous()


def like_input(out, ref):
    """Return torch results for torch inputs, numpy for numpy inputs."""
    if is_torch(ref):
        return out
    return out.cpu().numpy()

"""Point-cloud mapping: FPS, kNN, ball query, sparse-conv kernel map (pointcloud.cu)."""
from __future__ import annotations

import numpy as np

from sw_reference import pointcloud as ref

from . import _runtime as rt

MOD = "pointcloud.cu"
FPS_SMEM_MAX = 16384
# (threads, points per thread), first that covers N: few threads for small clouds
FPS_CONFIGS = ((256, 1), (256, 2), (256, 4), (256, 8), (512, 4), (512, 8), (512, 16), (1024, 16))


def _pts(x, name):
    s = tuple(x.shape)
    if len(s) != 3 or s[2] != 3 or str(x.dtype).split(".")[-1] != "float32":
        raise ValueError(f"{name}: expected float32 (B, N, 3), got {x.dtype} {s}")
    return s


def _check_m(m, n: int) -> None:
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= n:
        raise ValueError(f"m: must be an int in [1, {n}], got {m!r}")


def _fps(xyz, m: int, launch):
    """What the FPS entries share: the checks, the CPU fallback (sw_reference), else the device copy of
    ``xyz`` and the (B, m) int64 output, filled by ``launch(torch, xd, out, b, n)``."""
    b, n, _ = _pts(xyz, "xyz")
    _check_m(m, n)
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.fps(np.asarray(xyz), int(m))
    import torch

    xd = rt.to_dev(xyz)
    out = torch.empty((b, int(m)), dtype=torch.int64, device=xd.device)
    launch(torch, xd, out, b, n)
    return rt.like_input(out, xyz)


def fps(xyz, m: int):
    """Farthest point sampling (B, N, 3) -> (B, m) int64, start at 0, ties to the lowest index."""
    def launch(torch, xd, out, b, n):
        if n <= FPS_SMEM_MAX:
            nt, ppt = next(c for c in FPS_CONFIGS if c[0] * c[1] >= n)
            rt.launch(MOD, f"fps_smem_{nt}_{ppt}", b, nt, (rt.ptr(xd), rt.i32(n), rt.i32(m), rt.ptr(out)), 12 * n)
        else:
            tmp = torch.full((b, n), float("inf"), dtype=torch.float32, device=xd.device)
            rt.launch(MOD, "fps_global", b, 1024, (rt.ptr(xd), rt.i32(n), rt.i32(m), rt.ptr(tmp), rt.ptr(out)))
    return _fps(xyz, m, launch)


def fps_pointnet2_baseline(xyz, m: int):
    """The pointnet2-style one-block-per-cloud FPS (512 threads, tree arg-max): bench baseline."""
    def launch(torch, xd, out, b, n):
        tmp = torch.full((b, n), float("inf"), dtype=torch.float32, device=xd.device)
        rt.launch(MOD, "fps_pointnet2_baseline", b, 512,
                  (rt.ptr(xd), rt.i32(n), rt.i32(m), rt.ptr(tmp), rt.ptr(out)))
    return _fps(xyz, m, launch)


def knn(ref_pts, query, k: int):
    """k nearest reference points per query: (dist f32 (B, M, k), idx int64), ascending (d, idx)."""
    b, n, _ = _pts(ref_pts, "ref")
    bq, m, _ = _pts(query, "query")
    if bq != b:
        raise ValueError(f"query: batch {bq} != ref batch {b}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n, 64):
        raise ValueError(f"k: must be an int in [1, {min(n, 64)}], got {k!r}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.knn(np.asarray(ref_pts), np.asarray(query), int(k))
    import torch

    rd, qd = rt.to_dev(ref_pts), rt.to_dev(query)
    kmax = next(c for c in (8, 16, 32, 64) if c >= k)
    od = torch.empty((b, m, int(k)), dtype=torch.float32, device=rd.device)
    oi = torch.empty((b, m, int(k)), dtype=torch.int64, device=rd.device)
    rt.launch(MOD, f"knn_k{kmax}", ((m + 127) // 128, b), 128,
              (rt.ptr(rd), rt.ptr(qd), rt.i32(n), rt.i32(m), rt.i32(k), rt.ptr(od), rt.ptr(oi)))
    return rt.like_input(od, query), rt.like_input(oi, query)


def ball_query(xyz, centers, radius: float, k: int):
    """First k points (index order) with d < r*r per centre, padded with the first; -1 if none."""
    b, n, _ = _pts(xyz, "xyz")
    bc, m, _ = _pts(centers, "centers")
    if bc != b:
        raise ValueError(f"centers: batch {bc} != xyz batch {b}")
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not (0 < radius < float("inf")):
        raise ValueError(f"radius: must be a positive finite number, got {radius!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 1024:
        raise ValueError(f"k: must be an int in [1, 1024], got {k!r}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.ball_query(np.asarray(xyz), np.asarray(centers), radius, int(k))
    import torch

    xd, cd = rt.to_dev(xyz), rt.to_dev(centers)
    r = np.float32(radius)
    r2 = np.float32(r * r)
    out = torch.empty((b, m, int(k)), dtype=torch.int64, device=xd.device)
    rt.launch(MOD, "ball_query", ((m + 127) // 128, b), 128,
              (rt.ptr(xd), rt.ptr(cd), rt.i32(n), rt.i32(m), rt.i32(k), r2, rt.ptr(out)))
    return rt.like_input(out, xyz)


def _coords(c, name):
    s = tuple(c.shape)
    if len(s) != 2 or s[1] != 4 or str(c.dtype).split(".")[-1] != "int32":
        raise ValueError(f"{name}: expected int32 (N, 4) = (batch, x, y, z), got {c.dtype} {s}")
    return s[0]


def kernel_map(coords, out_coords=None, kernel_size: int = 3, tensor_stride: int = 1):
    """Sparse-conv kernel map by sort + search: (K^3, N_out) int32 input index or -1."""
    nin = _coords(coords, "coords")
    nout = nin if out_coords is None else _coords(out_coords, "out_coords")
    offs = ref.kernel_offsets(kernel_size)
    if isinstance(tensor_stride, bool) or not isinstance(tensor_stride, int) or tensor_stride < 1:
        raise ValueError(f"tensor_stride: must be a positive int, got {tensor_stride!r}")
    if not rt.gpu_available():
        rt.note_fallback()
        return ref.kernel_map(np.asarray(coords), None if out_coords is None else np.asarray(out_coords),
                              kernel_size, tensor_stride)
    import torch

    cd = rt.to_dev(coords)
    od = cd if out_coords is None else rt.to_dev(out_coords)
    for name, t in (("coords", cd), ("out_coords", od)):
        if t.numel():
            lo, hi = t.amin(dim=0).tolist(), t.amax(dim=0).tolist()
            if lo[0] < 0 or hi[0] > 32767 or min(lo[1:]) < -32768 or max(hi[1:]) > 32767:
                raise ValueError(f"{name}: batch must be in [0, 32767], x/y/z in [-32768, 32767]")
    keys = torch.empty(nin, dtype=torch.int64, device=cd.device)
    rt.launch(MOD, "pack_coords", (nin + 255) // 256, 256, (rt.ptr(cd), rt.i32(nin), rt.ptr(keys)))
    skeys, order = torch.sort(keys)
    if nin > 1 and bool((skeys[1:] == skeys[:-1]).any()):
        raise ValueError("coords: input coordinates must be unique")
    offd = rt.to_dev(offs)
    kmap = torch.empty((offs.shape[0], nout), dtype=torch.int32, device=cd.device)
    rt.launch(MOD, "kmap_search", ((nout + 255) // 256, offs.shape[0]), 256,
              (rt.ptr(skeys), rt.ptr(order), rt.i32(nin), rt.ptr(od), rt.i32(nout), rt.ptr(offd),
               rt.i32(offs.shape[0]), rt.i32(tensor_stride), rt.ptr(kmap)))
    return rt.like_input(kmap, coords)

"""PointAcc (simulated) vs a GPU on the mapping ops of a full Ouster frame. Run on an NVIDIA H100 80GB HBM3
on 2026-12-06 (bench/results/pointacc_vs_gpu.json, docs/pointacc.md "Not done"); the hook below runs wherever
torch + CuPy see a CUDA device. It times the kernels only: their outputs on the real clouds are checked against
the golden models by tests/sw_reference/pointacc/test_gpu_real_clouds.py (-m gpu).

    .venv/bin/python bench/pointacc_vs_gpu.py [--runs 20]

``gpu_mapping_times(runs)`` times the repository's CUDA kernels (cuda_kernels: fps, knn, kernel_map; the
numpy references in sw_reference are their oracles) on the workloads of bench/pointacc_mapping.py: FPS
16,384 -> 4,096 and kNN k = 16 (the 4,096 FPS picks as queries) on the 16,384 points of the frame nearest the
sensor (float32 metres; the cm-quantized integers of the accelerator differ only by the quantization), and the
3x3x3 kernel map of the 103,091 voxels at 0.05 m (median of ``runs`` after two warm-ups, CUDA events around
each call). The accelerator side is bench/results/pointacc_mapping.json (run that bench first). Without a
usable GPU the script writes bench/results/pointacc_vs_gpu.json with ``"gpu": "owed"`` and the reason.
Energy is not compared (no GPU power was measured; state both technology nodes when it is: PointAcc's
figures are 40 nm as recalled, an H100 is TSMC 4N).
"""
import argparse
import json

import numpy as np

from _common import RESULTS, save, table

from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from sw_reference import pointacc as ref

FRAME = DATA_DIR / "ouster_os1_128_frame0.bin"


def gpu_mapping_times(runs: int = 20) -> dict:
    """Median milliseconds of the CUDA mapping kernels on the bench workloads; {'gpu': 'owed', ...} without
    a usable GPU."""
    import cuda_kernels as ck
    from cuda_kernels import _runtime as rt
    if not ck.gpu_available():
        return {"gpu": "owed", "reason": rt._state["reason"] or "no CUDA device"}
    import torch
    xyz = load_cloud(FRAME)
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:16384])
    pts = torch.tensor(xyz[keep][None], device="cuda")
    vox = ref.voxelize(xyz, 0.05)[0]
    coords = torch.tensor(np.column_stack([np.zeros(len(vox), np.int32), vox]).astype(np.int32), device="cuda")
    sel = ck.fps(pts, 4096)
    q = pts[:, sel[0]]

    def med(fn):
        for _ in range(2):
            fn()
        ts = []
        for _ in range(runs):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        return float(np.median(ts))

    return {"gpu": torch.cuda.get_device_name(0), "runs": runs,
            "ms": {"FPS 16384 -> 4096": med(lambda: ck.fps(pts, 4096)),
                   "kNN k=16, 4096 queries": med(lambda: ck.knn(pts, q, 16)),
                   "kernel map 3x3x3 submanifold": med(lambda: ck.kernel_map(coords, None, 3, 1))}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    gpu = gpu_mapping_times(a.runs)
    acc_p = RESULTS / "pointacc_mapping.json"
    acc = json.loads(acc_p.read_text())["rows"] if acc_p.is_file() else []
    rows = []
    for r in acc:
        g = gpu.get("ms", {}).get(r["op"])
        rows.append({"preset": r["preset"], "op": r["op"], "pointacc_ms": r["ms"], "gpu_ms": g,
                     "speedup": (g / r["ms"]) if g and r["ms"] else None})
    print(table(rows, ["preset", "op", "pointacc_ms", "gpu_ms", "speedup"]) if rows else "run pointacc_mapping.py first")
    if gpu["gpu"] == "owed":
        print(f"GPU run owed: {gpu['reason']}")
    print(save("pointacc_vs_gpu", {"gpu": gpu, "rows": rows}))


if __name__ == "__main__":
    main()

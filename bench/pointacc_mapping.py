"""PointAcc mapping unit on a full Ouster OS-1 frame: cycles and throughput per op at the config's clock.

    .venv/bin/python bench/pointacc_mapping.py [--presets server,edge]

Workloads (the bundled frame, accelerators/pointacc/data/ouster_os1_128_frame0.bin, 107,647 points):
* kernel maps at 0.05 m voxels (103,091 voxels): the submanifold 3x3x3 map and the strided 2x2x2 stride-2 map,
  in x-slab tiles of the point buffer (each tile one job of the unit; the tiles' pairs are the full map);
* FPS 16,384 -> 4,096: the 16,384 points nearest the sensor (max(|x|, |y|)), quantized to 1 cm;
* kNN k = 16: the 4,096 FPS picks as queries over those 16,384 points;
* ball query, radius 20 cm (BALL_RADIUS_CM), k = 16: the same 4,096 picks as centres over the same points
  (3,823 centres have >= 16 points within 20 cm, 273 fewer (at least 1: a centre is a cloud point), which pad
  their rows and scan the whole buffer).
Cycles are the exact cycle model of the RTL (accelerators/pointacc/cycles.py, checked against Icarus and
Verilator by tests/accelerators/pointacc/test_pointacc_mapping.py), plus one cycle per point loaded; an op whose
cloud exceeds the point buffer is reported as not fitting. `cpu_ms` is the numpy golden model
(sw_reference.pointacc) on this machine, for scale only. Results: bench/results/pointacc_mapping.{json,md}.
"""
import argparse
import time

import numpy as np

from _common import RESULTS, save, table

from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.costs import x_tiles
from accelerators.pointacc.cycles import ball_query_cycles, fps_cycles, kernel_map_cycles, knn_cycles
from accelerators.pointacc.driver import Geometry
from sw_reference import pointacc as ref

FRAME = DATA_DIR / "ouster_os1_128_frame0.bin"
BALL_RADIUS_CM = 20
BALL_K = 16


def workloads():
    xyz = load_cloud(FRAME)
    vox = ref.voxelize(xyz, 0.05)[0].astype(np.int64)
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:16384])
    pts = ref.quantize(xyz[keep], 100.0).astype(np.int64)
    t = time.perf_counter()
    sel = ref.fps(pts, 4096)
    fps_ms = (time.perf_counter() - t) * 1e3
    return xyz, vox, pts, sel, fps_ms


def run(preset: str, vox, pts, sel, fps_ms) -> list[dict]:
    cfg = PointAccConfig.preset(preset)
    geo = Geometry.from_config(cfg)
    hz = cfg.clock_ghz * 1e9
    rows = []

    def row(op, n, work, unit, cycles, jobs, cpu_ms, note=""):
        r = {"preset": preset, "op": op, "n": n, "work": work, "unit": unit, "jobs": jobs, "cycles": cycles,
             "ms": None if cycles is None else cycles / hz * 1e3,
             "throughput_per_s": None if cycles is None else work / (cycles / hz), "cpu_ms": cpu_ms, "note": note}
        rows.append(r)

    # kernel maps on the full frame
    for name, ks, unit, halo, stride in (("kernel map 3x3x3 submanifold", 3, 1, 1, None),
                                         ("kernel map 2x2x2 stride 2", 2, 2, 0, 2)):
        t = time.perf_counter()
        if stride is None:
            km = ref.submanifold_kernel_map(vox, 3, 1)
        else:
            km = ref.strided_kernel_map(vox, 2, 2, 1)[1]
        cpu = (time.perf_counter() - t) * 1e3
        tiles = x_tiles(vox[:, 0], cfg.point_buffer, unit, halo, name)
        cyc = sum((hi - lo) + kernel_map_cycles(geo, vox[lo:hi], ks, 1, stride) for lo, hi, _, _ in tiles)
        row(name, len(vox), len(vox), "voxels", cyc, len(tiles), cpu,
            f"{km.n_pairs} pairs; {len(tiles)} x-slab tiles of <= {cfg.point_buffer} points")
    # FPS 16k -> 4k, kNN k = 16 and ball query on the 16k points
    n = len(pts)
    ball = f"ball query r={BALL_RADIUS_CM} cm k={BALL_K}, 4096 centres"
    if n > cfg.point_buffer:
        for op, unit, cpu in (("FPS 16384 -> 4096", "samples", fps_ms), ("kNN k=16, 4096 queries", "queries", None),
                              (ball, "queries", None)):
            row(op, n, 4096, unit, None, 0, cpu, f"does not fit: point_buffer {cfg.point_buffer}")
    else:
        row("FPS 16384 -> 4096", n, 4096, "samples", n + fps_cycles(geo, n, 4096), 1, fps_ms)
        t = time.perf_counter()
        ref.knn(pts, pts[sel], 16)
        cpu = (time.perf_counter() - t) * 1e3
        row("kNN k=16, 4096 queries", n, 4096, "queries", n + knn_cycles(geo, n, 4096, 16), 1, cpu,
            f"per query {knn_cycles(geo, n, 1, 16)} cycles")
        c = pts[sel]
        t = time.perf_counter()
        ref.ball_query(pts, c, BALL_RADIUS_CM, BALL_K)
        cpu = (time.perf_counter() - t) * 1e3
        hits = np.concatenate([(ref.sqdist(c[s:s + 256], pts) <= BALL_RADIUS_CM ** 2).sum(axis=1)
                               for s in range(0, len(c), 256)])
        few = int((hits < BALL_K).sum())
        row(ball, n, 4096, "queries", n + ball_query_cycles(geo, pts, c, BALL_RADIUS_CM, BALL_K), 1, cpu,
            f"{len(c) - few} centres with >= {BALL_K} hits, {few} fewer (min {hits.min()}, median "
            f"{int(np.median(hits))})")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="server,edge")
    a = ap.parse_args()
    xyz, vox, pts, sel, fps_ms = workloads()
    rows = []
    for p in a.presets.split(","):
        rows += run(p, vox, pts, sel, fps_ms)
    cols = ["preset", "op", "n", "jobs", "cycles", "ms", "throughput_per_s", "unit", "cpu_ms", "note"]
    text = table(rows, cols)
    print(text)
    cfgs = {p: {k: v for k, v in PointAccConfig.preset(p).to_dict().items()
                if k in ("point_buffer", "distance_lanes", "sorter_width", "clock_ghz")} for p in a.presets.split(",")}
    (RESULTS / "pointacc_mapping.md").write_text(
        "# PointAcc mapping unit on a full Ouster frame\n\n`.venv/bin/python bench/pointacc_mapping.py`\n\n```\n"
        + text + "\n```\n\nConfigs: " + str(cfgs) + "\n")
    print(save("pointacc_mapping", {"frame": FRAME.name, "points": len(xyz), "voxels_0.05m": len(vox), "rows": rows,
                                    "configs": cfgs}))


if __name__ == "__main__":
    main()

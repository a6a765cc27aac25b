"""PointAcc MMU cache: hit rate against capacity on the MinkowskiUNet maps of a real frame.

    .venv/bin/python bench/pointacc_cache.py [--preset server] [--sizes-kib 4,8,16,32,64,128,256]

The network model (accelerators/pointacc/model.py) runs MinkowskiUNet on the bundled Ouster OS-1 frame
(107,647 points, 103,091 voxels at 0.05 m) with the preset's cache resized (same block of
cache_block_rows x feature_row_bytes, same associativity): every gathered feature row of every sparse
convolution goes through the cache model (exact: accelerators/pointacc/cache_model.py, the RTL MMU's
policy), per layer starting cold. Reported per size: the hit rate over all gathers, the DRAM bytes of the
gathered features, total DRAM bytes and cycles; plus the cache-off ablation (--no-cache). Results:
bench/results/pointacc_cache.{json,md}.
"""
import argparse

from _common import RESULTS, save, table

from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.model import simulate

FRAME = DATA_DIR / "ouster_os1_128_frame0.bin"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="server")
    ap.add_argument("--sizes-kib", default="4,8,16,32,64,128,256")
    a = ap.parse_args()
    base = PointAccConfig.preset(a.preset)
    xyz = load_cloud(FRAME)
    rows = []
    off = simulate(base, "minkunet", xyz, cache=False)
    rows.append({"cache_kib": 0, "sets": 0, "hit_rate": 0.0, "gathers": off.extra["gathers"],
                 "gather_dram_bytes": off.dram_bytes["features_in"], "dram_bytes": off.total_dram_bytes,
                 "cycles": off.cycles, "ms": off.extra["latency_ms"], "note": "cache off (--no-cache)"})
    for kib in (int(s) for s in a.sizes_kib.split(",")):
        cfg = base.replace(name=f"{a.preset}-{kib}k", cache_bytes=kib * 1024)
        r = simulate(cfg, "minkunet", xyz)
        rows.append({"cache_kib": kib, "sets": cfg.cache_sets, "hit_rate": r.extra["cache_hit_rate"],
                     "gathers": r.extra["gathers"], "gather_dram_bytes": r.dram_bytes["features_in"],
                     "dram_bytes": r.total_dram_bytes, "cycles": r.cycles, "ms": r.extra["latency_ms"],
                     "note": "preset size" if kib * 1024 == base.cache_bytes else ""})
    cols = ["cache_kib", "sets", "hit_rate", "gathers", "gather_dram_bytes", "dram_bytes", "cycles", "ms", "note"]
    text = table(rows, cols)
    print(text)
    geo = {k: base.to_dict()[k] for k in ("feature_row_bytes", "cache_block_rows", "cache_ways", "dram_latency_cycles",
                                          "clock_ghz")}
    (RESULTS / "pointacc_cache.md").write_text(
        f"# PointAcc cache hit rate against capacity (MinkowskiUNet, full Ouster frame, preset {a.preset})\n\n"
        f"`.venv/bin/python bench/pointacc_cache.py --preset {a.preset}`\n\n```\n{text}\n```\n\nCache geometry: {geo}\n")
    print(save("pointacc_cache", {"preset": a.preset, "frame": FRAME.name, "points": len(xyz),
                                  "voxels": off.extra["voxels"], "geometry": geo, "rows": rows}))


if __name__ == "__main__":
    main()

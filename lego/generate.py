"""`lego gen`: build a design and write its directory atomically."""
from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import Fragment

from . import registry
from .design import GenSpec, build_array, load_workload, parse_array
from .emit import design_file
from .emit import files as F
from .emit.directory import write_design
from .emit.outdir import check_target
from .emit.top import ArrayTop
from .errors import LegoError


def workload_owner(name: str):
    """The registered accelerator that generates ``--workload name`` (attention), or None for an array."""
    from .affine.library import ARRAY_WORKLOADS
    if name in ARRAY_WORKLOADS or name.endswith((".yaml", ".yml", ".json")) or os.path.sep in name:
        return None
    for acc_name in registry.names(registry.ACCELERATORS):
        acc = registry.get(registry.ACCELERATORS, acc_name)
        if name in getattr(acc, "workloads", ()):
            return acc
    return None


def top_name(workload: str) -> str:
    base = Path(workload).stem if workload.endswith((".yaml", ".yml", ".json")) else workload
    return "lego_" + re.sub(r"[^A-Za-z0-9_]", "_", base)


class _Stages:
    """A tqdm bar over the named stages of a generation (stderr, only on a terminal and when asked)."""

    def __init__(self, on: bool, names: tuple[str, ...]):
        self.on, self.names, self.k, self.bar = on, names, 0, None

    def __enter__(self):
        if self.on:
            from tqdm import tqdm
            self.bar = tqdm(total=len(self.names), desc=f"lego gen: {self.names[0]}", file=sys.stderr,
                            disable=None, leave=False, bar_format="{desc} [{n_fmt}/{total_fmt}] {elapsed}")
        return self

    def next(self):
        self.k += 1
        if self.bar is not None:
            self.bar.update(1)
            if self.k < len(self.names):
                self.bar.set_description(f"lego gen: {self.names[self.k]}")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def to_verilog(top, name: str, fragment=None) -> str:
    """Amaranth -> RTLIL -> Verilog in one Yosys run (what ``verilog.convert`` does, via its helper for
    RTLIL text of amaranth 0.5), with the FU modules that the top instantiates (``top.modules()``, filled
    while it elaborates; emit/hier.py) converted alongside it, and the modules it writes as text
    (``top.text_modules()``) appended. ``fragment``: the top, already elaborated."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    frag = fragment if fragment is not None else Fragment.get(top, None)
    with _no_zero_init():
        text, _ = rtlil.convert_fragment(frag, ports=top.ports(), name=name, emit_src=False)
        for mod, ports, frag in getattr(top, "modules", list)():
            sub, _ = rtlil.convert_fragment(frag, ports=ports, name=mod, emit_src=False)
            text += sub.replace("attribute \\top 1\n", "", 1)
    # modules written as Verilog text (the programmable array's instance level, lego.prog.array_text)
    return verilog._convert_rtlil_text(text) + "".join(v for _, v in getattr(top, "text_modules", list)())


@contextlib.contextmanager
def _no_zero_init():
    """Banks carry no initial value (the host protocol loads every word a run reads, and every run writes
    its outputs before reading them back), and Verilog would print one line per word of a zero-initialised
    memory (245 MB for a 2048^3 GEMM). While converting, Amaranth's RTLIL emitter skips the ``$meminit``
    of a memory whose contents are all zero (building it bit by bit took most of the time of a large
    design); memories with other contents (lookup tables) keep theirs. Amaranth is pinned (0.5.10) in
    pyproject.toml; ``tests/lego/test_generate.py`` checks both halves of this on every run."""
    emitter = rtlil.ModuleEmitter
    original = emitter.emit_memory

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            original(self, cell_idx, cell)
    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = original


def generate(workload: str, shape: str | None, array: str | None, dataflows: tuple[str, ...], bits: int,
             opt: bool, out: Path, force: bool = False, progress: bool = False) -> dict:
    """``lego gen --workload W``: build the array and write its design directory; a workload that a
    registered accelerator generates (attention) goes to that accelerator. ``progress``: a bar of the
    stages on stderr (only on a terminal)."""
    check_target(out, force)
    owner = workload_owner(workload)
    if owner is not None:
        return owner.generate(owner.config_from_workload(shape, array, tuple(dataflows), bits, opt), out, force)
    arr = parse_array(array)
    w = load_workload(workload, shape, bits)
    with _Stages(progress, ("front end and LP", "elaboration", "Verilog", "design file", "write")) as st:
        d = build_array(w, arr, dataflows, opt)
        st.next()
        name = top_name(workload)
        top = ArrayTop(d.arch, d.pg, name)
        fragment = Fragment.get(top, None)
        st.next()
        sources = {f"{name}.v": to_verilog(top, name, fragment)}
        st.next()
        extra: dict[str, str] = {design_file.FILE: design_file.dumps(d)}
        st.next()
        is_file = workload.endswith((".yaml", ".yml", ".json"))
        df_specs = []
        for k, dspec in enumerate(dataflows):      # the user's files travel with the design (provenance)
            if dspec.endswith((".yaml", ".yml", ".json")):
                rel = f"dataflow_{k}{Path(dspec).suffix}"
                extra[rel] = Path(dspec).read_text()
                df_specs.append(rel)
            else:
                df_specs.append(dspec)
        spec = {"workload": "workload" + Path(workload).suffix if is_file else workload,
                "workload_file": "workload" + Path(workload).suffix if is_file else None,
                "shape": shape, "array": list(arr), "dataflows": df_specs, "bits": bits, "opt": opt}
        if is_file:
            extra[spec["workload_file"]] = Path(workload).read_text()
        gs = GenSpec(workload, shape, arr, dataflows, bits, opt)
        man = F.manifest(gs, d, name, top, {"spec": spec})
        rep = F.report(d, top.core.emitted_bits)
        write_design(out, top=name, kind="array", sources=sources, manifest=man, report=rep, tb=F.tb_files(man),
                     extra=extra, force=force, description=f"lego {w.name} on {arr[0]}x{arr[1]} ({', '.join(dataflows)})")
        st.next()
    return {"top": name, "dir": str(out), "cycles": rep["cycles"]["predicted"],
            "registers": rep["registers"],
            "summary": f"top {name}, {len(d.arch.fus)} FUs, cycles {rep['cycles']['predicted']}, "
                       f"register bits {d.lp_bits if opt else d.naive_bits} (naive {d.naive_bits})"}

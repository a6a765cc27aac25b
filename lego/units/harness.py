"""Bench and lint helpers for the units: several components side by side in one generated top.

``SideBySide([(prefix, component), ...])`` exposes every port ``p`` of each component's
``amaranth.lib.wiring`` signature as a top-level port ``<prefix>_<p>`` (clk/rst are shared), so
one simulator build serves several parameterizations. ``emit`` writes Verilog (Amaranth's builtin
Yosys), ``lint`` runs ``verilator --lint-only -Wall`` with ``lego.emit.files.LINT_VLT`` only, and
``synth_dir`` writes a design directory (``manifest.json`` {top, ports}, ``files.f``) for
``lego.synth.synth``.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from amaranth.hdl import Elaboratable, Module, Signal, signed, unsigned
from amaranth.lib.wiring import Flow

__all__ = ["SideBySide", "emit", "lint", "port_list", "synth_dir"]


def port_list(comp) -> list[tuple[str, str, int]]:
    """(name, 'in'|'out', width) of a wiring.Component's signature members."""
    out = []
    for name, member in comp.signature.members.items():
        out.append((name, "in" if member.flow == Flow.In else "out", len(getattr(comp, name))))
    return out


class SideBySide(Elaboratable):
    """Components with independent, prefixed ports sharing the sync domain."""

    def __init__(self, units):
        self.units = list(units)
        self.ports = []                              # (prefix, name, direction, unit, port)
        for prefix, u in self.units:
            for name, direction, _ in port_list(u):
                sig = getattr(u, name)
                shape = signed(len(sig)) if sig.shape().signed else unsigned(len(sig))
                port = Signal(shape, name=f"{prefix}_{name}")
                self.ports.append((prefix, name, direction, u, port))

    def signals(self):
        return [p for *_, p in self.ports]

    def elaborate(self, platform):
        m = Module()
        for prefix, u in self.units:
            m.submodules[prefix] = u
        for _, name, direction, u, port in self.ports:
            if direction == "in":
                m.d.comb += getattr(u, name).eq(port)
            else:
                m.d.comb += port.eq(getattr(u, name))
        return m


def emit(path: Path, top, name: str, ports=None) -> Path:
    """Write Verilog of ``top`` (a SideBySide or a wiring.Component) to ``path``."""
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    from amaranth.back import verilog
    if ports is None and isinstance(top, SideBySide):
        ports = top.signals()
    text = verilog.convert(top, name=name, ports=ports) if ports is not None else verilog.convert(top, name=name)
    path = Path(path)
    path.write_text(text)
    return path


def lint(src: Path, top: str, workdir: Path) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall`` with the project's backend waivers (LINT_VLT) only."""
    from lego.emit.files import LINT_VLT
    from lego.toolchain import require
    vlt = Path(workdir) / "lint.vlt"
    vlt.write_text(LINT_VLT)
    return subprocess.run([require("verilator"), "--lint-only", "-Wall", str(vlt), str(src), "--top-module", top],
                          capture_output=True, text=True)


def synth_dir(root: Path, comp, top: str) -> Path:
    """A design directory for lego.synth.synth: rtl/<top>.v, files.f and manifest.json."""
    d = Path(root) / top
    (d / "rtl").mkdir(parents=True, exist_ok=True)
    emit(d / "rtl" / f"{top}.v", comp, top)
    (d / "files.f").write_text(f"rtl/{top}.v\n")
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    ports += [{"name": n, "direction": r, "width": w} for n, r, w in port_list(comp)]
    (d / "manifest.json").write_text(json.dumps({"top": top, "ports": ports}, indent=1))
    return d

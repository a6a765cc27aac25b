"""Synthesis reports for generated designs: a generic Yosys flow and iCE40/ECP5 place-and-route flows.

A design directory holds ``manifest.json`` (``top``, ``ports``), ``files.f`` and the Verilog. Nothing
is written into it: the sources are copied into a temporary directory and the tools run there (the
YoWASP tools see ``/tmp`` as their own sandbox, so relative paths are used throughout).

* ``synth(dir)`` (generic): ``synth -flatten``, cell and flip-flop counts, memory bits, a NAND2
  gate-equivalent estimate, a 4-LUT estimate (``abc -lut 4``), ``check -assert`` and a latch count;
  ``synth(dir, memories="macro")`` keeps the memories as SRAM macros and lists them (lego/synth_memories.py).
* ``synth(dir, "ice40")`` / ``synth(dir, "ecp5")``: ``synth_ice40``/``synth_ecp5`` + nextpnr, Fmax,
  utilisation, how each memory was mapped (block RAM, LUT RAM or logic) and a fit check (``DoesNotFit``
  when the design needs more logic cells, block RAMs, DSPs or pins than the ``device`` has). Designs
  with more I/O bits than the package has pins are placed behind a generated serial wrapper.

See docs/synth.md for the weight table, the wrapper and the caveats.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import CheckFailed, LegoError
from .synth_memories import (DUMP_FILE, MEM_CELL, ROMS_FILE, check_memories, macro_report, macro_rows,
                             synth_steps)
from .toolchain import venv_bin

TARGETS = ("generic", "ice40", "ecp5")

# NAND2 gate equivalents per Yosys internal cell, an approximation: cell areas of the NanGate
# FreePDK45 Open Cell Library (X1 drive) divided by NAND2_X1 (0.798 um^2), rounded to 2 decimals.
# Cells with no library counterpart are composed (ANDNOT = AND2 area, enable FF = DFF + MUX2,
# sync-reset FF = DFF + AND2). Each fine-grained FF is one bit.
_GE = {
    "$_BUF_": 1.0, "$_NOT_": 0.67,
    "$_NAND_": 1.0, "$_NOR_": 1.0, "$_AND_": 1.33, "$_OR_": 1.33,
    "$_ANDNOT_": 1.33, "$_ORNOT_": 1.33, "$_XOR_": 2.0, "$_XNOR_": 2.0,
    "$_MUX_": 2.33, "$_NMUX_": 2.33, "$_AOI3_": 1.33, "$_OAI3_": 1.33,
    "$_AOI4_": 1.67, "$_OAI4_": 1.67,
}
_GE_FF = [  # (prefix, weight); first match wins, so longer prefixes come first
    ("$_DFFSRE_", 10.33), ("$_DFFSR_", 8.0), ("$_ALDFFE_", 10.33), ("$_ALDFF_", 8.0),
    ("$_SDFFCE_", 9.33), ("$_SDFFE_", 9.33), ("$_SDFF_", 7.0),
    ("$_DFFE_", 8.0), ("$_DFF_", 5.67),
    ("$_DLATCHSR_", 5.0), ("$_DLATCH_", 3.33), ("$_SR_", 2.0),
]
_FF_RE = re.compile(r"^\$_(DFF|DFFE|SDFF|SDFFE|SDFFCE|DFFSR|DFFSRE|ALDFF|ALDFFE)_")
_LATCH_RE = re.compile(r"^\$(_DLATCH|_DLATCHSR|_SR|dlatch|adlatch|dlatchsr|sr)(_|$)")
_KEEP_PIN_RE = re.compile(r"^(clk|clock|rst|reset|.*_clk|.*_rst)$", re.I)
_CLK_RE = re.compile(r"^(clk|clock|.*_clk)$", re.I)


# ----------------------------------------------------------------------------------------- tools
def find_tool(name: str) -> str | None:
    """``yosys``, ``nextpnr-ice40`` or ``nextpnr-ecp5``: the venv's YoWASP build first, then the system one."""
    for cand in (venv_bin() / f"yowasp-{name}", shutil.which(f"yowasp-{name}"), shutil.which(name)):
        if cand and Path(cand).is_file():
            return str(cand)
    return None


def _require(name: str, override: str | None = None) -> str:
    """The tool's path: ``override`` (``lego synth --yosys PATH``) when given, else ``find_tool``."""
    if override is not None:
        path = shutil.which(override) or override
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            raise LegoError(f"--yosys: '{override}' is not an executable file")
        return str(path)
    tool = find_tool(name)
    if tool is None:
        raise LegoError(f"synth: {name} not found (install yowasp-{name})")
    return tool


def _run(cmd: list[str], cwd: Path, deadline: float, what: str) -> subprocess.CompletedProcess:
    left = deadline - time.monotonic()
    if left <= 0:
        raise LegoError(f"synth: time limit reached before {what}")
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=left)
    except subprocess.TimeoutExpired:
        raise LegoError(f"synth: {what} timed out (timeout_s exhausted)") from None


def _wasm_hint(tool: str, log: str) -> str:
    """YoWASP's Yosys is 32-bit WebAssembly: a design that needs more than 4 GiB traps instead of failing
    with a message. Say so, and how to use a native build."""
    if "yowasp" in Path(tool).name and ("wasm" in log.lower() or "Trap" in log):
        return ("\nsynth: the YoWASP Yosys runs as 32-bit WebAssembly (at most 4 GiB of memory); for a design "
                "this large pass a native 64-bit Yosys: lego synth DIR --yosys /usr/bin/yosys")
    return ""


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


# ---------------------------------------------------------------------------------------- design
def load_design(design_dir: Path) -> tuple[str, list[dict], list[Path]]:
    top, ports, files, _ = load_design_full(design_dir)
    return top, ports, files


def _blackboxes(man: dict) -> tuple[list[str], str]:
    """The manifest's ``synth.blackbox``: modules that stand for hard or analog macros (DOTA's photonic-core
    twins) and that synthesis keeps as black boxes unless asked otherwise; and the reason it gives."""
    spec = man.get("synth") or {}
    names = spec.get("blackbox") if isinstance(spec, dict) else None
    names = [] if names is None and isinstance(spec, dict) else names
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise LegoError("synth: manifest.json 'synth.blackbox' must be a list of module names")
    return list(names), str(spec.get("reason", ""))


def _check_modules(names: list[str], files: list[Path]) -> None:
    """Every black-box module the manifest names is a module of the sources."""
    text = "\n".join(f.read_text() for f in files)
    missing = [n for n in names if not re.search(rf"^module\s+\\?{re.escape(n)}\s*\(", text, re.M)]
    if missing:
        raise LegoError(f"synth: manifest.json 'synth.blackbox' names modules the Verilog does not have: {missing}")


def load_design_full(design_dir: Path) -> tuple[str, list[dict], list[Path], dict]:
    """(top, ports, Verilog files, manifest) of a design directory."""
    design_dir = Path(design_dir)
    try:
        man = json.loads((design_dir / "manifest.json").read_text())
    except FileNotFoundError:
        raise LegoError(f"synth: {design_dir}/manifest.json not found") from None
    if not isinstance(man.get("top"), str):
        raise LegoError("synth: manifest.json needs a string 'top'")
    ports = man.get("ports") or []
    for p in ports:
        if p.get("direction") not in ("in", "out") or int(p.get("width", 0)) < 1:
            raise LegoError(f"synth: bad port in manifest.json: {p} (direction in|out, width >= 1)")
    try:
        lines = (design_dir / "files.f").read_text().splitlines()
    except FileNotFoundError:
        raise LegoError(f"synth: {design_dir}/files.f not found") from None
    files = [design_dir / ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    missing = [str(f) for f in files if not f.is_file()]
    if not files or missing:
        raise LegoError(f"synth: files.f lists no Verilog or missing files: {missing}")
    return man["top"], ports, files, man


def _stage(files: list[Path], work: Path) -> list[str]:
    (work / "src").mkdir()
    names = []
    for i, f in enumerate(files):
        rel = f"src/{i:03d}_{f.name}"
        shutil.copyfile(f, work / rel)
        names.append(rel)
    return names


def _stat(path: Path) -> dict:
    data = json.loads(path.read_text())
    if "design" in data:
        return data["design"]
    mods = list(data["modules"].values())
    return mods[0] if len(mods) == 1 else {}


def _yosys(tool: str, script: str, work: Path, deadline: float, what: str):
    (work / f"{what}.ys").write_text(script)
    r = _run([tool, "-q", "-l", f"{what}.log", "-s", f"{what}.ys"], work, deadline, f"yosys ({what})")
    log = (work / f"{what}.log").read_text() if (work / f"{what}.log").exists() else ""
    return r, log + r.stdout + r.stderr  # yosys prints its final ERROR line to the console only


def gate_equivalents(cells_by_type: dict[str, int]) -> tuple[float, list[str]]:
    """NAND2 equivalents of a fine-grained Yosys netlist and the cell types with no weight (1 GE)."""
    total, unknown = 0.0, []
    for typ, n in cells_by_type.items():
        w = _GE.get(typ)
        if w is None:
            w = next((v for pre, v in _GE_FF if typ.startswith(pre)), None)
        if w is None:
            unknown.append(typ)
            w = 1.0
        total += w * n
    return round(total, 1), sorted(unknown)


# --------------------------------------------------------------------------------------- generic
def _boxing(top: str, blackbox: list[str]) -> str:
    """Yosys commands that turn the named modules into black boxes (contents dropped, ports kept)."""
    if not blackbox:
        return ""
    return "".join(f"blackbox {n}\n" for n in blackbox) + f"hierarchy -top {top}\n"


def _generic(tool: str, top: str, srcs: list[str], work: Path, deadline: float, blackbox=(),
             memories: str = "ff") -> dict:
    read = "\n".join(f"read_verilog {s}" for s in srcs)
    script = f"""{read}
hierarchy -check -top {top}
{_boxing(top, list(blackbox))}proc
flatten
hierarchy -top {top}
opt_clean
delete t:$scopeinfo
tee -q -o pre.json stat -json
{synth_steps(memories, top)}delete t:$scopeinfo
tee -q -o generic.json stat -json
tee -q -o check.log check -assert
abc -lut 4
opt_clean
tee -q -o lut4.json stat -json
"""
    r, log = _yosys(tool, script, work, deadline, "generic")
    check_log = (work / "check.log").read_text() if (work / "check.log").exists() else ""
    loops = check_log.count("found logic loop")
    if r.returncode != 0:
        if "problems in 'check -assert'" in log + check_log:
            problems = [ln for ln in check_log.splitlines() if ln.startswith("Warning:")]
            raise CheckFailed(f"synth: yosys check failed for '{top}' ({loops} combinational loops): "
                              + "; ".join(problems[:5]))
        raise LegoError(f"synth: yosys failed on '{top}':\n{_tail(log)}{_wasm_hint(tool, log)}")
    pre, gen, lut = (_stat(work / f) for f in ("pre.json", "generic.json", "lut4.json"))
    by_type = dict(sorted(gen.get("num_cells_by_type", {}).items()))
    boxed = {t: by_type.pop(t) for t in list(by_type) if t.lstrip("\\") in set(blackbox)}
    kept = by_type.pop(MEM_CELL, 0) if memories == "macro" else 0    # kept memories are reported apart
    ff = sum(n for t, n in by_type.items() if _FF_RE.match(t))
    latches = sum(n for t, n in by_type.items() if _LATCH_RE.match(t))
    ge, unknown = gate_equivalents(by_type)
    pre_types = pre.get("num_cells_by_type", {})
    res = {
        "cells": gen.get("num_cells", 0) - sum(boxed.values()) - kept,
        "cells_by_type": by_type,
        "flipflops": ff,
        "ff_registers": sum(n for t, n in pre_types.items() if re.match(r"^\$(a|s|al)?dff", t)),
        "logic_cells": gen.get("num_cells", 0) - sum(boxed.values()) - kept - ff,
        "memories": pre.get("num_memories", 0),
        "memory_bits": pre.get("num_memory_bits", 0),
        "gate_equivalents": ge,
        "ge_unweighted_types": unknown,
        "lut4_estimate": lut.get("num_cells_by_type", {}).get("$lut", 0),
        "latches": latches,
        "comb_loops": loops,
        "check": "pass",
        "blackboxes": {t.lstrip("\\"): n for t, n in boxed.items()},
    }
    if memories == "macro":
        res.update({"memories_as": "macro", "memory_bits_before_synth": res["memory_bits"],
                    **macro_report((work / DUMP_FILE).read_text(), _read(work / ROMS_FILE))})
    if latches:
        kinds = sorted(t for t in by_type if _LATCH_RE.match(t))
        raise CheckFailed(f"synth: '{top}' infers {latches} latch bit(s) ({', '.join(kinds)})")
    return res


# ----------------------------------------------------------------------------------------- ice40
def _vname(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def wrapper_verilog(top: str, ports: list[dict], name: str = "lego_synth_wrap") -> tuple[str, dict]:
    """A module ``name`` around ``top`` whose pins are the 1-bit clocks/resets of ``top`` plus
    ``lego_w_si`` / ``lego_w_shift`` (serial load of all other inputs), ``lego_w_cap`` (parallel
    capture of all outputs) and ``lego_w_so`` (serial out). Returns (Verilog text, info)."""
    keep = [p for p in ports if p["direction"] == "in" and int(p["width"]) == 1
            and _KEEP_PIN_RE.match(p["name"])]
    clks = [p for p in keep if _CLK_RE.match(p["name"])]
    if not clks:
        raise LegoError(f"synth: cannot wrap '{top}': no 1-bit clock input (clk/clock/*_clk)")
    clk = _vname(clks[0]["name"])
    ins = [p for p in ports if p["direction"] == "in" and p not in keep]
    outs = [p for p in ports if p["direction"] == "out"]
    iw, ow = sum(int(p["width"]) for p in ins), sum(int(p["width"]) for p in outs)
    pins = [f"input wire {_vname(p['name'])}" for p in keep]
    pins += ["input wire lego_w_si", "input wire lego_w_shift", "input wire lego_w_cap",
             "output wire lego_w_so"]
    body, conns, lo = [], [f".{_vname(p['name'])}({_vname(p['name'])})" for p in keep], 0
    if iw:
        body.append(f"reg [{iw - 1}:0] lego_w_in = {iw}'d0;")
        nxt = "lego_w_si" if iw == 1 else f"{{lego_w_in[{iw - 2}:0], lego_w_si}}"
        body.append(f"always @(posedge {clk}) if (lego_w_shift) lego_w_in <= {nxt};")
        for p in ins:
            conns.append(f".{_vname(p['name'])}(lego_w_in[{lo + int(p['width']) - 1}:{lo}])")
            lo += int(p["width"])
    if ow:
        body.append(f"reg [{ow - 1}:0] lego_w_out = {ow}'d0;")
        body.append(f"wire [{ow - 1}:0] lego_w_o;")
        shl = "1'b0" if ow == 1 else f"{{lego_w_out[{ow - 2}:0], 1'b0}}"
        body.append(f"always @(posedge {clk}) lego_w_out <= lego_w_cap ? lego_w_o : {shl};")
        body.append(f"assign lego_w_so = lego_w_out[{ow - 1}];")
        lo = 0
        for p in outs:
            conns.append(f".{_vname(p['name'])}(lego_w_o[{lo + int(p['width']) - 1}:{lo}])")
            lo += int(p["width"])
    else:
        body.append("assign lego_w_so = 1'b0;")
    text = (f"// generated by lego.synth: serial wrapper so that '{top}' fits the package pins\n"
            f"module {name} (\n  " + ",\n  ".join(pins) + "\n);\n  " + "\n  ".join(body)
            + f"\n  {_vname(top)} lego_w_dut (\n    " + ",\n    ".join(conns) + "\n  );\nendmodule\n")
    return text, {"wrapper_pins": len(pins), "wrapper_ffs": iw + ow, "serial_in_bits": iw,
                  "serial_out_bits": ow}


# ------------------------------------------------------------------------------------ FPGA flows
# nextpnr's resource names -> the short names of the fit report, per architecture
_FIT_NAMES = {
    "ice40": (("LC", "ICESTORM_LC"), ("BRAM", "ICESTORM_RAM"), ("DSP", "ICESTORM_DSP"), ("IO", "SB_IO")),
    "ecp5": (("LUT", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("BRAM", "DP16KD"), ("DSP", "MULT18X18D"),
             ("IO", "TRELLIS_IO")),
}
_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$", re.M)
_MEM_RE = re.compile(r"^mapping memory (\S+) via (\S+)\s*$", re.M)
_MEM_FF_RE = re.compile(r"^using FF mapping for memory (\S+)\s*$", re.M)
# Yosys memory_libmap rules (share/ice40/brams.txt, share/lattice/brams_16kd.txt, lutrams_trellis.txt):
# block RAM and distributed (LUT) RAM
_BLOCK_RAM_RULES = ("$__ICE40_RAM4K_", "$__DP16KD_", "$__PDPW16KD_")
_LUT_RAM_RULES = ("$__TRELLIS_DPR16X4_",)


class DoesNotFit(LegoError):
    """The design needs more of a resource than the device has. ``result`` is the synth report so far
    (``fit: False``, ``fit_figures``); the message is one line with the figures."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


def parse_utilisation(log: str) -> dict:
    """{nextpnr resource: {used, available, percent}} of the last "Device utilisation" block of a
    nextpnr log (printed after packing, so present also when placement fails)."""
    k = log.rfind("Device utilisation:")
    out = {}
    if k < 0:
        return out
    for m in _UTIL_RE.finditer(log[k:]):
        name, used, avail = m.group(1), int(m.group(2)), int(m.group(3))
        if name in out:                    # the block ends where a name repeats
            break
        out[name] = {"used": used, "available": avail,
                     "percent": round(100.0 * used / avail, 1) if avail else 0.0}
    return out


def memory_mapping(log: str) -> dict:
    """How Yosys mapped each memory (``memory_libmap``'s log): block RAM, LUT RAM, flip-flops and logic
    (``logic``, with their names), or a rule not listed here (``other``)."""
    block, lut, other = [], [], []
    for name, rule in _MEM_RE.findall(log):
        (block if rule in _BLOCK_RAM_RULES else lut if rule in _LUT_RAM_RULES else other).append(f"{name} ({rule})")
    logic = _MEM_FF_RE.findall(log)
    return {"block_ram": len(block), "lut_ram": len(lut), "logic": len(logic), "logic_names": sorted(logic),
            "other": sorted(other)}


def fit_figures(arch: str, util: dict) -> dict:
    """{LC|LUT|FF|BRAM|DSP|IO: {used, available, percent}} from nextpnr's utilisation names."""
    out = {}
    for short, name in _FIT_NAMES[arch]:
        v = util.get(name)
        if v is not None and (v["available"] or v["used"]):
            out[short] = dict(v)
    return out


def fit_line(device: str, figures: dict) -> str:
    """``synth: does not fit hx8k: LC 5,560/7,680 (72%), BRAM 40/32 (125%)``"""
    parts = [f"{k} {v['used']:,}/{v['available']:,}"
             + (f" ({v['used'] * 100 // v['available']}%)" if v["available"] else " (none on the device)")
             for k, v in figures.items()]
    return f"synth: does not fit {device}: " + ", ".join(parts)


def _over(figures: dict) -> list[str]:
    return [k for k, v in figures.items() if v["used"] > v["available"]]


def _estimate(arch: str, dev: dict, by_type: dict, io: int) -> dict:
    """Lower bounds of the packed resources from the synthesized cells, checked before nextpnr runs
    (a netlist that cannot fit is reported at once): an iCE40 logic cell holds one LUT4 and one DFF,
    an ECP5 slice half one LUT4 (a LUT RAM cell needs two) and one FF."""
    if arch == "ice40":
        used = {"LC": max(by_type.get("SB_LUT4", 0), sum(n for t, n in by_type.items() if t.startswith("SB_DFF"))),
                "BRAM": by_type.get("SB_RAM40_4K", 0), "DSP": by_type.get("SB_MAC16", 0), "IO": io}
    else:
        used = {"LUT": by_type.get("LUT4", 0) + 2 * by_type.get("TRELLIS_DPR16X4", 0),
                "FF": by_type.get("TRELLIS_FF", 0),
                "BRAM": by_type.get("DP16KD", 0) + by_type.get("PDPW16KD", 0),
                "DSP": by_type.get("MULT18X18D", 0), "IO": io}
    out = {}
    for k, u in used.items():
        a = dev["capacity"].get(k, 0)
        if a or u:
            out[k] = {"used": u, "available": a, "percent": round(100.0 * u / a, 1) if a else 0.0}
    return out


# device -> nextpnr flag, package, user I/O pins (the serial wrapper's threshold) and capacities as
# nextpnr-ice40/-ecp5 0.11 report them
ICE40 = {
    "hx8k": {"flag": "--hx8k", "package": "ct256", "pins": 206, "capacity": {"LC": 7680, "BRAM": 32, "IO": 206}},
    "up5k": {"flag": "--up5k", "package": "sg48", "pins": 39, "capacity": {"LC": 5280, "BRAM": 30, "DSP": 8, "IO": 39}},
    "hx1k": {"flag": "--hx1k", "package": "tq144", "pins": 95, "capacity": {"LC": 1280, "BRAM": 16, "IO": 96}},
}
ECP5 = {
    "25k": {"flag": "--25k", "package": "CABGA381", "pins": 197, "part": "LFE5U-25F-CABGA381",
            "capacity": {"LUT": 24288, "FF": 24288, "BRAM": 56, "DSP": 28, "IO": 197}},
    "45k": {"flag": "--45k", "package": "CABGA381", "pins": 245, "part": "LFE5U-45F-CABGA381",
            "capacity": {"LUT": 43848, "FF": 43848, "BRAM": 108, "DSP": 72, "IO": 245}},
    "85k": {"flag": "--85k", "package": "CABGA381", "pins": 365, "part": "LFE5U-85F-CABGA381",
            "capacity": {"LUT": 83640, "FF": 83640, "BRAM": 208, "DSP": 156, "IO": 365}},
}
DEVICES = {"ice40": ICE40, "ecp5": ECP5}
DEFAULT_DEVICE = {"ice40": "hx8k", "ecp5": "25k"}
ICE40_DEVICES = {k: (v["flag"], v["package"], v["pins"]) for k, v in ICE40.items()}   # (compatibility)


def check_device(target: str, device: str | None) -> str | None:
    """The device of ``target`` (its default for None); LegoError naming --device otherwise."""
    if target not in TARGETS:
        raise LegoError(f"synth: unknown target '{target}' (allowed: {', '.join(TARGETS)})")
    if target == "generic":
        if device is not None:
            raise LegoError(f"--device: the generic target has no device (got '{device}'; devices are for "
                            f"--target ice40 ({', '.join(ICE40)}) or ecp5 ({', '.join(ECP5)}))")
        return None
    if device is None:
        return DEFAULT_DEVICE[target]
    if device not in DEVICES[target]:
        raise LegoError(f"--device: unknown {target} device '{device}' (allowed: {', '.join(DEVICES[target])})")
    return device


def _fpga(arch: str, tool: str, top: str, ports: list[dict], srcs: list[str], work: Path, deadline: float,
          device: str, seed: int, dsp: bool | None, wrap: bool | None) -> dict:
    dev = DEVICES[arch][device]
    pins = sum(int(p["width"]) for p in ports)
    wrapped = pins > dev["pins"] if wrap is None else wrap
    res: dict = {"device": device, "package": dev["package"], "seed": seed, "pins": pins,
                 "package_pins": dev["pins"], "wrapped": wrapped}
    if "part" in dev:
        res["part"] = dev["part"]
    place_top = top
    if wrapped:
        text, info = wrapper_verilog(top, ports)
        (work / "src" / "lego_synth_wrap.v").write_text(text)
        srcs = srcs + ["src/lego_synth_wrap.v"]
        place_top = "lego_synth_wrap"
        res.update(info)
    read = "\n".join(f"read_verilog {s}" for s in srcs)
    auto_dsp = dsp is None
    dsp_cap = dev["capacity"].get("DSP", 0)
    dsp = dsp_cap > 0 and (auto_dsp or bool(dsp))      # the HX parts have no DSP
    cmd = f"synth_{arch} -top {place_top}"
    dsp_cell = "SB_MAC16" if arch == "ice40" else "MULT18X18D"

    def opts_for(dsp):
        if arch == "ice40":
            return " -dsp" if dsp else ""
        return "" if dsp else " -nodsp"

    def run_synth(opts):
        script = (f"{read}\n{cmd}{opts}\n"
                  f"delete t:$scopeinfo\ntee -q -o {arch}.json stat -json\nwrite_json netlist.json\n")
        r, log = _yosys(tool, script, work, deadline, arch)
        if r.returncode != 0:
            raise LegoError(f"synth: synth_{arch} failed on '{top}':\n{_tail(log)}")
        return dict(sorted(_stat(work / f"{arch}.json").get("num_cells_by_type", {}).items())), log

    by_type, log = run_synth(opts_for(dsp))
    if auto_dsp and dsp and by_type.get(dsp_cell, 0) > dsp_cap:
        dsp = False                               # more multipliers than DSP blocks: all of them in logic
        by_type, log = run_synth(opts_for(dsp))
    res["dsp_enabled"] = dsp
    res["memories"] = memory_mapping(log)
    res["placed_top"] = place_top
    if arch == "ice40":
        res.update({
            "lut4": by_type.get("SB_LUT4", 0),
            "dff": sum(n for t, n in by_type.items() if t.startswith("SB_DFF")),
            "carry": by_type.get("SB_CARRY", 0),
            "bram": by_type.get("SB_RAM40_4K", 0),
            "dsp": by_type.get("SB_MAC16", 0),
        })
    else:
        res.update({
            "lut4": by_type.get("LUT4", 0),
            "dff": by_type.get("TRELLIS_FF", 0),
            "carry": by_type.get("CCU2C", 0),
            "bram": by_type.get("DP16KD", 0) + by_type.get("PDPW16KD", 0),
            "lutram": by_type.get("TRELLIS_DPR16X4", 0),
            "dsp": by_type.get("MULT18X18D", 0) + by_type.get("ALU54B", 0),
        })
    res["cells_by_type"] = by_type
    io = res["wrapper_pins"] if wrapped else pins
    est = _estimate(arch, dev, by_type, io)
    over = _over(est)       # cannot fit: nextpnr only packs, for the packed figures

    t_pnr = time.monotonic()
    pnr = f"nextpnr-{arch}"
    cmd = [_require(pnr), dev["flag"], "--package", dev["package"], "--json", "netlist.json",
           "--seed", str(seed), "--timing-allow-fail", "--report", "report.json", "--log", "nextpnr.log"]
    if arch == "ice40":
        cmd.append("--pcf-allow-unconstrained")
    if over:
        cmd.append("--pack-only")
    r = _run(cmd, work, deadline, pnr)
    log = (work / "nextpnr.log").read_text() if (work / "nextpnr.log").exists() else ""
    log = log or (r.stdout + r.stderr)
    util = parse_utilisation(log)
    figs = fit_figures(arch, util)
    if over or r.returncode != 0:
        if over and not _over(figs):       # nextpnr did not get to its utilisation report
            figs, source = est, "yosys (lower bounds of the packed cells)"
        else:
            source = "nextpnr (packed)"
        if _over(figs):
            res.update({"fit": False, "fit_figures": figs, "fit_source": source, "utilisation": util})
            raise DoesNotFit(fit_line(device, figs), res)
        raise LegoError(f"synth: {pnr} failed on '{top}' ({device}/{dev['package']}):\n{_tail(log)}")
    res["pnr_s"] = round(time.monotonic() - t_pnr, 2)
    fmax: dict[str, float] = {}
    for m in re.finditer(r"Max frequency for clock\s+'([^']+)':\s*([0-9.]+)\s*MHz", log):
        fmax[m.group(1)] = float(m.group(2))  # later lines (final timing) overwrite earlier ones
    res["fmax_by_clock"] = fmax
    res["fmax_mhz"] = min(fmax.values()) if fmax else None
    if not fmax:
        res["fmax_note"] = ("no register-to-register path in the fabric (none, or all absorbed "
                            "into DSP or block RAM cells)")
    res["max_delay_ns"] = {" ".join(m.group(1).split()): float(m.group(2)) for m in
                           re.finditer(r"Max delay (.+?)\s*:\s*([0-9.]+) ns", log)}
    if (work / "report.json").exists():
        util = {}
        for k, v in json.loads((work / "report.json").read_text()).get("utilization", {}).items():
            used, avail = int(v.get("used", 0)), int(v.get("available", 0))
            util[k] = {"used": used, "available": avail,
                       "percent": round(100.0 * used / avail, 1) if avail else 0.0}
    res["utilisation"] = util
    res["fit"] = True
    res["fit_figures"] = fit_figures(arch, util)
    res["fit_source"] = "nextpnr"
    lc = "ICESTORM_LC" if arch == "ice40" else "TRELLIS_COMB"
    res["io"] = util.get("SB_IO" if arch == "ice40" else "TRELLIS_IO", {}).get("used", io)
    res["lc_percent"] = util.get(lc, {}).get("percent")
    return res


# ------------------------------------------------------------------------------------------- API
def synth(design_dir: Path, target: str = "generic", *, seed: int = 1, timeout_s: float = 600,
          device: str | None = None, dsp: bool | None = None, wrap: bool | None = None,
          yosys: str | None = None, blackbox: bool = True, memories: str | None = None) -> dict:
    """Synthesise the design in ``design_dir`` for ``target`` ("generic", "ice40" or "ecp5") and return a
    report dict (see docs/synth.md). ``device``: ice40 hx8k (default, ct256), up5k (sg48) or hx1k (tq144);
    ecp5 25k (default), 45k or 85k (CABGA381). ``dsp``/``wrap``: None = automatic. Raises CheckFailed when
    ``check -assert`` fails or latches are inferred (generic), DoesNotFit (a LegoError, with ``result``)
    when the design needs more of a resource than the device has, LegoError on bad input, missing tools,
    tool errors or timeout. ``yosys``: a Yosys binary to use instead of ``find_tool``'s (a native build for
    designs beyond WebAssembly's 4 GiB). ``blackbox``: keep the manifest's ``synth.blackbox`` modules (hard or
    analog macros such as DOTA's photonic-core twins) as black boxes (generic target only; the report's
    ``blackboxes`` counts their instances); False synthesizes them as logic too. ``memories`` (generic target
    only): "ff" (None, the default) maps memories to flip-flops; "macro" keeps them as SRAM macros and lists
    them in ``macros`` (lego/synth_memories.py)."""
    device = check_device(target, device)
    memories = check_memories(target, memories)
    top, ports, files, man = load_design_full(Path(design_dir))
    boxes, why = _blackboxes(man) if blackbox else ([], "")
    _check_modules(boxes, files)
    if boxes and target != "generic":
        raise LegoError(f"--target: {target} places every cell, and '{top}' has black-box modules "
                        f"({', '.join(boxes)}: {why or 'macros'}); use --target generic, or --no-blackbox "
                        f"to place them as logic")
    tool = _require("yosys", yosys)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    res: dict = {"target": target, "top": top, "design_dir": str(design_dir), "yosys": tool,
                 "in_bits": sum(int(p["width"]) for p in ports if p["direction"] == "in"),
                 "out_bits": sum(int(p["width"]) for p in ports if p["direction"] == "out")}
    with tempfile.TemporaryDirectory(prefix="lego_synth_") as tmp:
        work = Path(tmp)
        srcs = _stage(files, work)
        if target == "generic":
            res.update(_generic(tool, top, srcs, work, deadline, boxes, memories))
            if boxes:
                res["blackbox_reason"] = why
        else:
            try:
                res.update(_fpga(target, tool, top, ports, srcs, work, deadline, device, seed, dsp, wrap))
            except DoesNotFit as e:
                res.update(e.result)
                res["time_s"] = round(time.monotonic() - t0, 2)
                e.result = res
                raise
    res["time_s"] = round(time.monotonic() - t0, 2)
    return res


def format_table(result: dict) -> str:
    """A short two-column human-readable summary of a ``synth`` result."""
    if result.get("target") in ("ice40", "ecp5"):
        fm = result.get("fmax_mhz")
        mem = result.get("memories", {})
        rows = [("device", (result.get("part") or f"{result['device']}/{result['package']}")
                 + (" (wrapped)" if result.get("wrapped") else "")),
                ("Fmax", f"{fm:.1f} MHz" if fm else "n/a (no reg-to-reg path)"),
                ("LUT4", result["lut4"]), ("DFF", result["dff"]), ("carry", result["carry"]),
                ("BRAM", result["bram"])]
        if "lutram" in result:
            rows.append(("LUT RAM (DPR16X4)", result["lutram"]))
        rows += [("DSP", result["dsp"]), ("IO", result["io"]),
                 ("memories", f"{mem.get('block_ram', 0)} block RAM, {mem.get('lut_ram', 0)} LUT RAM, "
                              f"{mem.get('logic', 0)} in logic")]
        for k, v in result.get("fit_figures", {}).items():
            rows.append((f"{k} used", f"{v['used']:,}/{v['available']:,} ({v['percent']}%)"))
    else:
        rows = [("cells", result["cells"]), ("flip-flop bits", result["flipflops"]),
                ("logic cells", result["logic_cells"]),
                ("memory bits", result["memory_bits"]),
                ("gate equivalents", f"{result['gate_equivalents']:,.0f} NAND2 (approx.)"),
                ("LUT4 estimate", result["lut4_estimate"]),
                ("latches / loops", f"{result['latches']} / {result['comb_loops']}")]
        if result.get("memories_as") == "macro":
            rows[1:4] = [("flip-flop bits", f"{result['flipflops']} (memories kept as macros)"),
                         ("logic cells", result["logic_cells"]),
                         ("memory bits", f"{result['memory_bits']} in macros "
                                         f"({result['memory_bits_before_synth']} before synthesis)")]
            rows += macro_rows(result)
        if result.get("blackboxes"):
            rows.append(("black boxes", ", ".join(f"{n} x{k}" for n, k in result["blackboxes"].items())
                         + (f" ({result['blackbox_reason']})" if result.get("blackbox_reason") else "")))
    rows.append(("time", f"{result.get('time_s', 0):.1f} s"))
    head = f"{result.get('top')} [{result.get('target')}]"
    w = max(len(k) for k, _ in rows)
    return "\n".join([head] + [f"  {k:<{w}}  {v}" for k, v in rows])

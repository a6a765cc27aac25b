"""How the generic synthesis flow treats inferred memories (``lego synth DIR --memories ff|macro``).

* ``ff`` (the default): Yosys' own ``synth -flatten``; ``memory_map`` turns every memory into flip-flops
  and multiplexers, as an FPGA without block RAM would.
* ``macro``: the memories stay ``$mem_v2`` cells, as an ASIC flow keeps them for SRAM macros. The script is
  ``synth``'s own (``help synth`` of Yosys 0.70) up to the ``fine`` label, then its fine steps without
  ``memory_map`` (except on the ROMs Yosys' ``proc_rom`` makes of case statements: those are the logic's
  lookup tables, not memories of the RTL, and are mapped to logic as under ``ff``); ``techmap`` leaves
  ``$mem_v2`` alone. The report lists each kept memory (``macros``) and
  counts the logic around them separately. A memory with an asynchronous (unclocked) read port cannot be an
  SRAM macro: such memories are flagged (``async_read``) and counted (``async_read_memories``).

See docs/synth.md, "Memories as SRAM macros".
"""
from __future__ import annotations

import re

from .errors import LegoError

MEMORY_MODES = ("ff", "macro")

MEM_CELL = "$mem_v2"
DUMP_FILE = "mems.il"
ROMS_FILE = "case_roms.txt"
# ROMs Yosys' proc_rom makes of case statements (lookup tables of the logic, not memories of the RTL)
_CASE_ROMS = f"*/t:{MEM_CELL} */*proc_rom* %i"
# the fine steps of `help synth` (Yosys 0.70) with memory_map restricted to those ROMs
_FINE_MACRO = (f"tee -q -o {ROMS_FILE} select -list {_CASE_ROMS}\n"
               f"opt -fast -full\nmemory_map {_CASE_ROMS}\nopt -full\ntechmap\nopt -fast\nabc\nopt -fast\n")
_SYNTH_STEPS = {
    "ff": lambda top: f"synth -flatten -top {top}\n",
    "macro": lambda top: f"synth -flatten -top {top} -run begin:fine\n{_FINE_MACRO}",
}


def check_memories(target: str, memories: str | None) -> str | None:
    """The memory mode of a run: ``ff`` by default on the generic target, None on the FPGA targets (their
    flows map memories to block RAM, LUT RAM or logic themselves). LegoError naming --memories otherwise."""
    if target != "generic":
        if memories is not None:
            raise LegoError(f"--memories: only for --target generic (the {target} flow maps memories to block "
                            f"RAM, LUT RAM or logic itself; got '{memories}')")
        return None
    if memories is None:
        return "ff"
    if memories not in MEMORY_MODES:
        raise LegoError(f"--memories: unknown mode '{memories}' (allowed: {', '.join(MEMORY_MODES)})")
    return memories


def synth_steps(mode: str, top: str) -> str:
    """The Yosys commands that synthesize the flattened design under memory mode ``mode``; under ``macro``
    also a dump of the kept memory cells into ``DUMP_FILE``."""
    steps = _SYNTH_STEPS[mode](top)
    return steps if mode == "ff" else f"{steps}tee -q -o {DUMP_FILE} dump t:{MEM_CELL}\n"


# ------------------------------------------------------------------------------------- RTLIL parse
_CELL_RE = re.compile(r"^\s*cell\s+(\S+)\s+(\S+)\s*$")
_PARAM_RE = re.compile(r"^\s*parameter\s+(?:signed\s+|real\s+)*\\(\S+)\s+(.*?)\s*$")
_CONST_RE = re.compile(r"^(\d+)'([01xzm-]*)$")


def _value(text: str):
    """An RTLIL parameter value: a decimal integer, a sized constant (a string of bits, MSB first) or a
    quoted string (unescaped)."""
    if text.startswith('"'):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    m = _CONST_RE.match(text)
    if m:
        return m.group(2).rjust(int(m.group(1)), "0")
    return int(text)


def mem_cells(rtlil: str) -> list[dict]:
    """{name: parameter value} of every ``$mem_v2`` cell of an RTLIL dump (``dump t:$mem_v2``)."""
    cells, cur = [], None
    for line in rtlil.splitlines():
        m = _CELL_RE.match(line)
        if m:
            cur = {"_type": m.group(1), "_name": m.group(2)} if m.group(1) == MEM_CELL else None
            if cur is not None:
                cells.append(cur)
            continue
        m = _PARAM_RE.match(line)
        if m and cur is not None:
            cur[m.group(1)] = _value(m.group(2))
    return cells


def _bit(bits, i: int) -> str:
    """Bit ``i`` (LSB = 0) of a per-port parameter (a bit string, MSB first, or an int)."""
    if isinstance(bits, int):
        return str((bits >> i) & 1)
    return bits[len(bits) - 1 - i] if i < len(bits) else "0"


def _logical_ports(n: int, continuation) -> list[int]:
    """Indices of the first sub-port of each port: a wide port spans several and sets the continuation bit
    of all but its first."""
    return [i for i in range(n) if _bit(continuation, i) != "1"]


def macro(cell: dict) -> dict:
    """One kept memory: name, width, depth (words), bits, read/write ports and how its reads are clocked."""
    width, depth = int(cell["WIDTH"]), int(cell["SIZE"])
    rd = _logical_ports(int(cell["RD_PORTS"]), cell.get("RD_WIDE_CONTINUATION", 0))
    wr = _logical_ports(int(cell["WR_PORTS"]), cell.get("WR_WIDE_CONTINUATION", 0))
    sync = sum(_bit(cell["RD_CLK_ENABLE"], i) == "1" for i in rd)
    name = str(cell.get("MEMID") or cell["_name"]).lstrip("\\")
    return {"name": name, "width": width, "depth": depth, "bits": width * depth,
            "read_ports": len(rd), "write_ports": len(wr), "sync_read_ports": sync,
            "async_read_ports": len(rd) - sync, "async_read": sync < len(rd)}


def macro_report(rtlil: str, case_roms: str = "") -> dict:
    """The report fields of the kept memories: ``macros`` (by name), ``macro_count``, ``memory_bits``,
    ``async_read_memories`` and their names; ``case_roms``: how many case-statement ROMs (``select -list``
    lines) were mapped to logic."""
    macros = sorted((macro(c) for c in mem_cells(rtlil)), key=lambda m: m["name"])
    return {"macros": macros, "macro_count": len(macros), "memory_bits": sum(m["bits"] for m in macros),
            "async_read_memories": sum(m["async_read"] for m in macros),
            "async_read_names": [m["name"] for m in macros if m["async_read"]],
            "case_roms_as_logic": len({ln.strip() for ln in case_roms.splitlines()
                                       if "/" in ln and not ln.startswith("Warning:")})}


def macro_rows(result: dict, limit: int = 20) -> list[tuple[str, str]]:
    """Rows of ``format_table`` for the kept memories, at most ``limit`` of them listed."""
    ms = result.get("macros", [])
    rows = [("memory macros", f"{result['macro_count']} ({result['memory_bits']:,} bits; "
                              f"{result['async_read_memories']} with async reads"
                              + (f"; {result['case_roms_as_logic']} case-statement ROMs mapped to logic"
                                 if result.get("case_roms_as_logic") else "") + ")")]
    for m in ms[:limit]:
        clk = "async read" if m["async_read"] else "sync read"
        rows.append((f"  {m['name']}", f"{m['width']} x {m['depth']} ({m['bits']:,} bits), "
                                       f"{m['read_ports']}R/{m['write_ports']}W, {clk}"))
    if len(ms) > limit:
        rows.append(("  ...", f"{len(ms) - limit} more (--json lists all)"))
    return rows

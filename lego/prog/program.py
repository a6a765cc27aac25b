"""Program files of the programmable array: ``PROG`` (binary) and ``PROG.json`` (the same, readable).

Binary layout (little endian)::

    b"LEGOPRG\\x01"                 magic and format version 1
    u32 n, n bytes                   header: UTF-8 JSON (design_hash, layers: mode, tile, dram placement, ...)
    u32 k, k x u64                   the command words (lego.prog.spec)
    u32 crc32                        of every byte before it

A program is refused (``LegoError`` naming ``--program``) when it is truncated, corrupt (CRC, JSON,
a command word the hardware does not define), compiled for another design (the header's ``design_hash``
is not the design's), or when its commands leave the design's limits (``check``).
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from ..errors import LegoError
from .spec import CSR_NAME, DIM_BITS, TENSORS, WIN_CSR, CommandError, decode, encode, window_segments

MAGIC = b"LEGOPRG\x01"


def dumps(header: dict, words: list[int]) -> bytes:
    h = json.dumps(header, sort_keys=True).encode()
    body = MAGIC + struct.pack("<I", len(h)) + h + struct.pack("<I", len(words)) + struct.pack(f"<{len(words)}Q", *words)
    return body + struct.pack("<I", zlib.crc32(body))


def loads(data: bytes, field: str = "--program") -> tuple[dict, list[int]]:
    if len(data) < len(MAGIC) + 4 or data[:len(MAGIC)] != MAGIC:
        raise LegoError(f"{field}: not a lego program (no LEGOPRG header; lego compile writes one)")
    if len(data) < len(MAGIC) + 12:
        raise LegoError(f"{field}: truncated ({len(data)} bytes)")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    pos = len(MAGIC)
    (n,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if pos + n + 4 > len(body):
        raise LegoError(f"{field}: truncated (header of {n} bytes, file of {len(data)})")
    hdr_bytes = body[pos:pos + n]
    pos += n
    (k,) = struct.unpack_from("<I", body, pos)
    pos += 4
    if pos + 8 * k != len(body):
        raise LegoError(f"{field}: truncated or padded ({k} commands declared, {(len(body) - pos) // 8} present)")
    if zlib.crc32(body) != crc:
        raise LegoError(f"{field}: corrupt (CRC mismatch)")
    try:
        header = json.loads(hdr_bytes.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LegoError(f"{field}: corrupt header (not JSON)") from None
    if not isinstance(header, dict):
        raise LegoError(f"{field}: corrupt header (not a JSON object)")
    return header, list(struct.unpack_from(f"<{k}Q", body, pos))


def write(path: Path, header: dict, words: list[int], cmds: list[dict]) -> None:
    """``PROG`` and ``PROG.json``: the header's fields indented, then ``commands``, one compact object a
    line (streamed: a model's millions of commands are never one string in memory)."""
    path = Path(path)
    path.write_bytes(dumps(header, words))
    head = json.dumps({**header, "commands": []}, indent=1, sort_keys=True)
    at = head.index('"commands": []') + len('"commands": [')
    with open(str(path) + ".json", "w") as f:
        f.write(head[:at] + "\n")
        for i, (w, c) in enumerate(zip(words, cmds)):
            f.write((",\n" if i else "") + json.dumps({"word": f"{w:#018x}", **c}, separators=(", ", ": ")))
        f.write("\n" + head[at:] + "\n")


def read(path: Path, man: dict, field: str = "--program") -> tuple[dict, list[dict]]:
    """The program at ``path`` for the design of ``man``: (header, decoded commands), every check done."""
    path = Path(path)
    if not path.is_file():
        raise LegoError(f"{field}: file '{path}' not found")
    header, words = loads(path.read_bytes(), field)
    prog = man.get("prog") or {}
    if header.get("design_hash") != prog.get("design_hash"):
        raise LegoError(f"{field}: compiled for another design (design hash {str(header.get('design_hash'))[:12]}, "
                        f"this design {str(prog.get('design_hash'))[:12]}); recompile with lego compile DIR")
    cmds = []
    for i, w in enumerate(words):
        try:
            cmds.append(decode(w, len(prog["modes"])))
        except CommandError as e:
            raise LegoError(f"{field}: command {i}: {e}") from None
    for first, seg in segments(header, cmds, field):
        check(prog, header, seg, field, first)
    return header, cmds


def segments(header: dict, cmds: list, field: str = "--program") -> list[tuple[int, list]]:
    """(first command index, commands) of each layer's segment; the segments must tile the stream."""
    from .model import layer_records
    try:
        spans = [tuple(r["commands"]) for r in layer_records(header)]
    except (KeyError, TypeError, ValueError):
        raise LegoError(f"{field}: corrupt header (layer records)") from None
    at, out = 0, []
    for first, count in spans:
        if first != at or count < 1:
            raise LegoError(f"{field}: corrupt header (layer commands {first}+{count}, expected to start at {at})")
        out.append((first, cmds[first:first + count]))
        at = first + count
    if at != len(cmds):
        raise LegoError(f"{field}: corrupt header (layers cover {at} of {len(cmds)} commands)")
    return out


# WIN_* registers that hold dimensions or positions (DIM_BITS wide in the hardware); the others are signed
# or 32-bit byte steps (lego/prog/spec.py)
WIN_DIMS = ("WIN_CG", "WIN_S", "WIN_H", "WIN_W", "WIN_SH", "WIN_SW", "WIN_HO", "WIN_WO", "WIN_OH0", "WIN_OW0",
            "WIN_R0", "WIN_S0", "WIN_C0", "WIN_DH", "WIN_DW", "WIN_RD0", "WIN_SD0")
# (step, first tap's pixel offset, first tap): where the step is not 0, the offset is the tap times the step
WIN_DILATION = (("WIN_DH", "WIN_RD0", "WIN_R0"), ("WIN_DW", "WIN_SD0", "WIN_S0"))
# (register, its bound): the window geometry a windowed LOAD needs, lower bounds 1 or a register above it
WIN_AT_LEAST_1 = ("WIN_CG", "WIN_S", "WIN_WO", "WIN_HO")
WIN_BELOW = (("WIN_OW0", "WIN_WO"), ("WIN_OH0", "WIN_HO"), ("WIN_C0", "WIN_CG"), ("WIN_S0", "WIN_S"))


def check_dilation(csr: dict, where: str) -> None:
    """WIN_RD0 / WIN_SD0 the first tap times its step (where the step is set; 0 is dilation 1 and the first tap
    itself), and no merged runs on dilated taps (they are not contiguous in DRAM)."""
    for step, off, tap in WIN_DILATION:
        if csr[step] and csr[off] != csr[tap] * csr[step]:
            raise LegoError(f"{where}: {off}={csr[off]} must be {tap}·{step} = {csr[tap] * csr[step]}")
    dil = [csr[step] for step, _, _ in WIN_DILATION if csr[step] > 1]
    if csr["WIN_MERGE"] and dil:
        raise LegoError(f"{where}: WIN_MERGE=1 with dilation WIN_DH={csr['WIN_DH']}, WIN_DW={csr['WIN_DW']}: "
                        f"dilated taps are not contiguous (WIN_MERGE must be 0)")


def check_window(csr: dict, eb: int, dram: int, where: str) -> None:
    """A windowed LOAD's registers: the geometry ``spec.window_segments`` walks (dims within DIM_BITS, at
    least one channel, window column, output row and column; the first position inside them) and every
    segment it reads inside the program's DRAM."""
    for n in WIN_DIMS:
        if csr[n] >= 1 << DIM_BITS:
            raise LegoError(f"{where}: {n}={csr[n]} overflows the {DIM_BITS}-bit window registers")
    for n in WIN_AT_LEAST_1:
        if csr[n] < 1:
            raise LegoError(f"{where}: {n}={csr[n]} must be at least 1 for a windowed LOAD")
    for n, bound in WIN_BELOW:
        if csr[n] >= csr[bound]:
            raise LegoError(f"{where}: {n}={csr[n]} must be below {bound}={csr[bound]}")
    if csr["WIN_MERGE"] not in (0, 1):
        raise LegoError(f"{where}: WIN_MERGE={csr['WIN_MERGE']} must be 0 or 1")
    check_dilation(csr, where)      # (before the pixel rule: a dilated WIN_PIX is not one pixel either)
    if csr["WIN_MERGE"] and csr["WIN_PIX"] != csr["WIN_CG"] * eb:
        raise LegoError(f"{where}: WIN_MERGE=1 needs a pixel of exactly WIN_CG channels (WIN_PIX={csr['WIN_PIX']}, "
                        f"WIN_CG·{eb}={csr['WIN_CG'] * eb}): merged taps would read other groups' channels")
    for row in window_segments(csr, eb):
        for addr, n in row:
            if addr + n * eb > dram:
                raise LegoError(f"{where}: window segment at DRAM bytes {addr}..{addr + n * eb} leaves the "
                                f"program's DRAM ({dram} bytes)")


def check(prog: dict, header: dict, cmds: list[dict], field: str = "--program", first: int = 0) -> None:
    """The commands stay inside the design's limits: tiles within the box, counter extents matching the
    bounds, DRAM accesses inside the program's DRAM, buffers loaded in the layout of the mode that reads
    them, and the read-modify-write rule of each mode (docs/programmable.md); the stream ends with END."""
    if not cmds or cmds[-1]["op"] != "END":
        raise LegoError(f"{field}: the last command of the layer at command {first} is not END")
    if any(c["op"] == "END" for c in cmds[:-1]):
        raise LegoError(f"{field}: END before the last command of the layer at command {first}")
    box = prog["box"]
    names = list(prog["dataflows"])
    eb = prog["bits"] // 8
    dram = int(header.get("dram_bytes", 0))
    csr = {n: 0 for n in CSR_NAME.values()}
    shape = {"X": (box["M"], box["K"]), "W": (box["K"], box["N"]), "Y": (box["M"], box["N"])}
    loaded = {}                      # (tensor, buf) -> (mode, rows, cols)
    im2col = bool(prog.get("im2col"))
    for i, c in enumerate(cmds):
        where = f"{field}: command {first + i} ({c['op']})"
        op = c["op"]
        if op == "SET":
            if c["reg"] in WIN_CSR and not im2col:
                raise LegoError(f"{where}: {c['reg']} is a window register, which this design has not "
                                f"(generated for {prog.get('workload', 'gemm')}; conv2d/dwconv2d designs have it)")
            csr[c["reg"]] = c["value"]
        elif op == "LOAD" and c.get("window") and not im2col:
            raise LegoError(f"{where}: a windowed LOAD (bit 56) needs the window address generator of a design "
                            f"generated for conv2d/dwconv2d (this one: {prog.get('workload', 'gemm')})")
        elif op in ("LOAD", "STORE"):
            p = "LD" if op == "LOAD" else "ST"
            t = c["tensor"] if op == "LOAD" else "Y"
            rows, cols, addr, stride = csr[f"{p}_ROWS"], csr[f"{p}_COLS"], csr[f"{p}_ADDR"], csr[f"{p}_STRIDE"]
            if not (1 <= rows <= shape[t][0] and 1 <= cols <= shape[t][1]):
                raise LegoError(f"{where}: a {rows}x{cols} tile of {t} does not fit the buffer ({shape[t][0]}x{shape[t][1]})")
            size = eb if t != "Y" else 4
            end = addr + (rows - 1) * stride + cols * size
            if c.get("window"):
                check_window(csr, eb, dram, where)
            elif end > dram:
                raise LegoError(f"{where}: DRAM bytes {addr}..{end} leave the program's DRAM ({dram} bytes)")
            if op == "LOAD":
                loaded[(t, c["buf"])] = (c["mode"], rows, cols)
            else:
                have = loaded.get(("Y", c["buf"]))
                if have is None or have[0] != c["mode"]:
                    raise LegoError(f"{where}: Y buffer {c['buf']} was not computed in mode {names[c['mode']]}")
        elif op == "COMPUTE":
            name = names[c["mode"]]
            tile = {it: csr[f"TILE_{it.upper()}"] for it in ("i", "j", "k")}
            lim = {"i": box["M"], "j": box["N"], "k": box["K"]}
            for it, v in tile.items():
                if not 1 <= v <= lim[it]:
                    raise LegoError(f"{where}: TILE_{it.upper()}={v} is outside the tile box (1..{lim[it]})")
            ext = []
            for k, (it, div) in enumerate(prog["counters"][name]):
                want = -(-tile[it] // div)
                if csr[f"EXT{k}"] != want:
                    raise LegoError(f"{where}: EXT{k}={csr[f'EXT{k}']} does not match TILE_{it.upper()}="
                                    f"{tile[it]} (mode {name} needs {want})")
                ext.append(want)
            for t, b, it in (("X", c["xbuf"], ("i", "k")), ("W", c["wbuf"], ("k", "j"))):
                have = loaded.get((t, b))
                if have is None or have[0] != c["mode"]:
                    raise LegoError(f"{where}: {t} buffer {b} was not loaded in the layout of mode {name}")
                if have[1] < tile[it[0]] or have[2] < tile[it[1]]:
                    raise LegoError(f"{where}: {t} buffer {b} holds {have[1]}x{have[2]}, the tile reads "
                                    f"{tile[it[0]]}x{tile[it[1]]}")
            if c["acc"]:
                have = loaded.get(("Y", c["ybuf"]))
                if have is None or have[0] != c["mode"]:
                    raise LegoError(f"{where}: accumulates into Y buffer {c['ybuf']}, not computed in mode {name}")
            moving = prog["y_moving"][name]
            for k in prog["fresh"][name]:
                if ext[k] > 1 and all(ext[j] == 1 for j in range(k + 1, len(ext)) if moving[j]):
                    raise LegoError(f"{where}: mode {name} revisits outputs with no step in between "
                                    f"(EXT{k}={ext[k]} with every later output counter at 1)")
            loaded[("Y", c["ybuf"])] = (c["mode"], tile["i"], tile["j"])


__all__ = ["dumps", "loads", "read", "write", "check", "encode", "TENSORS"]

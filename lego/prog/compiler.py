"""``lego compile DIR --layer gemm:M=..,N=..,K=.. --out PROG``: a GEMM layer -> a command stream.

Tensors live row-major in DRAM (X[M,K] and W[K,N] of the design's input dtype, Y[M,N] int32), each at a
4 KiB-aligned base. The layer is cut into tiles within the design's tile box; per output tile the K tiles
accumulate into one accumulator buffer, X/W buffers alternate (double buffering) and the STORE of an output
tile is placed after the loads of the next tile's first step, so loads, compute and stores overlap. The
mode and the tile are chosen per layer by the exact cycle count of ``lego.prog.timing`` over a few
candidates (the tile search of the analytical mapper lives in the simulator layer, above lego).
"""
from __future__ import annotations

import re

from ..errors import LegoError
from . import spec
from .spec import CSR, enc_compute, enc_end, enc_load, enc_set, enc_store
from .timing import program_cycles

DEFAULT_LATENCY = 20
PAGE = 4096


def parse_layer(text: str) -> dict[str, int]:
    m = re.fullmatch(r"\s*gemm\s*:\s*(.*)", text or "")
    if not m:
        raise LegoError(f"--layer: '{text}' is not gemm:M=..,N=..,K=.. (other layer kinds are not supported yet)")
    dims = {}
    for item in m.group(1).split(","):
        k, _, v = item.partition("=")
        k = k.strip().upper()
        if k not in ("M", "N", "K"):
            raise LegoError(f"--layer: unknown key '{k}' (gemm takes M, N, K)")
        try:
            dims[k] = int(v)
        except ValueError:
            raise LegoError(f"--layer: {k}='{v.strip()}' is not an integer") from None
    for k in ("M", "N", "K"):
        if k not in dims:
            raise LegoError(f"--layer: {k} missing (gemm:M=..,N=..,K=..)")
        if dims[k] < 1:
            raise LegoError(f"--layer: {k}={dims[k]} must be at least 1")
    return dims


def parse_tile(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    out = {}
    for item in text.split(","):
        k, _, v = item.partition("=")
        k = k.strip().upper()
        if k not in ("M", "N", "K"):
            raise LegoError(f"--tile: unknown key '{k}' (M, N, K)")
        try:
            out[k] = int(v)
        except ValueError:
            raise LegoError(f"--tile: {k}='{v.strip()}' is not an integer") from None
        if out[k] < 1:
            raise LegoError(f"--tile: {k}={out[k]} must be at least 1")
    return out


def _align(x: int) -> int:
    return -(-x // PAGE) * PAGE


def placement(dims: dict, eb: int) -> dict:
    M, N, K = dims["M"], dims["N"], dims["K"]
    x = {"addr": 0, "shape": [M, K], "stride": K * eb, "bytes": M * K * eb}
    w = {"addr": _align(x["bytes"]), "shape": [K, N], "stride": N * eb, "bytes": K * N * eb}
    y = {"addr": _align(w["addr"] + w["bytes"]), "shape": [M, N], "stride": N * 4, "bytes": M * N * 4}
    return {"X": x, "W": w, "Y": y, "dram_bytes": _align(y["addr"] + y["bytes"])}


class _Emitter:
    def __init__(self):
        self.words, self.cmds, self.shadow = [], [], {}

    def set(self, reg: str, value: int):
        if self.shadow.get(reg) != value:
            self.shadow[reg] = value
            self.words.append(enc_set(CSR[reg], value))
            self.cmds.append({"op": "SET", "reg": reg, "value": value})

    def put(self, word: int, cmd: dict):
        self.words.append(word)
        self.cmds.append(cmd)


def _degenerate_k(prog: dict, name: str, tm: int, tn: int) -> int | None:
    """Where an output tile of tm x tn would make the mode revisit an output element in consecutive steps
    (every output counter inside a revisit counter at extent 1), the K tile that keeps that revisit
    counter at extent 1 (one step of it per COMPUTE); None where tiles are free."""
    cs = prog["counters"][name]
    tile = {"i": tm, "j": tn}
    moving = prog["y_moving"][name]
    for k in prog["fresh"][name]:
        inner = [j for j in range(k + 1, len(cs)) if moving[j]]
        if all(-(-tile[cs[j][0]] // cs[j][1]) == 1 for j in inner if cs[j][0] in tile):
            return cs[k][1]
    return None


def build(prog: dict, dims: dict, mode: str, tile: dict) -> tuple[list[int], list[dict], dict]:
    names = list(prog["dataflows"])
    mi = names.index(mode)
    eb = prog["bits"] // 8
    pl = placement(dims, eb)
    M, N, K = dims["M"], dims["N"], dims["K"]
    tm, tn, tk = tile["M"], tile["N"], tile["K"]
    e = _Emitter()
    cs = prog["counters"][mode]
    xb = wb = 0
    pending = None                       # (m0, n0, rows, cols, ybuf) of the last output tile

    def store(p):
        m0, n0, rows, cols, yb = p
        e.set("ST_ADDR", pl["Y"]["addr"] + (m0 * N + n0) * 4)
        e.set("ST_ROWS", rows)
        e.set("ST_COLS", cols)
        e.set("ST_STRIDE", pl["Y"]["stride"])
        e.put(enc_store(yb, mi), {"op": "STORE", "buf": yb, "mode": mi})
    o = 0
    for m0 in range(0, M, tm):
        mt = min(tm, M - m0)
        for n0 in range(0, N, tn):
            nt = min(tn, N - n0)
            yb = o % 2
            o += 1
            kk = _degenerate_k(prog, mode, mt, nt)
            tk_eff = min(tk, kk) if kk else tk
            for s, k0 in enumerate(range(0, K, tk_eff)):
                kt = min(tk_eff, K - k0)
                e.set("LD_ADDR", pl["X"]["addr"] + (m0 * K + k0) * eb)
                e.set("LD_ROWS", mt)
                e.set("LD_COLS", kt)
                e.set("LD_STRIDE", pl["X"]["stride"])
                e.put(enc_load(0, xb, mi), {"op": "LOAD", "tensor": "X", "buf": xb, "mode": mi})
                e.set("LD_ADDR", pl["W"]["addr"] + (k0 * N + n0) * eb)
                e.set("LD_ROWS", kt)
                e.set("LD_COLS", nt)
                e.set("LD_STRIDE", pl["W"]["stride"])
                e.put(enc_load(1, wb, mi), {"op": "LOAD", "tensor": "W", "buf": wb, "mode": mi})
                if s == 0 and pending is not None:
                    store(pending)
                    pending = None
                t = {"i": mt, "j": nt, "k": kt}
                for it in ("i", "j", "k"):
                    e.set(f"TILE_{it.upper()}", t[it])
                for j, (it, div) in enumerate(cs):
                    e.set(f"EXT{j}", -(-t[it] // div))
                e.put(enc_compute(mi, xb, wb, yb, int(s > 0)),
                      {"op": "COMPUTE", "mode": mi, "xbuf": xb, "wbuf": wb, "ybuf": yb, "acc": int(s > 0)})
                xb ^= 1
                wb ^= 1
            pending = (m0, n0, mt, nt, yb)
    store(pending)
    e.put(enc_end(), {"op": "END"})
    return e.words, e.cmds, pl


def _candidates(box: dict, dims: dict) -> list[dict]:
    out = []
    for fm in (1, 2):
        for fk in (1, 2):
            t = {"M": min(dims["M"], box["M"] // fm or 1), "N": min(dims["N"], box["N"] // fm or 1),
                 "K": min(dims["K"], box["K"] // fk or 1)}
            if t not in out:
                out.append(t)
    return out


def compile_gemm(man: dict, dims: dict, mode: str | None = None, tile: dict | None = None,
                 latency: int = DEFAULT_LATENCY) -> tuple[dict, list[int], list[dict]]:
    """-> (header, words, decoded commands) of the fastest candidate (exact cycles at ``latency``)."""
    prog = man.get("prog")
    if not prog:
        raise LegoError("DIR: not a programmable design (lego gen ... --scratchpad-kib N --accumulator-kib N)")
    box = prog["box"]
    eb = prog["bits"] // 8
    pl = placement(dims, eb)
    if pl["dram_bytes"] > 1 << spec.ADDR_BITS:
        raise LegoError(f"--layer: the tensors need {pl['dram_bytes']:,} bytes of DRAM, more than the "
                        f"{spec.ADDR_BITS}-bit address space")
    for k, v in dims.items():
        if v >= 1 << 31:
            raise LegoError(f"--layer: {k}={v} overflows the 32-bit address registers")
    if mode is not None and mode not in prog["modes"]:
        raise LegoError(f"--mode: '{mode}' is not a dataflow of this design (allowed: {', '.join(prog['modes'])})")
    if tile is not None:
        for k in ("M", "N", "K"):
            tile.setdefault(k, min(dims[k], box[k]))
            if tile[k] > box[k]:
                raise LegoError(f"--tile: {k}={tile[k]} does not fit the design's buffers (tile box "
                                f"M={box['M']} N={box['N']} K={box['K']})")
    modes = [mode] if mode else list(prog["dataflows"])
    best = None
    for name in modes:
        for t in ([tile] if tile else _candidates(box, dims)):
            words, cmds, _ = build(prog, dims, name, t)
            cyc = program_cycles(prog, cmds, latency).cycles
            if best is None or cyc < best[0]:
                best = (cyc, name, t, words, cmds)
    cyc, name, t, words, cmds = best
    header = {"format": 1, "design_hash": prog["design_hash"], "layer": {"op": "gemm", **dims},
              "mode": name, "tile": t, "dram": {k: pl[k] for k in ("X", "W", "Y")},
              "dram_bytes": pl["dram_bytes"], "commands": len(words),
              "predicted": {"latency": latency, "cycles": cyc}}
    return header, words, cmds

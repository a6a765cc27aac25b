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
from collections import Counter

from ..errors import LegoError
from . import spec
from .lower import LayerSpec, check_spec
from .spec import CSR, enc_compute, enc_end, enc_load, enc_set, enc_store
from .timing import Overrun, Timeline, compute_cycles, load_cycles

DEFAULT_LATENCY = 20
PAGE = 4096


def _parse_kv(text: str, field: str, allowed: tuple[str, ...], hint: str) -> dict[str, int]:
    """``K=V,...`` with integer values >= 1 (keys upper-cased) -> dict; unknown keys and non-integers
    are refused naming ``field``."""
    out = {}
    for item in text.split(","):
        k, _, v = item.partition("=")
        k = k.strip().upper()
        if k not in allowed:
            raise LegoError(f"{field}: unknown key '{k}' ({hint})")
        try:
            out[k] = int(v)
        except ValueError:
            raise LegoError(f"{field}: {k}='{v.strip()}' is not an integer") from None
        if out[k] < 1 and k != "PAD":
            raise LegoError(f"{field}: {k}={out[k]} must be at least 1")
    return out


# --layer KIND:..., the keys each kind takes (required, optional with their defaults)
LAYER_KINDS = {
    "gemm": (("M", "N", "K"), {}),
    "bmm": (("B", "M", "N", "K"), {}),
    "conv2d": (("C", "H", "W", "K", "R", "S"), {"N": 1, "STRIDE": 1, "PAD": 0, "GROUPS": 1, "DIL": 1}),
    "dwconv2d": (("C", "H", "W", "R", "S"), {"N": 1, "STRIDE": 1, "PAD": 0, "DIL": 1}),
}


def _layer_spec(kind: str, d: dict[str, int]) -> LayerSpec:
    if kind in ("gemm", "bmm"):
        return LayerSpec("layer", kind, d)
    if kind == "dwconv2d":
        d = {**d, "K": d["C"], "GROUPS": d["C"]}
    dims = {k: d[k] for k in ("N", "C", "H", "W", "K", "R", "S")}
    s, p, dil = d["STRIDE"], d["PAD"], d["DIL"]
    return LayerSpec("layer", kind, dims, (s, s), (p, p, p, p), d["GROUPS"], (dil, dil))


def parse_layer(text: str) -> LayerSpec:
    m = re.fullmatch(r"\s*(\w+)\s*:\s*(.*)", text or "")
    if not m or m.group(1) not in LAYER_KINDS:
        raise LegoError(f"--layer: '{text}' is not KIND:KEY=VALUE,... (kinds: gemm:M=..,N=..,K=.., "
                        f"bmm:B=..,M=..,N=..,K=.., conv2d:C=..,H=..,W=..,K=..,R=..,S=..[,N,STRIDE,PAD,GROUPS,DIL], "
                        f"dwconv2d:C=..,H=..,W=..,R=..,S=..[,N,STRIDE,PAD,DIL])")
    kind = m.group(1)
    need, opt = LAYER_KINDS[kind]
    dims = _parse_kv(m.group(2), "--layer", need + tuple(opt), f"{kind} takes {', '.join(need + tuple(opt))}")
    for k in need:
        if k not in dims:
            raise LegoError(f"--layer: {k} missing ({kind}:{'=..,'.join(need)}=..)")
    spec = _layer_spec(kind, {**opt, **dims})
    check_spec(spec, "--layer")
    return spec


def parse_tile(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    return _parse_kv(text, "--tile", ("M", "N", "K"), "M, N, K")


def _align(x: int) -> int:
    return -(-x // PAGE) * PAGE


def placement(dims: dict, eb: int) -> dict:
    M, N, K = dims["M"], dims["N"], dims["K"]
    x = {"addr": 0, "shape": [M, K], "stride": K * eb, "bytes": M * K * eb}
    w = {"addr": _align(x["bytes"]), "shape": [K, N], "stride": N * eb, "bytes": K * N * eb}
    y = {"addr": _align(w["addr"] + w["bytes"]), "shape": [M, N], "stride": N * 4, "bytes": M * N * 4}
    return {"X": x, "W": w, "Y": y, "dram_bytes": _align(y["addr"] + y["bytes"])}


class _Emitter:
    """Collects a command stream (words and decoded commands, a SET only where the register changes) and,
    given a ``Timeline``, times it as it is written: the timeline reads this emitter's shadow registers."""

    def __init__(self, tl: Timeline | None = None, keep: bool = True):
        self.words, self.cmds, self.shadow = [], [], {}
        self.tl, self.keep = tl, keep
        assert keep or tl is not None
        if tl is not None:
            tl.csr = self.shadow

    def set(self, reg: str, value: int):
        if self.shadow.get(reg) != value:
            self.shadow[reg] = value
            if self.keep:
                self.words.append(enc_set(CSR[reg], value))
                self.cmds.append({"op": "SET", "reg": reg, "value": value})
            if self.tl is not None:
                self.tl.step_set()

    def put(self, word: int, cmd: dict):
        if self.keep:
            self.words.append(word)
            self.cmds.append(cmd)
        if self.tl is not None:
            self.tl.step(cmd)


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


def emit_gemm(e: _Emitter, prog: dict, dims: dict, mode: str, tile: dict, pl: dict, load_x=None) -> None:
    """The commands of one GEMM (no END) into ``e``: X, W, Y at ``pl[t]['addr']`` with row strides
    ``pl[t]['stride']``. ``load_x(e, mode index, buf, m0, k0, rows, cols)``, where given, emits the X tile's
    load instead of a plain LOAD from ``pl['X']`` (``lego.prog.conv``: a windowed LOAD)."""
    mi = list(prog["dataflows"]).index(mode)
    eb = prog["bits"] // 8
    M, N, K = dims["M"], dims["N"], dims["K"]
    tm, tn, tk = tile["M"], tile["N"], tile["K"]
    cs = prog["counters"][mode]
    xb = wb = 0
    pending = None                       # (m0, n0, rows, cols, ybuf) of the last output tile

    def store(p):
        m0, n0, rows, cols, yb = p
        e.set("ST_ADDR", pl["Y"]["addr"] + m0 * pl["Y"]["stride"] + n0 * 4)
        e.set("ST_ROWS", rows)
        e.set("ST_COLS", cols)
        e.set("ST_STRIDE", pl["Y"]["stride"])
        e.put(enc_store(yb, mi), {"op": "STORE", "buf": yb, "mode": mi})

    def load(t, tensor, buf, r0, c0, rows, cols):
        e.set("LD_ADDR", pl[t]["addr"] + r0 * pl[t]["stride"] + c0 * eb)
        e.set("LD_ROWS", rows)
        e.set("LD_COLS", cols)
        e.set("LD_STRIDE", pl[t]["stride"])
        e.put(enc_load(tensor, buf, mi), {"op": "LOAD", "tensor": t, "buf": buf, "mode": mi})
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
                if load_x is None:
                    load("X", 0, xb, m0, k0, mt, kt)
                else:
                    load_x(e, mi, xb, m0, k0, mt, kt)
                load("W", 1, wb, k0, n0, kt, nt)
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


def build(prog: dict, dims: dict, mode: str, tile: dict, tl: Timeline | None = None, keep: bool = True
          ) -> tuple[list[int], list[dict], dict]:
    """The stream of one GEMM (and END) at ``placement``, timed into ``tl``; ``keep=False``: time only."""
    pl = placement(dims, prog["bits"] // 8)
    e = _Emitter(tl, keep)
    emit_gemm(e, prog, dims, mode, tile, pl)
    e.put(enc_end(), {"op": "END"})
    return e.words, e.cmds, pl


def _split(n: int, t: int) -> list[tuple[int, int]]:
    """The tiles of ``t`` along ``n``: (size, how many), the full ones and the edge one."""
    return [(t, n // t)] + ([(n % t, 1)] if n % t else [])


def _ksteps(prog: dict, mode: str, tile: dict, K: int, mt: int, nt: int) -> range:
    """The K steps of an mt x nt output tile (``emit_gemm``: degenerate tiles take the revisit counter's K)."""
    kk = _degenerate_k(prog, mode, mt, nt)
    return range(0, K, min(tile["K"], kk) if kk else tile["K"])


def _compute_busy(prog: dict, dims: dict, mode: str, tile: dict) -> int:
    """The compute unit's busy cycles over ``emit_gemm(dims, mode, tile)``: COMPUTE durations summed in closed
    form over the tile classes (full and edge tiles)."""
    cs, drain, K = prog["counters"][mode], prog["drain"][mode], dims["K"]
    cp = 0
    for mt, cm in _split(dims["M"], tile["M"]):
        for nt, cn in _split(dims["N"], tile["N"]):
            ks = _ksteps(prog, mode, tile, K, mt, nt)
            for k0 in ks:
                t = {"i": mt, "j": nt, "k": min(ks.step, K - k0)}
                cp += cm * cn * compute_cycles([-(-t[it] // div) for it, div in cs], drain)
    return cp


def load_floor(rows: int, cols: int, eb: int, bb: int, latency: int, lanes: int, beat_cycles: int) -> int:
    """A lower bound on ``timing.load_cycles`` that needs no walk over the rows: the first beat is captured
    ``3 + L`` edges after the dispatch, a row's beats are its own (at least ``ceil(cols / E)``), the scatter
    writes at most ``P`` (``lanes``) elements per cycle of one beat, captures are at least ``D``
    (``beat_cycles``) edges apart within a burst and a row's first capture comes after the previous row's
    last write."""
    E = bb // eb
    row = max(-(-cols // lanes), (-(-cols // E) - 1) * beat_cycles + 1)
    return 3 + latency + rows * row


def busy_floor(prog: dict, dims: dict, mode: str, tile: dict, latency: int) -> int:
    """A lower bound on the stream's cycles, cheaper than ``tile_busy``'s: the compute unit's busy cycles
    (exact, closed form) or the load unit's by ``load_floor`` per LOAD, whichever is larger."""
    eb, bb, D = prog["bits"] // 8, prog["dram_bits"] // 8, prog.get("dram_beat_cycles", 1)
    lanes = {t: prog.get("ld_lanes", {}).get(t, {}).get(mode, 1) for t in "XW"}
    K, ld = dims["K"], 0
    for mt, cm in _split(dims["M"], tile["M"]):
        for nt, cn in _split(dims["N"], tile["N"]):
            ks = _ksteps(prog, mode, tile, K, mt, nt)
            for k0 in ks:
                kt = min(ks.step, K - k0)
                ld += cm * cn * (load_floor(mt, kt, eb, bb, latency, lanes["X"], D)
                                 + load_floor(kt, nt, eb, bb, latency, lanes["W"], D))
    return max(_compute_busy(prog, dims, mode, tile), ld)


def tile_busy(prog: dict, dims: dict, mode: str, tile: dict, latency: int) -> dict:
    """The compute and load units' busy cycles over ``emit_gemm(dims, mode, tile)`` at ``placement(dims)``,
    without writing the stream: COMPUTE durations summed in closed form over the tile classes (full and edge
    tiles), and each distinct LOAD timed once. A LOAD's time depends on its address only through the page
    offset (``timing.load_cycles`` walks rows by ``addr % PAGE``), so the X tiles of one row tile size are
    grouped by the page offset of their first row and each group is timed once (an X tile is loaded again
    for every output column tile; a W tile, timed at its own address, for every output row tile). Each unit
    runs one command at a time, so the larger of the two is a lower bound on the stream's cycles."""
    eb, bb = prog["bits"] // 8, prog["dram_bits"] // 8
    pl = placement(dims, eb)
    M, N, K = dims["M"], dims["N"], dims["K"]
    tm, tn = tile["M"], tile["N"]
    outstanding, beat = prog.get("dram_outstanding", 1), prog.get("dram_beat_cycles", 1)

    def ksteps(mt: int, nt: int) -> range:
        return _ksteps(prog, mode, tile, K, mt, nt)

    lanes = {t: prog.get("ld_lanes", {}).get(t, {}).get(mode, 1) for t in "XW"}

    def ld(t: str, off: int, rows: int, cols: int) -> int:
        return load_cycles(off % PAGE, rows, cols, pl[t]["stride"], eb, bb, latency, lanes[t], outstanding, beat)
    ldx = ldw = 0
    mcls, ncls = _split(M, tm), _split(N, tn)
    cp = _compute_busy(prog, dims, mode, tile)
    # (page offset of an X tile's first element, its rows) -> how many such X tiles
    xrows = Counter(((pl["X"]["addr"] + m0 * pl["X"]["stride"]) % PAGE, min(tm, M - m0)) for m0 in range(0, M, tm))
    for (off, mt), cnt in xrows.items():
        for nt, cn in ncls:
            ks = ksteps(mt, nt)
            ldx += cnt * cn * sum(ld("X", off + k0 * eb, mt, min(ks.step, K - k0)) for k0 in ks)
    for n0 in range(0, N, tn):
        nt = min(tn, N - n0)
        for mt, cm in mcls:
            ks = ksteps(mt, nt)
            ldw += cm * sum(ld("W", pl["W"]["addr"] + k0 * pl["W"]["stride"] + n0 * eb, min(ks.step, K - k0), nt)
                            for k0 in ks)
    return {"cp": cp, "ld": ldx + ldw}


def _candidates(box: dict, dims: dict) -> list[dict]:
    out = []
    for fm in (1, 2):
        for fk in (1, 2):
            t = {"M": min(dims["M"], box["M"] // fm or 1), "N": min(dims["N"], box["N"] // fm or 1),
                 "K": min(dims["K"], box["K"] // fk or 1)}
            if t not in out:
                out.append(t)
    return out


def design_prog(man: dict) -> dict:
    prog = man.get("prog")
    if not prog:
        raise LegoError("DIR: not a programmable design (lego gen ... --scratchpad-kib N --accumulator-kib N)")
    return prog


def check_fits(dims: dict, dram_bytes: int, field: str) -> None:
    """The tensors fit the 32-bit DRAM address space and the sizes the 32-bit registers."""
    if dram_bytes > 1 << spec.ADDR_BITS:
        raise LegoError(f"{field}: the tensors need {dram_bytes:,} bytes of DRAM, more than the "
                        f"{spec.ADDR_BITS}-bit address space")
    for k, v in dims.items():
        if v >= 1 << 31:
            raise LegoError(f"{field}: {k}={v} overflows the 32-bit address registers")


def fill_tile(prog: dict, dims: dict, tile: dict | None) -> dict | None:
    """``--tile`` completed for ``dims`` (missing sizes: the layer's, within the box); refused beyond the box."""
    if tile is None:
        return None
    box = prog["box"]
    tile = dict(tile)
    for k in ("M", "N", "K"):
        tile.setdefault(k, min(dims[k], box[k]))
        if tile[k] > box[k]:
            raise LegoError(f"--tile: {k}={tile[k]} does not fit the design's buffers (tile box "
                            f"M={box['M']} N={box['N']} K={box['K']})")
    return tile


def check_mode(prog: dict, mode: str | None) -> None:
    if mode is not None and mode not in prog["modes"]:
        raise LegoError(f"--mode: '{mode}' is not a dataflow of this design (allowed: {', '.join(prog['modes'])})")


def fastest(n: int, floor, exact, busy=None) -> tuple[int, Timeline, int]:
    """-> (cycles, timeline, index) of the fastest of ``n`` candidates, ties to the lowest index.
    ``floor(i)``: a lower bound on candidate i's cycles (candidates are timed in order of it, and one whose
    floor exceeds the best so far is not timed); ``busy(i)``, where given: a tighter lower bound, asked only
    of candidates the floor leaves; ``exact(i, bound)``: candidate i's timeline (``Timeline(..., bound=bound)``,
    which raises ``Overrun`` once it passes the best so far: the candidate is dropped there). With valid lower
    bounds the result is the exhaustive search's."""
    floors = [floor(i) for i in range(n)]
    best = None
    for i in sorted(range(n), key=lambda i: (floors[i], i)):
        if best is not None and (floors[i] > best[0] or (busy is not None and busy(i) > best[0])):
            continue
        try:
            tl = exact(i, None if best is None else best[0])
        except Overrun:
            continue
        if best is None or (tl.cycles, i) < (best[0], best[2]):
            best = (tl.cycles, tl, i)
    return best


def candidates(prog: dict, dims: dict, mode: str | None, tile: dict | None,
               tiles: list[dict] | None = None) -> list[tuple[str, dict]]:
    """The (mode, tile) candidates of one GEMM: ``mode`` or every mode in design order, ``tile`` or ``tiles``
    (default ``_candidates``' tiles)."""
    modes = [mode] if mode else list(prog["dataflows"])
    if tile:
        tiles = [tile]
    elif tiles is None:
        tiles = _candidates(prog["box"], dims)
    return [(name, t) for name in modes for t in tiles]


def choose(prog: dict, dims: dict, mode: str | None, tile: dict | None, latency: int, keep: bool = True):
    """-> (cycles, mode, tile, words, cmds, timeline) of the fastest candidate for one GEMM: exact cycles,
    ties to the first candidate (modes in design order, then ``_candidates``' order). Candidates are timed in
    order of their cheap lower bound (``busy_floor``); one whose floor, or then whose exact busy bound
    (``tile_busy``), exceeds the best so far is not built, and one whose partial timeline passes it is
    abandoned there (``Overrun``): the choice is the exhaustive one's (``fastest``).
    ``keep=False``: no words or commands (empty lists), the timing alone."""
    cands = candidates(prog, dims, mode, tile)

    def exact(i: int, bound: int | None) -> Timeline:
        tl = Timeline(prog, latency, bound=bound)
        build(prog, dims, *cands[i], tl, keep=False)
        return tl
    cyc, tl, i = fastest(len(cands), lambda i: busy_floor(prog, dims, *cands[i], latency), exact,
                         lambda i: max(tile_busy(prog, dims, *cands[i], latency).values()))
    name, t = cands[i]
    words, cmds = build(prog, dims, name, t)[:2] if keep else ([], [])
    return cyc, name, t, words, cmds, tl


def compile_gemm(man: dict, dims: dict, mode: str | None = None, tile: dict | None = None,
                 latency: int = DEFAULT_LATENCY) -> tuple[dict, list[int], list[dict]]:
    """-> (header, words, decoded commands) of the fastest candidate (exact cycles at ``latency``)."""
    prog = design_prog(man)
    pl = placement(dims, prog["bits"] // 8)
    check_fits(dims, pl["dram_bytes"], "--layer")
    check_mode(prog, mode)
    cyc, name, t, words, cmds, _ = choose(prog, dims, mode, fill_tile(prog, dims, tile), latency)
    header = {"format": 1, "design_hash": prog["design_hash"], "layer": {"op": "gemm", **dims},
              "mode": name, "tile": t, "dram": {k: pl[k] for k in ("X", "W", "Y")},
              "dram_bytes": pl["dram_bytes"], "commands": len(words),
              "predicted": {"latency": latency, "cycles": cyc}}
    return header, words, cmds

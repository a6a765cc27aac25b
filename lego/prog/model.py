"""Model programs: every layer of a model lowered onto the GEMM design (``lego.prog.lower``) in one program.

Each layer is one *segment* of the program: its command stream, ending with END (the host runs the
segments in order and, between conv layers, writes the next layer's im2col'd input). A layer of ``G``
GEMMs emits them one after another in its segment. The layers' tensors share one DRAM address space,
each tensor at a 4 KiB-aligned base: X ``[G, M, K]`` and W ``[G, K, N]`` (input dtype), Y ``[G, M, N]``
int32, group ``g`` at ``base + g·M·K·bytes`` (row-major, rows contiguous). A conv layer on a design generated
for conv (``prog.im2col``) is placed and emitted by ``lego.prog.conv`` instead (NHWC input, a zero region,
windowed LOADs: hardware im2col). The mode and the tile of a layer
are chosen on one of its GEMMs by exact cycles (``compiler.choose``); layers of one GEMM shape share the
choice and the stream, relocated to their bases (bases are 4 KiB multiples, so every burst and every
cycle is the same). A conv layer through windows is chosen by its own windowed stream's exact cycles
(``conv.choose``, all its groups), shared by the layers of one conv geometry (``conv.stream_key``).

Header (format 2): ``design_hash``, ``model``, ``layers`` (per layer: name, op, shape, gemm {G, M, N, K},
lowering, dram {X, W, Y}, mode, tile, predicted_cycles, commands [first, count], macs), ``skipped``
(layers no GEMM lowering exists for: name, op), ``dram_bytes``, ``commands``, ``predicted``.
"""
from __future__ import annotations

from ..errors import LegoError
from .compiler import (DEFAULT_LATENCY, PAGE, _Emitter, check_fits, check_mode, choose, design_prog, emit_gemm,
                       fill_tile)
from . import conv
from .lower import LayerSpec, Lowered, check_spec, lower
from .spec import ADDR_BITS, enc_end, enc_set, CSR
from .timing import Timeline

LOWERING = {"gemm": "direct", "matmul": "direct", "fc": "direct", "bmm": "one GEMM per batch",
            "conv2d": "host im2col, one GEMM per group", "dwconv2d": "host im2col, one GEMM per channel"}
# conv layers on a design generated for conv (prog.im2col): the load DMA's window generator (lego.prog.conv)
LOWERING_HW = {"conv2d": "hardware im2col (windowed LOAD), one GEMM per group",
               "dwconv2d": "hardware im2col (windowed LOAD), one GEMM per channel"}
ADDR_REGS = ("LD_ADDR", "ST_ADDR", "WIN_ZERO")
M32 = (1 << 32) - 1


def _align(x: int) -> int:
    return -(-x // PAGE) * PAGE


def placement(low: Lowered, eb: int, base: int) -> dict:
    """X [G,M,K], W [G,K,N], Y [G,M,N] from ``base``, each tensor 4 KiB aligned; ``end``: the next free page."""
    out, at = {}, base
    for t, (rows, cols), size in (("X", (low.M, low.K), eb), ("W", (low.K, low.N), eb), ("Y", (low.M, low.N), 4)):
        group = rows * cols * size
        out[t] = {"addr": at, "shape": [low.G, rows, cols], "stride": cols * size, "group_bytes": group,
                  "bytes": low.G * group}
        at = _align(at + low.G * group)
    out["end"] = at
    return out


def _group(pl: dict, g: int) -> dict:
    return {t: {"addr": pl[t]["addr"] + g * pl[t]["group_bytes"], "stride": pl[t]["stride"]} for t in "XWY"}


def layer_stream(prog: dict, low: Lowered, mode: str, tile: dict, pl: dict, tl: Timeline | None = None,
                 keep: bool = True) -> tuple[list[int], list[dict]]:
    """The commands of one lowered layer (its G GEMMs, then END), timed into ``tl`` as they are written
    (``keep=False``: timed only, no commands kept)."""
    e = _Emitter(tl, keep)
    for g in range(low.G):
        emit_gemm(e, prog, low.dims, mode, tile, _group(pl, g))
    e.put(enc_end(), {"op": "END"})
    return e.words, e.cmds


def relocate(words: list[int], cmds: list[dict], delta: int) -> tuple[list[int], list[dict]]:
    """The stream with every DRAM address moved by ``delta`` bytes (modulo 2**32, as the registers add: a
    window's LD_ADDR may lie below its input, in the padding)."""
    if not delta:
        return list(words), list(cmds)
    w2, c2 = [], []
    for w, c in zip(words, cmds):
        if c["op"] == "SET" and c["reg"] in ADDR_REGS:
            c = {**c, "value": (c["value"] + delta) & M32}
            w = enc_set(CSR[c["reg"]], c["value"])
        w2.append(w)
        c2.append(c)
    return w2, c2


def _im2col(s: LayerSpec, hw: bool) -> str:
    """Who expands a conv layer's windows: the load DMA (``hardware``) or the host; ``none`` for the rest."""
    return "hardware" if hw else ("host" if s.op in conv.CONV_OPS else "none")


def _who(kinds: set) -> str:
    """The header's ``im2col``: hardware, host, or mixed (``--im2col auto`` chose per layer)."""
    kinds = kinds - {"none"}
    return "mixed" if len(kinds) > 1 else (kinds.pop() if kinds else "host")


def _shape(s: LayerSpec) -> dict:
    out = dict(s.dims)
    if s.op in ("conv2d", "dwconv2d"):
        out.update(stride=list(s.stride), pads=list(s.pads), groups=s.groups, dilation=list(s.dilation))
    return out


class _Cache:
    """Per GEMM shape: the chosen (mode, tile) of plain loads; per lowered layer (per conv geometry through
    windows, with its own choice by the windowed stream's cycles): the stream at base 0 (none with
    ``keep=False``), its command count, cycles and unit busy times."""

    def __init__(self, prog: dict, mode: str | None, tile: dict | None, latency: int, keep: bool):
        self.prog, self.mode, self.tile, self.latency, self.keep = prog, mode, tile, latency, keep
        self.choice: dict = {}
        self.streams: dict = {}

    def stream(self, low: Lowered, field: str, s: LayerSpec | None = None, hw: bool = False):
        """-> (mode, tile, words, commands, command count, cycles, unit busy cycles) of ``low``'s stream at
        base 0: through windows (``hw``: conv layer ``s``, keyed by its geometry) or plain loads (keyed by the
        lowered layer)."""
        skey = conv.stream_key(s) if hw else low
        if skey not in self.streams:
            self.streams[skey] = self._windowed(low, s) if hw else self._plain(low)
        return self.streams[skey]

    def _windowed(self, low: Lowered, s: LayerSpec) -> tuple:
        """The windowed stream, its mode and tile chosen by its own exact cycles (``conv.choose``)."""
        _, mode, tile, words, cmds, tl = conv.choose(self.prog, s, self.mode, fill_tile(self.prog, low.dims,
                                                     self.tile), self.latency, self.keep)
        return mode, tile, words, cmds, tl.commands, tl.cycles, dict(tl.busy_cycles)

    def _plain(self, low: Lowered) -> tuple:
        """The plain-load stream of the lowered layer; the choice shared by the layers of one GEMM shape."""
        eb = self.prog["bits"] // 8
        key = (low.M, low.N, low.K)
        if key not in self.choice:
            tile = fill_tile(self.prog, low.dims, self.tile)
            _, mode, tile, _, _, tl = choose(self.prog, low.dims, self.mode, tile, self.latency, keep=False)
            self.choice[key] = (mode, tile, tl)
        mode, tile, tl = self.choice[key]
        pl = placement(low, eb, 0)
        if self.keep or low.G > 1:
            tl = Timeline(self.prog, self.latency)
            words, cmds = layer_stream(self.prog, low, mode, tile, pl, tl, self.keep)
        else:   # one GEMM at the compiler's own placement: the tile search has timed this very stream
            assert all(pl[t]["addr"] == a for t, a in zip("XWY", (0, _align(low.M * low.K * eb),
                       _align(_align(low.M * low.K * eb) + low.K * low.N * eb))))
            words, cmds = [], []
        return mode, tile, words, cmds, tl.commands, tl.cycles, dict(tl.busy_cycles)


def compile_model(man: dict, layers: list[LayerSpec], skipped: list[dict] | None = None, model: str = "",
                  mode: str | None = None, tile: dict | None = None, latency: int = DEFAULT_LATENCY,
                  field: str = "--model", progress=None, keep: bool = True, im2col: str | None = None
                  ) -> tuple[dict, list[int], list[dict]]:
    """-> (header, words, decoded commands) of the whole model; nothing is written here. ``keep=False``
    (``lego sim --model``): the header alone, every layer timed exactly, no command kept. ``im2col``
    (``conv.IM2COL``): who expands a conv layer's windows. By default the load DMA's window generator on a
    design generated for conv (the host writes the NHWC input) and the host elsewhere; ``auto`` times both and
    takes the faster per layer (the header's layers say which: the host's DRAM contents follow)."""
    prog = design_prog(man)
    check_mode(prog, mode)
    if im2col is not None:
        conv.check_policy(prog, im2col)
    im2col = im2col or ("hardware" if prog.get("im2col") else "host")
    if not layers:
        raise LegoError(f"{field}: no layer that the GEMM design runs (gemm, matmul, bmm, conv2d)")
    eb = prog["bits"] // 8
    cache = _Cache(prog, mode, tile, latency, keep)
    records, words, cmds, base, ncmd = [], [], [], 0, 0
    for s in (progress(layers) if progress else layers):
        check_spec(s, field)
        low = lower(s)
        hw = im2col != "host" and conv.uses_windows(prog, s)
        if hw and im2col == "auto":         # the faster of the two by exact cycles (ties: the windows)
            hw = conv.fits_windows(s) and cache.stream(low, field, s, True)[5] <= cache.stream(low, field, s, False)[5]
        if hw:
            conv.check_geometry(s, field)
            pl = conv.placement(s, eb, prog["dram_bits"] // 8, base)
        else:
            pl = placement(low, eb, base)
        check_fits({"M": low.M, "N": low.N, "K": low.K}, pl["end"], f"{field}: layer '{s.name}'")
        if pl["end"] > 1 << ADDR_BITS:
            raise LegoError(f"{field}: layer '{s.name}': the model's tensors need {pl['end']:,} bytes of DRAM, "
                            f"more than the {ADDR_BITS}-bit address space")
        lmode, ltile, w0, c0, n, cyc, busy = cache.stream(low, field, s, hw)
        if keep:
            w1, c1 = relocate(w0, c0, base)
            words += w1
            cmds += c1
        records.append({"name": s.name, "op": s.op, "shape": _shape(s),
                        "gemm": {"G": low.G, "M": low.M, "N": low.N, "K": low.K},
                        "lowering": (LOWERING_HW if hw else LOWERING)[s.op], "im2col": _im2col(s, hw),
                        "dram": {t: pl[t] for t in ("XZWY" if hw else "XWY")}, "mode": lmode, "tile": ltile,
                        "predicted_cycles": cyc,
                        "predicted_busy": busy, "commands": [ncmd, n], "macs": low.macs})
        ncmd += n
        base = pl["end"]
    header = {"format": 2, "design_hash": prog["design_hash"], "model": model, "layers": records,
              "skipped": list(skipped or []),
              "im2col": _who({r["im2col"] for r in records}),
              "dram_bytes": base, "commands": ncmd,
              "predicted": {"latency": latency, "cycles": sum(r["predicted_cycles"] for r in records)}}
    return header, words, cmds


def layer_records(header: dict) -> list[dict]:
    """The per-layer records of a program header; a format-1 (one GEMM) header as one record."""
    if header.get("format") == 2:
        return header["layers"]
    lay = header["layer"]
    dram = {t: {**d, "shape": [1, *d["shape"]], "group_bytes": d["bytes"]} for t, d in header["dram"].items()}
    return [{"name": "layer", "op": "gemm", "shape": {k: lay[k] for k in "MNK"},
             "gemm": {"G": 1, "M": lay["M"], "N": lay["N"], "K": lay["K"]}, "lowering": "direct", "dram": dram,
             "mode": header["mode"], "tile": header["tile"], "predicted_cycles": header["predicted"]["cycles"],
             "commands": [0, header["commands"]], "macs": lay["M"] * lay["N"] * lay["K"]}]

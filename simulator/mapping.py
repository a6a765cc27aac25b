"""Map one layer onto an R x C array with a dataflow (os / ws / is): cycles, traffic, energy, area.

Convention (must match the generated RTL; constants are named so the lead can reconcile them):

* one temporal step per cycle (II = 1);
* a dataflow puts iterator ``a`` on the R rows and ``b`` on the C columns; the temporal loops are
  ceil(n_a / R), ceil(n_b / C) and the full extent of every other iterator, so
  ``steps = ceil(n_a/R) * ceil(n_b/C) * prod(other extents)``;
* ``fill_drain = (R-1)*c0 + (C-1)*c1 + pipeline_depth`` with control vector c ((1,1) systolic,
  (0,0) broadcast), ``pipeline_depth`` default 3; compute cycles of one array invocation are
  ``steps + fill_drain``. Mapped onto a generated design (``lego sim --model M --design DIR``,
  ``model_run.design_config``), the design's own fill/drain per dataflow (``report.json``) is used
  instead: the LP's schedule, not a constant.

Memory: a layer larger than the on-chip buffers is tiled (a (G, M, N, K) tile of its im2col GEMM
view, see ``tile_search``); each tile is one array invocation (pays ``fill_drain`` when
``fill_per_tile``) and the tiles run through the load/compute/store pipeline of
``simulator.memory`` (double buffered by default). Stall cycles = total - compute cycles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from lego.affine.dataflow import PRESET_TABLE
from lego.errors import LegoError
from simulator import energy as E
from simulator.memory import (Buffer, DramConfig, dram_cycles, dram_cycles_array,
                              port_stall_factor, uniform_pipeline_cycles)
from simulator.models import OP_ITERS, TENSOR_DEPS, Layer
from simulator.report import Report

# (row iterator, column iterator, innermost temporal iterator) per op and dataflow: the generator's own
# preset table, so the analytical mapper and the generated arrays cannot drift apart.
PRESETS: dict[str, dict[str, tuple[str, str, str]]] = {op: PRESET_TABLE[op] for op in OP_ITERS}
DATAFLOWS = ("os", "ws", "is")
BCAST_SUFFIX = "-bcast"         # e.g. "os-bcast": the same preset with control vector (0, 0)
ALL_DATAFLOWS = DATAFLOWS + tuple(d + BCAST_SUFFIX for d in DATAFLOWS)
CONTROL_SYSTOLIC = (1, 1)
CONTROL_BROADCAST = (0, 0)
PIPELINE_DEPTH = 3
KIB = 1024


@dataclass(frozen=True)
class ArrayConfig:
    """A lego design: array shape, dataflow set (fused when several), buffers and DRAM."""

    rows: int = 16
    cols: int = 16
    dataflows: tuple[str, ...] = DATAFLOWS
    control: tuple[int, int] = CONTROL_SYSTOLIC
    pipeline_depth: int = PIPELINE_DEPTH
    in_bits: int = 8
    acc_bits: int = 32
    out_bits: int = 8                       # outputs leave the chip requantized
    spad_bytes: int = 256 * KIB             # X and W scratchpad
    acc_bytes: int = 64 * KIB               # output accumulator
    double_buffered: bool = True
    fill_per_tile: bool = True
    # None: banks synthesized for conflict-free access (LEGO's memory synthesis), no port stalls.
    spad_banks: int | None = None
    spad_width_bits: int = 128
    acc_banks: int | None = None
    acc_width_bits: int = 512
    dram: DramConfig = field(default_factory=DramConfig)
    node_nm: float = E.DEFAULT_NODE_NM
    name: str = "lego"
    # a generated design's fill/drain per dataflow ((name, cycles), ...; its report.json): used instead of
    # the formula for the dataflows it lists
    fill_drain_of: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for f in ("rows", "cols", "in_bits", "acc_bits", "out_bits", "spad_bytes", "acc_bytes"):
            v = getattr(self, f)
            if not isinstance(v, int) or v <= 0:
                raise LegoError(f"{f}: {v!r} must be a positive integer")
        if not self.dataflows or any(d not in ALL_DATAFLOWS for d in self.dataflows):
            raise LegoError(f"dataflow: {list(self.dataflows)} invalid, allowed one or more of "
                            f"{list(ALL_DATAFLOWS)}")
        if len(self.control) != 2 or any(c not in (0, 1) for c in self.control):
            raise LegoError(f"control: {self.control} invalid, allowed (0|1, 0|1)")
        if not isinstance(self.pipeline_depth, int) or self.pipeline_depth < 0:
            raise LegoError(f"pipeline_depth: {self.pipeline_depth!r} must be an integer >= 0")
        for f in ("spad_banks", "acc_banks"):
            v = getattr(self, f)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise LegoError(f"{f}: {v!r} must be a positive integer or None (synthesized)")
        spad, acc = self.spad_banks or max(self.rows, self.cols), self.acc_banks or self.cols
        if self.spad_bytes < spad or self.acc_bytes < acc:
            raise LegoError(f"spad_bytes/acc_bytes: {self.spad_bytes}/{self.acc_bytes} must be at "
                            f"least one byte per bank ({spad}/{acc} banks)")

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols

    def buffers(self) -> tuple[Buffer, Buffer]:
        """Scratchpad and accumulator; default bank counts: one bank per array row/column."""
        sb = self.spad_banks or max(self.rows, self.cols)
        ab = self.acc_banks or self.cols
        return (Buffer("spad", self.spad_bytes - self.spad_bytes % sb, sb, self.spad_width_bits,
                       double_buffered=self.double_buffered),
                Buffer("acc", self.acc_bytes - self.acc_bytes % ab, ab, self.acc_width_bits,
                       double_buffered=self.double_buffered))


def port_slowdown(cfg: ArrayConfig, reads: dict, writes: dict, steps: int) -> float:
    """Array slow-down from SRAM ports when bank counts are fixed (>= 1; 1 when synthesized)."""
    if steps == 0:
        return 1.0
    spad, acc = cfg.buffers()
    f = 1.0
    if cfg.spad_banks is not None:
        f = max(f, port_stall_factor((reads["X"] + reads["W"]) * cfg.in_bits / steps, spad))
    if cfg.acc_banks is not None:
        f = max(f, port_stall_factor(reads["Y"] * cfg.acc_bits / steps, acc),
                port_stall_factor(writes["Y"] * cfg.acc_bits / steps, acc, write=True))
    return f


def control_of(cfg: ArrayConfig, dataflow: str) -> tuple[int, int]:
    """Control vector of one dataflow of the design: (0, 0) for ``*-bcast`` names."""
    return CONTROL_BROADCAST if dataflow.endswith(BCAST_SUFFIX) else cfg.control


def preset(op: str, dataflow: str) -> tuple[str, str, str]:
    base = dataflow.removesuffix(BCAST_SUFFIX)
    try:
        return PRESETS[op][base]
    except KeyError:
        raise LegoError(f"dataflow: {dataflow!r} for {op!r} unknown, allowed "
                        f"{sorted(PRESETS.get(op, {}))}") from None


def compute_steps(layer: Layer, rows: int, cols: int, dataflow: str) -> int:
    """Temporal steps of the whole layer under the convention (one step per cycle)."""
    a, b, _ = preset(layer.op, dataflow)
    e = layer.ext
    others = math.prod(v for k, v in e.items() if k not in (a, b))
    return math.ceil(e[a] / rows) * math.ceil(e[b] / cols) * others


def fill_drain(rows: int, cols: int, control: tuple[int, int] = CONTROL_SYSTOLIC,
               pipeline_depth: int = PIPELINE_DEPTH) -> int:
    return (rows - 1) * control[0] + (cols - 1) * control[1] + pipeline_depth


def spatial_utilization(layer: Layer, rows: int, cols: int, dataflow: str) -> float:
    """Fraction of FUs doing useful MACs in steady state (mapping efficiency)."""
    return layer.macs / (compute_steps(layer, rows, cols, dataflow) * rows * cols)


def temporal_loops(layer: Layer, rows: int, cols: int, dataflow: str) -> list[tuple[str, int]]:
    """Temporal counter, outermost first, as the generator builds it: the workload's iterator
    order with the innermost iterator moved last; spatial iterators contribute their tile count."""
    a, b, inner = preset(layer.op, dataflow)
    e = layer.ext
    order = [it for it in OP_ITERS[layer.op] if it != inner] + [inner]
    ext = {it: e[it] for it in order}
    ext[a], ext[b] = math.ceil(e[a] / rows), math.ceil(e[b] / cols)
    return [(it, ext[it]) for it in order]


def sram_accesses(layer: Layer, rows: int, cols: int, dataflow: str,
                  masked: bool = False) -> tuple[dict, dict]:
    """Element reads and writes of the on-chip buffers by the array, per tensor.

    The controller's change flags (as in the generated RTL): a tensor's ports are re-read at a
    step when the counter position incremented at that step (or any inner one, which resets)
    is an iterator the tensor depends on, so the re-reads are the product of the temporal
    extents down to the innermost dependent loop. A tensor has one port per physical row if it
    depends on the row iterator, times one per column if on the column iterator (broadcast or
    systolic forwarding covers the rest). Output writes count only in-bounds elements. Output
    updates beyond the first per element are read-modify-writes of partial sums (Y reads).
    ``masked`` counts only in-bounds reads too (the port demand when idle ports are gated).
    """
    a, b, _ = preset(layer.op, dataflow)
    e = layer.ext
    loops = temporal_loops(layer, rows, cols, dataflow)
    counts, valid = {}, {}
    for t, deps in TENSOR_DEPS[layer.op].items():
        last = max((q for q, (it, n) in enumerate(loops) if it in deps and n > 1), default=-1)
        changes = math.prod(n for _, n in loops[:last + 1])
        counts[t] = changes * (rows if a in deps else 1) * (cols if b in deps else 1)
        frac = 1.0
        if a in deps:
            frac *= e[a] / (math.ceil(e[a] / rows) * rows)
        if b in deps:
            frac *= e[b] / (math.ceil(e[b] / cols) * cols)
        valid[t] = round(counts[t] * frac)
    y = layer.tensor_elems()["Y"]
    src = valid if masked else counts
    reads = {"X": src["X"], "W": src["W"], "Y": max(0, valid["Y"] - y)}
    writes = {"X": 0, "W": 0, "Y": valid["Y"]}
    return reads, writes


@dataclass(frozen=True)
class Tiling:
    tile: tuple[int, int, int, int]        # (Gt, Mt, Nt, Kt) of the (G, M, N, K) GEMM view
    tiles: int
    order: str                             # "m" or "n": which tile loop is outermost
    dram_bytes: dict[str, int]
    cycles: int
    compute_cycles: int
    load_cycles: int
    store_cycles: int


def _cands(n: int) -> np.ndarray:
    c = {n} | {1 << p for p in range(n.bit_length()) if (1 << p) < n}
    return np.array(sorted(c), dtype=np.int64)


def halo_factor(layer: Layer, m_tile, tiles_m):
    """Extra input a convolution tile of ``m_tile`` output pixels loads for its window halo.

    A tile is taken as whole output rows (m_tile / w rows); it needs (rows-1)*stride + r input
    rows for rows*stride rows of its own, so the factor is 1 + (r - stride) / (rows * stride)
    (>= 1), and 1 when the layer is one M tile (the stored input is loaded once).
    """
    if layer.op not in ("conv2d", "dwconv2d"):
        return np.ones_like(m_tile, dtype=float)
    e, st = layer.ext, layer.stride
    rows = np.maximum(m_tile / (e["n"] * e["w"]), 1.0)
    f = 1.0 + max(e["r"] - st, 0) / (rows * st)
    return np.where(tiles_m == 1, 1.0, f)


def tile_search(layer: Layer, cfg: ArrayConfig, steps: int, fd: int | None = None) -> Tiling:
    """Choose the on-chip tile that minimises total cycles (then DRAM bytes).

    GEMM view per group: X is M x K (density rho = stored X / (M*K) <= 1 for convolutions, whose
    windows overlap), W is K x N, Y is M x N. K is the innermost tile loop, so a Y tile stays in
    the accumulator until complete and Y is written once. With loop order m-outer, an X tile is
    reused across the n tiles when K fits in one tile, and W is read once when it fits whole;
    n-outer is symmetric. Convolution tiles load their window halo (``halo_factor``).
    Loads/stores are spread evenly over the tiles (uniform pipeline). ``fd`` is the dataflow's fill/drain (default: the design's control vector).
    """
    if fd is None:
        fd = fill_drain(cfg.rows, cfg.cols, cfg.control, cfg.pipeline_depth)
    G, M, N, K = layer.gemm_view()
    el = layer.tensor_elems()
    xb, wb = cfg.in_bits / 8, cfg.in_bits / 8
    yb, ab = cfg.out_bits / 8, cfg.acc_bits / 8
    x_need = min(el["X"], G * M * K)
    rho = x_need / (G * M * K)
    X, W, Y = x_need * xb, el["W"] * wb, el["Y"] * yb
    div = 2 if cfg.double_buffered else 1
    g, m, n, k = np.meshgrid(_cands(G), _cands(M), _cands(N), _cands(K), indexing="ij")
    g, m, n, k = (v.ravel() for v in (g, m, n, k))
    halo = halo_factor(layer, m, -(-M // m))
    spad = g * (m * k * rho * halo * xb + k * n * wb)
    acc = g * m * n * ab
    ok = (spad <= cfg.spad_bytes / div) & (acc <= cfg.acc_bytes / div)
    if not ok.any():
        raise LegoError(f"spad_bytes: {cfg.spad_bytes} too small for one tile of {layer.name}")
    g, m, n, k, halo = g[ok], m[ok], n[ok], k[ok], halo[ok]
    tg, tm = -(-G // g), -(-M // m)
    tn, tk = -(-N // n), -(-K // k)
    tiles = tg * tm * tn * tk
    best = None
    for order in ("m", "n"):
        if order == "m":
            xr = np.where(tk == 1, X, X * tn) * halo
            wr = np.where((tn == 1) & (tk == 1), W, W * tm)
        else:
            wr = np.where(tk == 1, W, W * tm)
            xr = np.where((tm == 1) & (tk == 1), X, X * tn) * halo
        load = dram_cycles_array((xr + wr) / tiles, cfg.dram)
        store = dram_cycles_array(Y / tiles, cfg.dram)
        comp = np.ceil(steps / tiles) + (fd if cfg.fill_per_tile else 0)
        if cfg.double_buffered:
            mid = np.maximum(comp, load + store)
            tot = np.where(tiles == 1, load + comp + store,
                           load + store + np.maximum(comp, load) + np.maximum(comp, store)
                           + (tiles - 2) * mid)
        else:
            tot = tiles * (load + comp + store)
        key = tot * 1e12 + (xr + wr)          # lexicographic: cycles, then DRAM bytes
        i = int(np.argmin(key))
        cand = (key[i], order, i, xr[i], wr[i])
        if best is None or cand[0] < best[0]:
            best = cand
    _, order, i, xr_i, wr_i = best
    t = int(tiles[i])
    comp_t = math.ceil(steps / t) + (fd if cfg.fill_per_tile else 0)
    load_t = dram_cycles((xr_i + wr_i) / t, cfg.dram)
    store_t = dram_cycles(Y / t, cfg.dram)
    pipe = uniform_pipeline_cycles(t, comp_t, load_t, store_t, cfg.double_buffered)
    if not cfg.fill_per_tile:
        pipe = replace(pipe, cycles=pipe.cycles + fd)
    return Tiling((int(g[i]), int(m[i]), int(n[i]), int(k[i])), t, order,
                  {"X": int(round(xr_i)), "W": int(round(wr_i)), "Y": int(round(Y))},
                  pipe.cycles, pipe.compute_cycles, pipe.load_cycles, pipe.store_cycles)


def layer_energy_area(layer: Layer, cfg: ArrayConfig, reads: dict, writes: dict,
                      dram_bytes: dict, compute_cycles: int) -> tuple[dict, dict]:
    """Energy (pJ) per component and area (um^2) per component of one layer run."""
    pe = E.pe_cost(cfg.in_bits, cfg.acc_bits, len(cfg.dataflows), cfg.node_nm)
    n_fu = cfg.rows * cfg.cols
    spad, acc = cfg.buffers()
    e_spad = E.sram_access_pj(spad.capacity_bytes, cfg.in_bits, cfg.node_nm, banks=spad.banks)
    e_acc = E.sram_access_pj(acc.capacity_bytes, cfg.acc_bits, cfg.node_nm, banks=acc.banks)
    in_bytes = cfg.in_bits / 8
    # DRAM fills write the scratchpad; output drains read the accumulator.
    fill_words = (dram_bytes["X"] + dram_bytes["W"]) / in_bytes
    drain_words = dram_bytes["Y"] / (cfg.out_bits / 8)
    energy = {
        "mac": layer.macs * pe.mac_pj,
        "pe_regs": compute_cycles * n_fu * pe.reg_pj_per_cycle,
        "spad": (reads["X"] + reads["W"] + fill_words) * e_spad,
        "acc": (reads["Y"] + writes["Y"] + drain_words) * e_acc,
        "dram": sum(dram_bytes.values()) * E.energy_pj("dram_byte", cfg.node_nm),
    }
    area = {
        "pe_array": n_fu * pe.area_um2,
        "spad": E.sram_area_um2(spad.capacity_bytes, cfg.node_nm, banks=spad.banks),
        "acc": E.sram_area_um2(acc.capacity_bytes, cfg.node_nm, banks=acc.banks),
    }
    return energy, area


def map_layer(layer: Layer, cfg: ArrayConfig, dataflow: str,
              compute_layer: Layer | None = None) -> Report:
    """Run ``layer`` on ``cfg`` with one dataflow; a Report with cycles, traffic, energy, area.

    ``compute_layer`` (default ``layer``) is the loop nest the array actually executes, e.g. the
    im2col GEMM a fixed GEMM array lowers a convolution to; DRAM traffic and tiling always use
    ``layer`` (the stored tensors).
    """
    if dataflow not in cfg.dataflows:
        raise LegoError(f"dataflow: {dataflow!r} not in the design's {list(cfg.dataflows)}")
    cl = compute_layer or layer
    if cl.macs != layer.macs:
        raise LegoError(f"compute_layer: {cl.macs} MACs differ from {layer.name}'s {layer.macs}")
    steps = compute_steps(cl, cfg.rows, cfg.cols, dataflow)
    reads, writes = sram_accesses(cl, cfg.rows, cfg.cols, dataflow)
    slow = port_slowdown(cfg, *sram_accesses(cl, cfg.rows, cfg.cols, dataflow, masked=True), steps)
    fd = dict(cfg.fill_drain_of).get(dataflow)
    if fd is None:
        fd = fill_drain(cfg.rows, cfg.cols, control_of(cfg, dataflow), cfg.pipeline_depth)
    til = tile_search(layer, cfg, math.ceil(steps * slow), fd)
    energy, area = layer_energy_area(layer, cfg, reads, writes, til.dram_bytes, til.compute_cycles)
    extra = {
        "layer": layer.name, "op": layer.op, "dataflow": dataflow,
        "shape": dict(layer.dims), "stride": layer.stride, "macs": layer.macs,
        "steps": steps, "fill_drain": fd, "port_slowdown": slow, "compute_cycles": til.compute_cycles,
        "tiles": til.tiles, "tile_gmnk": list(til.tile), "tile_order": til.order,
        "utilization": layer.macs / (til.cycles * cfg.rows * cfg.cols),
        "spatial_utilization": spatial_utilization(cl, cfg.rows, cfg.cols, dataflow),
        "dram_load_cycles": til.load_cycles, "dram_store_cycles": til.store_cycles,
    }
    return Report(engine=cfg.name, cycles=til.cycles, stall_cycles=til.cycles - til.compute_cycles,
                  sram_reads=reads, sram_writes=writes, dram_bytes=til.dram_bytes,
                  energy_pj=energy, area_um2=area, extra=extra)


def map_layer_best(layer: Layer, cfg: ArrayConfig) -> Report:
    """Fused design: the dataflow with the fewest cycles (ties: lower energy) for this layer."""
    reps = [map_layer(layer, cfg, d) for d in cfg.dataflows]
    return min(reps, key=lambda r: (r.cycles, r.total_energy_pj))

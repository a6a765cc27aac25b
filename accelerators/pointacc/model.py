"""PointAcc network-level model: ``lego sim --accelerator pointacc --model pointnet2|dgcnn|minkunet``.

Per layer and in total: cycles, DRAM bytes, cache hit rate and energy of a network on a real cloud
(networks in ``networks.py``), with the paper's two ablations: the MMU cache off (``--no-cache``) and
temporal layer fusion off (``--no-fusion``). What is exact and what is modeled:

* **mapping ops** (FPS, ball query, kNN in 3-D with k <= sorter_width, downsampling, kernel maps): the
  exact cycle model of the RTL mapping unit (``cycles``) on the actual points, plus one cycle per point
  loaded. Clouds larger than the point buffer are cut into x-slab tiles (kernel maps: each tile holds
  its output sites plus one slab of neighbours either side (submanifold) or whole coarse slabs
  (strided, downsampling)); every tile is one job of the unit, its cycles exact, and the union of the
  tiles' pairs for their own outputs is the full map (tested). FPS, ball query and kNN need the whole
  cloud on chip (a larger cloud is refused, naming ``point_buffer``).
* **modeled mapping ops**: kNN with k > sorter_width keeps ceil(k / W) sorted blocks (each incoming
  block merges through them: (ceil(k / W) - 1) more cycles per block); kNN in feature space (DGCNN)
  computes the distances on the matrix unit (an N x C by C x N GEMM) and ranks them on the sorter
  (one W-block per cycle). The RTL has neither.
* **gathers** (sparse-conv inputs, grouped PointNet++ features, DGCNN neighbours): every gathered
  feature row goes through the cache model (``cache_model.ReadStreamCache`` = ``CacheModel``'s policy,
  exact hits/misses), and the gather cycles are the RTL MMU's (``cycles.mmu_cycles``: a hit 1 cycle,
  a miss LAT + B + 2; one op per (output tile, kernel offset) chunk). Without the cache every row is a
  one-row DRAM read (LAT + 3 cycles, the row's bytes). Feature rows are ``feature_row_bytes`` int8
  channels; a point of C channels has ceil(C / R) rows, stored consecutively; a layer's features
  start cold (a new tensor).
* **MACs** on the matrix unit: exact RTL pass cycles (``cycles.mxu_cycles``: R weight-row cycles + the
  beats + the datapath latency per weight tile and pass). Sparse convolutions are output-stationary:
  output tiles of acc_buffer_bytes / (4 C_out) sites, per tile and kernel offset one gather chunk, then
  ceil(C_in / R) x ceil(C_out / C) passes over it.
* **composition** (modeled): layer cycles = mapping cycles + max(MMU cycles, matrix-unit cycles, DRAM
  bytes / bytes per cycle): the mapping unit runs first, then gathers, compute and DRAM overlap
  (a double-buffered staging buffer between the MMU and the matrix unit, which pointacc_top does not
  have: there a gather streams straight into the matrix unit, one pass per gather).
* **DRAM bytes**: coordinates loaded into the mapping unit (8 B per point), maps and neighbour lists
  (written by the mapping unit, read by each layer that uses them; 8 B per pair, 4 B per neighbour),
  gathered rows (cache fills: block bytes; no cache: row bytes), dense inputs and outputs (int8),
  weights (once when they fit the weight buffer, else once per output tile).
* **temporal layer fusion**: a chain of point-wise layers (the MLP of a set abstraction with its
  max-pool, an EdgeConv with its max, DGCNN's embedding with its pooling, the classifier head) keeps
  its intermediates on chip in tiles of the fusion buffer; without fusion every layer writes its
  output to DRAM and the next reads it back (the grouped inputs and the max-pools included).
* **energy** (simulator/energy.py, scaled to ``node_nm``): per MAC and per busy cycle of the matrix unit
  (``pe_cost``), per mapping-unit cycle (an upper bound: every active cycle charges one row of the
  distance lanes, one point-buffer read and one sorter block), SRAM accesses of the cache, the
  accumulator, weight and fusion buffers (``sram_access_pj``), DRAM bytes (``cfg.dram_energy``).
  No leakage.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from simulator import energy as E
from simulator.report import Report
from sw_reference import pointacc as ref

from .cache_model import ReadStreamCache
from .cloud import DATA_DIR, load_cloud
from .config import PointAccConfig
from .cycles import (ball_query_cycles, downsample_cycles, fps_cycles, kernel_map_cycles, knn_cycles, mxu_cycles)
from .driver import Geometry

__all__ = ["MODELS", "DEFAULT_CLOUDS", "Costs", "simulate", "simulate_options", "add_arguments", "x_tiles",
           "write_outputs", "LAYER_COLUMNS"]

MODELS = ("pointnet2", "dgcnn", "minkunet")
DEFAULT_MODEL = "minkunet"
DEFAULT_CLOUDS = {"pointnet2": "spot_10k_normal.txt", "dgcnn": "spot_10k_normal.txt",
                  "minkunet": "ouster_os1_128_frame0.bin"}
DEFAULT_VOXEL_M = 0.05
COORD_BYTES = 8          # a point in the mapping unit: 3 x 21-bit coordinates in one 64-bit word
PAIR_BYTES = 8           # a kernel-map pair (in, out) as two int32
NEIGHBOR_BYTES = 4       # a neighbour index (int32)

LAYER_COLUMNS = ("layer", "kind", "points_in", "points_out", "c_in", "c_out", "macs", "gathers", "cache_hits",
                 "cache_misses", "map_jobs", "map_cycles", "mmu_cycles", "mxu_cycles", "dram_cycles", "cycles",
                 "dram_bytes", "dram_bytes_coords", "dram_bytes_maps", "dram_bytes_features_in",
                 "dram_bytes_features_out", "dram_bytes_weights", "energy_pj", "energy_pj_mapping",
                 "energy_pj_mxu", "energy_pj_cache", "energy_pj_buffers", "energy_pj_dram", "fused", "notes")
DRAM_PARTS = ("coords", "maps", "features_in", "features_out", "weights")
ENERGY_PARTS = ("mapping", "mxu", "cache", "buffers", "dram")


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


# ------------------------------------------------------------------------------------------ tiles
def x_tiles(x, cap: int, unit: int, halo: int, what: str) -> list[tuple[int, int, int, int]]:
    """Cut a point set into mapping-unit jobs along x: ``x`` the points' x, ``unit`` the slab width (the
    points of one slab stay together), ``halo`` the neighbour slabs each side a tile also loads (0 or 1).
    Returns per job (lo, hi, core_lo, core_hi): the points [lo, hi) of the points sorted by slab that the
    job loads (a core of whole slabs plus its halos) and its core [core_lo, core_hi) (the outputs it
    owns); LegoError naming point_buffer when one slab with its halo does not fit."""
    ids, counts = np.unique(np.floor_divide(np.asarray(x, dtype=np.int64), unit), return_counts=True)
    total = int(counts.sum())
    if total <= cap:
        return [(0, total, 0, total)]
    cum = np.concatenate([[0], np.cumsum(counts)])
    nu = len(ids)
    lo_of = np.searchsorted(ids, ids - halo, "left")           # first slab of a window starting at slab i
    hi_of = np.searchsorted(ids, ids + halo, "right")          # one past the last slab of a window ending at j-1

    def window(i: int, j: int) -> tuple[int, int]:
        return int(cum[lo_of[i]]), int(cum[hi_of[j - 1]])

    out, i = [], 0
    while i < nu:
        j = i + 1
        lo, hi = window(i, j)
        if hi - lo > cap:
            raise LegoError(f"point_buffer: {what}: one x slab (x = {int(ids[i]) * unit}) with its neighbours "
                            f"holds {hi - lo} points, more than the point buffer ({cap})")
        step = 1
        while j < nu:                            # gallop: the window only grows with j
            jj = min(nu, j + step)
            l2, h2 = window(i, jj)
            if h2 - l2 <= cap:
                j, lo, hi, step = jj, l2, h2, step * 2
            elif step > 1:
                step //= 2
            else:
                break
        out.append((lo, hi, int(cum[i]), int(cum[j])))
        i = j
    return out


def x_tile_slices(coords: np.ndarray, cap: int, unit: int, halo: int, what: str) -> list[np.ndarray]:
    """The jobs of ``x_tiles`` as coordinate arrays (``coords`` sorted lexicographically, x slowest)."""
    return [coords[lo:hi] for lo, hi, _, _ in x_tiles(coords[:, 0], cap, unit, halo, what)]


# ------------------------------------------------------------------------------------------ costs
class Costs:
    """The cost primitives the networks call; every call adds to the current layer record."""

    def __init__(self, cfg: PointAccConfig, cache: bool = True, fusion: bool = True):
        from .matrix import mxu_latency
        self.cfg, self.cache, self.fusion = cfg, cache, fusion
        self.geo = Geometry.from_config(cfg)
        self.mxu_latency = mxu_latency(cfg.mxu_rows)       # the generated datapath's latency
        self.layers: list[dict] = []
        self.rec: dict | None = None
        self._energy_constants()

    # ---- energy per event (simulator/energy.py at cfg.node_nm)
    def _energy_constants(self) -> None:
        c, g, nm = self.cfg, self.geo, self.cfg.node_nm
        cb, L, W = c.coord_bits, c.distance_lanes, c.sorter_width
        db, ib = 2 * cb + 2, max(1, (c.point_buffer - 1).bit_length())
        e_bits = 1 + 3 * cb + ib
        stages = (W.bit_length() - 1) * W.bit_length() // 2
        dist = L * (3 * E.mul_pj(cb + 1, cb + 1, nm) + 5 * E.add_pj(db, nm))
        pb = E.sram_access_pj(max(1, c.point_buffer * 3 * cb // 8), L * 3 * cb, nm)
        sorter = (W // 2) * stages * (E.add_pj(e_bits, nm) + 2 * e_bits * E.energy_pj("mux2_bit", nm)) / max(1, W // L)
        self.e_map_cycle = dist + pb + sorter
        pe = E.pe_cost(8, c.mxu_acc_bits, 1, nm)
        self.e_mac = pe.mac_pj
        self.e_mxu_cycle = pe.reg_pj_per_cycle * c.mxu_rows * c.mxu_cols
        self.e_cache_row = E.sram_access_pj(c.cache_bytes, 8 * c.feature_row_bytes, nm)
        self.e_acc_beat = 2 * E.sram_access_pj(c.acc_buffer_bytes, 32 * c.mxu_cols, nm)
        self.e_weight_row = E.sram_access_pj(c.weight_buffer_bytes, 8 * c.mxu_cols, nm)
        self.e_fusion_byte = 2 * E.sram_access_pj(c.fusion_buffer_bytes, 64, nm) / 8
        self.e_dram_byte = E.energy_pj(c.dram_energy, nm)
        self.area = {"mxu": c.mxu_rows * c.mxu_cols * pe.area_um2,
                     "cache": E.sram_area_um2(c.cache_bytes, nm),
                     "buffers": sum(E.sram_area_um2(b, nm) for b in (c.acc_buffer_bytes, c.weight_buffer_bytes,
                                                                       c.fusion_buffer_bytes)),
                     "mapping": E.sram_area_um2(max(1, c.point_buffer * (3 * cb + db + 2 * e_bits + 3 * cb + 1 + ib)
                                                    // 8), nm)
                                + W * e_bits * g.sorter_latency * E.area_um2("reg_bit", nm)}

    # ---- layer records
    def layer(self, name: str, kind: str, points_in: int = 0, points_out: int = 0, c_in: int = 0,
              c_out: int = 0) -> dict:
        self.close()
        rec = {k: 0 for k in LAYER_COLUMNS}
        rec.update(layer=name, kind=kind, points_in=int(points_in), points_out=int(points_out), c_in=int(c_in),
                   c_out=int(c_out), fused="", notes="")
        self.rec = rec
        return rec

    def note(self, text: str) -> None:
        self.rec["notes"] = (self.rec["notes"] + "; " if self.rec["notes"] else "") + text

    def close(self) -> None:
        r = self.rec
        if r is None:
            return
        r["dram_bytes"] = sum(r[f"dram_bytes_{p}"] for p in DRAM_PARTS)
        r["dram_cycles"] = math.ceil(r["dram_bytes"] / self.cfg.dram_bytes_per_cycle)
        r["cycles"] = int(r["map_cycles"] + max(r["mmu_cycles"], r["mxu_cycles"], r["dram_cycles"]))
        r["energy_pj_mapping"] = r["map_cycles"] * self.e_map_cycle
        r["energy_pj_dram"] = r["dram_bytes"] * self.e_dram_byte
        r["energy_pj"] = sum(r[f"energy_pj_{p}"] for p in ENERGY_PARTS)
        self.layers.append(r)
        self.rec = None

    def dram(self, part: str, nbytes: int) -> None:
        self.rec[f"dram_bytes_{part}"] += int(nbytes)

    # ---- mapping unit
    def _fit(self, n: int, what: str) -> None:
        if n > self.cfg.point_buffer:
            raise LegoError(f"point_buffer: {what} needs all {n} points on chip; the point buffer holds "
                            f"{self.cfg.point_buffer} (raise point_buffer)")

    def _map(self, cycles: int, loaded: int, jobs: int = 1) -> None:
        self.rec["map_cycles"] += int(cycles) + int(loaded)
        self.rec["map_jobs"] += jobs
        self.dram("coords", loaded * COORD_BYTES)

    def fps(self, points: np.ndarray, m: int, load: bool = True) -> np.ndarray:
        n = len(points)
        if m > n:
            raise LegoError(f"m: {m} FPS samples > n = {n} points")
        self._fit(n, "FPS")
        self._map(fps_cycles(self.geo, n, m), n if load else 0)
        return ref.fps(points, m)

    def ball_query(self, points: np.ndarray, centers: np.ndarray, radius: int, k: int) -> np.ndarray:
        if radius < 1:
            raise LegoError(f"radius: must be > 0 (integer units), got {radius}")
        if k > self.cfg.max_neighbors:
            raise LegoError(f"max_neighbors: ball-query k = {k} exceeds max_neighbors = {self.cfg.max_neighbors}")
        self._fit(len(points), "ball query")
        self._map(ball_query_cycles(self.geo, points, centers, radius, k), 0)
        self.dram("maps", 2 * len(centers) * k * NEIGHBOR_BYTES)
        return ref.ball_query(points, centers, radius, k)

    def knn_xyz(self, points: np.ndarray, k: int, load: bool = True) -> np.ndarray:
        n, g = len(points), self.geo
        if k > n:
            raise LegoError(f"k: {k} > n = {n} points")
        self._fit(n, "kNN")
        kb = _cdiv(k, g.sorter_width)
        cyc = knn_cycles(g, n, n, min(k, g.sorter_width)) + n * (k - min(k, g.sorter_width))
        if kb > 1:
            cyc += n * (kb - 1) * _cdiv(n, g.sorter_width)
            self.note(f"kNN k={k} > sorter_width={g.sorter_width}: modeled with {kb} sorted blocks")
        self._map(cyc, n if load else 0)
        self.dram("maps", 2 * n * k * NEIGHBOR_BYTES)
        return ref.knn(points, points, k)[0]

    def knn_feature(self, n: int, c: int, k: int) -> None:
        """kNN in feature space (modeled): distances on the matrix unit, ranking on the sorter."""
        g, cfg = self.geo, self.cfg
        if k > n:
            raise LegoError(f"k: {k} > n = {n} points")
        self._fit(n, "kNN")
        kb = _cdiv(k, g.sorter_width)
        nb = _cdiv(n, g.sorter_width)
        passes = _cdiv(c, cfg.mxu_rows) * _cdiv(n, cfg.mxu_cols)
        dist = passes * mxu_cycles(cfg.mxu_rows, n, self.mxu_latency)
        rank = n * (nb * kb + g.sorter_latency + k + 7)
        self.rec["map_cycles"] += dist + rank
        self.rec["map_jobs"] += 1
        self.rec["macs"] += n * n * c
        self.rec["energy_pj_mxu"] += n * n * c * self.e_mac + dist * self.e_mxu_cycle
        self.dram("maps", 2 * n * k * NEIGHBOR_BYTES)
        self.note(f"feature-space kNN (C={c}, k={k}): modeled, distances on the matrix unit, ranking on the sorter")

    def voxelize(self, fine: np.ndarray, stride: int) -> tuple[np.ndarray, int]:
        """Downsampling of the fine-grid points by ``stride`` (the unit's OP_DOWN), x-slab tiles."""
        tiles = x_tiles(fine[:, 0], self.cfg.point_buffer, stride, 0, "voxelization")
        for lo, hi, _, _ in tiles:
            self._map(downsample_cycles(self.geo, hi - lo), hi - lo)
        vox, _ = ref.downsample(fine, stride)
        return (vox // stride).astype(np.int64), len(tiles)

    def kmap_sub(self, coords: np.ndarray, ts: int) -> ref.KernelMap:
        tiles = x_tile_slices(coords, self.cfg.point_buffer, ts, 1, f"submanifold kernel map (tensor stride {ts})")
        for t in tiles:
            self._map(kernel_map_cycles(self.geo, t, 3, ts), len(t))
        km = ref.submanifold_kernel_map(coords, 3, ts)
        self.dram("maps", sum(len(p) for p in km.pairs) * PAIR_BYTES)
        if len(tiles) > 1:
            self.note(f"kernel map in {len(tiles)} x-slab tiles")
        return km

    def kmap_down(self, coords: np.ndarray, ts: int) -> tuple[np.ndarray, ref.KernelMap]:
        tiles = x_tile_slices(coords, self.cfg.point_buffer, 2 * ts, 0, f"strided kernel map (tensor stride {ts})")
        for t in tiles:
            self._map(kernel_map_cycles(self.geo, t, 2, ts, stride=2), len(t))
        out, km = ref.strided_kernel_map(coords, 2, 2, ts)
        self.dram("maps", sum(len(p) for p in km.pairs) * PAIR_BYTES)
        if len(tiles) > 1:
            self.note(f"kernel map in {len(tiles)} x-slab tiles")
        return out.astype(np.int64), km

    # ---- MMU + matrix unit
    def _mxu(self, passes: int, chunks: int, beats: int) -> None:
        """``passes`` weight tiles over each of ``chunks`` chunks of ``beats`` beats in total."""
        cfg = self.cfg
        cyc = passes * (chunks * (cfg.mxu_rows + self.mxu_latency) + beats)
        self.rec["mxu_cycles"] += cyc
        self.rec["energy_pj_mxu"] += cyc * self.e_mxu_cycle
        self.rec["energy_pj_buffers"] += passes * (beats * self.e_acc_beat + chunks * cfg.mxu_rows * self.e_weight_row)

    def _macs(self, n: int) -> None:
        self.rec["macs"] += int(n)
        self.rec["energy_pj_mxu"] += n * self.e_mac

    def plan(self, taps: int, n_out: int, c_in: int, c_out: int, in_bytes: int, accumulate: bool) -> dict:
        """The loop order of a layer (the MMU's dataflow choice): output channels in groups of g column
        tiles (outermost); per group, output tiles of T sites (T: the accumulator buffer holds T x g*C int32;
        the whole layer when nothing accumulates); per tile all ``taps`` x input-row-chunk x column passes.
        Weights (taps x c_in x c_out int8) come from DRAM once when a group's share fits the weight buffer,
        else once per output tile; the inputs (``in_bytes``, read once) are read once per group. The g with
        the fewest of those bytes wins (ties: fewer groups)."""
        cfg = self.cfg
        ct = _cdiv(c_out, cfg.mxu_cols)
        best = None
        g = ct
        while True:
            groups = _cdiv(ct, g)
            cols = min(c_out, g * cfg.mxu_cols)
            tile = max(1, cfg.acc_buffer_bytes // (4 * cols)) if accumulate else n_out
            tiles = _cdiv(n_out, tile)
            wb = taps * c_in * cols
            w = groups * wb * (1 if wb <= cfg.weight_buffer_bytes else tiles)
            cost = w + groups * in_bytes
            if best is None or cost < best["cost"]:
                best = {"g": g, "groups": groups, "cols": cols, "tile": tile, "tiles": tiles, "weights": w,
                        "cost": cost}
            if g == 1:
                break
            g = max(1, g // 2)
        if best["groups"] > 1:
            self.note(f"output channels in {best['groups']} groups (weights {taps * c_in * c_out} B, "
                      f"weight buffer {cfg.weight_buffer_bytes} B)")
        return best

    def gather(self, rows: np.ndarray, ops: int, repeat: int = 1) -> None:
        """Gathered feature rows (row addresses, in order; the stream ``repeat`` times) in ``ops`` MMU ops,
        through the cache or not."""
        cfg, r = self.cfg, np.asarray(rows, dtype=np.int64)
        n = int(r.size) * repeat
        lat, br = cfg.dram_latency_cycles, cfg.cache_block_rows
        self.rec["gathers"] += n
        if self.cache:
            c = ReadStreamCache(cfg.cache_sets, cfg.cache_ways, br)        # a layer's features start cold
            h, m = c.run(r, repeat)
            self.rec["cache_hits"] += h
            self.rec["cache_misses"] += m
            self.rec["mmu_cycles"] += ops + h + m * (lat + br + 2)
            self.rec["energy_pj_cache"] += (n + m * br) * self.e_cache_row
            self.dram("features_in", m * br * cfg.feature_row_bytes)
        else:
            self.rec["mmu_cycles"] += ops + n * (lat + 3)
            self.dram("features_in", n * cfg.feature_row_bytes)

    def sparse_conv(self, km: ref.KernelMap, n_out: int, c_in: int, c_out: int) -> None:
        """Gather - GEMM - accumulate over the kernel offsets: per (group, output tile, offset) one gather
        chunk (one MMU op) and ceil(c_in / R) x (group columns / C) matrix-unit passes over it."""
        cfg = self.cfg
        rpp = _cdiv(c_in, cfg.mxu_rows)
        parts = [np.column_stack([np.full(len(p), d, np.int64), p]) for d, p in enumerate(km.pairs) if len(p)]
        if not parts:
            return
        pr = np.concatenate(parts)
        npairs = len(pr)
        pl = self.plan(len(km.pairs), n_out, c_in, c_out, npairs * rpp * cfg.feature_row_bytes, True)
        out_tile = pr[:, 2] // pl["tile"]
        order = np.lexsort((pr[:, 0], out_tile))              # tile, then offset; stable within an offset
        pr, out_tile = pr[order], out_tile[order]
        chunk_key = out_tile * len(km.pairs) + pr[:, 0]
        chunks = int(np.count_nonzero(np.diff(chunk_key))) + 1
        rows = (pr[:, 1][:, None] * rpp + np.arange(rpp)).ravel()
        self.gather(rows, chunks * pl["groups"], repeat=pl["groups"])
        ct = _cdiv(c_out, cfg.mxu_cols)
        self._mxu(rpp * ct, chunks, npairs)                       # every group: its column tiles
        self._macs(npairs * c_in * c_out)
        self.dram("weights", pl["weights"])
        self.dram("maps", npairs * PAIR_BYTES * pl["groups"])    # the map streamed into the MMU
        self.rec["fused"] = "n/a"

    def gather_rows(self, idx: np.ndarray, c: int, ops: int) -> None:
        """Gather the rows of points ``idx`` (each ceil(c / R) rows) in ``ops`` MMU ops."""
        rpp = _cdiv(c, self.cfg.mxu_rows)
        self.gather((np.asarray(idx, dtype=np.int64).ravel()[:, None] * rpp + np.arange(rpp)).ravel(), ops)

    def dense(self, n: int, c_in: int, c_out: int, read_in: bool = True, write_out: bool = True) -> None:
        """A point-wise layer (MLP layer, 1x1 convolution, fully connected) of n points; the input is read
        once per output-channel group (``plan``) when it comes from DRAM."""
        cfg = self.cfg
        rpp = _cdiv(c_in, cfg.mxu_rows)
        pl = self.plan(1, n, c_in, c_out, n * c_in if read_in else 0, rpp > 1)
        self._mxu(rpp * _cdiv(c_out, cfg.mxu_cols), pl["tiles"], n)
        self._macs(n * c_in * c_out)
        self.dram("weights", pl["weights"])
        if read_in:
            self.dram("features_in", n * c_in * pl["groups"])
        if write_out:
            self.dram("features_out", n * c_out)

    def on_chip(self, nbytes: int) -> None:
        """Intermediate bytes kept in the fusion buffer (written and read once)."""
        self.rec["energy_pj_buffers"] += nbytes * self.e_fusion_byte

    def fusable(self, widths) -> bool:
        """Temporal fusion of a chain whose intermediates have ``widths`` channels: on when asked and a tile
        of at least one point (input and output of the widest step) fits the fusion buffer."""
        return self.fusion and 2 * max(widths) <= self.cfg.fusion_buffer_bytes


# ------------------------------------------------------------------------------------------ runs
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lego sim --accelerator pointacc`` (--model, --out, --seed, --config, --preset and --json
    are lego sim's own)."""
    p.add_argument("--cloud", help="point cloud: KITTI .bin, ModelNet-style .txt or .npy (default: the shipped "
                                   "object cloud for pointnet2/dgcnn, the Ouster OS-1 frame for minkunet)")
    p.add_argument("--voxel", type=float, default=DEFAULT_VOXEL_M,
                   help=f"voxel size in metres for minkunet and the reported voxel count (default {DEFAULT_VOXEL_M})")
    p.add_argument("--no-cache", action="store_true", help="ablation: the MMU without its cache (every gathered "
                                                           "row from DRAM)")
    p.add_argument("--no-fusion", action="store_true", help="ablation: no temporal layer fusion (every layer "
                                                            "through DRAM)")
    p.add_argument("--k", type=int, default=20, help="dgcnn: neighbours of each kNN (default 20)")
    p.add_argument("--radius", type=float, default=0.2,
                   help="pointnet2: ball-query radius of SA1 in object units (SA2: twice; default 0.2)")


def _options(options: argparse.Namespace) -> dict:
    model = getattr(options, "model", None) or DEFAULT_MODEL
    if model not in MODELS:
        raise LegoError(f"--model: unknown model '{model}' for pointacc (allowed: {', '.join(MODELS)})")
    voxel = getattr(options, "voxel", DEFAULT_VOXEL_M)
    if voxel is None or not math.isfinite(voxel) or voxel <= 0:
        raise LegoError(f"--voxel: must be a positive number of metres, got {voxel}")
    k = getattr(options, "k", 20)
    if k is None or k < 1:
        raise LegoError(f"--k: must be >= 1, got {k}")
    radius = getattr(options, "radius", 0.2)
    if radius is None or not math.isfinite(radius) or radius <= 0:
        raise LegoError(f"--radius: must be > 0, got {radius}")
    cloud = getattr(options, "cloud", None)
    out = getattr(options, "out", None)
    out = Path(out) if out else Path(f"lego-pointacc-{model}")
    if out.exists() and not out.is_dir():
        raise LegoError(f"--out: '{out}' exists and is not a directory")
    if not out.resolve().parent.is_dir():
        raise LegoError(f"--out: directory '{out.resolve().parent}' does not exist")
    return {"model": model, "voxel": float(voxel), "k": int(k), "radius": float(radius),
            "cloud": Path(cloud) if cloud else DATA_DIR / DEFAULT_CLOUDS[model],
            "cache": not getattr(options, "no_cache", False), "fusion": not getattr(options, "no_fusion", False),
            "seed": int(getattr(options, "seed", 0) or 0), "out": out}


def count_voxels(xyz: np.ndarray, voxel: float) -> int:
    """Unique voxels of floor(xyz / voxel) over all points (float64, no crop)."""
    v = np.floor(np.asarray(xyz, dtype=np.float64) / voxel)
    lim = float(1 << 62)
    if np.abs(v).max() >= lim:
        raise LegoError(f"--voxel: {voxel} m is too small for coordinates up to {np.abs(xyz).max():.6g}")
    return int(np.unique(v.astype(np.int64), axis=0).shape[0])


def simulate(cfg: PointAccConfig, model: str, xyz: np.ndarray, voxel: float = DEFAULT_VOXEL_M, cache: bool = True,
             fusion: bool = True, k: int = 20, radius: float = 0.2, cloud_name: str = "") -> Report:
    """The network ``model`` on the cloud ``xyz`` (float (n, 3)); a Report (no files written)."""
    from . import networks
    t0 = time.perf_counter()
    if model not in MODELS:
        raise LegoError(f"--model: unknown model '{model}' for pointacc (allowed: {', '.join(MODELS)})")
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) == 0:
        raise LegoError("--cloud: empty cloud (0 points)")
    if not np.isfinite(xyz).all():
        raise LegoError("--cloud: NaN or Inf coordinates")
    voxels = count_voxels(xyz, voxel)
    ctx = Costs(cfg, cache=cache, fusion=fusion)
    info = getattr(networks, model)(ctx, xyz, voxel=voxel, k=k, radius=radius)
    ctx.close()
    L = ctx.layers
    tot = {c: sum(r[c] for r in L) for c in ("cycles", "map_cycles", "mmu_cycles", "mxu_cycles", "macs",
                                             "cache_hits", "cache_misses", "gathers", "map_jobs")}
    acc = tot["cache_hits"] + tot["cache_misses"]
    rep = Report(engine="pointacc-model", cycles=int(tot["cycles"]),
                 dram_bytes={p: int(sum(r[f"dram_bytes_{p}"] for r in L)) for p in DRAM_PARTS},
                 energy_pj={p: float(sum(r[f"energy_pj_{p}"] for r in L)) for p in ENERGY_PARTS},
                 area_um2={k_: float(v) for k_, v in ctx.area.items()})
    rep.extra.update({
        "model": model, "config": cfg.name, "cloud": cloud_name, "points": int(len(xyz)), "voxels": voxels,
        "voxel_m": voxel, "cache_hit_rate": (tot["cache_hits"] / acc) if acc else 0.0,
        "ablation": {"cache": cache, "fusion": fusion},
        "clock_ghz": cfg.clock_ghz, "latency_ms": tot["cycles"] / (cfg.clock_ghz * 1e6),
        "macs": int(tot["macs"]), "gathers": int(tot["gathers"]), "map_jobs": int(tot["map_jobs"]),
        "cycles_by_unit": {"mapping": int(tot["map_cycles"]), "mmu": int(tot["mmu_cycles"]),
                           "mxu": int(tot["mxu_cycles"])},
        "mxu_latency": ctx.mxu_latency, **info,
        "layers": [{k_: (round(v, 3) if isinstance(v, float) else v) for k_, v in r.items()} for r in L],
    })
    rep.sim_seconds = time.perf_counter() - t0
    return rep


def simulate_options(cfg: PointAccConfig, options: argparse.Namespace) -> Report:
    """``lego sim --accelerator pointacc``: checks the options and the cloud, runs ``simulate`` and writes
    layers.csv, summary.json and layers.png into ``--out`` (default lego-pointacc-<model>/), reported as
    ``files``; on a bad input nothing is written."""
    o = _options(options)
    xyz = load_cloud(o["cloud"])
    rep = simulate(cfg, o["model"], xyz, o["voxel"], o["cache"], o["fusion"], o["k"], o["radius"],
                   cloud_name=str(o["cloud"]))
    rep.extra["files"] = write_outputs(rep, o["out"])
    return rep


def write_outputs(rep: Report, out: Path) -> dict[str, str]:
    """layers.csv (one row per layer, units in the column names), summary.json (what --json prints, less
    ``accelerator``) and layers.png (per-layer cycles by unit and DRAM bytes), written atomically."""
    import csv
    import io
    import json
    import os
    import tempfile
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": str(out / "layers.csv"), "json": str(out / "summary.json"), "png": str(out / "layers.png")}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(LAYER_COLUMNS))
    w.writeheader()
    for r in rep.extra["layers"]:
        w.writerow(r)
    summary = {**rep.summary(), "files": files}
    blobs = {"csv": buf.getvalue().encode(), "json": json.dumps(summary, indent=1, sort_keys=True,
                                                               default=_jsonable).encode(),
             "png": _plot(rep)}
    for key, data in blobs.items():
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, files[key])
    return files


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x).__name__)


def _plot(rep: Report) -> bytes:
    import io
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    L = rep.extra["layers"]
    names = [r["layer"] for r in L]
    x = np.arange(len(L))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(8, 0.32 * len(L) + 2), 7), sharex=True)
    mp = np.array([r["map_cycles"] for r in L], dtype=float)
    rest = np.array([r["cycles"] - r["map_cycles"] for r in L], dtype=float)
    a1.bar(x, mp, label="mapping unit")
    a1.bar(x, rest, bottom=mp, label="MMU / matrix unit / DRAM (the longest)")
    a1.set_ylabel("cycles")
    a1.set_yscale("symlog")
    a1.legend(fontsize=8)
    ab = rep.extra["ablation"]
    a1.set_title(f"PointAcc ({rep.extra['config']}) {rep.extra['model']}: {rep.cycles:,} cycles, "
                 f"{rep.total_dram_bytes:,} DRAM bytes, cache hit rate {rep.extra['cache_hit_rate']:.3f}"
                 f" (cache {'on' if ab['cache'] else 'off'}, fusion {'on' if ab['fusion'] else 'off'})", fontsize=9)
    bottom = np.zeros(len(L))
    for p in DRAM_PARTS:
        v = np.array([r[f"dram_bytes_{p}"] for r in L], dtype=float)
        a2.bar(x, v, bottom=bottom, label=p)
        bottom += v
    a2.set_ylabel("DRAM bytes")
    a2.set_yscale("symlog")
    a2.legend(fontsize=8, ncol=5)
    a2.set_xticks(x)
    a2.set_xticklabels(names, rotation=90, fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()

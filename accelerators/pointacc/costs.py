"""The cost primitives of the PointAcc network model (``model.py`` documents what is exact and what is
modeled): ``Costs`` (one record per mapping op and layer; mapping-unit jobs, MMU gathers through the
cache, programs of the matrix unit (lego's programmable GEMM array), DRAM bytes, energy), the implicit-GEMM
plan of a sparse convolution (``conv_plan``, ``conv_tile``, ``zero_row``) and ``x_tiles``
(x-slab jobs for clouds larger than the point buffer)."""
from __future__ import annotations

import math

import numpy as np

from lego.errors import LegoError
from simulator import energy as E
from sw_reference import pointacc as ref

from .cache_model import CacheModel, ReadStreamCache
from .dram import CLEAN_MISS, nb_stream_cycles
from .config import PointAccConfig
from .cycles import (ball_query_cycles, downsample_cycles, fps_cycles, gather_knn_feature_cycles, kernel_map_cycles,
                     knn_cycles, knn_feature_cycles, knn_passes, mmu_cycles)
from .driver import Geometry

__all__ = ["Costs", "x_tiles", "x_tile_slices", "LAYER_COLUMNS", "DRAM_PARTS", "ENERGY_PARTS", "COORD_BYTES",
           "PAIR_BYTES", "NEIGHBOR_BYTES", "Y_BYTES", "TAG_ROWS", "conv_plan", "conv_tile",
           "zero_row"]

COORD_BYTES = 8          # a point in the mapping unit: 3 x 21-bit coordinates in one 64-bit word
PAIR_BYTES = 8           # a kernel-map pair (in, out) as two int32
NEIGHBOR_BYTES = 4       # a neighbour index (int32)
Y_BYTES = 4              # an output element of the array (Y int32)
TAG_ROWS = 1 << 16       # rows one MMU gather can stage (its 16-bit tag)

LAYER_COLUMNS = ("layer", "kind", "points_in", "points_out", "c_in", "c_out", "macs", "mxu_macs_issued", "gathers",
                 "cache_hits", "cache_misses", "cache_hit_rate", "map_jobs", "map_cycles", "mmu_cycles", "mxu_programs",
                 "mxu_cycles", "dram_cycles", "cycles", "dram_bytes", "dram_bytes_coords", "dram_bytes_maps",
                 "dram_bytes_features_in", "dram_bytes_features_out", "dram_bytes_weights", "dram_bytes_staging",
                 "energy_pj", "energy_pj_mapping",
                 "energy_pj_mxu", "energy_pj_cache", "energy_pj_buffers", "energy_pj_dram", "fused", "notes")
DRAM_PARTS = ("coords", "maps", "features_in", "features_out", "weights", "staging")
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
        self.cfg, self.cache, self.fusion = cfg, cache, fusion
        self.geo = Geometry.from_config(cfg)
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
        self.e_sort_block = (W // 2) * stages * (E.add_pj(e_bits, nm) + 2 * e_bits * E.energy_pj("mux2_bit", nm))
        sorter = self.e_sort_block / max(1, W // L)
        self.e_map_cycle = dist + pb + sorter
        pe = E.pe_cost(8, 32, 1, nm)                   # int8 operands, int32 accumulation
        self.e_mac = pe.mac_pj
        fb, fl = c.feature_bits, c.feature_lanes
        fbuf_bytes = max(1, c.feature_points * _cdiv(c.feature_dims, fl) * fl * fb // 8)
        # feature-distance stage: per feature, a (fb+1)-bit square and an add; per row pair, two buffer reads
        self.e_feat_mac = E.mul_pj(fb + 1, fb + 1, nm) + E.add_pj(2 * fb + 8, nm)
        self.e_feat_row = 2 * E.sram_access_pj(fbuf_bytes, fl * fb, nm)
        self.map_extra_pj = 0.0          # energy of the current layer's feature kNN (its own events)
        self.map_feat_cycles = 0         # its cycles, not charged at e_map_cycle (the xyz datapath's)
        self.e_mxu_cycle = pe.reg_pj_per_cycle * c.mxu_rows * c.mxu_cols
        self.e_cache_row = E.sram_access_pj(c.cache_bytes, 8 * c.feature_row_bytes, nm)
        self.e_acc_beat = 2 * E.sram_access_pj(c.acc_buffer_bytes, 32 * c.mxu_cols, nm)     # a row of C int32, RMW
        # a scratchpad byte: written once (the DMA) and read once (the array), in R-byte rows
        self.e_spad_byte = 2 * E.sram_access_pj(c.weight_buffer_bytes, 8 * c.mxu_rows, nm) / c.mxu_rows
        self.e_fusion_byte = 2 * E.sram_access_pj(c.fusion_buffer_bytes, 64, nm) / 8
        self.e_dram_byte = E.energy_pj(c.dram_energy, nm)
        self.area = {"mxu": c.mxu_rows * c.mxu_cols * pe.area_um2,
                     "cache": E.sram_area_um2(c.cache_bytes, nm),
                     "buffers": sum(E.sram_area_um2(b, nm) for b in (c.acc_buffer_bytes, c.weight_buffer_bytes,
                                                                       c.fusion_buffer_bytes)),
                     "mapping": E.sram_area_um2(max(1, c.point_buffer * (3 * cb + db + 2 * e_bits + 3 * cb + 1 + ib)
                                                    // 8), nm)
                                + W * e_bits * g.sorter_latency * E.area_um2("reg_bit", nm)
                                + (E.sram_area_um2(fbuf_bytes, nm) if c.feature_points else 0.0)}

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
        acc = r["cache_hits"] + r["cache_misses"]
        r["cache_hit_rate"] = r["cache_hits"] / acc if acc else 0.0      # as the total's: 0.0 without accesses
        r["dram_cycles"] = math.ceil(r["dram_bytes"] / self.cfg.dram_bytes_per_cycle)
        r["cycles"] = int(r["map_cycles"] + max(r["mmu_cycles"], r["mxu_cycles"], r["dram_cycles"]))
        r["energy_pj_mapping"] = (r["map_cycles"] - self.map_feat_cycles) * self.e_map_cycle + self.map_extra_pj
        self.map_extra_pj, self.map_feat_cycles = 0.0, 0
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
        if radius > (1 << 31) - 1:
            raise LegoError(f"radius: {radius} integer units exceeds 2**31 - 1")
        if k > self.cfg.max_neighbors:
            raise LegoError(f"max_neighbors: ball-query k = {k} exceeds max_neighbors = {self.cfg.max_neighbors}")
        self._fit(len(points), "ball query")
        self._map(ball_query_cycles(self.geo, points, centers, radius, k), 0)
        self.dram("maps", 2 * len(centers) * k * NEIGHBOR_BYTES)
        return ref.ball_query(points, centers, radius, k)

    def _knn_note(self, k: int) -> None:
        """k > W: how the unit ranks it (passes per query, merge stages KS = knn_merge_stages)."""
        g = self.geo
        if k > g.sorter_width:
            p, ks = knn_passes(g, k), g.knn_merge_stages
            self.note(f"kNN k={k} > sorter_width={g.sorter_width}: {p} pass{'es' if p > 1 else ''} per query, "
                      f"{ks} merge stage{'s' if ks > 1 else ''} (RTL)")

    def knn_xyz(self, points: np.ndarray, k: int, load: bool = True) -> np.ndarray:
        n, g = len(points), self.geo
        if k > n:
            raise LegoError(f"k: {k} > n = {n} points")
        if k > g.max_knn:
            raise LegoError(f"max_neighbors: kNN k = {k} exceeds the unit's kNN limit "
                            f"max(sorter_width, max_neighbors) = {g.max_knn}")
        self._fit(n, "kNN")
        cyc = knn_cycles(g, n, n, k)            # exact; ceil(k / (KS*W)) passes per query
        self._knn_note(k)
        self._map(cyc, n if load else 0)
        self.dram("maps", 2 * n * k * NEIGHBOR_BYTES)
        return ref.knn(points, points, k)[0]

    def knn_feature(self, n: int, c: int, k: int) -> None:
        """kNN in feature space as pointacc_top runs it: an MMU gather of the points' feature rows into the
        feature buffer (``map_fld_src`` = 1), then OP_KNNF (``knn_feature_cycles``, exact; k > KS * sorter_width
        in ceil(k / (KS*W)) passes per query, each recomputing the distances; checked against the RTL), composed as
        ``gather_knn_feature_cycles`` (gather + kNN + 4, checked against the generated top under Icarus and
        Verilator). The unit walks CH = ceil(feature_dims / FL) rows a point
        whatever C is: point p's rows are its ceil(C / FL) feature rows (DRAM rows p*ceil(C/FL) + j of the
        layer's input) and, for C < feature_dims, one shared all-zero DRAM row for each padding chunk. The
        gather goes through a cold cache (``cycles.mmu_cycles`` on ``CacheModel``, the bench's exact model) or,
        with ``--no-cache``, one one-row DRAM read a row as in ``gather``. The whole step is serial (the kNN
        needs the full buffer, the grouping gather needs the kNN), so its cycles go to ``map_cycles``; the
        gather's hits, misses, DRAM bytes and cache energy are the layer's."""
        g, cfg = self.geo, self.cfg
        if k > n:
            raise LegoError(f"k: {k} > n = {n} points")
        if k > g.max_knn:
            raise LegoError(f"max_neighbors: kNN k = {k} exceeds the unit's kNN limit "
                            f"max(sorter_width, max_neighbors) = {g.max_knn}")
        if cfg.feature_points == 0:
            raise LegoError("feature_points: 0, the mapping unit has no feature kNN path (OP_KNNF)")
        if n > cfg.feature_points:
            raise LegoError(f"feature_points: feature kNN needs all {n} points on chip; the feature buffer holds "
                            f"{cfg.feature_points} (raise feature_points)")
        if c > cfg.feature_dims:
            raise LegoError(f"feature_dims: feature kNN on C = {c} channels; the feature buffer holds "
                            f"{cfg.feature_dims} (raise feature_dims)")
        fl, lat, br = cfg.feature_lanes, cfg.dram_latency_cycles, cfg.cache_block_rows
        kb = knn_passes(g, k)
        knnf = knn_feature_cycles(g, n, n, k, cfg.feature_dims, fl)
        self._knn_note(k)
        ch, chc = _cdiv(cfg.feature_dims, fl), _cdiv(c, fl)
        zero = _cdiv(n * chc, br) * br                  # the all-zero row, in its own block after the features
        rows = [p * chc + j if j < chc else zero for p in range(n) for j in range(ch)]
        nrows = len(rows)
        if self.cache:
            mc = mmu_cycles(CacheModel(cfg.cache_sets, cfg.cache_ways, br), "gather", rows, lat, cfg.mmu_mshrs,
                            cfg.mmu_queue)
            gcyc, h, m = mc["cycles"], mc["hits"], mc["misses"]
            self.rec["cache_hits"] += h
            self.rec["cache_misses"] += m
            self.rec["energy_pj_cache"] += (nrows + m * br) * self.e_cache_row
            self.dram("features_in", m * br * cfg.feature_row_bytes)
        else:
            if cfg.mmu_mshrs > 1:
                gcyc = nb_stream_cycles(np.full(nrows, CLEAN_MISS, dtype=np.int8), np.zeros(nrows, dtype=np.int32),
                                        np.zeros(1, dtype=np.int64), lat, 1, cfg.mmu_mshrs, cfg.mmu_queue)
            else:
                gcyc = 1 + nrows * (lat + 3)
            self.dram("features_in", nrows * cfg.feature_row_bytes)
        self.rec["gathers"] += nrows
        cyc = gather_knn_feature_cycles(gcyc, knnf)
        self.rec["map_cycles"] += cyc
        self.rec["map_jobs"] += 1
        self.rec["macs"] += n * n * c
        self.map_feat_cycles += cyc
        # per query and pass: n*c square-adds, n*CH row-pair reads, ceil(n/W) sorter blocks; + the rows written
        self.map_extra_pj += (kb * (n * n * c * self.e_feat_mac + n * nrows * self.e_feat_row)
                              + n * _cdiv(n, g.sorter_width) * kb * self.e_sort_block + nrows * self.e_feat_row / 2)
        self.dram("maps", 2 * n * k * NEIGHBOR_BYTES)
        self.note(f"feature-space kNN (C={c}, k={k}) on the feature-distance stage (OP_KNNF, {fl} lanes, "
                  f"{ch} rows a point), its {nrows} feature rows gathered by the MMU ({gcyc} cycles)")

    def voxelize(self, fine: np.ndarray, stride: int) -> tuple[np.ndarray, int]:
        """Downsampling of the fine-grid points by ``stride`` (the unit's OP_DOWN) in x-slab tiles (one voxel
        wide slabs, bucketed by the host); when one slab holds more points than the buffer, tiles of whole
        voxels instead (consecutive voxels in sort order; one voxel larger than the buffer is refused)."""
        cap = self.cfg.point_buffer
        try:
            sizes = [hi - lo for lo, hi, _, _ in x_tiles(fine[:, 0], cap, stride, 0, "voxelization")]
        except LegoError:
            coarse = np.floor_divide(fine, stride)
            _, counts = np.unique(ref.coord_keys(np.clip(coarse, ref.COORD_MIN, ref.COORD_MAX)), return_counts=True)
            if int(counts.max()) > cap:
                raise LegoError(f"point_buffer: voxelization: one voxel holds {int(counts.max())} points, more than "
                                f"the point buffer ({cap}); use a smaller --voxel") from None
            sizes, cur = [], 0
            for c in counts.tolist():
                if cur + c > cap:
                    sizes.append(cur)
                    cur = 0
                cur += c
            sizes.append(cur)
            self.note(f"voxelization in {len(sizes)} tiles of whole voxels (an x slab exceeds the point buffer)")
        for sz in sizes:
            self._map(downsample_cycles(self.geo, sz), sz)
        vox, _ = ref.downsample(fine, stride)
        return (vox // stride).astype(np.int64), len(sizes)

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

    # ---- MMU + matrix unit (the programmable GEMM array)
    def _program(self, m: int, k: int, n: int) -> dict:
        """One program ``Y[m x n] = X[m x k] W[k x n]`` on the array (``matrix.mxu_gemm``: exact cycles and the
        compiler's tile (tM, tN, tK)): adds its cycles, issued MACs and energy to the layer and returns the
        bytes it moves. The compiler's loop order (``lego.prog.compiler.emit_gemm``: M tiles, then N tiles,
        then K steps, each loading its X and W tiles) reads X once per N tile and W once per M tile; Y (int32)
        is stored once. Energy: per issued MAC (``pe_cost``, int32 accumulation), per busy array cycle (the
        PE registers), the scratchpad (each X and W byte loaded written once by the DMA and read once by the
        array; a tile spanning several column passes reads X more often, not counted) and the accumulator
        (one read-modify-write of a row of C int32 per row, K pass of R and column pass of C)."""
        cfg = self.cfg
        from .matrix import mxu_gemm        # amaranth and lego.prog: loaded at the first program, not at start-up
        cyc, _mode, tile = mxu_gemm(cfg, m, k, n, cfg.dram_latency_cycles)
        t = dict(tile)
        x_read = m * k * _cdiv(n, t["N"])
        w_read = k * n * _cdiv(m, t["M"])
        issued = m * k * n
        r = self.rec
        r["mxu_cycles"] += cyc
        r["mxu_programs"] += 1
        r["mxu_macs_issued"] += issued
        r["energy_pj_mxu"] += issued * self.e_mac + cyc * self.e_mxu_cycle
        r["energy_pj_buffers"] += ((x_read + w_read) * self.e_spad_byte
                                   + m * _cdiv(k, cfg.mxu_rows) * _cdiv(n, cfg.mxu_cols) * self.e_acc_beat)
        return {"cycles": cyc, "tile": t, "x_read": x_read, "w_read": w_read, "y": m * n * Y_BYTES}

    def gather(self, rows: np.ndarray, ops: int, repeat: int = 1, starts=None) -> None:
        """Gathered feature rows (row addresses, in order; the stream ``repeat`` times) in ``ops`` MMU ops
        (``ops / repeat`` per pass, starting at the stream indices ``starts``; default: equal parts), through
        the cache or not. The MMU's cycles: blocking (``mmu_mshrs`` = 1) a hit 1, a miss LAT + B + 2, an op
        1 more; non-blocking ``dram.nb_stream_cycles`` over the cache's hits and misses in stream order.
        Without the cache (the ablation) every row is a one-row DRAM read through the same MMU: blocking
        LAT + 3 a row, non-blocking the same recurrence with every entry a clean miss and B = 1."""
        cfg, r = self.cfg, np.asarray(rows, dtype=np.int64)
        n = int(r.size) * repeat
        lat, br = cfg.dram_latency_cycles, cfg.cache_block_rows
        self.rec["gathers"] += n
        if self.cache:
            c = ReadStreamCache(cfg.cache_sets, cfg.cache_ways, br)        # a layer's features start cold
            if cfg.mmu_mshrs > 1 and r.size:
                per_pass = ops // repeat
                if starts is None:
                    starts = (np.arange(per_pass, dtype=np.int64) * r.size) // per_pass
                cyc = 0
                for p in range(min(repeat, 2)):           # passes after the second repeat the second exactly
                    k, d = c.events(r)
                    cp = nb_stream_cycles(k, d, starts, lat, br, cfg.mmu_mshrs, cfg.mmu_queue)
                    cyc += cp if p == 0 else (repeat - 1) * cp
                    if p == 1 and repeat > 2:
                        c.hits += (repeat - 2) * int(k.size - np.count_nonzero(k))
                        c.misses += (repeat - 2) * int(np.count_nonzero(k))
                h, m = c.hits, c.misses
                self.rec["mmu_cycles"] += cyc
            else:
                h, m = c.run(r, repeat)
                self.rec["mmu_cycles"] += ops + h + m * (lat + br + 2)
            self.rec["cache_hits"] += h
            self.rec["cache_misses"] += m
            self.rec["energy_pj_cache"] += (n + m * br) * self.e_cache_row
            self.dram("features_in", m * br * cfg.feature_row_bytes)
        elif cfg.mmu_mshrs > 1 and r.size:     # no cache, the same non-blocking MMU: every row a 1-row read
            per_pass = ops // repeat
            if starts is None:
                starts = (np.arange(per_pass, dtype=np.int64) * r.size) // per_pass
            k = np.full(r.size, CLEAN_MISS, dtype=np.int8)
            self.rec["mmu_cycles"] += repeat * nb_stream_cycles(k, np.zeros(r.size, dtype=np.int32), starts, lat, 1,
                                                                cfg.mmu_mshrs, cfg.mmu_queue)
            self.dram("features_in", n * cfg.feature_row_bytes)
        else:
            self.rec["mmu_cycles"] += ops + n * (lat + 3)
            self.dram("features_in", n * cfg.feature_row_bytes)

    def sparse_conv(self, km: ref.KernelMap, n_out: int, c_in: int, c_out: int) -> dict:
        """Implicit GEMM per output tile (``conv_plan``): per tile of T output sites one MMU gather of its
        T * taps * rpp rows (t major, then the kernel offset d, then the row j of the point; a missing pair
        is the zero row) staged into X (T x taps*rpp*R int8), then one program GEMM(M=T, K=taps*rpp*R,
        N=c_out) that accumulates the whole tile in the array. DRAM: the gathered rows (cache fills,
        ``features_in``), X written by the stager and read by the array (``staging``), W as the program reads
        it (``weights``), Y int32 (``features_out``), the kernel map read once (``maps``). Returns the plan."""
        pl = conv_plan(self.cfg, km, n_out, c_in)
        if pl is None:
            return None
        K = len(km.pairs) * pl["rpp"] * self.cfg.mxu_rows
        self.gather(pl["rows"], len(pl["starts"]), starts=pl["starts"])
        for m in pl["tiles"]:
            g = self._program(m, K, c_out)
            self.dram("staging", m * K + g["x_read"])
            self.dram("weights", g["w_read"])
            self.dram("features_out", g["y"])
        self.rec["macs"] += pl["pairs"] * c_in * c_out
        self.dram("maps", pl["pairs"] * PAIR_BYTES)
        self.rec["fused"] = "n/a"
        if len(pl["tiles"]) > 1:
            self.note(f"implicit GEMM in {len(pl['tiles'])} output tiles of {pl['T']} sites (K = {K})")
        return pl

    def gather_rows(self, idx: np.ndarray, c: int, ops: int) -> None:
        """Gather the rows of points ``idx`` (each ceil(c / R) rows) in ``ops`` MMU ops; the stager writes
        every gathered row into the next program's X (``staging``)."""
        rpp = _cdiv(c, self.cfg.mxu_rows)
        rows = (np.asarray(idx, dtype=np.int64).ravel()[:, None] * rpp + np.arange(rpp)).ravel()
        self.gather(rows, ops)
        self.dram("staging", rows.size * self.cfg.feature_row_bytes)

    def dense(self, n: int, c_in: int, c_out: int, x_from: str | None = "features_in", write_out: bool = True) -> None:
        """A point-wise layer (MLP layer, 1x1 convolution, fully connected) of n points: one program
        GEMM(M=n, K=c_in, N=c_out). ``x_from``: the DRAM part X is read from as the program reads it
        (``features_in``; ``staging`` after a grouping gather; None: the modeled fusion buffer, no DRAM bytes,
        though the program's cycles are the array's own, reading DRAM); ``write_out``: Y (int32) to DRAM."""
        g = self._program(n, c_in, c_out)
        self.rec["macs"] += n * c_in * c_out
        self.dram("weights", g["w_read"])
        if x_from is not None:
            self.dram(x_from, g["x_read"])
        if write_out:
            self.dram("features_out", g["y"])

    def on_chip(self, nbytes: int) -> None:
        """Intermediate bytes kept in the fusion buffer (written and read once)."""
        self.rec["energy_pj_buffers"] += nbytes * self.e_fusion_byte

    def fusable(self, widths) -> bool:
        """Temporal fusion of a chain whose intermediates have ``widths`` channels: on when asked and a tile
        of at least one point (input and output of the widest step) fits the fusion buffer."""
        return self.fusion and 2 * max(widths) <= self.cfg.fusion_buffer_bytes


# ------------------------------------------------------------------------------------------ implicit GEMM
def zero_row(n_in: int, rpp: int, block_rows: int) -> int:
    """The DRAM row address of the all-zero row: the first row of the cache block after the layer's
    n_in * rpp feature rows (rows 0 .. n_in*rpp - 1), so it is distinct from every feature row and shares no
    block with them."""
    return _cdiv(n_in * rpp, block_rows) * block_rows


def conv_tile(cfg: PointAccConfig, taps: int, rpp: int, n_out: int) -> int:
    """T, the output sites of one implicit-GEMM tile: as many as the MMU's 16-bit gather tag allows
    (T * taps * rpp <= 65536 staged rows), rounded down to a multiple of lcm(R, C) (the granularity of the
    array's tile box) when that leaves at least one, and at most the layer's ``n_out`` sites."""
    per = taps * rpp
    t = TAG_ROWS // per
    if t < 1:
        raise LegoError(f"mxu_rows: one output site stages {per} rows (taps {taps} x {rpp} rows a point), "
                        f"more than the MMU's 16-bit gather tag ({TAG_ROWS} rows)")
    g = math.lcm(cfg.mxu_rows, cfg.mxu_cols)
    if t >= g:
        t -= t % g
    return max(1, min(t, n_out))


def conv_plan(cfg: PointAccConfig, km: ref.KernelMap, n_out: int, c_in: int, zero: int | None = None) -> dict | None:
    """The implicit-GEMM plan of a sparse convolution (None without pairs): ``rpp`` = ceil(c_in / R) rows a
    point, ``T`` (``Costs.conv_tile``), ``tiles`` (the M of each program: T, the last the rest), ``rows`` (the
    gather stream: per output site t, kernel offset d and row j, row in*rpp + j of the input paired with t at
    d, or ``zero``), ``starts`` (stream index of each tile's MMU op), ``pairs``, ``zero`` and ``entries``.
    LegoError naming ``kernel map`` when an (output, offset) has two inputs (one X row each). ``zero``: the zero
    row's address (default ``zero_row``: the block after the feature rows; the RTL bench puts it elsewhere)."""
    rpp = _cdiv(c_in, cfg.mxu_rows)
    taps = len(km.pairs)
    parts = [np.column_stack([np.full(len(p), d, np.int64), p]) for d, p in enumerate(km.pairs) if len(p)]
    if not parts:
        return None
    pr = np.concatenate(parts)                 # (d, in, out)
    n_in = int(pr[:, 1].max()) + 1
    src = np.full((n_out, taps), -1, dtype=np.int64)
    src[pr[:, 2], pr[:, 0]] = pr[:, 1]
    if int(np.count_nonzero(src >= 0)) != len(pr):
        raise LegoError("kernel map: an (output, offset) has more than one input; the implicit GEMM stages one "
                        "X row per (output, offset)")
    zero = zero_row(n_in, rpp, cfg.cache_block_rows) if zero is None else zero
    rows = np.where(src[:, :, None] >= 0, src[:, :, None] * rpp + np.arange(rpp), zero).reshape(-1)
    T = conv_tile(cfg, taps, rpp, n_out)
    tiles = [min(T, n_out - s) for s in range(0, n_out, T)]
    starts = np.arange(0, n_out, T, dtype=np.int64) * taps * rpp
    return {"rpp": rpp, "taps": taps, "T": T, "tiles": tiles, "rows": rows, "starts": starts, "pairs": len(pr),
            "zero": zero, "entries": int(rows.size)}


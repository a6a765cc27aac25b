"""Exact cycle model of the PointAcc mapping unit (``accelerators.pointacc.mapping.MappingUnit``).

Every function returns exactly what the unit's ``cycles`` port reports for the op (rising edges
from the start edge, exclusive, to the edge at which ``done`` rises, inclusive), with the query
stream always valid when the unit asks for a query. The formulas are the schedules of the unit's
docstring; the benches check them against Icarus and Verilator on every case.

Notation (``Geometry``: lanes L, sorter width W, sorter latency SL):
    NR = ceil(n/L) rows, NB = ceil(n/W) blocks, NRI = NB*W/L rows (whole blocks),
    P = ceil(log2 NB) merge passes.

API
---
    fps_cycles(geo, n, m)                          1 + (m-1)(NR+4)
    knn_cycles(geo, n, n_queries, k)               n_queries (KP (NRI + SL + 7) + k)
    knn_feature_cycles(geo, n, n_queries, k, C, FL)
                                                   n_queries (KP (n * ceil(C/FL) + SL + 8) + k)   (OP_KNNF)
        KP = ceil(k / (KS*W)) passes over the points per query (KS = knn_merge_stages: the merger and
        KS - 1 cascade stages keep the running best KS*W; k > KS*W: each pass ranks the entries after the
        previous pass's last (distance, index)); k <= KS*W: one pass, n_queries (NRI + SL + k + 7). The
        cascade adds no cycle: stage s settles s cycles after the last merge step, before beat s*W.
    ball_query_cycles(geo, points, centers, radius, k)
                                                   sum over centres of R + k + 6, R = min(NR, r* + 4),
                                                   r* = row (index // L) of the k-th hit
    sort_cycles(geo, n)                            NRI + SL + 4 + P (NB + 3)
    downsample_cycles(geo, n)                      1 + sort + 1 + n
    kernel_map_cycles(geo, coords, kernel_size, tensor_stride=1, stride=None)
        submanifold (stride None): 1 + sort + 1 + sum_o (1 + steps_o + scan)
        strided: 1 + sort + 1 + n + sort + 1 + sum_o (1 + steps_o)
        steps_o = n_out + i_o - hits_o (i_o: input keys consumed by offset o's merge),
        scan = 0 when the outputs are in index order (strided, or input keys strictly increasing in
        index order), else n_out + 1
    job_cycles(geo, job, points, queries=None)     dispatch on a driver.Job
    kernel_map_breakdown(...)                      the per-offset terms

The MMU (``accelerators.pointacc.mmu.MMU``): ``mmu_cycles(cache_model, op, rows, dram_latency, mshrs,
queue)`` replays the op on a ``cache_model.CacheModel`` and returns cycles, hits, misses, write-backs and
the DRAM block traffic; the timing (blocking and non-blocking, gathers and scatters alike) is ``dram.py``'s.

The matrix unit (``accelerators.pointacc.matrix.MatrixUnit``: lego's programmable GEMM array, whose programs
``lego.prog.timing`` times exactly; ``matrix.gemm_program`` returns a program with its cycles P):
    gather_gemm_cycles(mmu, P)                     mmu + 3 + P   (an MMU gather of ``mmu`` cycles staged into
                                                   the array's X, mxu_stage = 1; the program's first command in
                                                   the cycle after the MMU's done; from the gather's start
                                                   cycle to END's edge)

The feature kNN of ``pointacc_top`` (its feature buffer filled by an MMU gather, ``map_fld_src`` = 1):
    feature_gather_entries(n, dims, lanes, src, base)
                                                   the gather's map: (DRAM row, buffer row) per buffer row
    gather_knn_feature_cycles(mmu, knnf)           mmu + knnf + 4   (the gather of ``mmu`` cycles, then
                                                   OP_KNNF of ``knnf`` cycles started the cycle after the
                                                   MMU's done; from the gather's start cycle to the cycle
                                                   of the kNN's done, inclusive)
"""
from __future__ import annotations

import numpy as np

from sw_reference import pointacc as ref

from .dram import CLEAN_MISS, DIRTY_MISS, HIT, blocking_gather_cycles, nb_gather_cycles
from .driver import Geometry, Job

__all__ = ["fps_cycles", "knn_cycles", "knn_passes", "knn_feature_cycles", "ball_query_cycles", "sort_cycles", "downsample_cycles",
           "kernel_map_cycles", "kernel_map_breakdown", "job_cycles", "merge_steps_reference", "mmu_cycles",
           "gather_gemm_cycles", "feature_gather_entries", "gather_knn_feature_cycles"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _counts(geo: Geometry, n: int) -> tuple[int, int, int, int]:
    nr = _cdiv(n, geo.lanes)
    nb = _cdiv(n, geo.sorter_width)
    nri = nb * (geo.sorter_width // geo.lanes)
    p = max(0, (nb - 1).bit_length())
    return nr, nb, nri, p


def fps_cycles(geo: Geometry, n: int, m: int) -> int:
    nr = _counts(geo, n)[0]
    return 1 + (m - 1) * (nr + 4)


def knn_feature_cycles(geo: Geometry, n: int, n_queries: int, k: int, dims: int, feature_lanes: int) -> int:
    """Feature kNN (OP_KNNF): per query, accept (1) + n*CH row-pair issues (CH = ceil(dims /
    feature_lanes)) + 4 (distance pipeline) + 1 (gather register) + SL (sorter) + 1 (last merge step)
    + 1 (H seen) + k beats = n*CH + SL + k + 8."""
    ch = _cdiv(dims, feature_lanes)
    return n_queries * (knn_passes(geo, k) * (n * ch + geo.sorter_latency + 8) + k)


def knn_passes(geo: Geometry, k: int) -> int:
    """Passes over the points per kNN query: ceil(k / (KS*W)) (KS*W neighbours per pass, KS =
    knn_merge_stages; the last pass the rest)."""
    return max(1, _cdiv(k, geo.knn_merge_stages * geo.sorter_width))


def knn_cycles(geo: Geometry, n: int, n_queries: int, k: int) -> int:
    """kNN (OP_KNN), per query and pass: accept / restart (1) + NRI row issues + 3 (to stage P3) + SL
    (sorter) + 1 (last merge step) + 2 (H flushed, seen) + the pass's beats (KS*W, the last pass the rest):
    KP (NRI + SL + 7) + k, KP = ``knn_passes`` = ceil(k / (KS*W))."""
    nri = _counts(geo, n)[2]
    return n_queries * (knn_passes(geo, k) * (nri + geo.sorter_latency + 7) + k)


def ball_query_rows(geo: Geometry, points, centers, radius: int, k: int) -> np.ndarray:
    """Rows issued per centre: min(NR, r* + 4), r* the row of the k-th hit (NR if fewer hits)."""
    p = np.asarray(points, dtype=np.int64)
    c = np.asarray(centers, dtype=np.int64)
    nr = _counts(geo, p.shape[0])[0]
    rows = np.full(c.shape[0], nr, dtype=np.int64)
    step = max(1, (1 << 21) // max(1, p.shape[0]))
    for s in range(0, c.shape[0], step):
        hit = ref.sqdist(c[s:s + step], p) <= radius * radius
        cum = np.cumsum(hit, axis=1)
        enough = cum[:, -1] >= k
        kth = np.argmax(cum >= k, axis=1)
        rows[s:s + step] = np.where(enough, np.minimum(nr, kth // geo.lanes + 4), nr)
    return rows


def ball_query_cycles(geo: Geometry, points, centers, radius: int, k: int) -> int:
    rows = ball_query_rows(geo, points, centers, radius, k)
    return int(rows.sum()) + len(rows) * (k + 6)


def sort_cycles(geo: Geometry, n: int) -> int:
    _, nb, nri, p = _counts(geo, n)
    return nri + geo.sorter_latency + 4 + p * (nb + 3)


def downsample_cycles(geo: Geometry, n: int) -> int:
    return 1 + sort_cycles(geo, n) + 1 + n


def _keys(coords: np.ndarray) -> np.ndarray:
    return ref.coord_keys(coords)


def merge_steps_reference(in_keys, out_keys_shifted, ok) -> tuple[int, int]:
    """(steps, hits) of one offset's merge, stepped one by one as the unit does (slow; for tests)."""
    i = j = steps = hits = 0
    n_in = len(in_keys)
    while j < len(out_keys_shifted):
        steps += 1
        b = out_keys_shifted[j]
        if not ok[j] or i >= n_in or b < in_keys[i]:
            j += 1
        elif b == in_keys[i]:
            i += 1
            j += 1
            hits += 1
        else:
            i += 1
    return steps, hits


def kernel_map_breakdown(geo: Geometry, coords, kernel_size: int, tensor_stride: int = 1,
                         stride: int | None = None) -> dict:
    """Per-offset merge steps and hits, n_out, whether pairs are emitted directly, and the sort cost."""
    c = np.asarray(coords, dtype=np.int64)
    n = c.shape[0]
    in_keys_idx = _keys(c)
    in_sorted = np.sort(in_keys_idx)
    if stride is None:
        out_c = c[np.argsort(in_keys_idx, kind="stable")]
        direct = bool(n == 1 or (in_keys_idx[1:] > in_keys_idx[:-1]).all())
    else:
        out_c, _ = ref.downsample(c, stride * tensor_stride)
        out_c = out_c.astype(np.int64)
        direct = True
    n_out = out_c.shape[0]
    lo, hi = -(1 << (geo.coord_bits - 1)), (1 << (geo.coord_bits - 1)) - 1
    steps, hits = [], []
    for delta in ref.kernel_offsets(kernel_size):
        sh = out_c + delta * tensor_stride
        ok = ((sh >= lo) & (sh <= hi)).all(axis=1)
        bk = _keys(np.clip(sh, ref.COORD_MIN, ref.COORD_MAX))
        valid = bk[ok]
        pos = np.searchsorted(in_sorted, valid, side="left")
        is_hit = (pos < n) & (in_sorted[np.minimum(pos, n - 1)] == valid)
        h = int(is_hit.sum())
        if valid.size:
            final_i = int(pos[-1]) + int(is_hit[-1])
        else:
            final_i = 0
        steps.append(n_out + final_i - h)
        hits.append(h)
    return {"n": n, "n_out": n_out, "direct": direct, "steps": steps, "hits": hits,
            "sort": sort_cycles(geo, n)}


def kernel_map_cycles(geo: Geometry, coords, kernel_size: int, tensor_stride: int = 1,
                      stride: int | None = None) -> int:
    b = kernel_map_breakdown(geo, coords, kernel_size, tensor_stride, stride)
    scan = 0 if b["direct"] else b["n_out"] + 1
    per_offset = sum(1 + s + scan for s in b["steps"])
    if stride is None:
        return 1 + b["sort"] + 1 + per_offset
    return 1 + b["sort"] + 1 + b["n"] + b["sort"] + 1 + per_offset


def job_cycles(geo: Geometry, job: Job, points, queries=None) -> int:
    """The cycles of a ``driver.Job`` on its inputs."""
    pt = job.ports
    n = pt["n"]
    if job.op == "fps":
        return fps_cycles(geo, n, pt["m"])
    if job.op == "knn":
        return knn_cycles(geo, n, pt["m"], pt["k"])
    if job.op == "ball_query":
        return ball_query_cycles(geo, points, queries, job.info["radius"], pt["k"])
    if job.op == "downsample":
        return downsample_cycles(geo, n)
    if job.op == "kernel_map_submanifold":
        return kernel_map_cycles(geo, points, pt["ksize"], job.info["tensor_stride"])
    return kernel_map_cycles(geo, points, pt["ksize"], job.info["tensor_stride"], job.info["stride"])


# ------------------------------------------------------------------------------------------ MMU
def mmu_cycles(model, op: str, rows=(), dram_latency: int = 1, mshrs: int = 1, queue: int = 8) -> dict:
    """Apply one MMU op to a ``cache_model.CacheModel`` (mutating it) and return the op's exact
    cycles and counters: {'cycles', 'hits', 'misses', 'writebacks', 'fills' (block addresses read),
    'written' (block addresses written back, in order), 'kinds', 'dists' (the entries' timing classes,
    ``dram.py``)}.

    op: 'gather', 'scatter', 'scatter_add' (one access per row of ``rows``) or 'flush'. Blocking
    (``mshrs`` = 1): a hit costs 1 cycle, a miss LAT + B + 2 (+ B + 1 with a dirty victim), B = block_rows;
    the op adds 1 (the final drain). With ``mshrs`` >= 2 (an in-order queue of ``queue`` entries; gathers,
    scatters and scatter-adds alike): ``dram.nb_gather_cycles``. A flush costs
    sets*ways + (B + 1) * dirty + 1.
    """
    br = model.block_rows
    model.reset_stats()
    if op == "flush":
        written = model.flush()
        return {"cycles": model.sets * model.ways + (br + 1) * len(written) + 1, "hits": 0, "misses": 0,
                "writebacks": len(written), "fills": [], "written": written, "kinds": [], "dists": []}
    if op not in ("gather", "scatter", "scatter_add"):
        raise ValueError(f"op: unknown MMU op {op!r}")
    if dram_latency < 1:
        raise ValueError(f"dram_latency_cycles: must be >= 1, got {dram_latency}")
    fills, written, kinds, dists = [], [], [], []
    last: dict[int, int] = {}          # block -> index of its last access
    for i, r in enumerate(rows):
        ev = model.access(int(r), op != "gather")
        if ev.hit:
            kinds.append(HIT)
            dists.append(0)
        else:
            fills.append(ev.fill)
            kinds.append(CLEAN_MISS if ev.writeback is None else DIRTY_MISS)
            dists.append(i - last[ev.evict] if ev.evict in last else 0)
            if ev.writeback is not None:
                written.append(ev.writeback)
        last[int(r) // br] = i
    if mshrs > 1:
        cyc = nb_gather_cycles(kinds, dists, dram_latency, br, mshrs, queue)
    else:
        cyc = blocking_gather_cycles(kinds, dram_latency, br)
    st = model.stats
    return {"cycles": cyc, "hits": st.hits, "misses": st.misses, "writebacks": st.writebacks, "fills": fills,
            "written": written, "kinds": kinds, "dists": dists}


# ------------------------------------------------------------------------------------ matrix unit
def gather_gemm_cycles(mmu: int, program: int) -> int:
    """An MMU gather of ``mmu`` cycles (``mmu_cycles``; start in cycle s, done in s + mmu + 1) staged into the
    array's X, then (the cycle after the done) a GEMM program of ``program`` cycles (``lego.prog.timing``: edges
    from its first command's acceptance, exclusive, to END's, inclusive): cycles from s to END's edge."""
    return mmu + 2 + 1 + program


# ------------------------------------------------------------------------------ feature kNN in the top
def feature_gather_entries(n: int, dims: int, lanes: int, src=None, base: int = 0) -> list[tuple[int, int]]:
    """The MMU gather that fills the feature buffer for an OP_KNNF on ``n`` points: per buffer row, in
    buffer order (point p, chunk j = row p*CH + j, CH = ceil(dims / lanes)), the entry (DRAM row, tag):
    DRAM row ``base + src[p]*CH + j`` (features of point src[p], laid out CH rows a point from ``base``;
    ``src`` defaults to the identity), tag = the buffer row."""
    ch = _cdiv(dims, lanes)
    src = range(n) if src is None else [int(s) for s in src]
    return [(base + s * ch + j, p * ch + j) for p, s in enumerate(src) for j in range(ch)]


def gather_knn_feature_cycles(mmu: int, knnf: int) -> int:
    """A feature kNN on pointacc_top: an MMU gather of ``mmu`` cycles (``mmu_cycles``; start in cycle s, the
    last row written into the feature buffer with ``done`` in cycle s + mmu + 1), OP_KNNF started in the next
    cycle (``knn_feature_cycles`` = ``knnf``: done in cycle s + mmu + 2 + knnf + 1). Cycles from s to the
    kNN's done, inclusive: mmu + knnf + 4."""
    return mmu + knnf + 4

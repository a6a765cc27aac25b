"""Host side of the PointAcc mapping unit: checks, job encoding, result decoding.

A ``Job`` is one op of ``MappingUnit`` with its inputs: the cloud (loaded into the point buffer
through ``ld_*``), the port values and the query stream. ``make_job`` refuses what the hardware
cannot do with a ``LegoError`` naming the field (``point_buffer``, ``sorter_width``,
``max_neighbors``, ``coord_bits``, ``stride``, ...); ``decode`` turns the unit's output beats into
the golden models' result format (``sw_reference.pointacc``); ``expected`` calls the golden model.

Clouds larger than the point buffer are refused, not chunked: every mapping op of the unit needs the
whole cloud on chip (kNN, ball query and FPS compare each query with every point; the kernel map
merges whole sorted streams), and chunking would change results (kNN across chunks) or tie rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lego.errors import LegoError
from sw_reference import pointacc as ref

from .mapping import M_BITS, OPCODES, OP_BALL, OP_DOWN, OP_FPS, OP_KNN, OP_KSTR, OP_KSUB

__all__ = ["Geometry", "Job", "make_job", "pack_point", "decode", "expected", "results_equal"]


@dataclass(frozen=True)
class Geometry:
    """The parameters of a MappingUnit that the host and the cycle model need."""

    capacity: int
    lanes: int
    sorter_width: int
    max_neighbors: int
    coord_bits: int
    sorter_latency: int
    feature_dims: int = 0             # the feature-distance stage (OP_KNNF); feature_points 0: none
    feature_bits: int = 8
    feature_lanes: int = 1
    feature_points: int = 0
    knn_merge_stages: int = 1         # KS: kNN neighbours per pass = KS * sorter_width

    @classmethod
    def of(cls, unit) -> "Geometry":
        f = unit.feat
        feat = (f.c, f.fb, f.fl, f.nf) if f is not None else (0, 8, 1, 0)
        return cls(unit.nc, unit.l, unit.w, unit.km, unit.cb, unit.sl, *feat, unit.ks)

    @classmethod
    def from_params(cls, capacity: int, lanes: int, sorter_width: int, max_neighbors: int, coord_bits: int = 21,
                    sorter_stages_per_cycle: int = 1, feature_dims: int = 0, feature_bits: int = 8,
                    feature_lanes: int = 1, feature_points: int = 0, knn_merge_stages: int = 1) -> "Geometry":
        """The geometry of ``MappingUnit(**params)`` without building the unit."""
        from lego.units.sorter import sorter_latency
        feat = (feature_dims, feature_bits, feature_lanes, feature_points) if feature_points else (0, 8, 1, 0)
        return cls(capacity, lanes, sorter_width, max_neighbors, coord_bits,
                   sorter_latency(sorter_width, sorter_stages_per_cycle), *feat, knn_merge_stages)

    @classmethod
    def from_config(cls, cfg) -> "Geometry":
        return cls.from_params(**cfg.mapping_params())

    @property
    def max_knn(self) -> int:
        """The largest kNN k: max(W, KM) (k > KS*W runs ceil(k / (KS*W)) passes per query; the k port's width)."""
        return max(self.sorter_width, self.max_neighbors)

    @property
    def dist_bits(self) -> int:
        return 2 * self.coord_bits + 2


@dataclass
class Job:
    """One op for the unit: ``ports`` (name -> int), ``points`` (packed ld_data words),
    ``queries`` (packed q_data words) and what the host needs to decode the beats."""

    op: str
    ports: dict[str, int]
    points: list[int]
    queries: list[int] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def pack_point(p, cb: int) -> int:
    """{z, y, x} as CB-bit two's-complement fields, x lowest (ld_data / q_data)."""
    mask = (1 << cb) - 1
    return int(p[0]) & mask | (int(p[1]) & mask) << cb | (int(p[2]) & mask) << (2 * cb)


def _points(x, name: str, geo: Geometry, allow_empty=False) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] != 3 or not np.issubdtype(a.dtype, np.integer):
        raise LegoError(f"{name}: expected an integer (N, 3) array, got {a.dtype} {a.shape}")
    if a.shape[0] == 0 and not allow_empty:
        raise LegoError(f"{name}: empty cloud (0 points)")
    lo, hi = -(1 << (geo.coord_bits - 1)), (1 << (geo.coord_bits - 1)) - 1
    if a.size and (a.min() < lo or a.max() > hi):
        bad = int(a.min()) if a.min() < lo else int(a.max())
        raise LegoError(f"coord_bits: {name} coordinate {bad} outside [{lo}, {hi}] of the unit's "
                        f"{geo.coord_bits}-bit coordinates")
    return a.astype(np.int64)


def _int(v, name: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise LegoError(f"{name}: must be an int, got {v!r}")
    if not lo <= int(v) <= hi:
        raise LegoError(f"{name}: must be in {lo}..{hi}, got {v}")
    return int(v)


def make_job(geo: Geometry, op: str, points, *, queries=None, m: int | None = None, k: int | None = None,
             radius: int | None = None, stride: int = 1, kernel_size: int = 3, tensor_stride: int = 1) -> Job:
    """A checked job. ``op`` is a key of ``OPCODES``: fps (m), knn (queries, k), ball_query (queries,
    radius, k), downsample (stride), kernel_map_submanifold (kernel_size, tensor_stride),
    kernel_map_strided (kernel_size, stride, tensor_stride)."""
    if op not in OPCODES:
        raise LegoError(f"op: unknown op {op!r} (allowed: {', '.join(OPCODES)})")
    p = _points(points, "points", geo)
    n = p.shape[0]
    if n > geo.capacity:
        raise LegoError(f"point_buffer: a cloud of {n} points exceeds the point buffer of {geo.capacity} "
                        "points (the mapping ops need the whole cloud on chip; raise point_buffer)")
    cb = geo.coord_bits
    ports = {"op": OPCODES[op], "n": n, "m": 0, "k": 0, "r2": 0, "shift": 0, "ksize": 0, "tstride": 0}
    qs: list[int] = []
    info: dict[str, Any] = {"n": n}
    if op == "fps":
        ports["m"] = _int(m, "m", 1, min(n, (1 << M_BITS) - 1))
    elif op in ("knn", "ball_query"):
        qa = _points(queries, "queries", geo)
        if qa.shape[0] >= 1 << M_BITS:
            raise LegoError(f"queries: at most {(1 << M_BITS) - 1} queries per op, got {qa.shape[0]}")
        ports["m"] = qa.shape[0]
        qs = [pack_point(r, cb) for r in qa]
        if op == "knn":
            kmax = geo.max_knn
            if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and int(k) > kmax:
                raise LegoError(f"max_neighbors: kNN k = {int(k)} exceeds the unit's kNN limit "
                                f"max(sorter_width, max_neighbors) = {kmax}")
            kk = _int(k, "k", 1, n)
        else:
            kk = _int(k, "k", 1, 1 << 30)
            if kk > geo.max_neighbors:
                raise LegoError(f"max_neighbors: ball-query k = {kk} exceeds max_neighbors = {geo.max_neighbors}")
            r = _int(radius, "radius", 1, (1 << 31) - 1)
            ports["r2"] = min(r * r, (1 << geo.dist_bits) - 1)   # every d2 < 2**DB - 1: same hits
            info["radius"] = r
        ports["k"] = kk
    else:
        if op == "kernel_map_submanifold":
            s = 1
        else:
            s = _int(stride, "stride", 1, 1 << 20)
        ts = _int(tensor_stride, "tensor_stride", 1, (1 << (cb - 1)) - 1)
        total = s * (ts if op == "kernel_map_strided" else 1)
        if total & (total - 1):
            what = "stride * tensor_stride" if op == "kernel_map_strided" else "stride"
            raise LegoError(f"stride: {what} = {total} must be a power of two (the unit clears low bits)")
        sh = total.bit_length() - 1
        if total > (1 << (cb - 1)) - 1:
            raise LegoError(f"stride: {total} exceeds 2**{cb - 1} - 1 for {cb}-bit coordinates")
        ports["shift"] = sh
        info.update(stride=s, tensor_stride=ts)
        if op != "downsample":
            ports["ksize"] = _int(kernel_size, "kernel_size", 1, 7)
            ports["tstride"] = ts
            keys = ref.coord_keys(p)
            if np.unique(keys).size != n:
                raise LegoError("points: duplicate coordinates; a kernel map needs unique coordinates")
            info["kernel_size"] = ports["ksize"]
    return Job(op, ports, [pack_point(r, cb) for r in p], qs, info)


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def decode(job: Job, beats: list[tuple], geo: Geometry):
    """The golden-model result from the beats (out_idx, out_val, out_off, out_coord, out_flag)."""
    op, pt = job.op, job.ports
    cb = geo.coord_bits
    if op == "fps":
        return np.array([b[0] for b in beats], dtype=np.int64)
    if op == "knn":
        mq, k = pt["m"], pt["k"]
        a = np.array([[b[0], b[1]] for b in beats], dtype=np.int64).reshape(mq, k, 2)
        return a[:, :, 0], a[:, :, 1]
    if op == "ball_query":
        mq, k = pt["m"], pt["k"]
        return np.array([-1 if b[4] else b[0] for b in beats], dtype=np.int64).reshape(mq, k)
    if op == "downsample":
        n = pt["n"]
        inv = np.full(n, -1, dtype=np.int64)
        out = []
        for idx, val, _, coord, flag in beats:
            inv[idx] = val
            if flag:
                out.append([_signed((coord >> (d * cb)) & ((1 << cb) - 1), cb) for d in range(3)])
        return np.array(out, dtype=np.int32).reshape(-1, 3), inv
    # kernel maps: per offset the (in, out) pairs in emission order
    noff = pt["ksize"] ** 3
    pairs = [[] for _ in range(noff)]
    for idx, val, off, _, _ in beats:
        pairs[off].append((idx, val))
    return tuple(np.array(p, dtype=np.int64).reshape(-1, 2) for p in pairs)


def expected(job: Job, points, queries=None):
    """The golden model's result, in ``decode``'s format."""
    op, pt = job.op, job.ports
    p = np.asarray(points, dtype=np.int64)
    if op == "fps":
        return ref.fps(p, pt["m"])
    if op == "knn":
        return ref.knn(p, np.asarray(queries, dtype=np.int64), pt["k"])
    if op == "ball_query":
        return ref.ball_query(p, np.asarray(queries, dtype=np.int64), job.info["radius"], pt["k"])
    if op == "downsample":
        return ref.downsample(p, job.info["stride"])
    if op == "kernel_map_submanifold":
        return ref.submanifold_kernel_map(p, pt["ksize"], job.info["tensor_stride"]).pairs
    _, km = ref.strided_kernel_map(p, pt["ksize"], job.info["stride"], job.info["tensor_stride"])
    return km.pairs


def results_equal(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(results_equal(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool((a == b).all())


OP_NUMBERS = {OP_FPS: "fps", OP_KNN: "knn", OP_BALL: "ball_query", OP_DOWN: "downsample",
              OP_KSUB: "kernel_map_submanifold", OP_KSTR: "kernel_map_strided"}

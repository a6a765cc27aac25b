"""The three networks of the PointAcc model, written against ``model.Costs`` (one record per mapping op
and per layer). Architectures as published (recalled, not checked against the papers' code here):

* ``pointnet2``: PointNet++ classification, single-scale grouping (Qi et al. 2017, ``pointnet2_cls_ssg``):
  the first 1024 points of the object cloud (its loader's convention), centred and scaled to the unit
  sphere, quantized to 1/1000; SA1 512 centres, r = 0.2, K = 32, MLP 3-64-64-128; SA2 128 centres,
  r = 0.4, K = 64, MLP (128+3)-128-128-256; SA3 group all, MLP (256+3)-256-512-1024; head 1024-512-256-40.
* ``dgcnn``: DGCNN classification (Wang et al. 2019): 1024 points as above, k = 20; EdgeConv 6-64,
  128-64, 128-128, 256-256 (edge input [x_i, x_j - x_i], max over k); embedding (64+64+128+256)-1024 with
  max and mean pooling; head 2048-512-256-40. The first kNN is in xyz, the others in feature space
  (modeled; the gathers use the xyz neighbours since no trained features exist here).
* ``minkunet``: MinkowskiUNet as in TorchSparse's example (channels 32, 32, 64, 128, 256, 256, 128, 96,
  96; 4 input channels; 19 classes): voxelization (points on a voxel/4 grid, downsampled by 4 on the
  mapping unit), stem of two 3x3x3 convolutions, four stages of a 2x2x2 stride-2 convolution and two
  residual blocks (3x3x3 pairs, a 1x1 shortcut where the width changes), four up stages of a 2x2x2
  transposed convolution (the stage's strided map, transposed), the skip concatenation and two
  residual blocks, and a point-wise classifier. One submanifold map per tensor stride, shared by the
  convolutions at that stride. Residual additions, ReLU and requantization are not counted.
"""
from __future__ import annotations

import numpy as np

from lego.errors import LegoError
from sw_reference import pointacc as ref

from .costs import Y_BYTES, Costs

__all__ = ["pointnet2", "dgcnn", "minkunet", "object_points", "OBJECT_POINTS", "OBJECT_SCALE"]

OBJECT_POINTS = 1024
OBJECT_SCALE = 1000.0          # integer units per unit radius


def object_points(xyz: np.ndarray, n: int = OBJECT_POINTS) -> np.ndarray:
    """The first n points, centred on their mean and scaled to a maximum radius of 1, quantized."""
    p = np.asarray(xyz[:n], dtype=np.float64)
    p = p - p.mean(axis=0)
    r = float(np.sqrt((p * p).sum(axis=1)).max())
    if r > 0:
        p = p / r
    return ref.quantize(p, OBJECT_SCALE).astype(np.int64)


def _mlp(ctx: Costs, prefix: str, n: int, widths: list[int], x_from: str | None, pool: int | None,
         kind: str = "mlp") -> None:
    """A chain of point-wise layers on n rows, temporal fusion when possible; ``x_from``: the DRAM part the
    first layer's X is read from (None: the fusion buffer); ``pool``: the rows of a max over groups that
    follows (fused into the last layer). The array writes Y as int32 where it goes to DRAM; the pooled
    output and every layer's X are int8 (the requantization between is not counted)."""
    fused = ctx.fusable(widths[1:])
    tag = "yes" if fused else ("no (fusion buffer too small)" if ctx.fusion else "no")
    steps = list(zip(widths[:-1], widths[1:]))
    for i, (a, b) in enumerate(steps):
        last = i == len(steps) - 1
        ctx.layer(f"{prefix}.{kind}{i + 1}", kind, n, n if not (last and pool and fused) else pool, a, b)
        x = x_from if i == 0 else (None if fused else "features_in")
        ctx.dense(n, a, b, x_from=x, write_out=False)
        if not last:
            if fused:
                ctx.on_chip(n * b)
            else:
                ctx.dram("features_out", n * b * Y_BYTES)
        elif pool is not None and fused:
            ctx.on_chip(n * b)
            ctx.dram("features_out", pool * b)
            ctx.note("max-pool fused")
        else:
            ctx.dram("features_out", n * b * Y_BYTES)
        ctx.rec["fused"] = tag
    if pool is not None and not fused:
        ctx.layer(f"{prefix}.maxpool", "pool", n, pool, widths[-1], widths[-1])
        ctx.dram("features_in", n * widths[-1] * Y_BYTES)
        ctx.dram("features_out", pool * widths[-1])
        ctx.rec["fused"] = tag


def _group(ctx: Costs, prefix: str, m: int, k: int, idx: np.ndarray | None, c_feat: int, c_group: int) -> str | None:
    """The grouping (m groups of k rows of c_feat channels) into the first layer's input of c_group channels.
    With gathers (``idx``, c_feat > 0): the MMU gathers the rows and the stager writes them into the first
    program's X, so that layer reads X from ``staging`` (fusion or not). Without (SA1's relative xyz, from
    the point buffer): the grouped tensor stays in the fusion buffer, or goes through DRAM without fusion.
    Returns the DRAM part the next chain reads its X from (None: on chip)."""
    if idx is not None and c_feat:
        ctx.gather_rows(idx, c_feat, m)
        return "staging"
    if ctx.fusable([c_group]):
        return None
    ctx.dram("features_out", m * k * c_group)
    return "features_in"


def pointnet2(ctx: Costs, xyz: np.ndarray, voxel: float, k: int, radius: float) -> dict:
    pts = object_points(xyz)
    n = len(pts)
    if n < 512:
        raise LegoError(f"--cloud: PointNet++ samples 512 centres (SA1), the cloud has {n} points")
    r1 = int(round(radius * OBJECT_SCALE))
    if r1 < 1:
        raise LegoError(f"--radius: {radius} is below one quantization step (1/{OBJECT_SCALE:g})")
    if radius > 4.0:
        raise LegoError(f"--radius: {radius} exceeds 4 (the cloud is scaled into the unit sphere: 2 covers it)")
    # SA1: centres by FPS, neighbours by ball query, grouped relative xyz (from the point buffer)
    ctx.layer("sa1.group", "mapping", n, 512, 3, 3)
    sel = ctx.fps(pts, 512)
    c1 = pts[sel]
    ctx.ball_query(pts, c1, r1, 32)
    x_from = _group(ctx, "sa1", 512, 32, None, 0, 3)
    _mlp(ctx, "sa1", 512 * 32, [3, 64, 64, 128], x_from, pool=512)
    # SA2 on the 512 centres and their 128-channel features
    ctx.layer("sa2.group", "mapping", 512, 128, 128, 131)
    sel2 = ctx.fps(c1, 128)
    c2 = c1[sel2]
    nb2 = ctx.ball_query(c1, c2, 2 * r1, 64)
    x_from = _group(ctx, "sa2", 128, 64, nb2, 128, 131)
    _mlp(ctx, "sa2", 128 * 64, [131, 128, 128, 256], x_from, pool=128)
    # SA3: group all
    _mlp(ctx, "sa3", 128, [259, 256, 512, 1024], "features_in", pool=1)
    _mlp(ctx, "head", 1, [1024, 512, 256, 40], "features_in", pool=None, kind="fc")
    return {"points_used": n, "network": "PointNet++ SSG classification (1024 points, 40 classes)"}


def dgcnn(ctx: Costs, xyz: np.ndarray, voxel: float, k: int, radius: float) -> dict:
    pts = object_points(xyz)
    n = len(pts)
    if k > n:
        raise LegoError(f"--k: {k} neighbours > n = {n} points of the cloud")
    widths = [(3, 64), (64, 64), (64, 128), (128, 256)]
    nb = None
    for i, (c, co) in enumerate(widths, start=1):
        ctx.layer(f"ec{i}.knn", "mapping", n, n, c, c)
        if i == 1:
            nb = ctx.knn_xyz(pts, k)
        else:
            ctx.knn_feature(n, c, k)
            ctx.note("gathers use the xyz neighbours (no trained features)")
        x_from = _group(ctx, f"ec{i}", n, k, nb, c, 2 * c)
        _mlp(ctx, f"ec{i}", n * k, [2 * c, co], x_from, pool=n, kind="conv")
    ctx.layer("emb.conv", "mlp", n, 1, 512, 1024)
    fused = ctx.fusable([1024])
    ctx.dense(n, 512, 1024, write_out=not fused)
    if fused:
        ctx.on_chip(n * 1024)
        ctx.dram("features_out", 2048)
        ctx.note("max and mean pooling fused")
        ctx.rec["fused"] = "yes"
    else:
        ctx.rec["fused"] = "no"
        ctx.layer("emb.pool", "pool", n, 1, 1024, 2048)
        ctx.dram("features_in", n * 1024 * Y_BYTES)
        ctx.dram("features_out", 2048)
    _mlp(ctx, "head", 1, [2048, 512, 256, 40], "features_in", pool=None, kind="fc")
    return {"points_used": n, "k": k, "network": "DGCNN classification (1024 points, k = %d, 40 classes)" % k}


def _transpose(km: ref.KernelMap) -> ref.KernelMap:
    """The map of the transposed (up) convolution: (coarse in, fine out) pairs sorted by the fine index."""
    pairs = []
    for p in km.pairs:
        q = p[:, ::-1]
        pairs.append(q[np.argsort(q[:, 1], kind="stable")])
    return ref.KernelMap(km.offsets, km.tensor_stride * 2, tuple(pairs))


def minkunet(ctx: Costs, xyz: np.ndarray, voxel: float, k: int, radius: float) -> dict:
    step = voxel / 4.0
    lim = (1 << (ctx.cfg.coord_bits - 1)) - 1
    fine = np.floor(np.asarray(xyz, dtype=np.float64) / step)
    worst = float(np.abs(fine).max())
    if worst > lim:
        raise LegoError(f"--cloud: coordinates out of the quantization range: {float(np.abs(xyz).max()):.6g} m at "
                        f"{step:.6g} m steps (voxel / 4) is {worst:.0f}, beyond the {ctx.cfg.coord_bits}-bit "
                        f"coordinates (|c| <= {lim}); use a larger --voxel")
    fine = fine.astype(np.int64)
    ctx.layer("voxelize", "mapping", len(fine), 0, 3, 3)
    coords, tiles = ctx.voxelize(fine, 4)
    ctx.rec["points_out"] = len(coords)
    cs = [32, 32, 64, 128, 256, 256, 128, 96, 96]
    at = {1: coords}
    sub_maps: dict[int, ref.KernelMap] = {}
    down_maps: dict[int, ref.KernelMap] = {}

    def sub(ts: int) -> ref.KernelMap:
        if ts not in sub_maps:
            n = len(at[ts])
            ctx.layer(f"kmap.sub.s{ts}", "mapping", n, n, 3, 3)
            sub_maps[ts] = ctx.kmap_sub(at[ts], ts)
        return sub_maps[ts]

    def conv(name: str, ts: int, ci: int, co: int) -> None:
        km = sub(ts)
        n = len(at[ts])
        ctx.layer(name, "sparse_conv", n, n, ci, co)
        ctx.sparse_conv(km, n, ci, co)

    def pw(name: str, ts: int, ci: int, co: int) -> None:
        n = len(at[ts])
        ctx.layer(name, "pointwise", n, n, ci, co)
        ctx.dense(n, ci, co)
        ctx.rec["fused"] = "n/a"

    def res(name: str, ts: int, ci: int, co: int) -> None:
        conv(f"{name}.conv1", ts, ci, co)
        conv(f"{name}.conv2", ts, co, co)
        if ci != co:
            pw(f"{name}.shortcut", ts, ci, co)

    def down(name: str, ts: int, ci: int, co: int) -> None:
        n = len(at[ts])
        ctx.layer(f"kmap.down.s{ts}", "mapping", n, 0, 3, 3)
        out, km = ctx.kmap_down(at[ts], ts)
        ctx.rec["points_out"] = len(out)
        at[2 * ts], down_maps[ts] = out, km
        ctx.layer(name, "sparse_conv", n, len(out), ci, co)
        ctx.sparse_conv(km, len(out), ci, co)

    def up(name: str, ts: int, ci: int, co: int) -> None:          # ts: the fine (output) stride
        km = _transpose(down_maps[ts])
        n = len(at[ts])
        ctx.layer(name, "sparse_deconv", len(at[2 * ts]), n, ci, co)
        ctx.sparse_conv(km, n, ci, co)

    conv("stem.conv1", 1, 4, cs[0])
    conv("stem.conv2", 1, cs[0], cs[0])
    chans = [cs[0], cs[1], cs[2], cs[3], cs[4]]
    ts = 1
    for s in range(1, 5):
        down(f"stage{s}.down", ts, chans[s - 1], chans[s - 1])
        ts *= 2
        res(f"stage{s}.res1", ts, chans[s - 1], chans[s])
        res(f"stage{s}.res2", ts, chans[s], chans[s])
    prev = cs[4]
    for u, (co, skip) in enumerate(zip(cs[5:], [cs[3], cs[2], cs[1], cs[0]]), start=1):
        ts //= 2
        up(f"up{u}.deconv", ts, prev, co)
        res(f"up{u}.res1", ts, co + skip, co)
        res(f"up{u}.res2", ts, co, co)
        prev = co
    pw("classifier", 1, cs[8], 19)
    return {"network": "MinkowskiUNet (TorchSparse example channels, 19 classes)", "voxelize_tiles": tiles,
            "voxels_by_stride": {str(s): int(len(c)) for s, c in sorted(at.items())}}

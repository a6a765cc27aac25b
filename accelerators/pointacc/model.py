"""PointAcc network-level model: ``lego sim --accelerator pointacc --model pointnet2|dgcnn|minkunet``.

Per layer and in total: cycles, DRAM bytes, cache hit rate and energy of a network on a real cloud
(networks in ``networks.py``), with the paper's two ablations: the MMU cache off (``--no-cache``) and
temporal layer fusion off (``--no-fusion``). What is exact and what is modeled:

* **mapping ops** (FPS, ball query, kNN in 3-D (ceil(k / (KS*W)) passes), downsampling, kernel maps): the
  exact cycle model of the RTL mapping unit (``cycles``) on the actual points, plus one cycle per point
  loaded. Clouds larger than the point buffer are cut into x-slab tiles (kernel maps: each tile holds
  its output sites plus one slab of neighbours either side (submanifold) or whole coarse slabs
  (strided, downsampling)); every tile is one job of the unit, its cycles exact, and the union of the
  tiles' pairs for their own outputs is the full map (tested). FPS, ball query and kNN need the whole
  cloud on chip (a larger cloud is refused, naming ``point_buffer``).
* **kNN with k > sorter_width** (xyz and feature space): the RTL's exact cycles, ceil(k / (KS*W)) passes over
  the points per query (``cycles.knn_cycles``, ``cycles.knn_feature_cycles``).
* **kNN in feature space** (DGCNN's EdgeConv 2-4): as pointacc_top runs it, exactly: an MMU
  gather of the points' feature rows (ceil(feature_dims / FL) rows a point, C's own rows then a shared zero
  row for the padding) into the feature buffer through a cold cache, then OP_KNNF
  (``cycles.gather_knn_feature_cycles``: gather + ``knn_feature_cycles`` + 4, checked against the
  generated top); one serial step, booked as mapping cycles (``costs.Costs.knn_feature``).
* **gathers** (sparse-conv inputs, grouped PointNet++ features, DGCNN neighbours): every gathered
  feature row goes through the cache model (``cache_model.ReadStreamCache`` = ``CacheModel``'s policy,
  exact hits/misses), and the gather cycles are the RTL MMU's, exactly: non-blocking with
  ``mmu_mshrs`` >= 2 (``dram.nb_stream_cycles`` over the hits, misses and evictions in stream order),
  blocking with ``mmu_mshrs`` = 1 (a hit 1 cycle, a miss LAT + B + 2); one op per output tile of a sparse
  convolution, one per group of a grouping. Without the cache every row is a one-row DRAM read
  (LAT + 3 cycles, blocking; the row's bytes). Feature rows are ``feature_row_bytes`` int8
  channels; a point of C channels has ceil(C / R) rows, stored consecutively; a layer's features
  start cold (a new tensor).
* **MACs on the matrix unit** (lego's programmable GEMM array, ``matrix.py``): every GEMM is a program whose
  cycles are exact (``matrix.mxu_gemm``: ``lego.prog.compiler.compile_gemm``'s fastest program timed by
  ``lego.prog.timing``, exact against the RTL, at ``dram_latency_cycles``). A **sparse convolution** is an
  implicit GEMM per output tile (``costs.conv_plan``): per tile of T output sites the MMU gathers
  T * taps * rpp rows (rpp = ceil(C_in / R); t major, then the kernel offset d, then the point's row j), the
  row of the input paired with t at d or, where d has no pair, a dedicated all-zero DRAM row (its own cache
  block after the feature rows, gathered through the cache like any row), one MMU op a tile; the stager
  writes them into X (T x taps*rpp*R); then one program GEMM(M=T, K=taps*rpp*R, N=C_out) accumulates the
  whole tile in the array. T = the most sites whose rows fit the MMU's 16-bit tag (T*taps*rpp <= 65536),
  rounded down to a multiple of lcm(R, C) (``costs.conv_tile``). ``Costs.plan``'s output-channel groups
  are gone: the program tiles N itself, and a group would only gather and stage X again. ``macs`` counts
  the useful MACs (pairs x C_in x C_out; DGCNN's also the feature kNN's distance terms), ``mxu_macs_issued``
  the array's (T x K x N summed: the zero rows' and padding channels' too). A **dense layer** (MLP, 1x1
  convolution, fully connected) is one program GEMM(M=n, K=C_in, N=C_out); after a grouping gather
  (PointNet++ SA2, DGCNN's neighbours) its X is the staged gathered rows. The array's utilization on these
  shapes is low (the tile box is 64 x 64 x 1024 on the server preset, W is reloaded per M tile of 64 rows):
  that is the program's exact time, not a model choice.
* **composition** (modeled): layer cycles = mapping cycles + max(MMU cycles, matrix-unit cycles, DRAM
  bytes / bytes per cycle): the mapping unit runs first, then the gather of a tile overlaps the program of
  the previous one (the MMU and the array are separate units with separate DRAM ports in pointacc_top, so
  the RTL permits it; the fill, the first gather and the last program, is not counted, nor any contention
  between the two DRAM ports).
* **DRAM bytes**: coordinates loaded into the mapping unit (8 B per point), maps and neighbour lists
  (written by the mapping unit, read by each layer that uses them; 8 B per pair, 4 B per neighbour),
  gathered rows (``features_in``: cache fills, block bytes; no cache: row bytes), ``staging``: the gathered
  rows written into X by the stager (T x K per program) and X read by the array (once per N tile of the
  program: 2 x T x K where C_out fits one N tile), ``weights`` as the program reads them (K x N once per M
  tile of the program's tile), Y int32 written (``features_out``: 4 B an element), a dense layer's X
  (int8, as its program reads it) from ``features_in``. The requantization of an int32 Y into the next
  layer's int8 X is not counted (pointacc_top has no unit for it).
* **temporal layer fusion**: a chain of point-wise layers (the MLP of a set abstraction with its
  max-pool, an EdgeConv with its max, DGCNN's embedding with its pooling, the classifier head) keeps
  its intermediates on chip in tiles of the fusion buffer (no DRAM bytes for them); without fusion every
  layer writes its output to DRAM and the next reads it back (SA1's grouped xyz and the max-pools
  included; gathered rows are staged in DRAM either way). This is modeled only: pointacc_top has no
  fusion path (its array reads X and W from DRAM and writes Y to DRAM), and a fused layer's cycles are
  still its program's, which reads DRAM.
* **energy** (simulator/energy.py, scaled to ``node_nm``): per issued MAC (``pe_cost``, int8 operands,
  int32 accumulation) and per busy cycle of the array (its PE registers), per mapping-unit cycle (an upper
  bound: every active cycle charges one row of the distance lanes, one point-buffer read and one sorter
  block), SRAM accesses (``sram_access_pj``) of the cache, the array's scratchpad (each X and W byte loaded
  written once and read once), its accumulator (one read-modify-write of a row of C int32 per row, K pass
  of R and column pass of C) and the fusion buffer, DRAM bytes (``cfg.dram_energy``). No leakage.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from lego.errors import LegoError
from simulator.report import Report

from ..base import out_dir
from .cloud import DATA_DIR, load_cloud
from .config import PointAccConfig
from .costs import DRAM_PARTS, ENERGY_PARTS, LAYER_COLUMNS, Costs, x_tile_slices, x_tiles

__all__ = ["MODELS", "DEFAULT_CLOUDS", "Costs", "simulate", "simulate_options", "add_arguments", "x_tiles",
           "x_tile_slices", "write_outputs", "LAYER_COLUMNS"]

MODELS = ("pointnet2", "dgcnn", "minkunet")
DEFAULT_MODEL = "minkunet"
DEFAULT_CLOUDS = {"pointnet2": "spot_10k_normal.txt", "dgcnn": "spot_10k_normal.txt",
                  "minkunet": "ouster_os1_128_frame0.bin"}
DEFAULT_VOXEL_M = 0.05


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
    out = out_dir(options, f"lego-pointacc-{model}")
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
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise LegoError(f"--cloud: expected (n, 3) coordinates, got shape {xyz.shape}")
    if len(xyz) == 0:
        raise LegoError("--cloud: empty cloud (0 points)")
    if not np.isfinite(xyz).all():
        raise LegoError("--cloud: NaN or Inf coordinates")
    voxels = count_voxels(xyz, voxel)
    ctx = Costs(cfg, cache=cache, fusion=fusion)
    try:
        info = getattr(networks, model)(ctx, xyz, voxel=voxel, k=k, radius=radius)
    except ValueError as e:          # a golden model's check (its message starts with the parameter name)
        raise LegoError(" ".join(str(e).split())) from None
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
        "mxu_programs": int(sum(r["mxu_programs"] for r in L)),
        "mxu_macs_issued": int(sum(r["mxu_macs_issued"] for r in L)), **info,
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
    rep.extra["out_dir"] = str(o["out"])
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
    umask = os.umask(0)
    os.umask(umask)
    for key, data in blobs.items():
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~umask)
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
    a1.set_yscale("symlog", linthresh=1e3)
    a1.set_ylim(0, max(1.0, float((mp + rest).max())) * 3)
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
    a2.set_yscale("symlog", linthresh=1e3)
    a2.set_ylim(0, max(1.0, float(bottom.max())) * 3)
    a2.legend(fontsize=8, ncol=5)
    a2.set_xticks(x)
    a2.set_xticklabels(names, rotation=90, fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()

"""Design-space exploration (`lego explore`): sweep array shapes, dataflow sets and buffer sizes
for a model on Dask (a local cluster by default, or ``--scheduler ADDR``), with a progress bar,
a Pareto front over (latency, area, energy), a CSV and a Pareto plot.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from lego.errors import LegoError
from simulator.mapping import DATAFLOWS, KIB
from simulator.model_run import run_model
from simulator.models import MODELS

OBJECTIVES = ("latency_ms", "area_mm2", "energy_uj")
DEFAULT_ARRAYS = ((8, 8), (8, 32), (16, 16), (32, 8), (32, 32))
DEFAULT_BUFFERS_KIB = (128, 256, 512)


def all_dataflow_sets() -> list[tuple[str, ...]]:
    return [c for n in range(1, len(DATAFLOWS) + 1) for c in itertools.combinations(DATAFLOWS, n)]


@dataclass(frozen=True)
class DesignPoint:
    rows: int
    cols: int
    dataflows: tuple[str, ...]
    buffer_kib: int


def design_space(arrays, dataflow_sets, buffers_kib) -> list[DesignPoint]:
    pts = [DesignPoint(r, c, tuple(d), b) for (r, c), d, b in
           itertools.product(arrays, dataflow_sets, buffers_kib)]
    if not pts:
        raise LegoError("design space: empty, give at least one array, dataflow set and buffer")
    return pts


def evaluate(model: str, point: DesignPoint, dram_gbps: float = 16.0) -> dict:
    """One design point -> one result row (pure; runs on a Dask worker)."""
    _, tot = run_model(model, (point.rows, point.cols), point.dataflows,
                       point.buffer_kib * KIB, dram_gbps)
    return {"model": model, "array": f"{point.rows}x{point.cols}", "rows": point.rows,
            "cols": point.cols, "dataflows": "+".join(point.dataflows),
            "buffer_kib": point.buffer_kib, "dram_gbps": dram_gbps, "cycles": tot["cycles"],
            "latency_ms": tot["latency_ms"], "energy_uj": tot["energy_uj"],
            "area_mm2": tot["area_um2_total"] / 1e6, "utilization": tot["utilization"],
            "dram_bytes": tot["dram_bytes_total"]}


def pareto_mask(rows: list[dict], keys=OBJECTIVES) -> list[bool]:
    """True for rows no other row dominates (<= in every key, < in one); all keys minimised."""
    vals = [tuple(r[k] for k in keys) for r in rows]
    out = []
    for v in vals:
        dominated = any(all(o <= x for o, x in zip(w, v)) and any(o < x for o, x in zip(w, v))
                        for w in vals)
        out.append(not dominated)
    return out


def sweep(model: str, points: list[DesignPoint], dram_gbps: float = 16.0,
          scheduler: str | None = None, workers: int = 2, processes: bool = True,
          progress: bool = True) -> list[dict]:
    """Evaluate every point on Dask; returns rows in the order of ``points`` with a pareto flag."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    if model not in MODELS:
        raise LegoError(f"model: {model!r} unknown, allowed {sorted(MODELS)}")
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futs = {client.submit(evaluate, model, p, dram_gbps, pure=False): i
                for i, p in enumerate(points)}
        rows: list[dict | None] = [None] * len(points)
        bar = tqdm(total=len(points), desc=f"explore {model}", disable=not progress,
                   file=sys.stderr)
        for f in as_completed(futs):
            rows[futs[f]] = f.result()
            bar.update(1)
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    for r, m in zip(rows, pareto_mask(rows)):
        r["pareto"] = m
    return rows


def write_csv(rows: list[dict], path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def plot_pareto(rows: list[dict], path, title: str = "") -> None:
    """Latency vs area, colour = energy; Pareto points (3 objectives) circled and labelled."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5))
    lat = [r["latency_ms"] for r in rows]
    area = [r["area_mm2"] for r in rows]
    en = [r["energy_uj"] for r in rows]
    sc = a1.scatter(area, lat, c=en, cmap="viridis", s=18)
    fig.colorbar(sc, ax=a1, label="energy (uJ)")
    par = [r for r in rows if r["pareto"]]
    a1.scatter([r["area_mm2"] for r in par], [r["latency_ms"] for r in par], s=70,
               facecolors="none", edgecolors="red", label="Pareto (latency, area, energy)")
    front2d = pareto_mask(par, ("latency_ms", "area_mm2"))
    front = sorted((r for r, m in zip(par, front2d) if m), key=lambda r: r["area_mm2"])
    # numbered markers (short labels never overlap the way full names do), the names in a key box
    for k, r in enumerate(front, 1):
        a1.annotate(str(k), (r["area_mm2"], r["latency_ms"]), xytext=(4, 4 + 6 * (k % 2)),
                    textcoords="offset points", fontsize=7, color="red")
    if front:
        key = "\n".join(f"{k}: {r['array']} {r['dataflows']} {r['buffer_kib']}K" for k, r in enumerate(front, 1))
        a1.text(1.02, 0.0, key, transform=a1.transAxes, fontsize=6, va="bottom", family="monospace")
    a1.set_xlabel("area (mm^2)")
    a1.set_ylabel("latency (ms)")
    a1.set_yscale("log")
    a1.legend(fontsize=7)
    a1.set_title(title or "latency vs area")
    a2.scatter(en, lat, c=area, cmap="plasma", s=18)
    a2.scatter([r["energy_uj"] for r in par], [r["latency_ms"] for r in par], s=70,
               facecolors="none", edgecolors="red")
    a2.set_xlabel("energy (uJ)")
    a2.set_ylabel("latency (ms)")
    a2.set_yscale("log")
    a2.set_title("latency vs energy (colour: area)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _csv_ints(text: str, field: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise LegoError(f"{field}: {text!r} invalid, allowed comma-separated integers") from None
    if not vals or min(vals) <= 0:
        raise LegoError(f"{field}: {text!r} invalid, allowed positive integers")
    return vals


def _dataflow_sets(text: str) -> list[tuple[str, ...]]:
    if text == "all":
        return all_dataflow_sets()
    sets = [tuple(s.split("+")) for s in text.split(",") if s]
    for s in sets:
        if not s or any(d not in DATAFLOWS for d in s) or len(set(s)) != len(s):
            raise LegoError(f"--dataflow-sets: {'+'.join(s)!r} invalid, allowed sets of "
                            f"{list(DATAFLOWS)} joined by '+', comma-separated, or 'all'")
    return sets


class ExploreTool:
    """``lego explore --model M [...]`` (registered as the ``explore`` tool; the CLI owns --model, --out
    and --json)."""
    name = "explore"
    help = "design-space exploration on Dask: CSV and Pareto PNG"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--arrays", default=",".join(f"{r}x{c}" for r, c in DEFAULT_ARRAYS),
                       help="comma-separated RxC list")
        p.add_argument("--dataflow-sets", default="all", help="e.g. os,ws,os+ws+is or 'all'")
        p.add_argument("--buffers-kib", default=",".join(map(str, DEFAULT_BUFFERS_KIB)),
                       help="comma-separated scratchpad sizes, KiB")
        p.add_argument("--dram-gbps", type=float, default=16.0, help="DRAM bandwidth, GB/s (default 16)")
        p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
        p.add_argument("--workers", type=int, default=2, help="local cluster workers (default 2)")
        p.add_argument("--threads", action="store_true", help="local cluster of threads, not processes")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(self, a: argparse.Namespace) -> tuple[dict, str]:
        from lego.design import parse_array
        if a.model not in MODELS:
            raise LegoError(f"--model: {a.model!r} unknown (allowed: {', '.join(sorted(MODELS))})")
        arrays = [parse_array(t, limit=1024) for t in a.arrays.split(",") if t]
        if not arrays:
            raise LegoError("--arrays: empty, allowed a comma-separated RxC list")
        if a.workers <= 0:
            raise LegoError(f"--workers: {a.workers} must be > 0")
        if not a.dram_gbps > 0:
            raise LegoError(f"--dram-gbps: {a.dram_gbps} must be > 0")
        points = design_space(arrays, _dataflow_sets(a.dataflow_sets), _csv_ints(a.buffers_kib, "--buffers-kib"))
        try:
            rows = sweep(a.model, points, a.dram_gbps, a.scheduler, a.workers, processes=not a.threads,
                         progress=not a.no_progress and not a.json)
        except OSError as e:           # e.g. an unreachable --scheduler
            raise LegoError(f"--scheduler: {e}") from None
        out = Path(a.out or "explore_out")
        out.mkdir(parents=True, exist_ok=True)
        csv_path, png_path = out / f"explore_{a.model}.csv", out / f"explore_{a.model}.png"
        write_csv(rows, csv_path)
        plot_pareto(rows, png_path, f"{a.model}: design space ({len(rows)} points)")
        par = [r for r in rows if r["pareto"]]
        lines = [f"{len(rows)} points, {len(par)} on the Pareto front -> {csv_path}, {png_path}"]
        for r in sorted(par, key=lambda r: r["latency_ms"]):
            lines.append(f"  {r['array']:>6} {r['dataflows']:<9} {r['buffer_kib']:>5} KiB  "
                         f"{r['latency_ms']:9.3f} ms {r['area_mm2']:7.3f} mm2 {r['energy_uj']:10.1f} uJ")
        return ({"model": a.model, "points": len(rows), "pareto": par, "csv": str(csv_path), "png": str(png_path)},
                "\n".join(lines))


TOOL = ExploreTool()


__all__ = ["DesignPoint", "TOOL", "all_dataflow_sets", "asdict", "design_space", "evaluate", "pareto_mask",
           "sweep"]

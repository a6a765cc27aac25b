"""Model-level runs: map every layer of a built-in model, per-layer + total figures, CSV/JSON/PNG.

Totals are sums over layers of every additive figure (cycles, stalls, MACs, SRAM accesses, DRAM
bytes, energy). Area is a property of the design, not of a layer: every row carries the design's
area and the total carries it once.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

from lego.errors import LegoError
from simulator.models import MODELS, Layer, get_model
from simulator.report import Report

# the analytical mapper (simulator.mapping, .gemmini, .memory: networkx, lego.arch) is imported where it is used,
# so that ``lego sim --model M --design DIR`` on a programmable design does not load it
KIB = 1024
SUMMED = ("cycles", "stall_cycles", "compute_cycles", "macs", "dram_bytes", "energy_pj")


def layer_row(idx: int, rep: Report, peak_macs: int) -> dict:
    """Flatten a layer Report into one CSV/JSON row (units in column names)."""
    x = rep.extra
    row = {"idx": idx, "layer": x["layer"], "op": x["op"], "dataflow": x["dataflow"],
           "shape": " ".join(f"{k}={v}" for k, v in x["shape"].items()), "stride": x["stride"],
           "macs": x["macs"], "cycles": rep.cycles, "stall_cycles": rep.stall_cycles,
           "compute_cycles": x["compute_cycles"], "steps": x["steps"], "tiles": x["tiles"],
           "utilization": x["macs"] / (rep.cycles * peak_macs),
           "spatial_utilization": x["spatial_utilization"],
           "dram_bytes": rep.total_dram_bytes, "energy_pj": rep.total_energy_pj,
           "area_um2": rep.total_area_um2}
    row.update(rep.breakdown_columns(("dram_bytes", "sram_reads", "sram_writes", "energy_pj")))
    return row


def total_report(engine: str, reps: list[Report]) -> Report:
    """Sum of the layer Reports (area taken from the design, i.e. the first layer)."""
    def add(dicts):
        out: dict = {}
        for d in dicts:
            for k, v in d.items():
                out[k] = out.get(k, 0) + v
        return out
    return Report(engine=engine, cycles=sum(r.cycles for r in reps),
                  stall_cycles=sum(r.stall_cycles for r in reps),
                  sram_reads=add(r.sram_reads for r in reps),
                  sram_writes=add(r.sram_writes for r in reps),
                  dram_bytes=add(r.dram_bytes for r in reps),
                  energy_pj=add(r.energy_pj for r in reps),
                  area_um2=dict(reps[0].area_um2) if reps else {})


def run_layers(model: str, layers: list[Layer], run: Callable[[Layer], Report], peak_macs: int,
               freq_ghz: float, meta: dict) -> tuple[list[dict], dict]:
    cache: dict = {}
    reps = []
    for l in layers:
        key = (l.op, l.dims, l.stride)
        if key not in cache:
            cache[key] = run(l)
        r = cache[key]
        r = Report(**{**r.__dict__, "extra": {**r.extra, "layer": l.name}})
        reps.append(r)
    rows = [layer_row(i, r, peak_macs) for i, r in enumerate(reps)]
    tot = total_report(meta.get("design", "lego"), reps)
    total = tot.to_dict(with_outputs=False)
    total.pop("cycles_per_second", None)
    macs = sum(r["macs"] for r in rows)
    total.update(meta)
    total.update({
        "model": model, "layers": len(rows), "macs": macs,
        "compute_cycles": sum(r["compute_cycles"] for r in rows),
        "utilization": macs / (tot.cycles * peak_macs) if tot.cycles else 0.0,
        "latency_ms": tot.cycles / (freq_ghz * 1e6),
        "energy_uj": tot.total_energy_pj / 1e6,
        "dataflow_layers": {d: sum(r["dataflow"] == d for r in rows)
                            for d in sorted({r["dataflow"] for r in rows})},
    })
    return rows, total


def write_outputs(rows: list[dict], total: dict, out_dir: str | os.PathLike, stem: str) -> dict:
    """Write STEM_layers.csv, STEM.json (layers + total) and STEM.png; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path, png_path = (out / f"{stem}_layers.csv", out / f"{stem}.json",
                                     out / f"{stem}.png")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(json_path, "w") as f:
        json.dump({"layers": rows, "total": total}, f, indent=1, sort_keys=True)
    plot_model(rows, total, png_path)
    return {"csv": str(csv_path), "json": str(json_path), "png": str(png_path)}


def plot_model(rows: list[dict], total: dict, path: str | os.PathLike) -> None:
    """Per-layer utilization bars (coloured by dataflow) and a roofline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = {"os": "tab:blue", "ws": "tab:orange", "is": "tab:green"}
    used = list(dict.fromkeys(r["dataflow"] for r in rows))      # the legend lists what the layers used
    colors = {d: palette.get(d.removesuffix("-bcast"), "gray") for d in used}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    a1.bar(range(len(rows)), [r["utilization"] for r in rows],
           color=[colors.get(r["dataflow"], "gray") for r in rows])
    a1.set_xlabel("layer index")
    a1.set_ylabel("utilization (MACs / (cycles x FUs))")
    a1.set_ylim(0, 1.05)
    a1.set_title(f"{total['model']} on {total['design']} {total['array']}: per-layer utilization")
    from matplotlib.patches import Patch
    a1.legend(handles=[Patch(color=c, label=d) for d, c in colors.items()], title="dataflow")
    peak = total["peak_macs_per_cycle"]
    bpc = total["dram_bytes_per_cycle"]
    ois = [r["macs"] / max(r["dram_bytes"], 1) for r in rows]
    perf = [r["macs"] / r["cycles"] for r in rows]
    lo, hi = min(ois + [0.1]) / 2, max(ois + [peak / bpc]) * 2
    import numpy as np
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    a2.loglog(x, np.minimum(peak, x * bpc), "k-", label="roof")
    a2.scatter(ois, perf, c=[colors.get(r["dataflow"], "gray") for r in rows], s=14)
    a2.set_xlabel("operational intensity (MACs / DRAM byte)")
    a2.set_ylabel("MACs / cycle")
    a2.set_title("roofline")
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_model(model: str, array: tuple[int, int] = (16, 16),
              dataflows: list[str] | tuple[str, ...] = ("os", "ws", "is"),
              buffer_bytes: int = 256 * KIB, dram_gbps: float = 16.0,
              out_dir: str | os.PathLike | None = None, *, acc_bytes: int = 64 * KIB,
              freq_ghz: float = 1.0, dram_latency_ns: float = 100.0,
              dram_row_model: bool = False, design: str = "lego",
              fill_drain: dict[str, int] | None = None) -> tuple[list[dict], dict]:
    """Map every layer of ``model``; with several dataflows each layer takes its best one.

    ``design`` "lego" (array/dataflows as given) or "gemmini" (the fixed 16x16 WS baseline;
    array and dataflows are then ignored). ``dram_row_model`` adds the DRAM bank/row model
    (``memory.RowModel`` defaults). ``fill_drain``: a generated design's fill/drain per dataflow
    (``design_config``), used instead of the formula. Writes CSV/JSON/PNG to ``out_dir`` when given.
    """
    from simulator.gemmini import GemminiConfig, gemmini_layer
    from simulator.mapping import ArrayConfig, map_layer_best
    from simulator.memory import DramConfig, RowModel
    if model not in MODELS:
        raise LegoError(f"model: {model!r} unknown, allowed {sorted(MODELS)}")
    dram = DramConfig(gbps=dram_gbps, latency_ns=dram_latency_ns, freq_ghz=freq_ghz,
                      row=RowModel() if dram_row_model else None)
    if design == "gemmini":
        g = GemminiConfig(spad_bytes=buffer_bytes, acc_bytes=acc_bytes, dram=dram)
        cfg = g.array_config()
        run = lambda l: gemmini_layer(l, g)  # noqa: E731
    elif design == "lego":
        if len(array) != 2:
            raise LegoError(f"array: {array!r} must be (rows, cols)")
        cfg = ArrayConfig(rows=array[0], cols=array[1], dataflows=tuple(dataflows),
                          spad_bytes=buffer_bytes, acc_bytes=acc_bytes, dram=dram,
                          fill_drain_of=tuple(sorted((fill_drain or {}).items())))
        run = lambda l: map_layer_best(l, cfg)  # noqa: E731
    else:
        raise LegoError(f"design: {design!r} unknown, allowed ['gemmini', 'lego']")
    meta = {"design": design, "array": f"{cfg.rows}x{cfg.cols}", "dataflows": list(cfg.dataflows),
            "buffer_bytes": cfg.spad_bytes, "acc_bytes": cfg.acc_bytes, "dram_gbps": dram_gbps,
            "freq_ghz": freq_ghz, "dram_row_model": dram_row_model, "peak_macs_per_cycle": cfg.macs_per_cycle,
            "dram_bytes_per_cycle": dram.bytes_per_cycle}
    rows, total = run_layers(model, get_model(model), run, cfg.macs_per_cycle, freq_ghz, meta)
    if out_dir is not None:
        total["files"] = write_outputs(rows, total, out_dir, f"{model}_{design}")
    return rows, total


def run_model_report(model: str, *args, **kwargs) -> Report:
    """``run_model`` as one Report: summed figures, ``extra`` = model totals + ``layers`` rows."""
    rows, total = run_model(model, *args, **kwargs)
    keep = set(Report.__dataclass_fields__) - {"outputs", "extra"}
    fields = {k: total[k] for k in keep if k in total}
    extra = {k: v for k, v in total.items() if k not in keep and not k.endswith("_total")}
    return Report(**fields, extra={**extra, "layers": rows})


# ---------------------------------------------------------------- the `lego sim --model` tool

class ModelTool:
    """``lego sim --model M [--design DIR | --array RxC | --baseline gemmini] ...`` (registered as the
    ``model`` tool; the CLI owns --model, --out and --json)."""
    name = "model"
    help = "map a built-in model onto a design: per-layer CSV, JSON and PNG"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--design", help="with --model: a lego gen output DIR (its array and dataflows)")
        p.add_argument("--baseline", choices=["gemmini"], help="with --model: the Gemmini-like 16x16 WS baseline")
        p.add_argument("--buffer-kib", type=int, default=256, help="with --model: scratchpad KiB (default 256)")
        p.add_argument("--acc-kib", type=int, default=64, help="with --model: accumulator KiB (default 64)")
        p.add_argument("--dram-gbps", type=float, default=16.0, help="with --model: DRAM bandwidth, GB/s (default 16)")
        p.add_argument("--dram-latency-ns", type=float, default=100.0,
                       help="with --model: DRAM latency, ns (default 100)")
        p.add_argument("--dram-row-model", action="store_true", help="with --model: add the DRAM bank/row model")
        p.add_argument("--freq-ghz", type=float, default=1.0, help="with --model: clock, GHz (default 1)")

    def run(self, a: argparse.Namespace) -> tuple[dict, str]:
        if a.design and _programmable(a.design):
            from .prog_model import sim_tool
            return sim_tool(a)
        from lego.design import parse_array
        from simulator.mapping import DATAFLOWS
        if getattr(a, "dram_bw", None) is not None:
            raise LegoError("--dram-bw: only with --program or --design of a programmable design (the analytical "
                            "mapper takes --dram-gbps)")
        array, dfs, fd = (16, 16), list(DATAFLOWS), None
        if sum(x is not None for x in (a.design, a.array)) + bool(a.baseline) > 1:
            raise LegoError("--design: give one of --design, --array and --baseline")
        if a.design:
            array, dfs = read_design(a.design)
            fd = design_fill_drain(a.design)
        elif a.array:
            array = parse_array(a.array, limit=1024)
        if a.dataflow:
            dfs = a.dataflow
        if a.buffer_kib <= 0 or a.acc_kib <= 0:
            raise LegoError("--buffer-kib: scratchpad and accumulator sizes must be positive integers")
        out = a.out or f"lego-model-{a.model}"
        rows, total = run_model(a.model, array, dfs, a.buffer_kib * KIB, a.dram_gbps, out,
                                acc_bytes=a.acc_kib * KIB, freq_ghz=a.freq_ghz, dram_latency_ns=a.dram_latency_ns,
                                dram_row_model=a.dram_row_model, design="gemmini" if a.baseline else "lego",
                                fill_drain=fd)
        lines = [f"{'layer':<22}{'op':<10}{'df':<4}{'cycles':>12}{'stall':>11}{'util':>7}"
                 f"{'dram_bytes':>12}{'energy_uj':>11}"]
        for r in rows:
            lines.append(f"{r['layer']:<22}{r['op']:<10}{r['dataflow']:<4}{r['cycles']:>12}"
                         f"{r['stall_cycles']:>11}{r['utilization']:>7.3f}{r['dram_bytes']:>12}"
                         f"{r['energy_pj'] / 1e6:>11.2f}")
        lines.append(f"{'TOTAL':<36}{total['cycles']:>12}{total['stall_cycles']:>11}"
                     f"{total['utilization']:>7.3f}{total['dram_bytes_total']:>12}{total['energy_uj']:>11.2f}")
        lines.append("files: " + ", ".join(total["files"].values()))
        return {"total": total, "layers": rows}, "\n".join(lines)


def _programmable(path: str) -> bool:
    """``DIR/manifest.json`` says ``kind: programmable`` (an unreadable one: not, read_design names it)."""
    try:
        return json.loads((Path(path) / "manifest.json").read_text()).get("kind") == "programmable"
    except (OSError, ValueError, AttributeError):
        return False


def read_design(path: str) -> tuple[tuple[int, int], list[str]]:
    """``DIR/manifest.json`` keys ``array`` ([R, C]) and ``dataflows`` (names)."""
    from lego.emit.directory import read_manifest
    m = read_manifest(Path(path))
    try:
        r, c = (int(v) for v in m["array"])
        dfs = [str(d) for d in m["dataflows"]]
    except (KeyError, TypeError, ValueError):
        raise LegoError(f"--design: {path}/manifest.json needs keys array [R, C] and dataflows [names]") from None
    return (r, c), dfs


def design_fill_drain(path) -> dict[str, int]:
    """``DIR/report.json`` → cycles.fill_drain: the generated design's fill/drain per dataflow."""
    import json
    try:
        fd = json.loads((Path(path) / "report.json").read_text())["cycles"]["fill_drain"]
        return {str(k): int(v) for k, v in fd.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise LegoError(f"--design: {path}/report.json needs cycles.fill_drain (a lego gen array)") from None


def design_config(path, **kw) -> ArrayConfig:
    """The mapper's ArrayConfig of the generated design in ``path``: its array, dataflows and per-dataflow
    fill/drain (``kw``: the other ArrayConfig fields, e.g. buffers and DRAM)."""
    from simulator.mapping import ArrayConfig
    (r, c), dfs = read_design(str(path))
    return ArrayConfig(rows=r, cols=c, dataflows=tuple(dfs),
                       fill_drain_of=tuple(sorted(design_fill_drain(path).items())), **kw)


TOOL = ModelTool()

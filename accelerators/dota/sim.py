"""``lego sim --accelerator dota``: the analytical model from the command line, with its files.

    lego sim --accelerator dota [--model deit-t|deit-s|deit-b|bert-b|bert-l] [--tokens N] [--bits 4|8]
             [--preset dota-b|dota-l|mrr|mzi] [--arch-opt all|crossbar|broadcast] [--latency overlap|stall]
             [--config F.yaml] [--out DIR] [--json]

Defaults: DOTA-B, 4 bits, ``--arch-opt all``, DeiT-T at its usual 197 tokens. ``--bits`` picks the authors'
4- or 8-bit tables and wins over a ``bits:`` in the YAML; ``--arch-opt`` applies to DOTA (the baselines
run ``broadcast`` only). Every option is checked before anything runs; on bad input the command exits 2
with one line naming the field and writes nothing. Then it writes, into ``--out`` (default
``lego-dota-<model>/``): ``layers.csv`` (one row per GEMM, energies per component), ``summary.json`` (what
``--json`` prints), ``breakdown.png`` (energy and area per component) and ``compare.png`` (this
configuration against the MRR-bank and MZI-mesh baselines at the same bits), listed in the JSON as ``files``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import tempfile
from pathlib import Path

from lego.errors import LegoError
from simulator.report import Report

from .config import ARCHS, PRESET_BITS, PRESETS, DotaConfig, load_config
from .model import COMPONENTS, MODES, simulate
from .workloads import MODELS

DEFAULT_MODEL = "deit-t"
LAYER_COLUMNS = ("name", "kind", "n1", "d", "n2", "heads", "count", "macs", "latency_ns", "compute_cycles", "mem_ns",
                 "energy_pj") + tuple(f"energy_pj_{c}" for c in COMPONENTS if c not in ("others", "periphery"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lego sim --accelerator dota`` beyond lego sim's own (--model, --preset, --config, --out,
    --json, --seed)."""
    p.add_argument("--tokens", help="token count of --model (default: the model's: DeiT 197, BERT-B 128, "
                                              "BERT-L 320)")
    p.add_argument("--bits", help="4 or 8: the authors' 4- or 8-bit tables (default 4, or the config's)")
    p.add_argument("--arch-opt", help="all (tau and both sharing flags, default), crossbar or broadcast (the "
                                      "authors' -o); DOTA only")
    p.add_argument("--latency", default="overlap", help="overlap (the authors' loop-trip model, default) or stall "
                                                        "(ours: buffer bandwidths stall the core)")


def _int(v, field: str, msg: str) -> int | None:
    """An integer option (given as text on the command line, or an int), or LegoError(``field: msg, got v``)."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            raise LegoError(f"{field}: {msg}, got '{v}'") from None
    if isinstance(v, bool) or not isinstance(v, int):
        raise LegoError(f"{field}: {msg}, got {v!r}")
    return v


def _positive(v, field: str) -> int | None:
    n = _int(v, field, "must be a positive integer")
    if n is not None and n <= 0:
        raise LegoError(f"{field}: must be a positive integer, got {n}")
    return n


def preset_name(name: str | None) -> tuple[str, int | None]:
    """``dota-b`` or ``dota-b-8bit`` -> (preset, bits or None)."""
    if name is None:
        return "dota-b", None
    for p in PRESETS:
        if name == p:
            return p, None
        for b in PRESET_BITS:
            if name == f"{p}-{b}bit":
                return p, b
    raise LegoError(f"--preset: unknown preset '{name}' for dota (allowed: {', '.join(PRESETS)}, or "
                    f"<preset>-4bit / -8bit)")


def config_from(config: str | None, preset: str | None, bits: int | None, arch: str | None) -> DotaConfig:
    """The configuration of the options: preset (or the YAML's ``preset:``) at ``bits`` (CLI over YAML over
    4), the YAML's fields, then ``--arch-opt``."""
    p, pbits = preset_name(preset)
    bits = _int(bits, "--bits", "must be 4 or 8 (the authors' tables)")
    if bits is not None and bits not in PRESET_BITS:
        raise LegoError(f"--bits: must be 4 or 8 (the authors' tables), got {bits}")
    if arch is not None and arch not in ARCHS:
        raise LegoError(f"--arch-opt: must be one of {', '.join(ARCHS)}, got '{arch}'")
    if config is not None:
        import yaml
        path = Path(config)
        if not path.is_file():
            raise LegoError(f"--config: file '{config}' not found")
        try:
            d = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise LegoError(f"--config: '{path}' is not valid YAML ({str(e).splitlines()[0]})") from None
        except OSError as e:
            raise LegoError(f"--config: cannot read '{path}' ({e.strerror})") from None
        d = {} if d is None else d
        if not isinstance(d, dict):
            raise LegoError(f"config: '{path}' must hold a mapping of DotaConfig fields")
        d = {"preset": p, "bits": pbits or 4, **d}
        if bits is not None:
            d["bits"] = bits
        cfg = DotaConfig.from_dict(d)
    else:
        cfg = load_config(preset=p, bits=bits or pbits or 4)
    if arch is not None:
        if cfg.kind != "dota" and arch != "broadcast":
            raise LegoError(f"--arch-opt: the {cfg.kind} baseline runs 'broadcast' only, got '{arch}'")
        cfg = cfg.replace(arch=arch)
    return cfg


def check_options(options: argparse.Namespace) -> dict:
    """Every option checked (LegoError naming it) before anything runs or is written."""
    model = getattr(options, "model", None) or DEFAULT_MODEL
    if model not in MODELS:
        raise LegoError(f"--model: unknown model '{model}' for dota (allowed: {', '.join(MODELS)})")
    tokens = _positive(getattr(options, "tokens", None), "--tokens")
    latency = getattr(options, "latency", "overlap") or "overlap"
    if latency not in MODES:
        raise LegoError(f"--latency: must be one of {', '.join(MODES)}, got '{latency}'")
    cfg = config_from(getattr(options, "config", None), getattr(options, "preset", None),
                      getattr(options, "bits", None), getattr(options, "arch_opt", None))
    if latency == "stall" and cfg.kind != "dota":
        raise LegoError(f"--latency: 'stall' models the DOTA dataflow only, not the {cfg.kind} baseline")
    out = getattr(options, "out", None)
    out = Path(out) if out else Path(f"lego-dota-{model}")
    if out.exists() and not out.is_dir():
        raise LegoError(f"--out: '{out}' exists and is not a directory")
    if not out.resolve().parent.is_dir():
        raise LegoError(f"--out: directory '{out.resolve().parent}' does not exist")
    return {"model": model, "tokens": tokens, "latency": latency, "cfg": cfg, "out": out}


def compare(cfg: DotaConfig, model: str, tokens: int | None, rep: Report) -> dict:
    """This configuration against the MRR-bank and MZI-mesh baselines (and DOTA-B, when this is a baseline)
    at the same bits: energy, latency and the ratios baseline / this (> 1: this one is better)."""
    bits = cfg.in_bits if cfg.in_bits in PRESET_BITS else 4
    e, t = rep.extra["energy_mj"], rep.extra["latency_ms"]
    out = {"this": {"config": cfg.name, "arch": cfg.arch, "energy_mj": e, "latency_ms": t}}
    others = ("mrr", "mzi") if cfg.kind == "dota" else tuple(x for x in ("dota-b", "mrr", "mzi")
                                                               if not cfg.name.startswith(x))
    for p in others:
        r = simulate(load_config(preset=p, bits=bits), model, tokens)
        out[p] = {"config": f"{p}-{bits}bit", "energy_mj": r.extra["energy_mj"], "latency_ms": r.extra["latency_ms"],
                  "energy_x": r.extra["energy_mj"] / e, "latency_x": r.extra["latency_ms"] / t}
    out["note"] = ("ratios are baseline / this configuration; the MZI mesh skips attention (as the authors' code "
                   "does), which flatters it")
    return out


def simulate_options(options: argparse.Namespace) -> Report:
    """Check the options, run the model, compare with the baselines, write the files (atomically, after
    everything has run)."""
    o = check_options(options)
    cfg = o["cfg"]
    rep = simulate(cfg, o["model"], o["tokens"], mode=o["latency"])
    rep.extra["compare"] = compare(cfg, o["model"], o["tokens"], rep)
    rep.extra["energy_mj_by_component"] = {k: v * 1e-9 for k, v in rep.energy_pj.items()}
    rep.extra["area_mm2_by_component"] = {k: v * 1e-6 for k, v in rep.area_um2.items()}
    rep.extra["bits"] = cfg.in_bits
    rep.extra["files"] = write_outputs(rep, o["out"])
    return rep


# ------------------------------------------------------------------------------------------ files
def _jsonable(x):
    import numpy as np
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(type(x).__name__)


def layers_csv(rep: Report) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(LAYER_COLUMNS), extrasaction="ignore")
    w.writeheader()
    for r in rep.extra["layers"]:
        row = dict(r)
        for c, v in r.get("energy_pj_by_component", {}).items():
            row[f"energy_pj_{c}"] = v
        w.writerow(row)
    return buf.getvalue()


def write_outputs(rep: Report, out: Path) -> dict[str, str]:
    out = Path(out)
    files = {"csv": str(out / "layers.csv"), "json": str(out / "summary.json"),
             "png_breakdown": str(out / "breakdown.png"), "png_compare": str(out / "compare.png")}
    summary = {"accelerator": "dota", **rep.summary(), "files": files}
    blobs = {"csv": layers_csv(rep).encode(),
             "json": json.dumps(summary, indent=1, sort_keys=True, default=_jsonable).encode(),
             "png_breakdown": plot_breakdown(rep), "png_compare": plot_compare(rep)}
    out.mkdir(parents=True, exist_ok=True)
    for key, data in blobs.items():
        fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, files[key])
    return files


def _figure(*a, **kw):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt, plt.subplots(*a, **kw)


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def plot_breakdown(rep: Report) -> bytes:
    """Energy per component (uJ) and area per component (mm^2), largest first."""
    plt, (fig, (a1, a2)) = _figure(1, 2, figsize=(12, 4.6))
    x = rep.extra
    for ax, data, unit, scale, title in (
            (a1, rep.energy_pj, "uJ", 1e-6, f"energy per inference: {x['energy_mj'] * 1e3:.1f} uJ"),
            (a2, rep.area_um2, "mm^2", 1e-6, f"area: {x['area_mm2']:.2f} mm^2"
             + (f", power {x['power_w']:.2f} W" if x.get("power_w") else ""))):
        items = sorted(((k, v * scale) for k, v in data.items() if v > 0), key=lambda kv: -kv[1])
        ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1], color="tab:blue")
        ax.set_xlabel(unit)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        for i, (_, v) in enumerate(items[::-1]):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=7)
    fig.suptitle(f"DOTA model: {x['config']} ({x['arch']}), {x['workload']}", fontsize=11)
    return _png(plt, fig)


def plot_compare(rep: Report) -> bytes:
    """Energy and latency of this configuration and the photonic baselines, ratios annotated."""
    c = rep.extra["compare"]
    names = [c["this"]["config"] + " (this)"] + [c[k]["config"] for k in c if k not in ("this", "note")]
    rows = [c["this"]] + [c[k] for k in c if k not in ("this", "note")]
    plt, (fig, (a1, a2)) = _figure(1, 2, figsize=(11, 4.2))
    for ax, key, unit, scale in ((a1, "energy_mj", "energy per inference (uJ)", 1e3),
                                 (a2, "latency_ms", "latency per inference (us)", 1e3)):
        vals = [r[key] * scale for r in rows]
        bars = ax.bar(range(len(vals)), vals, color=["tab:green"] + ["tab:gray"] * (len(vals) - 1))
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(names, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel(unit)
        xkey = "energy_x" if key == "energy_mj" else "latency_x"
        for b, r in zip(bars, rows):
            lab = f"{r[key] * scale:.3g}" + (f"\n{r[xkey]:.2f}x" if xkey in r else "")
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), lab, ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"{rep.extra['workload']}: {c['this']['config']} against the photonic baselines "
                 "(x: baseline / this; MZI skips attention)", fontsize=10)
    return _png(plt, fig)

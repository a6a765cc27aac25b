"""Models on a programmable design: ``lego compile DIR --model M`` and ``lego sim --model M --design DIR``.

The model front end sits here because the built-in model table (``simulator.models``) is in the simulator
layer; files (SCALE-Sim CSV, ONNX) are read by ``lego.prog.topology`` and the lowering and the compiler are
``lego.prog``'s (conv layers on a design generated for conv through the load DMA's window generator,
``lego.prog.conv``). ``lego sim --model M --design DIR`` compiles every layer and runs each layer's segment
through the program cycle engine's timing (``lego.prog.timing``, exact against the RTL); the data path is
not executed for model runs (no weights): the outputs say ``outputs: not computed``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from lego.errors import LegoError
from lego.prog.lower import LayerSpec
from lego.prog.model import compile_model, layer_records
from lego.prog.topology import read_model_file

from .models import MODELS, Layer


# who expands the conv windows in a model run (the program header's ``im2col``)
IM2COL_NOTE = {"host": "host (DRAM traffic of the expanded matrix)",
               "hardware": "hardware (windowed LOADs read the NHWC input; DRAM traffic of the windows' reads)",
               "mixed": "per layer, the faster of hardware windows and host im2col (layers' im2col field)"}


def _conv_spec(l: Layer) -> LayerSpec:
    """The table's conv sizes are output sizes with no padding: the input is (out - 1)·stride + window."""
    e = l.ext
    c, k, g = e["c"], e.get("k", e["c"]), (e["c"] if l.op == "dwconv2d" else 1)
    dims = {"N": e["n"], "C": c, "H": (e["h"] - 1) * l.stride + e["r"], "W": (e["w"] - 1) * l.stride + e["s"],
            "K": k, "R": e["r"], "S": e["s"]}
    return LayerSpec(l.name, l.op, dims, (l.stride, l.stride), (0, 0, 0, 0), g)


FROM_TABLE = {
    "gemm": lambda l: LayerSpec(l.name, "gemm", {"M": l.ext["i"], "N": l.ext["j"], "K": l.ext["k"]}),
    "bmm": lambda l: LayerSpec(l.name, "bmm", {"B": l.ext["b"], "M": l.ext["i"], "N": l.ext["j"], "K": l.ext["k"]}),
    "conv2d": _conv_spec,
    "dwconv2d": _conv_spec,
}


def builtin_specs(layers: list[Layer]) -> tuple[list[LayerSpec], list[dict]]:
    specs, skipped = [], []
    for l in layers:
        f = FROM_TABLE.get(l.op)
        if f is None:
            skipped.append({"name": l.name, "op": l.op, "why": "no GEMM lowering"})
        else:
            specs.append(f(l))
    return specs, skipped


def load_model(text: str) -> tuple[str, list[LayerSpec], list[dict]]:
    """``--model`` NAME (the built-in table) or FILE (.csv / .onnx) -> (name, layers, skipped)."""
    if text in MODELS:
        return (text, *builtin_specs(MODELS[text]()))
    p = Path(text)
    if p.suffix.lower() in (".csv", ".onnx"):
        return (p.stem, *read_model_file(p))
    raise LegoError(f"--model: '{text}' is not a built-in model (allowed: {', '.join(sorted(MODELS))}) "
                    f"nor a .csv / .onnx file")


def _progress(total_desc: str, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm
    return lambda it: tqdm(it, desc=total_desc, unit="layer", leave=False, disable=None)  # off without a TTY


def run_model_program(model: str, design_dir: Path, latency: int, quiet: bool = False,
                      dram_bw=None, im2col: str | None = None) -> tuple[list[dict], dict]:
    """Compile ``model`` for the programmable design and time every layer's segment: per-layer rows, total.
    ``dram_bw``: the DRAM's bandwidth, 64-bit words per cycle each direction (``--dram-bw``; None: the bus width)."""
    from lego.emit.directory import read_manifest
    from lego.prog.timing import dram_bw_words, with_dram_bw
    man = with_dram_bw(read_manifest(Path(design_dir)), dram_bw)
    name, specs, skipped = load_model(model)
    header, _, _ = compile_model(man, specs, skipped, name, latency=latency,
                                 progress=_progress(f"compile {name}", quiet), keep=False, im2col=im2col)
    prog = man["prog"]
    R, C = prog["array"]
    rows = []
    # each layer's cycles are its stream's exact program timing, taken while the compiler wrote it (at base
    # 0: bases are 4 KiB multiples, so the relocated segment times the same; tests/lego/prog checks this)
    for rec in layer_records(header):
        g, busy, cyc = rec["gemm"], rec["predicted_busy"], rec["predicted_cycles"]
        rows.append({"idx": len(rows), "layer": rec["name"], "op": rec["op"], "lowering": rec["lowering"],
                     "G": g["G"], "M": g["M"], "N": g["N"], "K": g["K"], "macs": rec["macs"], "mode": rec["mode"],
                     "tile": "M={M} N={N} K={K}".format(**rec["tile"]), "commands": rec["commands"][1],
                     "cycles": cyc, "utilization": rec["macs"] / (R * C * cyc),
                     "busy_ld": busy["ld"], "busy_cp": busy["cp"], "busy_st": busy["st"],
                     "dram_bytes": sum(rec["dram"][t]["bytes"] for t in "XWY")})
    cycles = sum(r["cycles"] for r in rows)
    macs = sum(r["macs"] for r in rows)
    total = {"model": name, "design": str(design_dir), "array": f"{R}x{C}", "dataflows": list(prog["dataflows"]),
             "engine": "cycle (program timing)", "dram_latency": latency,
             "dram_bw": dram_bw_words(prog), "layers": len(rows),
             "cycles": cycles,
             "macs": macs, "utilization": macs / (R * C * cycles), "commands": header["commands"],
             "skipped": skipped,
             "im2col": IM2COL_NOTE[header.get("im2col", "host")],
             "outputs": "not computed (timing only: a model run has no weights)"}
    return rows, total


def write_outputs(rows: list[dict], total: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{total['model']}_prog"
    paths = {"csv": out / f"{stem}_layers.csv", "json": out / f"{stem}.json", "png": out / f"{stem}.png"}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    paths["json"].write_text(json.dumps({"layers": rows, "total": total}, indent=1, sort_keys=True) + "\n")
    plot(rows, total, paths["png"])
    return {k: str(v) for k, v in paths.items()}


def plot(rows: list[dict], total: dict, path: Path) -> None:
    from .prog_plot import write
    write(rows, total, path)


def sim_tool(a) -> tuple[dict, str]:
    """``lego sim --model M --design DIR`` on a programmable DIR (called by the ``model`` tool)."""
    lat = 20 if a.dram_latency is None else a.dram_latency
    if not 0 <= lat <= 10_000:
        raise LegoError(f"--dram-latency: {lat} is out of range (0..10000 cycles)")
    rows, total = run_model_program(a.model, Path(a.design), lat, quiet=a.json, dram_bw=getattr(a, "dram_bw", None),
                                    im2col=getattr(a, "im2col", None))
    out = Path(a.out or f"lego-model-{total['model']}")
    total["files"] = write_outputs(rows, total, out)
    lines = [f"{'layer':<24}{'op':<10}{'G':>5}{'M':>7}{'N':>6}{'K':>6}{'mode':>5}{'cycles':>12}{'util':>7}"]
    for r in rows:
        lines.append(f"{r['layer'][:23]:<24}{r['op']:<10}{r['G']:>5}{r['M']:>7}{r['N']:>6}{r['K']:>6}{r['mode']:>5}"
                     f"{r['cycles']:>12}{r['utilization']:>7.3f}")
    lines.append(f"{'TOTAL':<63}{total['cycles']:>12}{total['utilization']:>7.3f}")
    if total["skipped"]:
        lines.append("skipped: " + ", ".join(f"{s['name']} ({s['op']})" for s in total["skipped"]))
    lines.append(f"outputs: {total['outputs']}; im2col: {total['im2col']}")
    lines.append("files: " + ", ".join(total["files"].values()))
    return {"total": total, "layers": rows}, "\n".join(lines)


class _CompileModelTool:
    """``lego compile DIR --model M`` (registered as the ``compile-model`` tool)."""

    def compile(self, model: str, man: dict, mode, tile, latency: int, quiet: bool = False, im2col: str | None = None):
        name, specs, skipped = load_model(model)
        return compile_model(man, specs, skipped, name, mode=mode, tile=tile, latency=latency,
                             progress=_progress(f"compile {name}", quiet), im2col=im2col)


TOOL = _CompileModelTool()

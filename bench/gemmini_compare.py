"""Gemmini-like baseline vs a lego design of equal MACs, buffer and bandwidth (issue #3, item 6).

Both designs: 256 MACs (16x16), 256 KiB scratchpad + 64 KiB accumulator, 16 GB/s DRAM (100 ns),
1 GHz, int8 x int8 -> int32, 28 nm energy tables (simulator/energy.py). Gemmini: fixed WS,
convolutions by im2col, depthwise by per-channel GEMMs. lego: os+ws+is fused, the best dataflow
per layer. An extra column runs a lego WS-only design (native conv presets, no fusion) to separate
the effect of fusion from that of the conv lowering.

Outputs bench/results/gemmini_compare.json and .md. LEGO (HPCA 2025) reports 3.2x speed and
2.4x energy efficiency on average over its own model set; our figures are what our model gives.

Usage: ``.venv/bin/python bench/gemmini_compare.py``
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.model_run import run_model  # noqa: E402
from simulator.models import MODELS  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PAPER = {"speedup": 3.2, "energy_ratio": 2.4}


def onchip(total: dict) -> float:
    return total["energy_pj_total"] - total["energy_pj"].get("dram", 0.0)


def drivers(lego_rows: list[dict], gem_rows: list[dict], top: int = 5) -> list[dict]:
    """Layers with the largest cycle savings, with their share of the model's total saving."""
    saved = sum(g["cycles"] for g in gem_rows) - sum(l["cycles"] for l in lego_rows)
    out = []
    for l, g in zip(lego_rows, gem_rows):
        out.append({"layer": l["layer"], "op": l["op"], "lego_dataflow": l["dataflow"],
                    "gemmini_cycles": g["cycles"], "lego_cycles": l["cycles"],
                    "saving_cycles": g["cycles"] - l["cycles"],
                    "share_of_saving": (g["cycles"] - l["cycles"]) / saved if saved else 0.0,
                    "gemmini_spatial_util": g["spatial_utilization"],
                    "lego_spatial_util": l["spatial_utilization"],
                    "lego_stall_frac": l["stall_cycles"] / l["cycles"]})
    out.sort(key=lambda d: -d["saving_cycles"])
    return out[:top]


def op_breakdown(lego_rows: list[dict], gem_rows: list[dict]) -> dict:
    agg: dict = {}
    for l, g in zip(lego_rows, gem_rows):
        a = agg.setdefault(l["op"], {"layers": 0, "gemmini_cycles": 0, "lego_cycles": 0})
        a["layers"] += 1
        a["gemmini_cycles"] += g["cycles"]
        a["lego_cycles"] += l["cycles"]
    for a in agg.values():
        a["speedup"] = a["gemmini_cycles"] / a["lego_cycles"]
    return agg


def compare(model: str) -> dict:
    lr, lt = run_model(model, (16, 16), ["os", "ws", "is"])
    gr, gt = run_model(model, design="gemmini")
    wr, wt = run_model(model, (16, 16), ["ws"])
    return {
        "model": model,
        "gemmini_cycles": gt["cycles"], "lego_cycles": lt["cycles"],
        "lego_ws_only_cycles": wt["cycles"],
        "speedup": gt["cycles"] / lt["cycles"],
        "speedup_compute_only": gt["compute_cycles"] / lt["compute_cycles"],
        "speedup_ws_only": gt["cycles"] / wt["cycles"],
        "gemmini_energy_uj": gt["energy_uj"], "lego_energy_uj": lt["energy_uj"],
        "energy_ratio": gt["energy_pj_total"] / lt["energy_pj_total"],
        "energy_ratio_onchip": onchip(gt) / onchip(lt),
        "dram_energy_share_gemmini": gt["energy_pj"]["dram"] / gt["energy_pj_total"],
        "gemmini_utilization": gt["utilization"], "lego_utilization": lt["utilization"],
        "gemmini_stall_frac": gt["stall_cycles"] / gt["cycles"],
        "lego_stall_frac": lt["stall_cycles"] / lt["cycles"],
        "gemmini_area_mm2": gt["area_um2_total"] / 1e6, "lego_area_mm2": lt["area_um2_total"] / 1e6,
        "lego_dataflow_layers": lt["dataflow_layers"],
        "by_op": op_breakdown(lr, gr),
        "drivers": drivers(lr, gr),
    }


def gmean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def table(res: list[dict], summary: dict) -> str:
    lines = ["| model | Gemmini cycles | lego cycles | speedup | speedup (compute only) | "
             "speedup lego WS-only | energy ratio | energy ratio (on-chip) | DRAM share of energy "
             "| util Gemmini | util lego | area mm2 Gemmini / lego | dataflows used |",
             "|" + "---|" * 13]
    for r in res:
        lines.append(
            f"| {r['model']} | {r['gemmini_cycles']:,} | {r['lego_cycles']:,} | "
            f"{r['speedup']:.2f}x | {r['speedup_compute_only']:.2f}x | "
            f"{r['speedup_ws_only']:.2f}x | {r['energy_ratio']:.2f}x | "
            f"{r['energy_ratio_onchip']:.2f}x | {r['dram_energy_share_gemmini']:.0%} | "
            f"{r['gemmini_utilization']:.2f} | {r['lego_utilization']:.2f} | "
            f"{r['gemmini_area_mm2']:.3f} / {r['lego_area_mm2']:.3f} | "
            f"{r['lego_dataflow_layers']} |")
    s = summary
    lines.append(f"| **mean (arith / geo)** | | | {s['speedup_mean']:.2f}x / {s['speedup_gmean']:.2f}x"
                 f" | | | {s['energy_ratio_mean']:.2f}x / {s['energy_ratio_gmean']:.2f}x | "
                 f"{s['energy_ratio_onchip_mean']:.2f}x | | | | | |")
    lines.append(f"| LEGO paper | | | {PAPER['speedup']}x | | | {PAPER['energy_ratio']}x | "
                 "| | | | | |")
    lines.append("")
    for r in res:
        lines.append(f"**{r['model']}**: speed-up by op: " + ", ".join(
            f"{op} {a['speedup']:.2f}x ({a['layers']} layers, {a['gemmini_cycles']:,} -> "
            f"{a['lego_cycles']:,} cycles)" for op, a in r["by_op"].items()))
        for d in r["drivers"][:3]:
            if d["saving_cycles"] <= 0:
                continue
            lines.append(f"  - {d['layer']} ({d['op']}, lego {d['lego_dataflow']}): "
                         f"{d['gemmini_cycles']:,} -> {d['lego_cycles']:,} cycles, "
                         f"{d['share_of_saving']:.0%} of the saving; spatial util "
                         f"{d['gemmini_spatial_util']:.2f} -> {d['lego_spatial_util']:.2f}, "
                         f"lego stalls {d['lego_stall_frac']:.0%}")
    return "\n".join(lines) + "\n"


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    res = [compare(m) for m in MODELS]
    summary = {
        "speedup_mean": sum(r["speedup"] for r in res) / len(res),
        "speedup_gmean": gmean([r["speedup"] for r in res]),
        "energy_ratio_mean": sum(r["energy_ratio"] for r in res) / len(res),
        "energy_ratio_gmean": gmean([r["energy_ratio"] for r in res]),
        "energy_ratio_onchip_mean": sum(r["energy_ratio_onchip"] for r in res) / len(res),
        "paper": PAPER,
    }
    summary["speedup_within_25pct_of_paper"] = abs(summary["speedup_mean"] / PAPER["speedup"] - 1) <= 0.25
    summary["energy_within_25pct_of_paper"] = (
        abs(summary["energy_ratio_mean"] / PAPER["energy_ratio"] - 1) <= 0.25)
    config = {"macs": 256, "array": "16x16", "spad_kib": 256, "acc_kib": 64, "dram_gbps": 16,
              "dram_latency_ns": 100, "freq_ghz": 1.0, "node_nm": 28,
              "gemmini": "WS only, im2col conv, per-channel depthwise GEMMs",
              "lego": "os+ws+is fused, best dataflow per layer"}
    (RESULTS / "gemmini_compare.json").write_text(
        json.dumps({"config": config, "summary": summary, "models": res}, indent=1))
    md = table(res, summary)
    (RESULTS / "gemmini_compare.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DOTA model: energy and latency per inference for every preset x workload, with ratios to the baselines.

Rows: presets dota-b, dota-l, mrr, mzi at 4 and 8 bits (DOTA with all optimizations, ``arch=all``), plus
DOTA-B under ``arch=crossbar`` (the setting of the authors' comparison script), over DeiT-T/S/B at 197
tokens, BERT-B at 128 and 384, BERT-L at 320. ``mrr_x`` / ``mzi_x`` are baseline / row at the same bits
(> 1: the row is better). The MZI baseline skips attention (as the authors' code does), so its ratios
flatter it. ``stall_ms`` is our stall-mode latency at the default bandwidths (DOTA rows only).
Run: .venv/bin/python bench/dota_table.py  -> table, bench/results/dota_table.json
"""
from __future__ import annotations

import math

from _common import save, table

from accelerators.dota import load_config, simulate
from accelerators.dota.workloads import STANDARD

ROWS = [("dota-b", "all"), ("dota-l", "all"), ("dota-b", "crossbar"), ("mrr", "broadcast"), ("mzi", "broadcast")]


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main() -> int:
    rows = []
    for bits in (4, 8):
        base = {}
        for p in ("mrr", "mzi"):
            for m, t in STANDARD:
                r = simulate(load_config(preset=p, bits=bits), m, t)
                base[p, m, t] = (r.extra["energy_mj"], r.extra["latency_ms"])
        for preset, arch in ROWS:
            cfg = load_config(preset=preset, bits=bits, **({"arch": arch} if preset.startswith("dota") else {}))
            for m, t in STANDARD:
                r = simulate(cfg, m, t)
                e, lat = r.extra["energy_mj"], r.extra["latency_ms"]
                row = {"config": preset, "bits": bits, "arch": arch, "model": m, "tokens": t,
                       "energy_mj": e, "latency_ms": lat, "edp_mj_ms": e * lat,
                       "mrr_energy_x": base["mrr", m, t][0] / e, "mrr_latency_x": base["mrr", m, t][1] / lat,
                       "mzi_energy_x": base["mzi", m, t][0] / e, "mzi_latency_x": base["mzi", m, t][1] / lat,
                       "area_mm2": r.extra["area_mm2"], "power_w": r.extra["power_w"]}
                if cfg.kind == "dota":
                    row["stall_ms"] = simulate(cfg, m, t, mode="stall").extra["latency_ms"]
                rows.append(row)
    cols = ["config", "bits", "arch", "model", "tokens", "energy_mj", "latency_ms", "stall_ms",
            "mrr_energy_x", "mrr_latency_x", "mzi_energy_x", "mzi_latency_x"]
    print(table(rows, cols))

    headline = {}
    for preset, arch in ROWS[:3]:
        for bits in (4, 8):
            sel = [r for r in rows if (r["config"], r["arch"], r["bits"]) == (preset, arch, bits)]
            headline[f"{preset}/{arch}/{bits}bit"] = {
                k: {"geomean": geomean([r[k] for r in sel]), "min": min(r[k] for r in sel),
                    "max": max(r[k] for r in sel)}
                for k in ("mrr_energy_x", "mrr_latency_x", "mzi_energy_x", "mzi_latency_x")}
            headline[f"{preset}/{arch}/{bits}bit"]["stall_over_overlap"] = geomean(
                [r["stall_ms"] / r["latency_ms"] for r in sel])
    print("\nheadline (geometric mean over the six workloads; baseline / DOTA):")
    for k, v in headline.items():
        print(f"  {k:22s} " + "  ".join(f"{m} {v[m]['geomean']:.3g}" for m in
                                          ("mrr_energy_x", "mrr_latency_x", "mzi_energy_x", "mzi_latency_x"))
              + f"  stall/overlap {v['stall_over_overlap']:.3f}")
    p = save("dota_table", {"workloads": [list(w) for w in STANDARD], "rows": rows, "headline": headline,
                            "note": "ratios are baseline / row at the same bits; MZI excludes attention"})
    print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

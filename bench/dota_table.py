"""DOTA model: energy and latency per inference for every preset x workload, with ratios to the baselines, the
sensitivity to ``--arch-opt``, and the digital periphery next to the photonic parts.

Rows: presets dota-b, dota-l, mrr, mzi at 4 and 8 bits (DOTA with all optimizations, ``arch=all``), plus
DOTA-B under ``arch=crossbar`` (the setting of the authors' comparison script) and ``arch=broadcast``, over
DeiT-T/S/B at 197 tokens, BERT-B at 128 and 384, BERT-L at 320. ``mrr_x`` / ``mzi_x`` are baseline / row at
the same bits (> 1: the row is better). The MZI baseline skips attention (as the authors' code does), so its
ratios flatter it. ``stall_ms`` is our stall-mode latency at the default bandwidths (DOTA rows only).
DOTA rows include the synthesized digital periphery (``periphery: synth``, bench/dota_periphery.py);
``periph_e_pct`` is its share of the energy. ``breakdown`` groups DOTA-B's area, power and DeiT-T energy
into photonic, mixed-signal, memory and digital parts; ``periphery`` lists the synthesized figures per
tile and shared (Yosys cells, flip-flops, RAM bits).
Run: .venv/bin/python bench/dota_table.py  -> table, bench/results/dota_table.json
"""
from __future__ import annotations

import json
import math

from _common import save, table

from accelerators.dota import load_config, simulate
from accelerators.dota.periphery import DATA_FILE, config_key
from accelerators.dota.workloads import STANDARD

ROWS = [("dota-b", "all"), ("dota-l", "all"), ("dota-b", "crossbar"), ("dota-b", "broadcast"), ("mrr", "broadcast"),
        ("mzi", "broadcast")]
GROUPS = {"photonic": ("photonic", "mzm", "mrr", "laser", "comb", "pd", "phase_shifter", "mzi"),
          "mixed-signal": ("dac", "adc", "tia"),
          "memory": ("gb", "lb", "pe_buffer", "rf", "noc", "dram"),
          "digital": ("adder", "periphery", "others")}


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def grouped(d: dict) -> dict:
    tot = sum(d.values())
    return {g: {"value": sum(d.get(k, 0.0) for k in ks), "pct": 100 * sum(d.get(k, 0.0) for k in ks) / tot}
            for g, ks in GROUPS.items()}


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
                       "area_mm2": r.extra["area_mm2"], "power_w": r.extra["power_w"],
                       "periph_e_pct": 100 * r.energy_pj["periphery"] / r.total_energy_pj}
                if cfg.kind == "dota":
                    row["stall_ms"] = simulate(cfg, m, t, mode="stall").extra["latency_ms"]
                rows.append(row)
    cols = ["config", "bits", "arch", "model", "tokens", "energy_mj", "latency_ms", "stall_ms",
            "mrr_energy_x", "mrr_latency_x", "mzi_energy_x", "mzi_latency_x", "periph_e_pct"]
    print(table(rows, cols))

    headline = {}
    for preset, arch in ROWS[:4]:
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

    # --arch-opt sensitivity: DOTA-B energy per component over the workloads, all -> crossbar -> broadcast
    sens = {}
    for bits in (4, 8):
        for arch in ("all", "crossbar", "broadcast"):
            cfg = load_config(bits=bits, arch=arch)
            rs = [simulate(cfg, m, t) for m, t in STANDARD]
            comp = {k: sum(r.energy_pj[k] for r in rs) for k in rs[0].energy_pj}
            sens[f"{bits}bit/{arch}"] = {"energy_mj_sum": sum(comp.values()) * 1e-9,
                                         "by_component_mj": {k: v * 1e-9 for k, v in comp.items() if v}}
    print("\n--arch-opt (DOTA-B, energy summed over the six workloads, mJ):")
    for k, v in sens.items():
        top = sorted(v["by_component_mj"].items(), key=lambda kv: -kv[1])[:4]
        print(f"  {k:14s} {v['energy_mj_sum']:.4g}   " + ", ".join(f"{c} {x:.3g}" for c, x in top))

    # the periphery next to the photonic parts (DOTA-B, DeiT-T)
    synth = json.loads(DATA_FILE.read_text())
    brk = {}
    for bits in (4, 8):
        for arch in ("all", "crossbar"):
            cfg = load_config(bits=bits, arch=arch)
            r = simulate(cfg, "deit-t")
            e = synth["entries"][config_key(cfg)]
            brk[f"{bits}bit/{arch}"] = {
                "area_mm2": grouped({k: v * 1e-6 for k, v in r.area_um2.items()}),
                "power_w": grouped({k: v * 1e-3 for k, v in r.extra["power_mw"].items()}),
                "energy_deit_t_mj": grouped({k: v * 1e-9 for k, v in r.energy_pj.items()}),
                "periphery": r.extra["periphery"],
                "periphery_area_pct": 100 * r.area_um2["periphery"] / r.total_area_um2,
                "periphery_power_pct": 100 * r.extra["power_mw"]["periphery"] / sum(r.extra["power_mw"].values()),
                "periphery_energy_pct": 100 * r.energy_pj["periphery"] / r.total_energy_pj,
                "synth_per_tile": {k: e["per_tile"][k] for k in ("cells", "flipflops", "logic_ff_bits", "ram_bits",
                                                                 "logic_area_um2", "energy_pj_per_cycle")},
                "synth_shared": {k: e["shared"][k] for k in ("cells", "flipflops", "logic_ff_bits", "ram_bits",
                                                             "logic_area_um2", "energy_pj_per_cycle")}}
    prow = [{"point": k, "tile_cells": v["synth_per_tile"]["cells"], "tile_ff": v["synth_per_tile"]["logic_ff_bits"],
             "tile_ram_bits": v["synth_per_tile"]["ram_bits"], "shared_cells": v["synth_shared"]["cells"],
             "shared_ff": v["synth_shared"]["logic_ff_bits"], "periph_area_pct": v["periphery_area_pct"],
             "periph_power_pct": v["periphery_power_pct"], "periph_energy_pct": v["periphery_energy_pct"],
             "photonic_area_pct": v["area_mm2"]["photonic"]["pct"],
             "mixed_power_pct": v["power_w"]["mixed-signal"]["pct"]} for k, v in brk.items()]
    print("\nperiphery (DOTA-B, DeiT-T; Yosys generic per tile and shared; shares of the whole accelerator):")
    print(table(prow, list(prow[0])))

    p = save("dota_table", {"workloads": [list(w) for w in STANDARD], "rows": rows, "headline": headline,
                            "arch_opt": sens, "breakdown": brk, "periphery_rows": prow,
                            "note": "ratios are baseline / row at the same bits; MZI excludes attention; DOTA rows "
                                    "include the synthesized digital periphery"})
    print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

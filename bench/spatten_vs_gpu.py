"""SpAtten (simulated) vs the H100 (measured cuda_kernels) on GPT-2 decode attention.

    .venv/bin/python bench/spatten_vs_gpu.py

Per attention request (one query of one head over an L≈1000 cache, D = 64):
* SpAtten: the trace-replay cycle model (accelerators/spatten/model.py) on the authors' GPT-2-small per8 trace,
  presets `eighth` (SpAtten1/8) and `full`, 1 GHz, energy from the project's table (simulator/energy.py) at
  the config's node_nm (45 nm, the table's reference node; the SpAtten chip is 40 nm).
* H100: bench/results/NVIDIA_H100_80GB_HBM3.json (our decode kernel, dense and on a compacted cache at
  keep ∈ {0.5, 0.25, 0.1}; batch 8 × 16 heads, GPT-2-medium shapes, D = 64, L = 1024).
Caveats printed with the table: 45 nm energy figures (SpAtten) vs TSMC 4N (H100); H100 energy uses its 700 W board
power as an upper bound (power was not measured); the H100 amortizes launches over 128 requests.
"""
import json
from pathlib import Path

import numpy as np

from _common import ROOT, save, table

from accelerators.spatten.config import SpAttenConfig
from accelerators.spatten.model import simulate

TRACE = ROOT / "accelerators" / "spatten" / "data" / "summary-gpt2-small-wikitext2-per8.csv"
H100 = ROOT / "bench" / "results" / "NVIDIA_H100_80GB_HBM3.json"
H100_W = 700.0


def main():
    gpu = json.loads(H100.read_text())["results"]
    import csv
    rows_tr = list(csv.DictReader(open(TRACE)))
    keep = float(np.mean([float(r["key_fetch_num"]) / float(r["sentence_length_L"]) for r in rows_tr
                          if r.get("key_fetch_num") and r.get("sentence_length_L")]))
    rows = []
    for preset in ("eighth", "full"):
        r = simulate(SpAttenConfig.preset(preset), TRACE)
        per_req_us = r.extra["seconds"] / r.extra["requests"] * 1e6
        rows.append({"system": f"SpAtten {preset} (sim, 45 nm table)", "us_per_request": per_req_us,
                     "uJ_per_request": r.total_energy_pj / r.extra["requests"] * 1e-6, "keep": round(keep, 3)})
    for g in gpu:
        if g["group"] in ("decode", "pruned_decode") and "GPT-2" in g["name"]:
            b, h = g["shape"][0], g["shape"][1]
            us = g["ours_ms"] * 1e3 / (b * h)
            k = g["shape"][2] / 1024
            rows.append({"system": f"H100 {g['name'].split('decode')[-1].strip() or 'dense'} (measured, 4N)",
                         "us_per_request": us, "uJ_per_request": us * H100_W, "keep": round(k, 3)})
    ref = rows[0]
    for r in rows:
        r["time_vs_spatten_eighth"] = r["us_per_request"] / ref["us_per_request"]
        r["energy_vs_spatten_eighth"] = r["uJ_per_request"] / ref["uJ_per_request"]
    print(table(rows, ["system", "keep", "us_per_request", "uJ_per_request", "time_vs_spatten_eighth",
                       "energy_vs_spatten_eighth"]))
    print("caveats: 45 nm energy table vs 4N; H100 energy = 700 W x time (upper bound, not measured); H100 batches "
          "128 requests per launch, SpAtten runs one request at a time; GPT-2-small trace vs GPT-2-medium "
          "shapes (same D = 64, L ~ 1000).")
    print(save("spatten_vs_gpu", {"rows": rows, "trace_mean_keep": keep, "h100_power_w_assumed": H100_W}))


if __name__ == "__main__":
    main()

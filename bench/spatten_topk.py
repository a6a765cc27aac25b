"""Top-k engine cycles: mean over 300 random inputs per (n, k) at parallelism 16.

Columns: our engine (cycle-exact with the RTL: load + quick-select rounds + output pass), its
quick-select rounds alone, the authors' statistical latency model as described in the study notes
(random pivots, ceil(len/16) + 3 per round), and the notes' figures for that model.
Run: .venv/bin/python bench/spatten_topk.py  -> table, bench/results/spatten_topk.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sw_reference.spatten.topk import quickselect_latency_model, topk_engine  # noqa: E402

CASES = [(64, 16), (256, 32), (1024, 32), (1024, 512), (4096, 32)]
EXPECTED = {(64, 16): 36, (256, 32): 75, (1024, 32): 182, (1024, 512): 258, (4096, 32): 560}
P, TRIALS = 16, 300


def main() -> int:
    rng = np.random.default_rng(2021)
    rows = []
    for n, k in CASES:
        eng, rounds_only, model = [], [], []
        for _ in range(TRIALS):
            x = rng.integers(0, 1 << 16, n)
            r = topk_engine(x, k, P)
            eng.append(r.cycles)
            r0 = -(-n // P)
            rounds_only.append(r.cycles - 2 * r0 - 3 + r0 + 3)  # round 0 counted as ceil(n/P)+3 like the others
            model.append(quickselect_latency_model(n, k, P, rng))
        rows.append({"n": n, "k": k, "engine_mean": float(np.mean(eng)), "engine_sd": float(np.std(eng)),
                     "engine_rounds_mean": float(np.mean(rounds_only)),
                     "quickselect_model_mean": float(np.mean(model)), "quickselect_model_sd": float(np.std(model)),
                     "notes_expected": EXPECTED[(n, k)]})
    hdr = f"{'n':>5} {'k':>4} {'engine (RTL)':>13} {'sd':>6} {'engine rounds':>14} {'QS model':>9} {'sd':>6} {'notes':>6}"
    print(hdr)
    for r in rows:
        print(f"{r['n']:5d} {r['k']:4d} {r['engine_mean']:13.1f} {r['engine_sd']:6.1f} {r['engine_rounds_mean']:14.1f} "
              f"{r['quickselect_model_mean']:9.1f} {r['quickselect_model_sd']:6.1f} {r['notes_expected']:6d}")
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "spatten_topk.json").write_text(json.dumps({"parallelism": P, "trials": TRIALS, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

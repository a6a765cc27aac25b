"""P1 on real layers: RTL utilization of ResNet-50's first five convolutions on a programmable 8x8 ws array.

    .venv/bin/python bench/prog_p1_real.py [--quick] [--design DIR] [--engine icarus]

Layers (``simulator/models.py: resnet50``, the table `lego sim --model resnet50` uses): conv1 7x7/2 and the
first bottleneck res2a (1x1a, 3x3, 1x1b, down), **scaled down** so that one Icarus run stays near a minute on a
loaded 2-core machine: channels / 8 (input channels 3 of conv1 kept), spatial size / 8 for conv1 (224 -> 28
input, 14 output, pad 3) and / 4 for res2a (56 -> 14, the 3x3 with pad 1). Batch 1.

Design: `lego gen --workload gemm --array 8x8 --dataflow ws --scratchpad-kib 4 --accumulator-kib 4` (64-bit
AXI; tile box M=16 N=16 K=64), DRAM latency 20 cycles. For each layer:

* RTL cycles: `lego sim DIR --program P --engine icarus --json` (whole process; the CLI itself fails unless
  the RTL's cycles equal the cycle engine's prediction and the outputs equal sw_reference);
* cycle engine: `lego sim DIR --program P --engine cycle --json` (asserted equal to the RTL);
* the analytical mapper: ``simulator.mapping.map_layer_best`` (what `lego sim --model` without a programmable
  design runs per layer, through ``simulator.model_run.run_model``) on the same array, dataflow, buffers,
  8 B/cycle DRAM at 1 GHz, 20 ns latency and the design's drain.

Utilization = layer MACs / (64 PEs x cycles). ``--quick``: the two smallest layers (1x1a, 1x1b).
Writes bench/results/prog_p1_real.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import save, table

LEGO = str(Path(sys.executable).parent / "lego")
LATENCY = 20
# name, lego compile layer spec, original resnet50 layer (simulator/models.py), scaled (k, c, ho, wo, r, s, stride)
LAYERS = [
    ("conv1", "conv2d:C=3,H=28,W=28,K=8,R=7,S=7,STRIDE=2,PAD=3", "conv1 K=64 C=3 224->112 7x7/2",
     (8, 3, 14, 14, 7, 7, 2)),
    ("res2a_1x1a", "conv2d:C=8,H=14,W=14,K=8,R=1,S=1", "res2a_1x1a K=64 C=64 56x56 1x1", (8, 8, 14, 14, 1, 1, 1)),
    ("res2a_3x3", "conv2d:C=8,H=14,W=14,K=8,R=3,S=3,PAD=1", "res2a_3x3 K=64 C=64 56x56 3x3",
     (8, 8, 14, 14, 3, 3, 1)),
    ("res2a_1x1b", "conv2d:C=8,H=14,W=14,K=32,R=1,S=1", "res2a_1x1b K=256 C=64 56x56 1x1",
     (32, 8, 14, 14, 1, 1, 1)),
    ("res2a_down", "conv2d:C=8,H=14,W=14,K=32,R=1,S=1", "res2a_down K=256 C=64 56x56 1x1",
     (32, 8, 14, 14, 1, 1, 1)),
]


def run_json(cmd: list[str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="res2a_1x1a and res2a_1x1b only")
    ap.add_argument("--design", help="an existing programmable 8x8 ws design (default: generate it)")
    ap.add_argument("--engine", default="icarus", choices=("icarus", "verilator"))
    a = ap.parse_args()
    from simulator.mapping import KIB, ArrayConfig, map_layer_best
    from simulator.memory import DramConfig
    from simulator.models import conv2d

    td = Path(tempfile.mkdtemp(prefix="prog_p1_"))
    design = Path(a.design) if a.design else td / "p8"
    gen_cmd = [LEGO, "gen", "--workload", "gemm", "--array", "8x8", "--dataflow", "ws", "--scratchpad-kib", "4",
               "--accumulator-kib", "4", "--out", str(design)]
    if not a.design:
        subprocess.run(gen_cmd, check=True, capture_output=True)
    man = json.loads((design / "manifest.json").read_text())
    prog = man["prog"]
    R, C = prog["array"]
    pes = R * C
    cfg = ArrayConfig(rows=R, cols=C, dataflows=tuple(prog["dataflows"]), spad_bytes=prog["scratchpad_kib"] * KIB,
                      acc_bytes=prog["accumulator_kib"] * KIB,
                      dram=DramConfig(gbps=prog["dram_bits"] / 8, latency_ns=float(LATENCY), freq_ghz=1.0),
                      fill_drain_of=tuple(sorted(dict(prog["drain"]).items())))
    layers = [l for l in LAYERS if not a.quick or l[0] in ("res2a_1x1a", "res2a_1x1b")]
    rows = []
    for name, spec, orig, (k, c, ho, wo, r, s, stride) in layers:
        p = td / f"{name}.bin"
        subprocess.run([LEGO, "compile", str(design), "--layer", spec, "--out", str(p)], check=True,
                       capture_output=True)
        cyc, _ = run_json([LEGO, "sim", str(design), "--program", str(p), "--engine", "cycle", "--json"])
        rtl, wall = run_json([LEGO, "sim", str(design), "--program", str(p), "--engine", a.engine, "--json"])
        assert rtl["cycles"] == cyc["cycles"] == rtl["cycles_register"], (name, rtl["cycles"], cyc["cycles"])
        assert rtl["match"] and cyc["match"], name
        macs = rtl["macs"]
        mlayer = conv2d(name, 1, k, c, ho, wo, r, s, stride)
        assert mlayer.macs == macs, (name, mlayer.macs, macs)
        mrep = map_layer_best(mlayer, cfg)
        g = rtl["layers"][0]["gemm"]
        row = {"layer": name, "scaled": spec.split(":", 1)[1], "original": orig,
               "gemm_MNK": f"{g['M']}x{g['N']}x{g['K']}", "macs": macs,
               "rtl_cycles": rtl["cycles"], "engine_cycles": cyc["cycles"], "mapper_cycles": mrep.cycles,
               "rtl_util": macs / (pes * rtl["cycles"]), "engine_util": macs / (pes * cyc["cycles"]),
               "mapper_util": macs / (pes * mrep.cycles), "mapper_dataflow": mrep.extra["dataflow"],
               "mapper_error": (mrep.cycles - rtl["cycles"]) / rtl["cycles"], "rtl_equals_engine": True,
               "busy_cycles": rtl["busy_cycles"], "tile": rtl["tile"],
               f"{a.engine}_wall_seconds": wall, "commands": rtl["commands"]}
        rows.append(row)
        print(f"{name}: rtl {rtl['cycles']} engine {cyc['cycles']} mapper {mrep.cycles} ({wall:.0f} s)", flush=True)
    print(table(rows, ["layer", "scaled", "gemm_MNK", "macs", "rtl_cycles", "engine_cycles", "mapper_cycles",
                       "rtl_util", "mapper_util", "mapper_error", f"{a.engine}_wall_seconds"]))
    print(save("prog_p1_real", {
        "design": {"array": f"{R}x{C}", "dataflows": prog["dataflows"], "scratchpad_kib": prog["scratchpad_kib"],
                   "accumulator_kib": prog["accumulator_kib"], "dram_bits": prog["dram_bits"], "box": prog["box"],
                   "gen_command": " ".join(["lego", *gen_cmd[1:-1], "DIR"])},
        "dram_latency": LATENCY, "engine": a.engine, "rows": rows,
        "scaling": "ResNet-50 (simulator/models.py) conv1 + res2a: channels /8 (conv1's 3 input channels kept), "
                   "spatial /8 for conv1 (224 -> 28 input, pad 3), /4 for res2a (56 -> 14), batch 1",
        "utilization": "layer MACs / (PEs x cycles)",
        "machine": "shared 2-core box, loaded by other jobs; nice -n 10 (wall times inflated)"}))


if __name__ == "__main__":
    os.environ.setdefault("LEGO_SIM_CACHE", str(Path(tempfile.gettempdir()) / "lego-sim-cache"))
    main()

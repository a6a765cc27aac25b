"""Generation time of programmable ws arrays at TPU-v1 scale: `lego gen --scratchpad-kib` as a whole process.

    .venv/bin/python bench/prog_gentime.py [--quick] [--sizes 16,32,64,128] [--timeout 900]

Each size runs `lego gen --workload gemm --array NxN --dataflow ws --scratchpad-kib S --accumulator-kib A`
under ``/usr/bin/time -v``: wall time, user + system CPU time (what other load on the machine does not
inflate; the generator is single-threaded) and peak RSS, plus the Verilog's size and the tile box from the
manifest. Scratchpad / accumulator: 64 / 64 KiB up to 64x64, 256 / 256 KiB for 128x128 (a 128-multiple
tile box needs >= 64 KiB of X+W twice and 128 KiB of int32 Y twice). ``--quick``: 16x16 and 32x32 only.
A size that fails or passes the timeout is recorded with its return code / ``timed_out`` and the rest go on.
Each row records the 1-minute load average before its run (``os.getloadavg``: other jobs on the shared box).
``--profile N``: instead, run `lego gen` of NxN under cProfile (``lego.cli.main([...])`` in a child process) and
write the top 20 functions by cumulative CPU time (``time.process_time`` as the profiler's timer, so other
load does not count) to bench/results/prog_gentime_profile.json (the profile's own overhead inflates them).
Writes bench/results/prog_gentime.json.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, save, table

LEGO = str(Path(sys.executable).parent / "lego")
SIZES = {16: (64, 64), 32: (64, 64), 64: (64, 64), 128: (256, 256)}


def time_v(cmd: list[str], timeout: float) -> dict:
    """Run ``cmd`` under /usr/bin/time -v; wall, user+sys CPU, max RSS (MiB), return code."""
    try:
        r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=ROOT,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timed_out": True, "returncode": None, "wall_seconds": None}
    err = r.stderr

    def grab(pat):
        m = re.search(pat, err)
        return m.group(1) if m else None
    wall = grab(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)")
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return {"timed_out": False, "returncode": r.returncode, "wall_seconds": secs,
            "cpu_seconds": float(grab(r"User time \(seconds\): (\S+)")) + float(grab(r"System time \(seconds\): (\S+)")),
            "max_rss_mib": int(grab(r"Maximum resident set size \(kbytes\): (\d+)")) / 1024,
            "stderr_tail": "\n".join(l for l in err.splitlines() if not l.startswith("\t"))[-2000:]}


PROFILE = """
import cProfile, io, pstats, sys, time
from lego.cli import main
pr = cProfile.Profile(time.process_time)
pr.enable()
try:
    main(sys.argv[1:])
except SystemExit:
    pass
pr.disable()
s = io.StringIO()
st = pstats.Stats(pr, stream=s)
st.sort_stats("cumulative").print_stats(20)
print(s.getvalue())
"""


def profile(n: int, out: Path) -> dict:
    spad, acc = SIZES.get(n, (64, 64))
    args = ["gen", "--workload", "gemm", "--array", f"{n}x{n}", "--dataflow", "ws", "--scratchpad-kib", str(spad),
            "--accumulator-kib", str(acc), "--out", str(out)]
    r = subprocess.run([sys.executable, "-c", PROFILE, *args], capture_output=True, text=True, cwd=ROOT)
    lines = r.stdout.splitlines()
    i = next((k for k, l in enumerate(lines) if l.strip().startswith("ncalls")), 0)
    top = [l for l in lines[i + 1:] if l.strip()][:20]
    print("\n".join(lines[max(0, i - 3):i + 21]))
    return {"array": f"{n}x{n}", "timer": "time.process_time (CPU)", "command": "lego " + " ".join(args[:-1]) + " DIR", "top_cumulative": top,
            "header": lines[max(0, i - 3):i + 1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="16x16 and 32x32 only")
    ap.add_argument("--sizes", default="16,32,64,128")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--profile", type=int, default=0, help="cProfile `lego gen` of NxN (0: none)")
    a = ap.parse_args()
    if a.profile:
        with tempfile.TemporaryDirectory() as td:
            print(save("prog_gentime_profile", {**profile(a.profile, Path(td) / "prof"),
                                                "machine": "shared 2-core box, loaded; nice -n 10"}))
        return
    sizes = [16, 32] if a.quick else [int(s) for s in a.sizes.split(",")]
    rows = []
    name = "prog_gentime"
    with tempfile.TemporaryDirectory() as td:
        for n in sizes:
            spad, acc = SIZES.get(n, (64, 64))
            out = Path(td) / f"p{n}"
            cmd = [LEGO, "gen", "--workload", "gemm", "--array", f"{n}x{n}", "--dataflow", "ws",
                   "--scratchpad-kib", str(spad), "--accumulator-kib", str(acc), "--out", str(out)]
            shown = " ".join(["lego", *cmd[1:-1], "DIR"])
            load = os.getloadavg()[0]
            t = time_v(cmd, a.timeout)
            row = {"array": f"{n}x{n}", "scratchpad_kib": spad, "accumulator_kib": acc, **t,
                   "command": shown, "load_average_1min_before": round(load, 2)}
            if t.get("returncode") == 0:
                man = json.loads((out / "manifest.json").read_text())
                row["verilog_bytes"] = (out / f"{man['top']}.v").stat().st_size
                row["tile_box"] = man["prog"].get("tile_box", man["prog"].get("box"))
                row.pop("stderr_tail")
            rows.append(row)
            print(f"{n}x{n}: wall {row.get('wall_seconds')} s, cpu {row.get('cpu_seconds')} s, "
                  f"rss {row.get('max_rss_mib')} MiB, rc {row.get('returncode')}", flush=True)
            save(name, {"rows": rows, "partial": True})
    print(table(rows, ["array", "scratchpad_kib", "accumulator_kib", "wall_seconds", "cpu_seconds", "max_rss_mib",
                       "verilog_bytes", "returncode", "timed_out"]))
    print(save(name, {
        "workload": "programmable gemm, ws, 8-bit, 64-bit AXI", "rows": rows,
        "method": "whole-process `lego gen` under /usr/bin/time -v (wall, user+sys CPU, max RSS)",
        "machine": "shared 2-core box with other agents' jobs (load average per row); run under nice -n 10 "
                   "(wall inflated by load, CPU time much less)",
        "targets": {"128x128_seconds": 60}}))


if __name__ == "__main__":
    main()

"""DOTA's modelled energy and latency beside H100/H200 measurements of the same DeiT-B and BERT-B GEMMs (issue
"DOTA", item 4). Needs a CUDA device and PyTorch; without one it exits 2 and writes nothing.

GPU side, per GEMM of one inference (``accelerators.dota.workloads.transformer``: every linear layer and,
per head, Q·Kᵀ and S·V): the batched product in fp16 (``torch.bmm``, tensor cores) and, where the shape
allows it, int8 (``torch._int_mm``, per head), timed with CUDA events over repeated launches. Energy: the
whole inference's GEMMs (each as often as ``count`` says) run back to back for about 2 s while
``nvidia-smi`` samples the board power every 50 ms; energy per inference = mean power x time per inference
(board power: it includes the GPU's idle share, an upper bound on the GEMMs' own energy). The same
inference is also captured once as a CUDA graph and replayed (``gpu_graph_*``): the GPU's time without
per-kernel launch cost, its best case at batch 1.

DOTA side: ``accelerators.dota.model.simulate`` (DOTA-B, 4 and 8 bits, all optimizations): the same GEMMs'
latency and energy (the model's per-GEMM rows; the non-GEMM units are left out on both sides).

    python bench/dota_vs_gpu.py   -> table, bench/results/dota_vs_gpu.json (the device named in it)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time

from _common import save, table

from accelerators.dota.config import preset_config
from accelerators.dota.model import simulate
from accelerators.dota.workloads import transformer

MODELS = (("deit-b", None), ("bert-b", 128))


def _time_ms(fn, min_s: float = 0.2) -> float:
    import torch
    fn()
    torch.cuda.synchronize()
    n, total = 1, 0.0
    while True:
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(n):
            fn()
        e.record()
        torch.cuda.synchronize()
        total = s.elapsed_time(e)
        if total >= min_s * 1e3:
            return total / n
        n *= 4


class _Power:
    """Board power samples from nvidia-smi while the block runs."""

    def __enter__(self):
        self.p = subprocess.Popen(["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits",
                                   "-lms", "50"], stdout=subprocess.PIPE, text=True)
        self.samples: list[float] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        return self

    def _read(self):
        for line in self.p.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                pass

    def __exit__(self, *exc):
        self.p.terminate()
        self.p.wait()
        self.t.join(timeout=2)


def _measure(run) -> tuple:
    """(ms per call, mean board W, mJ per call, power samples, calls) of ``run`` looped for about 2 s."""
    import torch
    t = _time_ms(run, 0.5)
    reps = max(1, int(2000 / t))
    with _Power() as pw:
        time.sleep(0.2)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            run()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    watts = statistics.mean(pw.samples[2:]) if len(pw.samples) > 3 else None
    return t, watts, None if watts is None else watts * wall / reps * 1e3, len(pw.samples), reps


def _graph(run):
    """The inference's GEMMs captured once as a CUDA graph (no per-kernel launch cost on replay)."""
    import torch
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        run()                                   # warm-up outside the capture (cuBLAS workspaces)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        run()
    return g


def main() -> int:
    try:
        import torch
        ok = torch.cuda.is_available()
    except ImportError:
        ok = False
    if not ok:
        print("dota_vs_gpu: no CUDA device here; the GPU comparison is owed (run this on a GPU machine)")
        return 2
    torch.manual_seed(0)
    dev = torch.device("cuda")
    rows, totals = [], []
    for model, tokens in MODELS:
        wl = transformer(model, tokens)
        dota = {b: {r["name"]: r for r in simulate(preset_config("dota-b", b), model, tokens).extra["layers"]} for b in (4, 8)}
        launches = []
        for g in wl.gemms:
            a = torch.randn(g.heads, g.n1, g.d, device=dev, dtype=torch.float16)
            b = torch.randn(g.heads, g.d, g.n2, device=dev, dtype=torch.float16)
            f16 = (lambda a=a, b=b: torch.bmm(a, b))
            t16 = _time_ms(f16)
            t8 = None
            if g.n1 > 16 and g.d % 8 == 0 and g.n2 % 8 == 0:
                a8 = torch.randint(-128, 128, (g.heads, g.n1, g.d), device=dev, dtype=torch.int8)
                b8 = torch.randint(-128, 128, (g.heads, g.d, g.n2), device=dev, dtype=torch.int8)
                t8 = _time_ms(lambda a8=a8, b8=b8: [torch._int_mm(a8[h], b8[h]) for h in range(g.heads)])
            launches += [f16] * g.count
            d4, d8 = dota[4][g.name], dota[8][g.name]
            rows.append({"model": model, "gemm": g.name, "shape": f"{g.heads}x[{g.n1}x{g.d}]x[{g.d}x{g.n2}]",
                         "count": g.count, "gpu_fp16_us": t16 * 1e3, "gpu_int8_us": None if t8 is None else t8 * 1e3,
                         "dota4_us": d4["latency_ns"] / 1e3, "dota8_us": d8["latency_ns"] / 1e3,
                         "dota4_uj": d4["energy_pj"] / 1e6, "dota8_uj": d8["energy_pj"] / 1e6})
        run = (lambda: [f() for f in launches])
        t_inf, watts, mj, samples, reps = _measure(run)
        graph = _graph(run)
        tg, wg, mjg, _, _ = _measure(graph.replay)
        mine = [r for r in rows if r["model"] == model]
        totals.append({"model": model, "tokens": wl.tokens if hasattr(wl, "tokens") else tokens,
                       "gpu_gemms_ms": t_inf, "gpu_power_w": watts, "gpu_gemms_mj": mj,
                       "gpu_graph_ms": tg, "gpu_graph_power_w": wg, "gpu_graph_mj": mjg,
                       "dota4_gemms_ms": sum(r["dota4_us"] * r["count"] for r in mine) / 1e3,
                       "dota8_gemms_ms": sum(r["dota8_us"] * r["count"] for r in mine) / 1e3,
                       "dota4_gemms_mj": sum(r["dota4_uj"] * r["count"] for r in mine) / 1e3,
                       "dota8_gemms_mj": sum(r["dota8_uj"] * r["count"] for r in mine) / 1e3,
                       "power_samples": samples, "reps": reps})
    print(table(rows, list(rows[0])))
    print(table(totals, [k for k in totals[0] if k != "power_samples"]))
    print(save("dota_vs_gpu", {"device": torch.cuda.get_device_name(), "rows": rows, "totals": totals,
                                "method": __doc__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

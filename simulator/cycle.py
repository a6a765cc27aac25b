"""The cycle engine: exact cycles, outputs and SRAM traffic of a generated array, fast.

It is driven by the design's own IR: the cycle count comes from the scheduled PrimGraph (steps of the
dataflow + the drain that σ implies, the same quantity the RTL's controller counts), the outputs from
executing the dataflow's space-time map (address generators, masks, accumulator wrap), and the SRAM
traffic from the controller's change flags (stationary operands are not re-read).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lego.arch.flags import increment_positions, output_writes, same_tables
from lego.emit import design_file
from lego.errors import LegoError
from sw_reference.ops import wrap

from .engine import Engine, Job, job_inputs, pick_mode, read_manifest
from .report import Report

CHUNK = 1 << 16


def traffic(arch, mode: int) -> tuple[dict[str, int], dict[str, int]]:
    """(reads per input tensor, writes per output tensor) in element accesses, from the control flags."""
    md = arch.modes[mode]
    df = md.df
    kp = increment_positions(df.T)
    reads = {}
    for t in arch.workload.inputs:
        same = np.array(same_tables(df, md.nets[t.name].M) + [False])
        reads[t.name] = int((~same[kp]).sum()) * len(md.nets[t.name].ports)
    return reads, {arch.workload.output.name: output_writes(arch, mode)}


def execute(arch, mode: int, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Run the space-time map: every (t, s) point computes its masked product; sum into Y.

    The map is affine, so every index splits into a part of the step and a part of the FU: per chunk of
    steps, the iteration (and each tensor's element) of point (t, s) is ``tpart[t] + fpart[s]``, formed by
    broadcasting rather than by a matrix product per point; the masks (iterations outside the nest,
    padded reads) are per dimension. Sums go through ``np.bincount`` (exact while every partial sum stays
    below 2**53 in magnitude, checked from the input ranges; otherwise ``np.add.at``)."""
    w = arch.workload
    df = arch.modes[mode].df
    X, Wt = w.inputs
    Y = w.output
    s = np.array(df.fus, dtype=np.int64)
    fI = s @ df.AS.T + df.bvec                       # (F, n_I): the FU's part of the iteration
    ext = np.array(w.extents, dtype=np.int64)
    vals = {tn.name: np.asarray(inputs[tn.name], np.int64).reshape(-1) for tn in (X, Wt)}
    bound = max(1, int(np.abs(vals[X.name]).max(initial=0))) * max(1, int(np.abs(vals[Wt.name]).max(initial=0)))
    exact_float = bound * w.macs < 2 ** 53
    size = int(np.prod(Y.shape, dtype=np.int64))
    acc = np.zeros(size, np.float64 if exact_float else np.int64)
    st = {t.name: np.array([int(np.prod(t.shape[m + 1:], dtype=np.int64)) for m in range(len(t.shape))], np.int64)
          for t in w.tensors}
    A = {t.name: w.access(t.name) for t in w.tensors}
    step = max(1, CHUNK // len(s))
    for lo in range(0, df.steps, step):
        t = np.stack(np.unravel_index(np.arange(lo, min(df.steps, lo + step)), df.T), axis=1).astype(np.int64)
        tI = t @ df.AT.T                             # (n, n_I): the step's part of the iteration
        ok = np.ones((len(t), len(s)), bool)
        for k in range(len(ext)):                    # iterations outside the nest (tiles that overhang)
            ik = tI[:, k, None] + fI[None, :, k]
            ok &= (ik >= 0) & (ik < ext[k])
        prod = np.ones((len(t), len(s)), np.int64)
        for tn in (X, Wt):
            M, a = A[tn.name]
            tD, fD = tI @ M.T, fI @ M.T + a          # element index, split the same way
            inb = ok.copy()
            if tn.pad:
                for m, size_m in enumerate(tn.shape):
                    dm = tD[:, m, None] + fD[None, :, m]
                    inb &= (dm >= 0) & (dm < size_m)
            flat = (tD @ st[tn.name])[:, None] + (fD @ st[tn.name])[None, :]
            v = np.zeros_like(prod)
            v[inb] = vals[tn.name][flat[inb]]
            prod *= v
        M, a = A[Y.name]
        yflat = ((tI @ M.T) @ st[Y.name])[:, None] + ((fI @ M.T + a) @ st[Y.name])[None, :]
        if exact_float:
            acc += np.bincount(yflat[ok], weights=prod[ok], minlength=size)
        else:
            np.add.at(acc, yflat[ok], prod[ok])
    return wrap(np.rint(acc).astype(np.int64) if exact_float else acc, Y.bits).reshape(Y.shape)


class CycleEngine(Engine):
    name = "cycle"

    def run_jobs(self, design_dir: Path, jobs: list[Job], waves: Path | None = None, seed: int = 0,
                 outputs: bool = True, trace: Path | None = None,
                 window: tuple[int, int | None] = (0, 1000)) -> list[Report]:
        from sw_reference.ops import reference

        from .costs import design_costs

        man = read_manifest(design_dir)
        t0 = time.perf_counter()
        d = design_file.read(Path(design_dir))
        w = d.workload
        reps = []
        for name, mi, _, ins in job_inputs(man, jobs):
            reads, writes = traffic(d.arch, mi)
            energy, area = design_costs(d.arch, d.pg, mi, d.cycles[mi], reads, writes)
            rep = Report(engine="cycle", cycles=d.cycles[mi], sram_reads=reads, sram_writes=writes,
                         energy_pj=energy, area_um2=area,
                         extra={"mode": name, "steps": d.arch.modes[mi].df.steps})
            if outputs:
                out = execute(d.arch, mi, ins)
                rep.outputs = {w.output.name: out}
                ref = reference(w, ins)
                diff = np.abs(out - ref)
                rep.match = bool((diff == 0).all())
                rep.max_abs_err = float(diff.max()) if diff.size else 0.0
            rep.sim_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            reps.append(rep)
        if trace is not None:
            name, mi = pick_mode(man, jobs[-1].mode)
            reps[-1].extra["trace_rows"] = write_trace(d.arch, d.pg, mi, Path(trace), *window)
        return reps


def write_trace(arch, pg, mode: int, path: Path, start: int = 0, end: int | None = None) -> int:
    """Windowed per-cycle trace (CSV): the step issued by the controller, its counters and flags, and
    how many accumulator flushes (output writes, before the in-range mask) land in that cycle. Returns the number of rows written."""
    import csv

    from lego.prim.lower import frame_delay

    md = arch.modes[mode]
    df = md.df
    total = df.steps + pg.drain(mode, frame_delay(arch))
    end = total if end is None else min(end, total)
    kp = increment_positions(df.T)
    nT = len(df.T)
    flags = {}
    for t in arch.workload.inputs:
        same = np.array(same_tables(df, md.nets[t.name].M) + [False])
        flags[f"chg_{t.name}"] = ~same[kp]
    sy = np.array(same_tables(df, md.nets[arch.workload.output.name].M) + [False])
    flags["first"] = ~sy[kp]
    flags["last"] = ~sy[np.append(kp[1:], nT)]
    fd = frame_delay(arch)
    lags = [fd(mode, n.fu[mode]) + pg.sigma[n.id] for n in pg.nodes.values() if n.kind == "wr" and mode in n.fu]
    rows = 0
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["cycle", "step", *df.time_names, *flags, "flushes_landing"])
        for cyc in range(max(0, start), end):
            step = cyc if cyc < df.steps else None
            tco = list(np.unravel_index(step, df.T)) if step is not None else [""] * nT
            fl = [int(v[step]) if step is not None else "" for v in flags.values()]
            land = sum(int(flags["last"][cyc - lag]) for lag in lags if 0 <= cyc - lag < df.steps)
            wr.writerow([cyc, "" if step is None else step, *[int(x) if x != "" else "" for x in tco], *fl, land])
            rows += 1
    return rows

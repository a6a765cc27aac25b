"""RTL engines: the design's own Verilog under cocotb with Icarus or Verilator."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lego.emit import design_file
from lego.errors import LegoError
from lego.toolchain import BuildError, run_cocotb
from .engine import Engine, Job, job_inputs, read_manifest
from .report import Report

CACHE = Path(os.environ.get("LEGO_SIM_CACHE", Path(tempfile.gettempdir()) / "lego-sim-cache"))


def toolchain_id(engine: str) -> str:
    """What a cached build depends on besides the Verilog: the interpreter/venv (cocotb's libraries and
    the Verilator kit are referenced by absolute path from the build's makefiles and dependency files),
    the simulator binary and the cocotb version. A build made from another checkout or venv never
    matches."""
    import cocotb

    from lego.toolchain import which
    tool = which("iverilog" if engine == "icarus" else "verilator") or ""
    return "|".join([os.path.realpath(sys.prefix), os.path.realpath(tool), cocotb.__version__])


def build_dir_for(design_dir: Path, engine: str) -> Path:
    h = hashlib.sha256(toolchain_id(engine).encode())
    for rel in (Path(design_dir) / "files.f").read_text().split():
        h.update((Path(design_dir) / rel).read_bytes())
    return CACHE / f"{engine}-{h.hexdigest()[:16]}"


def run_bench(bd: Path, work: Path, engine: str, srcs: list[Path], top: str, module: str,
              waves: Path | None = None) -> dict:
    """Run the cocotb bench ``work/module.py`` on ``srcs`` with ``work/plan.json``; -> its ``res.json``
    plus ``passed``. A cached build dir can be stale (interrupted build, tools updated in place): it is
    rebuilt once."""
    kw = dict(engine=engine, sources=srcs, top=top, test_module=module, test_dir=work, waves=waves,
              extra_env={"LEGO_PLAN": str(work / "plan.json"), "LEGO_RESULT": str(work / "res.json")})
    try:
        ok = run_cocotb(build_dir=bd, **kw)
    except BuildError:
        shutil.rmtree(bd, ignore_errors=True)
        ok = run_cocotb(build_dir=bd, **kw)
    if not (work / "res.json").exists():
        raise LegoError(f"sim: {engine} run produced no result (see {bd})")
    res = json.loads((work / "res.json").read_text())
    res["passed"] = ok
    return res


def run_plan(design_dir: Path, engine: str, plan: dict, waves: Path | None = None) -> dict:
    design_dir = Path(design_dir)
    man = read_manifest(design_dir)
    srcs = [design_dir / rel for rel in (design_dir / "files.f").read_text().split()]
    bd = build_dir_for(design_dir, engine)
    if waves is not None:                       # a traced build lives beside the untraced one
        want = ".fst" if engine == "icarus" else ".vcd"
        if Path(waves).suffix != want:
            raise LegoError(f"--waves: {engine} writes {want[1:].upper()} (GTKWave/Surfer open it); "
                            f"name the file *{want}")
        bd = bd.with_name(bd.name + "-waves-" + hashlib.sha256(str(waves).encode()).hexdigest()[:8])
    bd.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lego-run-"))
    try:
        shutil.copy(design_dir / "tb" / "lego_bench.py", work / "lego_bench.py")
        (work / "plan.json").write_text(json.dumps(plan))
        res = run_bench(bd, work, engine, srcs, man["top"], "lego_bench", waves)
        if waves is not None:
            cands = sorted(list(bd.glob("*.fst")) + list(bd.glob("*.vcd")) + list(work.glob("*.fst")) +
                           list(work.glob("*.vcd")), key=lambda p: p.stat().st_mtime)
            if Path(waves).exists() and engine == "icarus":
                pass                                 # the dump module wrote it in place
            elif cands:
                shutil.copy(cands[-1], waves)
            else:
                raise LegoError(f"--waves: the {engine} run wrote no waveform")
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


class RtlEngine(Engine):
    def __init__(self, name: str):
        self.name = name

    def run_jobs(self, design_dir: Path, jobs: list[Job], waves: Path | None = None, seed: int = 0,
                 **kw) -> list[Report]:
        from lego.host import read_words
        from sw_reference.ops import reference

        from .costs import design_costs
        from .cycle import traffic

        man = read_manifest(design_dir)
        t0 = time.perf_counter()
        d = design_file.read(Path(design_dir))
        w = d.workload
        plan_jobs, refs = [], []
        for (name, mi, rows, ins), job in zip(job_inputs(man, jobs), jobs):
            ref = reference(w, ins)
            b, a = read_words(man, name)
            refs.append((name, mi, ref))
            plan_jobs.append({"reset": job.reset, "mode": mi, "loads": rows.tolist(),
                              "reads": np.stack([b, a], axis=1).tolist(), "expected": ref.reshape(-1).tolist(),
                              "expected_cycles": d.cycles[mi]})
        plan = {"jobs": plan_jobs, "timeout": 10 * max(d.cycles) + 1000, "rd_latency": man["host"]["rd_latency"]}
        res = run_plan(Path(design_dir), self.name, plan, waves)
        secs = (time.perf_counter() - t0) / len(jobs)
        reps = []
        for (name, mi, ref), r in zip(refs, res["jobs"]):
            out = np.array(r["outputs"], dtype=np.int64).reshape(w.output.shape)
            diff = np.abs(out - ref)
            # traffic, energy and area are properties of the design and mode (static schedule): the same
            # graph-derived figures as the cycle engine, so every engine fills the same Report
            reads, writes = traffic(d.arch, mi)
            energy, area = design_costs(d.arch, d.pg, mi, int(r["cycles"]), reads, writes)
            reps.append(Report(engine=self.name, cycles=int(r["cycles"]), outputs={w.output.name: out},
                               match=bool((diff == 0).all()), max_abs_err=float(diff.max()) if diff.size else 0.0,
                               sram_reads=reads, sram_writes=writes, energy_pj=energy, area_um2=area,
                               sim_seconds=secs, extra={"mode": name, "cycles_register": r["cycles_reg"],
                                                        "cycles_predicted": d.cycles[mi]}))
        return reps


class IcarusEngine(RtlEngine):
    def __init__(self):
        super().__init__("icarus")


class VerilatorEngine(RtlEngine):
    def __init__(self):
        super().__init__("verilator")

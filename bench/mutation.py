"""Mutation score of the pure-Python layers (not part of CI): mutmut on lego/affine, lego/arch, lego/prim,
sw_reference (with pointacc and spatten) and the accelerators' golden / analytical models (DOTA's noise and
analytical models, SpAtten's cycle model, PointAcc's cycle and network models), each against its own fast tests.

    .venv/bin/pip install -e ".[mutation]"
    .venv/bin/python bench/mutation.py                    # 40 random mutants per package (seed 2026)
    .venv/bin/python bench/mutation.py --per-package 0    # every mutant: hours on 2 cores
    .venv/bin/python bench/mutation.py --retest survived  # again, after adding tests
    .venv/bin/python bench/mutation.py --report           # table and JSON from the stored results only

How: one mutmut session per group (SESSIONS) in a scratch copy of the tree (build/mutation/<group>/; the
working tree is never touched). mutmut first runs the group's test files once and records which tests reach
which function; each mutant then runs only those tests (forked, one worker by default), so a mutant of
``lego/affine/reuse.py`` runs the handful of tests that call the mutated function, not the suite. Tests
marked ``rtl`` (cocotb under a simulator), ``slow`` and ``gpu`` are left out. mutmut mutates code inside
functions and methods only; module-level constants, decorated functions (``@property``,
``@cached_property``, ``@dataclass`` fields) are not mutated.

``--per-package N --seed S`` (default 40, 2026) tests a simple random sample of N mutants of each package,
drawn without replacement from the package's sorted mutant names; the JSON gives each package's population
and the 95 % Wilson interval of its kill rate. ``--per-package 0 --sample F`` instead keeps the mutants whose
name hashes (sha1) below F. Either subset does not move between runs as long as the modules do not change. Results are stored by mutmut (``mutants/*.meta``) and
a later run only tests mutants without a result, so a long run can be stopped and resumed.

Score = (killed + timeout) / (mutants tested - equivalent). A mutant whose function no selected test calls
counts as survived ("no tests"). EQUIVALENT lists the surviving mutants that no test can kill, each with
the reason; bench/results/mutation.json records them, the survivors and the per-module/per-package table.
"""
from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"
RESULTS = ROOT / "bench" / "results" / "mutation.json"
MARKERS = "not slow and not gpu and not rtl"

# group -> (files to mutate (fnmatch on the relative path), files not to mutate, test paths)
SESSIONS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "lego": (["lego/affine/*.py", "lego/arch/*.py", "lego/prim/*.py"], [],
             ["tests/lego/affine", "tests/lego/arch", "tests/lego/prim"]),
    # the Ouster-crop tests and test_matches_float_reference_and_cuda_fallback also check cuda_kernels'
    # once-per-process fallback warning, which does not fire under mutmut's stats run: left out here
    "sw_reference": (["sw_reference/*.py"], [],
                     ["tests/sw_reference", "tests/accelerators/dota/test_dota_fx.py",
                      "-k", "not ouster_crop and not cuda_fallback"]),
    # the accelerators' golden / analytical models (not their RTL generators)
    "dota": (["accelerators/dota/noise.py", "accelerators/dota/model.py"], [],
             ["tests/accelerators/dota/test_noise.py", "tests/accelerators/dota/test_model.py"]),
    "spatten": (["accelerators/spatten/model.py"], [],
                ["tests/accelerators/spatten/test_model.py", "tests/accelerators/spatten/test_rtl_model.py"]),
    "pointacc": (["accelerators/pointacc/cycles.py", "accelerators/pointacc/model.py"], [],
                 ["tests/accelerators/pointacc/test_pointacc_model.py"]),
}
# the packages the score is reported (and the goal set) for: longest prefix wins
PACKAGES = ["lego/affine", "lego/arch", "lego/prim", "sw_reference", "sw_reference/pointacc",
            "sw_reference/spatten", "accelerators/dota", "accelerators/spatten", "accelerators/pointacc"]

# Surviving mutants that are equivalent to the original (no input can tell them apart), with the reason.
EQUIVALENT: dict[str, str] = {
    "lego.affine.workload.x__safe_load__mutmut_26":
        "PyYAML calls a registered constructor as constructor(loader, node), so deep is always its default "
        "False: construct_mapping(loader, node, deep) and construct_mapping(loader, node) are the same call",
    "lego.arch.flags.x_same_tables__mutmut_6":
        "delta as float64 instead of int64: M @ delta stays exact (small integers) and only whether it is "
        "nonzero is read",
    "lego.arch.graph.x__net__mutmut_31":
        "output_forest hands P to candidate_edges, which never reads it (links follow the spatial kernel and c)",
    "lego.prim.passes.schedule.x_timing_rows__mutmut_9":
        "rows is the empty set just before: rows = S and rows |= S give the same set",
    "accelerators.pointacc.model.x_write_outputs__mutmut_61":
        "os.umask(1) then os.umask(previous): the value read back is the process umask either way, and it is "
        "restored on the next line before any file is written",
    "sw_reference.pointcloud.x_kernel_offsets__mutmut_48":
        "reshape(-2, 3) instead of reshape(-1, 3): the installed numpy (2.x) takes any negative size as the "
        "one inferred dimension (checked: np.zeros(6).reshape(-2, 3).shape == (2, 3))",
    "accelerators.pointacc.model.x__options__mutmut_132":
        "the 'seed' entry of _options' dict is never read (simulate_options passes model, voxel, cache, fusion, "
        "k, radius, cloud, out; the model draws nothing at random)",
    "sw_reference.spatten.cascade.x_attention_query_int__mutmut_14":
        "k_use without dtype=int64: its only reader, fixed.dot_scores, casts k to int64 itself",
    "accelerators.spatten.model.x_simulate__mutmut_254":
        "hbm2_byte is in simulator.energy.UNSCALED: energy_pj('hbm2_byte', node) ignores the node, None or not",
    "accelerators.spatten.model.x_simulate__mutmut_51":
        "back_prev = dram_back_prev = 1.0 only enters the first max(front, back_prev, dram_front + "
        "dram_back_prev); front >= dram_front + QK_LATENCY (11) + softmax latencies, so the max is front either way",
}
# Functions not mutated: drawing code of the CLI (matplotlib figure layout, font sizes), not a golden model.
SKIP_FUNCTIONS = {"accelerators.pointacc.model.x__plot__"}
# Survivors left alive on purpose, with why (they count as survived).
NOTES: dict[str, str] = {
    "lego.arch.flags.x_fresh_positions__mutmut_13":
        "j >= 0 instead of j > 0: differs only when the dataflow has no temporal loop at all (a dataflow file "
        "with T: [], zero[-1] then raises IndexError); with >= 1 temporal loop j = 0 means zero[-1] is True, "
        "j becomes -1 and range(-1) = range(0). No test builds a T: [] design",
    "accelerators.pointacc.model.x_add_arguments__mutmut_12":
        "the --cloud help text upper-cased: cosmetic, no test reads the help text",
    "accelerators.pointacc.model.x_count_voxels__mutmut_5":
        "np.asarray(xyz) without float64: differs only for a float32 cloud at a voxel boundary (float32 "
        "division); the tests' clouds are float64",
    "sw_reference.pointacc.quantize.x__offset__mutmut_5":
        "np.asarray(offset) without dtype=float64: differs only for an offset given as strings ('1', '2', '3'), "
        "which float64 accepts and np.isfinite refuses; numbers behave the same",
    "sw_reference.pointacc.requant.x__int_matmul__mutmut_12":
        "max(initial=1) on |w|: differs only for an empty w, where the result is empty either way unless "
        "C_in * max|x| >= 2^62 (then the mutant refuses); no test multiplies by an empty weight",
}



def status_of(code: int | None) -> str:
    """mutmut's own reading of a mutant's exit code (killed, survived, no tests, timeout, ...)."""
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def package_of(path: str) -> str:
    return max((p for p in PACKAGES if path.startswith(p + "/")), key=len)


def source_files(session: str) -> list[str]:
    inc, exc, _ = SESSIONS[session]
    out = []
    for p in sorted(ROOT.glob("**/*.py")):
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith(("build/", ".venv/", "tests/")):
            continue
        if any(fnmatch.fnmatch(rel, g) for g in inc) and not any(fnmatch.fnmatch(rel, g) for g in exc):
            out.append(rel)
    return out


@functools.cache
def mutant_names(rel: str) -> list[str]:
    """The mutants mutmut makes of one file, named as mutmut names them."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    r = mutate_file_contents(rel, (ROOT / rel).read_text(), None, None)
    return [get_mutant_name(Path(rel), n).replace("__init__.", "") for n in r.mutant_names]


def sampled(name: str, frac: float) -> bool:
    return frac >= 1 or int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) < frac * 16 ** 8


def population() -> dict[str, list[str]]:
    """package -> every mutant mutmut makes of its modules (sorted)."""
    out: dict[str, list[str]] = {}
    for session in SESSIONS:
        for rel in source_files(session):
            out.setdefault(package_of(rel), []).extend(n for n in mutant_names(rel)
                                                       if not n.startswith(tuple(SKIP_FUNCTIONS)))
    return {p: sorted(v) for p, v in out.items()}


def chosen(per_package: int, seed: int, frac: float) -> set[str]:
    """The mutants to test: ``per_package`` > 0 draws a simple random sample without replacement of that many
    from each package's mutants (random.Random(f"{seed}:{package}").sample over the sorted names), else the
    fixed hash fraction ``frac`` of every module."""
    out: set[str] = set()
    for pkg, names in population().items():
        if per_package > 0:
            out.update(random.Random(f"{seed}:{pkg}").sample(names, min(per_package, len(names))))
        else:
            out.update(n for n in names if sampled(n, frac))
    return out


def wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """95 % Wilson score interval of a proportion k / n."""
    if n == 0:
        return None
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, c - h), 4), round(min(1.0, c + h), 4)]


def copy_tree(dst: Path) -> None:
    """The tracked and untracked-but-not-ignored files, as git sees them, into dst (mutmut's state kept)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    dst.mkdir(parents=True, exist_ok=True)
    for rel in files:
        if rel.startswith(("bench/results/", "docs/")) or not (ROOT / rel).is_file():
            continue
        d = dst / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        if not d.exists() or d.read_bytes() != (ROOT / rel).read_bytes():
            shutil.copy2(ROOT / rel, d)


def write_config(work: Path, session: str) -> None:
    """The repository's [tool.mutmut] with this session's files and tests."""
    import tomllib

    inc, exc, tests = SESSIONS[session]
    base = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("mutmut", {})
    text = (ROOT / "pyproject.toml").read_text().split("[tool.mutmut]")[0]
    cfg = dict(base)
    cfg["only_mutate"] = inc
    cfg["do_not_mutate"] = exc
    cfg["pytest_add_cli_args_test_selection"] = tests + ["-m", MARKERS]
    text += "[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items())
    (work / "pyproject.toml").write_text(text)


def load_results(session: str) -> dict[str, int | None]:
    work = SCRATCH / session
    out: dict[str, int | None] = {}
    for rel in source_files(session):
        meta = work / "mutants" / (rel + ".meta")
        if meta.exists():
            out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def run_session(session: str, pick: set[str], retest: set[str], jobs: int) -> None:
    work = SCRATCH / session
    copy_tree(work)
    write_config(work, session)
    want = [n for rel in source_files(session) for n in mutant_names(rel) if n in pick]
    done = load_results(session)
    todo = [n for n in want if status_of(done.get(n)) in retest | {"not checked"}]
    print(f"[{session}] {len(want)} mutants in the sample, {len(todo)} to test", flush=True)
    if not todo:
        return
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    mutmut = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())", "run",
              "--max-children", str(jobs)]
    for k in range(0, len(todo), 400):       # mutmut re-runs explicitly named mutants: name them in batches
        r = subprocess.run(mutmut + todo[k:k + 400], cwd=work, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        log = work / "mutmut.log"
        with log.open("a") as f:
            f.write(r.stdout.replace("\r", "\n"))
        if r.returncode != 0:
            print(f"[{session}] mutmut failed (exit {r.returncode}); see {log}", flush=True)
            return


def report(pick: set[str], sampling: dict, runtime: float | None) -> dict:
    modules: dict[str, dict] = {}
    survivors, equivalent = [], []
    for session in SESSIONS:
        res = load_results(session)
        for rel in source_files(session):
            names = [n for n in mutant_names(rel) if n in pick]
            row = {"mutants": 0, "killed": 0, "survived": 0, "no_tests": 0, "timeout": 0, "equivalent": 0,
                   "not_checked": 0}
            for n in names:
                st = status_of(res.get(n))
                if st == "not checked":
                    row["not_checked"] += 1
                    continue
                row["mutants"] += 1
                if st in ("killed", "timeout"):
                    row["killed" if st == "killed" else "timeout"] += 1
                elif n in EQUIVALENT:
                    row["equivalent"] += 1
                    equivalent.append({"mutant": n, "reason": EQUIVALENT[n]})
                else:
                    row["survived"] += 1
                    row["no_tests"] += st == "no tests"
                    survivors.append({"mutant": n, "status": st, "session": session,
                                      **({"why": NOTES[n]} if n in NOTES else {})})
            if names:
                modules[rel] = row
    packages: dict[str, dict] = {}
    for rel, row in modules.items():
        p = packages.setdefault(package_of(rel), {k: 0 for k in row})
        for k, v in row.items():
            p[k] += v

    def score(r):
        den = r["mutants"] - r["equivalent"]
        return round((r["killed"] + r["timeout"]) / den, 4) if den else None

    pop = population()
    for r in modules.values():
        r["score"] = score(r)
    for p, r in packages.items():
        r["score"] = score(r)
        r["population"] = len(pop[p])
        r["ci95"] = wilson(r["killed"] + r["timeout"], r["mutants"] - r["equivalent"])
    tot = {k: sum(p[k] for p in packages.values()) for k in next(iter(packages.values())) if k not in ("score", "ci95")}
    tot["score"] = score(tot)
    from importlib.metadata import version
    return {"tool": f"mutmut {version('mutmut')}", "sampling": sampling,
            "markers": MARKERS, "score": "(killed + timeout) / (mutants - equivalent)", "goal": 0.80,
            "sessions": {s: {"mutate": v[0], "tests": v[2]} for s, v in SESSIONS.items()},
            "not_mutated": sorted(SKIP_FUNCTIONS),
            "runtime_s": runtime,
            "runtime_note": "wall time of the last invocation only (runs resume: the first pass, the re-runs of "
                            "survivors after new tests and --report each write it)",
            "packages": packages, "total": tot, "modules": modules,
            "equivalent": equivalent, "survivors": survivors}


def table(doc: dict) -> str:
    cols = ["mutants", "killed", "survived", "timeout", "equivalent", "score"]
    lines = [f"{'module':44s}" + "".join(f"{c:>11s}" for c in cols)]

    def fmt(name, r):
        sc = "-" if r["score"] is None else f"{100 * r['score']:.1f} %"
        return f"{name:44s}" + "".join(f"{r[c]:>11d}" for c in cols[:-1]) + f"{sc:>11s}"
    lines += [fmt(m, r) for m, r in doc["modules"].items()]
    lines.append("-" * (44 + 11 * len(cols)))
    lines += [fmt(p + "/", r) + ("" if not r.get("ci95") else
                                  f"   [{100 * r['ci95'][0]:.0f}, {100 * r['ci95'][1]:.0f}] % of {r['population']}")
              for p, r in doc["packages"].items()]
    lines.append(fmt("TOTAL", doc["total"]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", default=",".join(SESSIONS), help="groups to run (default: all)")
    ap.add_argument("--per-package", type=int, default=40,
                    help="random sample of N mutants per package (default 40; 0: use --sample)")
    ap.add_argument("--seed", type=int, default=2026, help="seed of the per-package sample (default 2026)")
    ap.add_argument("--sample", type=float, default=1.0,
                    help="with --per-package 0: fixed hash fraction of each module's mutants (default 1: all)")
    ap.add_argument("--retest", default="", help="also re-run mutants with these results, e.g. survived,'no tests'")
    ap.add_argument("--jobs", type=int, default=1, help="mutmut workers (default 1)")
    ap.add_argument("--report", action="store_true", help="only print and write the stored results")
    a = ap.parse_args()
    t0 = time.time()
    pick = chosen(a.per_package, a.seed, a.sample)
    if a.per_package > 0:
        sampling = {"method": "simple random sample without replacement of per_package mutants from each package's "
                              "mutants: random.Random(f'{seed}:{package}').sample(sorted names, per_package)",
                    "per_package": a.per_package, "seed": a.seed,
                    "ci95": "Wilson score interval of (killed + timeout) / (mutants - equivalent) per package; the "
                            "TOTAL pools the equal-size package samples and is not weighted by package size"}
    else:
        sampling = {"method": "every mutant whose sha1(name) falls below the fraction", "fraction": a.sample}
    if not a.report:
        for s in a.sessions.split(","):
            run_session(s, pick, {x.strip() for x in a.retest.split(",") if x.strip()}, a.jobs)
    runtime = None if a.report else round(time.time() - t0, 1)
    if a.report and RESULTS.exists():
        runtime = json.loads(RESULTS.read_text()).get("runtime_s")
    doc = report(pick, sampling, runtime)
    print(table(doc))
    RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

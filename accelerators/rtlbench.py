"""What the accelerators' RTL benches (``<accelerator>/bench.py``) share: the engine and ``--waves`` checks
of ``lego sim DIR``, a build directory cached per engine and design sources, and one cocotb run on it (Verilator's model
compiled unoptimized, a stale cached build rebuilt once, the waveform copied out)."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from lego.errors import LegoError

# short benches: -O0 C++ builds in about a third of the time of Verilator's default -Os
VERILATOR_MAKEFLAGS = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
ENGINES = ("cycle", "icarus", "verilator")


def check_run(title: str, engine: str, waves: Path | None) -> None:
    """``lego sim DIR`` of a ``title`` design: an engine of ENGINES, and --waves only on an RTL engine."""
    if engine not in ENGINES:
        raise LegoError(f"--engine: a {title} design runs on {', '.join(ENGINES)}, got '{engine}'")
    if waves is not None and engine == "cycle":
        raise LegoError("--waves: the cycle engine has no waveforms (use --engine icarus|verilator)")


def check_waves(engine: str, waves: Path | None) -> None:
    """``--waves FILE``: Icarus writes FST, Verilator VCD; the name must say which."""
    if waves is not None:
        want = ".fst" if engine == "icarus" else ".vcd"
        if Path(waves).suffix != want:
            raise LegoError(f"--waves: {engine} writes {want[1:].upper()}; name the file *{want}")


def build_dir(engine: str, tag: str, sources, waves: Path | None) -> Path:
    """The cached build directory of ``sources`` under ``engine`` (keyed by the toolchain and the sources'
    bytes); a traced build lives beside the untraced one."""
    from simulator.rtl import CACHE, toolchain_id
    h = hashlib.sha256(toolchain_id(engine).encode())
    for src in sources:
        h.update(Path(src).read_bytes())
    if waves is not None:
        h.update(f"waves:{waves}".encode())
    return CACHE / f"{engine}-{tag}-{h.hexdigest()[:16]}"


def run_cached(bd: Path, *, engine: str, waves: Path | None, waves_required: bool = True, **kw) -> bool:
    """``lego.toolchain.run_cocotb`` in the cached build directory ``bd`` (``kw``: its other arguments),
    rebuilt once from scratch when the cached build fails (an interrupted build, tools updated in place);
    with ``waves``, the waveform copied there (missing: an error where ``waves_required``). True when every
    cocotb test passed."""
    from lego.toolchain import BuildError, run_cocotb
    old = os.environ.get("MAKEFLAGS")
    if engine == "verilator":
        os.environ["MAKEFLAGS"] = VERILATOR_MAKEFLAGS
    try:
        try:
            ok = run_cocotb(engine=engine, build_dir=bd, waves=waves, **kw)
        except BuildError:
            shutil.rmtree(bd, ignore_errors=True)
            ok = run_cocotb(engine=engine, build_dir=bd, waves=waves, **kw)
    finally:
        if engine == "verilator":
            if old is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = old
    if waves is not None and not (engine == "icarus" and Path(waves).exists()):
        cands = sorted(Path(bd).glob("*.vcd"), key=lambda p: p.stat().st_mtime)
        if cands:
            shutil.copy(cands[-1], waves)
        elif waves_required:
            raise LegoError(f"--waves: the {engine} run wrote no waveform")
    return ok

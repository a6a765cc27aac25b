"""Run the cocotb benches (pipeline on spatten_top, units on tb/spatten_units.v) of this directory's
parent RTL, and the cycle bench (tb_cycles on spatten_top): python tb/run_tb.py [icarus|verilator]..."""
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RTL = HERE.parent
man = json.loads((RTL / "manifest.json").read_text())
sys.path.insert(0, man["repo"])
sys.path.insert(0, str(HERE))
from lego.toolchain import run_cocotb  # noqa: E402


def run(engine: str, cases: int = 20, build_dir: Path | None = None, which: str = "top",
        extra_env: dict | None = None) -> bool:
    """which='top': the pipeline bench on spatten_top; 'units': the unit benches on tb/spatten_units.v;
    'cycles': tb_cycles on spatten_top (cycle counts vs simulator.spatten_rtl; extra_env: its SPATTEN_*)."""
    build = build_dir or Path(tempfile.mkdtemp(prefix=f"spatten_{which}_{engine}_"))
    src, top, mod = ((RTL / "spatten_top.v", man["top"], {"top": "tb_pipeline", "cycles": "tb_cycles"}[which])
                     if which in ("top", "cycles") else (HERE / "spatten_units.v", "spatten_units", "tb_spatten"))
    if engine == "verilator":
        # short benches: -O0 C++ builds in about a third of the time of Verilator's default -Os
        os.environ.setdefault("MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0")
    return run_cocotb(engine=engine, sources=[src], top=top, test_module=mod,
                      test_dir=HERE, build_dir=build,
                      extra_env={"SPATTEN_REPO": man["repo"], "SPATTEN_CFG": str(RTL / "config.yaml"),
                                 "SPATTEN_CASES": str(cases), **(extra_env or {})})


if __name__ == "__main__":
    engines = sys.argv[1:] or ["icarus", "verilator"]
    ok = all([run(e, which=w) for e in engines for w in ("top", "units", "cycles")])
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)

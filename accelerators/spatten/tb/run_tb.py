"""Run the cocotb benches of this design directory (needs lego installed: pip install lego-hw):
the pipeline bench and the cycle bench on spatten_top, the unit benches on tb/spatten_units.v.

    python tb/run_tb.py [icarus|verilator] ...
"""
import os
import sys
import tempfile
from pathlib import Path

from lego.toolchain import run_cocotb

HERE = Path(__file__).resolve().parent
RTL = HERE.parent
BENCHES = {"top": ("spatten_top.v", "spatten_top", "tb_pipeline"), "cycles": ("spatten_top.v", "spatten_top", "tb_cycles"),
           "units": ("tb/spatten_units.v", "spatten_units", "tb_spatten")}


def run(engine: str, cases: int = 20, build_dir: Path | None = None, which: str = "top",
        extra_env: dict | None = None) -> bool:
    """which='top': the pipeline bench; 'cycles': tb_cycles (cycle counts vs accelerators.spatten.rtl_model,
    extra_env: its SPATTEN_*); 'units': the unit benches on tb/spatten_units.v."""
    src, top, mod = BENCHES[which]
    build = build_dir or Path(tempfile.mkdtemp(prefix=f"spatten_{which}_{engine}_"))
    if engine == "verilator":
        # short benches: -O0 C++ builds in about a third of the time of Verilator's default -Os
        os.environ.setdefault("MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0")
    return run_cocotb(engine=engine, sources=[RTL / src], top=top, test_module=mod, test_dir=HERE, build_dir=build,
                      extra_env={"SPATTEN_CFG": str(RTL / "config.yaml"), "SPATTEN_CASES": str(cases),
                                 **(extra_env or {})})


if __name__ == "__main__":
    engines = sys.argv[1:] or ["icarus", "verilator"]
    ok = all([run(e, which=w) for e in engines for w in ("top", "units", "cycles")])
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)

"""`lego synth --target {generic,ice40,ecp5} [--device PART] [--json]` on generated designs: devices, banks
in block RAM (checked on the synthesized cells), the fit check (exit 2, one line, JSON with fit: false) and
nothing written into the design directory.

Default set: about 55 s on 2 cores (four synthesis runs); the default GEMM on ECP5 and the UP5K are slow."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lego import synth as S
from lego.generate import generate

needs_ice40 = pytest.mark.skipif(S.find_tool("yosys") is None or S.find_tool("nextpnr-ice40") is None,
                                 reason="no yosys / nextpnr-ice40")
needs_ecp5 = pytest.mark.skipif(S.find_tool("yosys") is None or S.find_tool("nextpnr-ecp5") is None,
                                reason="no yosys / nextpnr-ecp5 (pip install -e .[synth])")


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    root = tmp_path_factory.mktemp("sf")
    made = {}

    def get(name, shape, array):
        if name not in made:
            generate("gemm", shape, array, ("os",), 8, True, root / name)
            made[name] = root / name
        return made[name]
    return get


def default_gemm(gen):
    return gen("gemm", None, None)                       # `lego gen --workload gemm`: 4x4, M=N=K=16


def small_gemm(gen):
    return gen("small", "M=5,N=6,K=7", "2x2")


def lego(*args):
    r = subprocess.run([sys.executable, "-m", "lego.cli", *args], capture_output=True, text=True,
                       env=dict(os.environ))
    return r.returncode, r.stdout, r.stderr


def listing(d: Path):
    return sorted((str(p.relative_to(d)), p.stat().st_mtime_ns, p.stat().st_size) for p in d.rglob("*"))


def banks(d: Path) -> list[tuple[int, int]]:
    """(depth, word bits) of every bank of a generated array (report.json, manifest.json)."""
    rep = json.loads((d / "report.json").read_text())
    man = json.loads((d / "manifest.json").read_text())
    out = []
    for t, n in rep["memory"]["banks"].items():
        bits = man["tensors"][t]["bits"] if man["tensors"][t]["role"] == "input" else rep["widths"]["acc_bits"]
        out += [(rep["memory"]["depth"][t], bits)] * n
    return out


# ----------------------------------------------------------------------------------------- devices
@pytest.mark.parametrize("args, allowed", [
    (("--target", "ice40", "--device", "xc7a35t"), "unknown ice40 device 'xc7a35t' (allowed: hx8k, up5k, hx1k)"),
    (("--target", "ecp5", "--device", "hx8k"), "unknown ecp5 device 'hx8k' (allowed: 25k, 45k, 85k)"),
    (("--device", "25k"), "the generic target has no device"),
])
def test_unknown_device_exit_2(tmp_path, args, allowed):
    rc, out, err = lego("synth", str(tmp_path / "any"), *args)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("lego: error: --device: ") and allowed in err


def test_check_device_defaults():
    assert S.check_device("ice40", None) == "hx8k" and S.check_device("ecp5", None) == "25k"
    assert S.check_device("ice40", "up5k") == "up5k" and S.check_device("generic", None) is None


# ------------------------------------------------------------------------------------- fit reports
NEXTPNR_LOG = """Info: Packing constants..
Info: Device utilisation:
Info: 	         ICESTORM_LC:    5560/   7680    72%
Info: 	        ICESTORM_RAM:      40/     32   125%
Info: 	               SB_IO:     100/    206    48%
Info: 	               SB_GB:       8/      8   100%
Info: 	        ICESTORM_PLL:       0/      2     0%

Info: Placed 0 cells based on constraints.
ERROR: Unable to place cell 'fu_0_3.mem_Y.0.1_RAM', no BELs remaining to implement cell type 'ICESTORM_RAM'
"""


def test_fit_figures_from_nextpnr_log():
    util = S.parse_utilisation(NEXTPNR_LOG)
    assert util["ICESTORM_RAM"] == {"used": 40, "available": 32, "percent": 125.0}
    figs = S.fit_figures("ice40", util)
    assert list(figs) == ["LC", "BRAM", "IO"]          # no DSP on the HX8K
    assert S.fit_line("hx8k", figs) == "synth: does not fit hx8k: LC 5,560/7,680 (72%), BRAM 40/32 (125%), " \
                                       "IO 100/206 (48%)"
    log = ("mapping memory top.mem_X_0 via $__ICE40_RAM4K_\nmapping memory top.mem_W_0 via $__DP16KD_\n"
           "mapping memory top.mem_Y via $__TRELLIS_DPR16X4_\nusing FF mapping for memory top.lut\n")
    assert S.memory_mapping(log) == {"block_ram": 2, "lut_ram": 1, "logic": 1, "logic_names": ["top.lut"],
                                     "other": []}


@needs_ice40
def test_default_gemm_does_not_fit_hx8k(gen):
    """The default 4x4 GEMM needs 40 block RAMs (16 output banks of 20-bit words take two 16-bit-wide
    SB_RAM40_4K each); the HX8K has 32. Exit 2, one line with the figures, the report on stdout."""
    d = default_gemm(gen)
    before = listing(d)
    rc, out, err = lego("synth", str(d), "--target", "ice40", "--json")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.fullmatch(r"lego: error: synth: does not fit hx8k: LC [\d,]+/7,680 \(\d+%\), BRAM 40/32 \(125%\), "
                        r"IO 100/206 \(48%\)\n", err), err
    assert len(out.strip().splitlines()) == 1
    r = json.loads(out)
    assert r["fit"] is False and r["device"] == "hx8k" and r["target"] == "ice40"
    assert r["fit_figures"]["BRAM"] == {"used": 40, "available": 32, "percent": 125.0}
    assert r["fit_source"] == "nextpnr (packed)" and r["fit_figures"]["LC"]["used"] > 4000
    assert r["memories"]["block_ram"] == 24 and r["memories"]["logic"] == 0
    assert r["bram"] == 40 == sum(math.ceil(bits / 16) for _, bits in banks(d))
    assert listing(d) == before                         # nothing written into the design directory


@needs_ice40
def test_logic_over_hx1k_is_a_failed_fit_without_json(gen):
    """Placement fails for lack of logic cells (LUT and flip-flop counts alone would fit): the figures come
    from nextpnr's packed utilisation; without --json nothing is printed on stdout."""
    d = small_gemm(gen)
    before = listing(d)
    rc, out, err = lego("synth", str(d), "--target", "ice40", "--device", "hx1k")
    assert rc == 2 and out == ""
    m = re.fullmatch(r"lego: error: synth: does not fit hx1k: LC ([\d,]+)/1,280 \((\d+)%\), BRAM 12/16 \(75%\), "
                     r"IO 94/96 \(97%\)\n", err)
    assert m and int(m.group(2)) > 100, err
    assert listing(d) == before


# --------------------------------------------------------------------------------- fits: block RAM
@needs_ice40
def test_ice40_small_gemm_fits_with_banks_in_block_ram(gen):
    d = small_gemm(gen)
    before = listing(d)
    rc, out, err = lego("synth", str(d), "--target", "ice40", "--device", "hx8k", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["fit"] is True and r["fmax_mhz"] > 30 and r["wrapped"] is False
    assert r["memories"] == {"block_ram": len(banks(d)), "lut_ram": 0, "logic": 0, "logic_names": [], "other": []}
    assert r["bram"] == r["cells_by_type"]["SB_RAM40_4K"] == sum(math.ceil(b / 16) for _, b in banks(d)) == 12
    assert r["fit_figures"]["BRAM"]["used"] == 12 and r["fit_figures"]["LC"]["available"] == 7680
    assert listing(d) == before
    table = S.format_table(r)                                           # what the CLI prints without --json
    assert "Fmax" in table and "8 block RAM, 0 LUT RAM, 0 in logic" in table and "BRAM used" in table


@needs_ecp5
def test_ecp5_deep_banks_in_dp16kd(gen):
    """Banks of 1,024 and 256 words map to DP16KD (one each: 1024x8 input, 256x22 output as a 512x36
    PDPW16KD), none to LUT RAM or logic; the design fits an LFE5U-25F."""
    d = gen("deep", "M=32,N=32,K=64", "2x2")
    assert sorted(set(banks(d))) == [(256, 22), (1024, 8)]
    r = S.synth(d, "ecp5")
    assert r["fit"] is True and r["part"] == "LFE5U-25F-CABGA381" and r["fmax_mhz"] > 30
    assert r["memories"]["block_ram"] == len(banks(d)) == 8 and r["memories"]["logic"] == 0
    assert r["bram"] == r["cells_by_type"]["DP16KD"] == 8 and r["lutram"] == 0
    assert r["fit_figures"]["BRAM"] == {"used": 8, "available": 56, "percent": 14.3}
    assert r["dsp"] == 4 and r["dsp_enabled"] is True


@pytest.mark.slow
@needs_ecp5
def test_ecp5_default_gemm(gen):
    """The default GEMM fits an LFE5U-25F: its 64- and 16-word banks go to LUT RAM (Yosys's cheaper choice
    for such shallow memories), none to flip-flops; 16 multipliers in MULT18X18D."""
    d = default_gemm(gen)
    rc, out, err = lego("synth", str(d), "--target", "ecp5", "--device", "25k", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["fit"] is True and r["fmax_mhz"] > 50
    assert r["memories"]["lut_ram"] == 24 and r["memories"]["logic"] == 0
    assert r["dsp"] == 16 and r["fit_figures"]["IO"]["used"] == 100


@pytest.mark.slow
@needs_ice40
def test_up5k_default_gemm_does_not_fit(gen):
    rc, out, err = lego("synth", str(default_gemm(gen)), "--target", "ice40", "--device", "up5k", "--json")
    assert rc == 2
    r = json.loads(out)
    assert r["fit"] is False and r["wrapped"] is True and r["dsp_enabled"] is False     # 16 muls > 8 DSPs
    assert r["fit_figures"]["LC"]["used"] > 5280 and r["fit_figures"]["BRAM"]["used"] == 40
    assert err.startswith("lego: error: synth: does not fit up5k: LC ")

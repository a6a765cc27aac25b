"""The FuseSoC core of a design directory (lego/emit/fusesoc.py), used as a user would: fusesoc run --target
lint|default|sim|synth on generated designs (and, slow, the ice40/ecp5 bitstream targets).

The lint, sim and synth runs take about 20 s together on 2 cores (the synth target's Yosys most of it)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lego import __version__
from lego.emit import files as F
from lego.emit import fusesoc
from lego.emit import fusesoc
from lego.generate import generate

VLNV = "lego:generated:{top}"
U8 = """name: u8gemm
iterators: {i: 5, j: 3, k: 6}
tensors:
  X: {index: [i, k], role: input, dtype: uint8}
  W: {index: [k, j], role: input, dtype: uint8}
  Y: {index: [i, j], role: output, dtype: int32}
"""
FUSESOC = shutil.which("fusesoc", path=str(Path(sys.executable).parent)) or shutil.which("fusesoc")
needs_fusesoc = pytest.mark.skipif(FUSESOC is None, reason="no fusesoc (pip install -e .[synth])")


def _tcl_yosys() -> bool:
    """edalize drives Yosys through Tcl: the YoWASP build has none (docs/synth.md, FuseSoC)."""
    y = shutil.which("yosys")
    if y is None:
        return False
    r = subprocess.run([y, "-p", "tcl /dev/null"], capture_output=True, text=True)
    return r.returncode == 0


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fs")
    generate("gemm", None, None, ("os",), 8, True, root / "gemm")            # `lego gen --workload gemm`
    (root / "u8.yaml").write_text(U8)
    generate(str(root / "u8.yaml"), None, "2x2", ("ws", "os"), 8, True, root / "u8")
    return root


def _core(d: Path) -> tuple[str, dict]:
    p = next(d.glob("*.core"))
    return p.stem, yaml.safe_load(p.read_text())


def _fusesoc(d: Path, target: str, *extra, build: Path | None = None):
    top = next(d.glob("*.core")).stem
    build = build or d.parent / f"build-{d.name}-{target}"
    shutil.rmtree(build, ignore_errors=True)
    cmd = [FUSESOC, "--cores-root", str(d), "run", "--build-root", str(build), "--target", target,
           *[e for e in extra if e.startswith("--tool")], VLNV.format(top=top),
           *[e for e in extra if not e.startswith("--tool")]]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=d.parent, env=dict(os.environ))
    return r, build / f"lego_generated_{top}_{__version__}" / target


# ------------------------------------------------------------------------------------------ core text
def test_core_targets(designs):
    top, c = _core(designs / "gemm")
    assert c["name"] == f"lego:generated:{top}:{__version__}"
    t = c["targets"]
    assert set(t) == {"default", "lint", "sim", "synth", "ice40", "ecp5"}
    for name in ("default", "lint"):          # the waivers travel with every lint run, -Wall
        assert t[name]["flow"] == "lint" and t[name]["flow_options"]["tool"] == "verilator"
        assert t[name]["filesets"] == ["rtl", "lint"] and "-Wall" in t[name]["flow_options"]["verilator_options"]
        assert t[name]["toplevel"] == top
    assert t["sim"]["flow_options"] == {"tool": "icarus", "iverilog_options": ["-g2005"]}
    assert t["sim"]["toplevel"] == f"tb_{top}" and t["sim"]["filesets"] == ["rtl", "tb"]
    assert {"tb/vectors.txt": {"file_type": "user", "copyto": "vectors.txt"}} in c["filesets"]["tb"]["files"]
    assert c["parameters"]["vectors"] == {"datatype": "file", "paramtype": "plusarg",
                                          "description": c["parameters"]["vectors"]["description"]}
    assert t["synth"]["flow"] == "icestorm" and t["synth"]["flow_options"] == {"pnr": "none"}
    assert t["ice40"]["flow_options"]["nextpnr_options"] == ["--hx8k", "--package", "ct256"]
    assert t["ecp5"]["flow"] == "trellis"
    assert c["filesets"]["rtl"]["files"] == [f"{top}.v"]


def test_core_without_plain_testbench_has_no_sim():
    """The attention design ships no plain testbench (no manifest passed): no sim target. A description
    with YAML syntax in it stays a string."""
    c = yaml.safe_load(fusesoc.core_for("lego_attention", "0.1.0", "lego attention: L=4 D=3 [x]"))
    assert "sim" not in c["targets"] and "tb" not in c["filesets"] and "parameters" not in c
    assert c["description"] == "lego attention: L=4 D=3 [x]"


def test_shipped_vectors_are_lego_host_default(designs, tmp_path):
    """tb/vectors.txt is exactly what `python tb/lego_host.py` (no options) writes."""
    for name in ("gemm", "u8"):
        d = designs / name
        out = tmp_path / f"{name}.txt"
        r = subprocess.run([sys.executable, "-I", str(d / "tb" / "lego_host.py"), "--out", str(out)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert out.read_text() == (d / "tb" / "vectors.txt").read_text()
    man = json.loads((designs / "u8" / "manifest.json").read_text())
    text = (designs / "u8" / "tb" / "vectors.txt").read_text().splitlines()
    assert fusesoc.vector_lines(man) == sum(ln[0] in "LR" for ln in text)


def test_large_vectors_are_not_shipped(tmp_path, monkeypatch):
    monkeypatch.setattr(fusesoc, "VECTOR_LINES_MAX", 100)
    generate("gemm", "M=5,N=6,K=7", "2x2", ("os",), 8, True, tmp_path / "d")
    assert not (tmp_path / "d" / "tb" / "vectors.txt").exists()
    top, c = _core(tmp_path / "d")
    assert c["filesets"]["tb"]["files"] == [{f"tb/tb_{top}.v": {"file_type": "verilogSource"}}]
    assert "--vectors=" in c["targets"]["sim"]["description"]


# ------------------------------------------------------------------------------------------- fusesoc runs
@needs_fusesoc
@pytest.mark.parametrize("target", ["lint", "default"])
def test_fusesoc_lint(designs, target):
    """Zero warnings with lint.vlt (`--target default --tool verilator` failed with 43 before)."""
    for name in ("gemm", "u8"):
        extra = ("--tool=verilator",) if target == "default" else ()
        r, _ = _fusesoc(designs / name, target, *extra)
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        assert "%Warning" not in r.stdout + r.stderr


@needs_fusesoc
def test_fusesoc_lint_fails_on_a_real_warning(designs, tmp_path):
    d = tmp_path / "gemm"
    shutil.copytree(designs / "gemm", d)
    v = d / "lego_gemm.v"
    text = v.read_text()
    k = text.index("endmodule")
    v.write_text(text[:k] + "  wire [7:0] lego_extra_w = ld_addr;\n" + text[k:])   # 6-bit ld_addr widened
    r, _ = _fusesoc(d, "lint")
    assert r.returncode != 0
    assert "%Warning-WIDTHEXPAND" in r.stdout + r.stderr and "'ld_addr'" in r.stdout + r.stderr


@needs_fusesoc
def test_fusesoc_sim_passes_out_of_the_box(designs, tmp_path):
    r, _ = _fusesoc(designs / "gemm", "sim")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "PASS: 1 jobs, 256 outputs checked" in r.stdout
    r, _ = _fusesoc(designs / "u8", "sim")
    assert r.returncode == 0 and "PASS: 2 jobs, 30 outputs checked" in r.stdout, (r.stdout + r.stderr)[-3000:]
    # other vectors with --vectors: a wrong expected value fails the run
    text = (designs / "gemm" / "tb" / "vectors.txt").read_text().splitlines()
    k = next(i for i, ln in enumerate(text) if ln.startswith("R "))
    _, b, a, y = text[k].split()
    text[k] = f"R {b} {a} {int(y) + 1}"
    (tmp_path / "bad.txt").write_text("\n".join(text) + "\n")
    r, _ = _fusesoc(designs / "gemm", "sim", f"--vectors={tmp_path / 'bad.txt'}")
    assert r.returncode != 0
    assert "FAIL: 1 errors in 1 jobs, 256 outputs checked" in r.stdout


@needs_fusesoc
@pytest.mark.skipif(not _tcl_yosys(), reason="edalize needs a Yosys with Tcl (Debian's yosys)")
def test_fusesoc_synth_maps_banks_to_block_ram(designs):
    """edalize's icestorm flow (synthesis only): every bank of the default GEMM is an SB_RAM40_4K
    (8 input banks of 8-bit words, 16 output banks of 20-bit words at two blocks each)."""
    r, work = _fusesoc(designs / "gemm", "synth")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    net = json.loads((work / f"lego_generated_lego_gemm_{__version__}.json").read_text())
    types = [c["type"] for m in net["modules"].values() for c in m.get("cells", {}).values()]
    assert types.count("SB_RAM40_4K") == 8 + 16 * 2
    assert "SB_LUT4" in types


@pytest.mark.slow
@needs_fusesoc
@pytest.mark.skipif(not _tcl_yosys(), reason="edalize needs a Yosys with Tcl (Debian's yosys)")
def test_fusesoc_bitstreams(designs, tmp_path):
    """The ecp5 target on the default GEMM (fits an LFE5U-25F) and the ice40 target on a 2x2 GEMM (fits
    an HX8K) write bitstreams."""
    r, work = _fusesoc(designs / "gemm", "ecp5")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (work / f"lego_generated_lego_gemm_{__version__}.bit").stat().st_size > 100_000
    generate("gemm", "M=5,N=6,K=7", "2x2", ("os",), 8, True, tmp_path / "small")
    r, work = _fusesoc(tmp_path / "small", "ice40")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (work / f"lego_generated_lego_gemm_{__version__}.bin").stat().st_size > 10_000

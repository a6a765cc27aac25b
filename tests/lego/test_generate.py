import filecmp
import json
import os
from pathlib import Path

import pytest

from lego.generate import generate
from simulator.engine import get_engine


def _strip_timing(path):
    """report.json records the LP's measured solve time, the one field that is a measurement."""
    rep = json.loads(open(path).read())
    for stage in [rep] + list(rep.get("stages", {}).values()):
        stage.get("lp", {}).pop("solve_seconds", None)
    return rep


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    diff = [f for f in cmp.diff_files if f != "report.json"]
    assert not cmp.left_only and not cmp.right_only and not diff, (cmp.left_only, diff)
    if "report.json" in cmp.common_files:
        assert _strip_timing(os.path.join(a, "report.json")) == _strip_timing(os.path.join(b, "report.json"))
    for sub in cmp.common_dirs:
        _same_tree(os.path.join(a, sub), os.path.join(b, sub))


def test_two_runs_byte_identical(tmp_path):
    for wl, shape, dfs in [("gemm", "M=7,N=5,K=3", ("os", "ws")), ("attention", "L=4,D=3", ("os",))]:
        a, b = tmp_path / f"{wl}_a", tmp_path / f"{wl}_b"
        generate(wl, shape, "3x2", dfs, 8, True, a)
        generate(wl, shape, "3x2", dfs, 8, True, b)
        _same_tree(a, b)


def test_no_opt_is_also_correct_and_larger(tmp_path):
    from simulator.engine import get_engine
    import json
    d1, d2 = tmp_path / "opt", tmp_path / "naive"
    generate("gemm", "M=6,N=7,K=5", "4x4", ("os",), 8, True, d1)
    generate("gemm", "M=6,N=7,K=5", "4x4", ("os",), 8, False, d2)
    r1 = json.loads((d1 / "report.json").read_text())["registers"]
    r2 = json.loads((d2 / "report.json").read_text())["registers"]
    # emitted: the elaborated delay registers; the control word is delayed field by field, so fields
    # nobody reads at a depth are not registered there (at most the LP's / the naive count)
    assert 0 < r1["emitted_bits"] <= r1["lp_bits"] < r2["emitted_bits"] <= r2["naive_bits"]
    rep = get_engine("icarus").run(d2, seed=5)
    assert rep.match and rep.cycles == rep.extra["cycles_predicted"]


def _vcd_tokens(path):
    """pyvcd's tokens of a Verilator VCD. Verilator names the port scope ``$rootio`` and Yosys temporaries
    ``$auto$...``; pyvcd refuses identifiers that start with ``$``, so those get a ``_`` first."""
    import io
    import re

    import vcd.reader
    text = Path(path).read_text()
    text = re.sub(r"(?m)^(\s*\$scope \S+ )\$", r"\1_", text)
    text = re.sub(r"(?m)^(\s*\$var \S+ \d+ \S+ )\$", r"\1_", text)
    return vcd.reader, vcd.reader.tokenize(io.BytesIO(text.encode()))


def vcd_changes(path, scope: str, names) -> tuple[dict[str, list[tuple[int, int]]], int]:
    """{name: [(time, value), ...]} of the named signals of ``scope``, and the last timestamp."""
    r, tokens = _vcd_tokens(path)
    path_, ids, out, now = [], {}, {n: [] for n in names}, 0
    for t in tokens:
        if t.kind is r.TokenKind.SCOPE:
            path_.append(t.data.ident)
        elif t.kind is r.TokenKind.UPSCOPE:
            path_.pop()
        elif t.kind is r.TokenKind.VAR and path_ and path_[-1] == scope and t.data.reference in names:
            ids[t.data.id_code] = t.data.reference
        elif t.kind is r.TokenKind.CHANGE_TIME:
            now = t.data
        elif t.kind in (r.TokenKind.CHANGE_SCALAR, r.TokenKind.CHANGE_VECTOR) and t.data.id_code in ids:
            v = t.data.value
            out[ids[t.data.id_code]].append((now, int(v) if isinstance(v, int) else int(v == "1")))
    return out, now


def value_at(changes, time: int) -> int:
    """The value a signal holds at ``time`` (after the changes at that time)."""
    v = None
    for t, x in changes:
        if t > time:
            break
        v = x
    return v


def fst_header(path) -> dict:
    """The FST header block (gtkwave's fstapi.c): block type 0, section length 329, start and end time
    (u64, big-endian), the endianness test double e (native order), counts, timescale (int8, 10**x s),
    version and date strings; and the names in the gzip'd hierarchy block (type 4)."""
    import gzip
    import struct
    b = Path(path).read_bytes()
    h = {"type": b[0], "length": struct.unpack(">Q", b[1:9])[0], "start": struct.unpack(">Q", b[9:17])[0],
         "end": struct.unpack(">Q", b[17:25])[0], "e": struct.unpack("<d", b[25:33])[0],
         "scopes": struct.unpack(">Q", b[41:49])[0], "vc_blocks": struct.unpack(">Q", b[65:73])[0],
         "timescale": struct.unpack("b", b[73:74])[0], "version": b[74:202].rstrip(b"\0").decode()}
    off, hier = 0, b""
    while off < len(b):
        kind, n = b[off], struct.unpack(">Q", b[off + 1:off + 9])[0]
        if kind == 4:                           # FST_BL_HIER: u64 uncompressed length, then gzip data
            hier = gzip.decompress(b[off + 17:off + 1 + n])
            assert len(hier) == struct.unpack(">Q", b[off + 9:off + 17])[0]
        off += 1 + n
    h["hier"] = hier
    return h


@pytest.mark.rtl
def test_waves_done_at_the_predicted_cycle(tmp_path):
    """gemm M=3 N=2 K=4 on 1x1, os: 24 steps + 2 (bank read, output write) = 26 cycles
    (tests/simulator/test_cycle.py). Verilator's VCD (lego sim --waves, parsed with pyvcd): ``done``
    rises at the 26th rising clock edge after the start edge and ``cycles`` then reads 26. Icarus' FST:
    a valid header (block 0 of 329 bytes, e, 1 ps, Icarus Verilog), the design's ports in its hierarchy
    and the same end time as the Verilator trace of the same bench."""
    import json

    from lego.cli import main
    d = tmp_path / "w"
    generate("gemm", "M=3,N=2,K=4", "1x1", ("os",), 8, True, d)
    vcd = tmp_path / "run.vcd"
    assert main(["sim", str(d), "--engine", "verilator", "--waves", str(vcd), "--seed", "1", "--json"]) == 0
    ch, last = vcd_changes(vcd, "_rootio", {"clk", "start", "done", "cycles"})
    rising = [t for (t, v), (_, p) in zip(ch["clk"][1:], ch["clk"]) if v == 1 and p == 0]
    e0 = next(t for t in rising if value_at(ch["start"], t - 1) == 1)      # the start edge
    t_done = next(t for t, v in ch["done"] if v == 1 and t > e0)
    assert sum(e0 < t <= t_done for t in rising) == 26
    assert value_at(ch["cycles"], t_done) == 26
    assert json.loads((d / "manifest.json").read_text())["cycles_predicted"] == {"os": 26}

    fst = tmp_path / "run.fst"
    rep = get_engine("icarus").run(d, seed=1, waves=fst)
    assert rep.match and rep.cycles == 26
    h = fst_header(fst)
    assert (h["type"], h["length"], h["start"], h["timescale"]) == (0, 329, 0, -12)
    assert h["e"] == pytest.approx(2.718281828459045, rel=0, abs=0)
    assert h["version"].startswith("Icarus Verilog") and h["vc_blocks"] >= 1 and h["scopes"] >= 1
    assert h["end"] == last                      # both benches end at the same time (ps)
    for name in (b"lego_gemm", b"clk", b"start", b"done", b"cycles [31:0]", b"rd_data [31:0]"):
        assert name + b"\0" in h["hier"], name


def _adder_depth(pg, root: str) -> tuple[int, list[str]]:
    """(adds on the longest path into ``root``, the non-add leaves) of the add nodes of a PrimGraph."""
    ins: dict[str, list[str]] = {}
    for e in pg.edges:
        ins.setdefault(e.dst, []).append(e.src)

    def walk(n):
        if pg.nodes[n].kind != "add":
            return 0, [n]
        subs = [walk(s) for s in ins[n]]
        return 1 + max(d for d, _ in subs), [leaf for _, ls in subs for leaf in ls]
    return walk(root)


@pytest.mark.parametrize("R,opt,depth", [(8, True, 3), (5, True, 3), (4, True, 2), (8, False, 8)])
def test_reduction_tree_depth(tmp_path, R, opt, depth):
    """ws-bcast (rows k, c = (0, 0)): each column sums R products in the same cycle. The generated
    design's PrimGraph (design.json) has, per column, an adder tree over exactly the column's R
    multipliers with ceil(log2 R) adders on its longest path and R - 1 adders in all; --no-opt keeps
    the lowered chain (R adders deep, the first adds the chain's zero input)."""
    from lego.emit import design_file
    generate("gemm", "M=4,N=2,K=8", f"{R}x2", ("ws-bcast",), 8, opt, tmp_path / "d")
    pg = design_file.read(tmp_path / "d").pg
    roots = [e.src for e in pg.edges if pg.nodes[e.dst].kind == "acc" and pg.nodes[e.src].kind == "add"]
    assert len(roots) == 2                                  # one per column
    for col, root in enumerate(sorted(roots)):
        d, leaves = _adder_depth(pg, root)
        assert d == depth
        muls = sorted(pg.nodes[n].fu[0] for n in leaves if pg.nodes[n].kind == "mul")
        assert muls == [(r, col) for r in range(R)]
        if opt:
            assert len(leaves) == R and sum(1 for n in pg.nodes if n.startswith(root)) == R - 1


def test_banks_without_init_and_lookup_tables_with_it():
    """Zero-initialised memories (banks) carry no initial value in the Verilog, memories with contents keep
    every word (lego.generate._no_zero_init, which patches Amaranth's pinned RTLIL emitter)."""
    from amaranth.hdl import Elaboratable, Module, Signal
    from amaranth.lib.memory import Memory

    from lego.generate import to_verilog

    class Two(Elaboratable):
        def __init__(self):
            self.a, self.o, self.o2 = Signal(2, name="a"), Signal(8, name="o"), Signal(8, name="o2")

        def ports(self):
            return [self.a, self.o, self.o2]

        def elaborate(self, platform):
            m = Module()
            m.submodules.rom = rom = Memory(shape=8, depth=4, init=[1, 2, 0, 3])
            m.submodules.bank = bank = Memory(shape=8, depth=4, init=[])
            rp, bp, wp = rom.read_port(domain="comb"), bank.read_port(domain="comb"), bank.write_port()
            m.d.comb += [rp.addr.eq(self.a), self.o.eq(rp.data), bp.addr.eq(self.a), self.o2.eq(bp.data),
                         wp.addr.eq(self.a), wp.data.eq(self.a), wp.en.eq(1)]
            return m

    v = to_verilog(Two(), "two")
    init = [ln.strip() for ln in v.splitlines() if "] = 8'h" in ln]
    assert init == ["rom[0] = 8'h01;", "rom[1] = 8'h02;", "rom[2] = 8'h00;", "rom[3] = 8'h03;"]

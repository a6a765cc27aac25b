"""Bad input to ``lego compile`` / ``lego sim --program`` through ``lego.cli.main``: exit 2, exactly one line on
stderr, ``lego: error: <field>: ...`` naming the field, no traceback, and nothing written at the ``--out``
path (the program and its ``.json``; the ``.npz`` of ``lego sim --out``).

Not repeated here (tests/simulator/test_program.py::test_bad_input_exits_2_naming_the_field has them): ``--tile``
beyond the box for a gemm layer, a program cut short by 20 bytes, one flipped byte caught by the CRC, a
format-1 program run on another design. Here: ``--tile`` beyond the box on the conv and model paths; layer
sizes that overflow the 32-bit address/stride registers; command words that overflow the 16-bit bound
registers (``limits.dim_bits`` of the manifest) or carry an undefined opcode / reserved bits, with a valid CRC;
every truncation of a program; random body flips with the CRC fixed up (never a traceback); an ONNX model with
no supported op; SCALE-Sim CSVs with a missing column or a negative size; a format-2 (conv) program on another
design.
"""
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lego.cli import main
from lego.prog.generate import generate_prog
from lego.prog.spec import CSR, enc_set
from simulator.program import simulate_program

_designs: dict = {}
_flip_src: dict = {}


def design(tmp_path_factory, dfs=("ws",)) -> Path:
    if dfs not in _designs:
        d = tmp_path_factory.mktemp("bad") / "d"
        generate_prog("gemm", "2x2", dfs, 8, 1, 1, 64, True, d)
        _designs[dfs] = d
    return _designs[dfs]


def refused(capsys, argv: list[str], field: str, never: tuple[Path, ...] = (), says: tuple[str, ...] = ()) -> str:
    """``lego argv`` exits 2 with one line ``lego: error: FIELD: ...`` (containing ``says``), no traceback,
    and none of ``never`` exists afterwards."""
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert rc == 2, (rc, cap.err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lego: error: {field}: "), lines[0]
    assert "Traceback" not in cap.err + cap.out
    for s in says:
        assert s in lines[0], (s, lines[0])
    for p in never:
        assert not Path(p).exists(), p
    return lines[0]


def outs(prog: Path) -> tuple[Path, Path]:
    return prog, Path(str(prog) + ".json")


def program(capsys, d: Path, layer: str, out: Path) -> bytes:
    assert main(["compile", str(d), "--layer", layer, "--out", str(out)]) == 0
    capsys.readouterr()
    return out.read_bytes()


def split(data: bytes) -> tuple[int, int]:
    """(offset of the first command word, number of words) of a program file."""
    (n,) = struct.unpack_from("<I", data, 8)
    (k,) = struct.unpack_from("<I", data, 12 + n)
    return 16 + n, k


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def set_word(data: bytes, i: int, word: int) -> bytes:
    at, _ = split(data)
    body = bytearray(data[:-4])
    body[at + 8 * i:at + 8 * i + 8] = struct.pack("<Q", word)
    return with_crc(bytes(body))


def words(data: bytes) -> list[int]:
    at, k = split(data)
    return list(struct.unpack_from(f"<{k}Q", data, at))


# ------------------------------------------------------------------------------------------- compile

def test_tile_beyond_the_box_conv_and_model_paths(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    box = json.loads((d / "manifest.json").read_text())["prog"]["box"]
    prog = tmp_path / "p.prog"
    refused(capsys, ["compile", d, "--layer", "conv2d:C=2,H=8,W=8,K=4,R=3,S=3", "--tile", f"K={box['K'] + 1}",
                     "--out", prog], "--tile", outs(prog), (f"K={box['K'] + 1}",))
    csv = tmp_path / "net.csv"
    csv.write_text("Layer, M, N, K,\ng1, 8, 8, 8,\n")
    refused(capsys, ["compile", d, "--model", csv, "--tile", f"N={box['N'] + 1}", "--out", prog], "--tile", outs(prog))
    refused(capsys, ["compile", d, "--layer", "bmm:B=2,M=4,N=4,K=4", "--tile", f"M={box['M'] * 4}", "--out", prog],
            "--tile", outs(prog))


@pytest.mark.parametrize("layer", [
    "gemm:M=1,N=1,K=4294967296",                    # X's row stride is beyond the 32-bit LD_STRIDE
    "gemm:M=5000000000,N=1,K=1",                    # a size beyond 32 bits
    "bmm:B=70000,M=70000,N=2,K=2",
    "conv2d:C=1,H=70000,W=70000,K=1,R=1,S=1",       # im2col's M = 4.9e9 rows
    "dwconv2d:C=65536,H=300,W=300,R=1,S=1",
])
def test_sizes_overflowing_the_address_registers(layer, tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    prog = tmp_path / "p.prog"
    refused(capsys, ["compile", d, "--layer", layer, "--out", prog], "--layer", outs(prog), ("32-bit",))


def test_a_layer_dimension_beyond_the_bound_registers_is_tiled_not_refused(tmp_path_factory, tmp_path, capsys):
    """The bound registers (``limits.dim_bits``) hold a tile's sizes, never a layer's: a layer dimension past
    2**dim_bits compiles into tiles within the box and computes right (the cycle engine against
    sw_reference); what a program cannot do is put such a value in a bound register (below)."""
    d = design(tmp_path_factory)
    bits = json.loads((d / "manifest.json").read_text())["prog"]["limits"]["dim_bits"]
    prog = tmp_path / "p.prog"
    assert main(["compile", str(d), "--layer", f"gemm:M={(1 << bits) + 3},N=2,K=3", "--mode", "ws",
                 "--out", str(prog)]) == 0
    capsys.readouterr()
    rep = simulate_program(d, prog, "cycle", seed=3, latency=1)
    assert rep.match and rep.outputs["Y"].shape == ((1 << bits) + 3, 2)


def test_onnx_with_no_supported_op(tmp_path_factory, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu0")], "g", [x], [y])
    f = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(g), str(f))
    prog = tmp_path / "p.prog"
    refused(capsys, ["compile", design(tmp_path_factory), "--model", f, "--out", prog], "--model", outs(prog),
            ("relu.onnx", "no supported op", "Relu"))


CONV_HEAD = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"


@pytest.mark.parametrize("text,says", [
    (CONV_HEAD.replace(" Num Filter,", "") + "\nc1, 8, 8, 3, 3, 4, 1,\n", ("column 'Num Filter' missing",)),
    ("Layer, M, K,\ng1, 8, 8,\n", ("column 'N' missing",)),
    (CONV_HEAD + "\nc1, 8, 8, 3, 3, 4, 8, 1,\nc2, 8, -8, 3, 3, 4, 8, 1,\n", ("row 3 (c2)", "'IFMAP Width'", "'-8'")),
    ("Layer, M, N, K,\ng1, 8, 8, -3,\n", ("row 2 (g1)", "column 'K'", "'-3'")),
])
def test_scalesim_csv(text, says, tmp_path_factory, tmp_path, capsys):
    f = tmp_path / "net.csv"
    f.write_text(text)
    prog = tmp_path / "p.prog"
    refused(capsys, ["compile", design(tmp_path_factory), "--model", f, "--out", prog], "--model", outs(prog),
            ("net.csv",) + says)


# ----------------------------------------------------------------------------------------------- sim

def test_bound_registers_overflowed_by_a_program(tmp_path_factory, tmp_path, capsys):
    """SET words (CRC valid) that write a bound register with a value the 16-bit register would wrap."""
    d = design(tmp_path_factory)
    bits = json.loads((d / "manifest.json").read_text())["prog"]["limits"]["dim_bits"]
    data = program(capsys, d, "gemm:M=9,N=7,K=13", tmp_path / "ok.prog")
    ws = words(data)
    out = tmp_path / "y.npz"
    for reg in ("TILE_I", "TILE_K", "LD_ROWS", "LD_COLS", "ST_ROWS", "ST_COLS", "EXT0"):
        i = next(i for i, w in enumerate(ws) if w >> 60 == 1 and (w >> 52) & 0xFF == CSR[reg])
        value = (ws[i] & 0xFFFFFFFF) + (1 << bits)           # wraps to the compiled value in 16 bits
        bad = tmp_path / f"{reg}.prog"
        bad.write_bytes(set_word(data, i, enc_set(CSR[reg], value)))
        refused(capsys, ["sim", d, "--program", bad, "--out", out], "--program", (out,), (str(value),))


def test_undefined_opcode_and_reserved_bits_with_a_valid_crc(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    data = program(capsys, d, "conv2d:C=2,H=6,W=6,K=3,R=3,S=3,PAD=1", tmp_path / "ok.prog")
    ws = words(data)
    out = tmp_path / "y.npz"
    i = next(i for i, w in enumerate(ws) if w >> 60 == 2)     # a LOAD
    for word, says in ((ws[i] & ~(0xF << 60) | (7 << 60), "opcode 7"), (ws[i] | 1, "reserved bits"),
                       (ws[i] | (3 << 54), "mode 3")):
        bad = tmp_path / "bad.prog"
        bad.write_bytes(set_word(data, i, word))
        refused(capsys, ["sim", d, "--program", bad, "--out", out], "--program", (out,), (f"command {i}", says))


def test_every_truncation_is_refused(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    data = program(capsys, d, "gemm:M=5,N=3,K=4", tmp_path / "ok.prog")
    at, k = split(data)
    cuts = sorted({0, 1, 7, 8, 11, 12, 13, at - 4, at - 1, at, at + 1, at + 8 * k // 2, at + 8 * k - 1, at + 8 * k,
                   len(data) - 1} | set(range(0, len(data), max(1, len(data) // 40))))
    out = tmp_path / "y.npz"
    for cut in cuts:
        bad = tmp_path / "t.prog"
        bad.write_bytes(data[:cut])
        refused(capsys, ["sim", d, "--program", bad, "--out", out], "--program", (out,))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_body_flips_with_a_fixed_crc_never_crash(data, tmp_path_factory, capsys):
    """Flipped bits in the command words, the CRC recomputed so that only the decoder and the checks stand
    between the stream and the engine: either refused (exit 2, one line naming --program) or run to the end
    (exit 0, or 1 when the changed program computes something else); never a traceback or a hang."""
    d = design(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("flip")
    prog = _flip_src.get("prog")
    if prog is None:
        src = tmp / "ok.prog"
        assert main(["compile", str(d), "--layer", "conv2d:C=2,H=7,W=7,K=3,R=3,S=3,STRIDE=2,PAD=1",
                     "--out", str(src)]) == 0
        capsys.readouterr()
        prog = _flip_src["prog"] = src.read_bytes()
    at, k = split(prog)
    body = bytearray(prog[:-4])
    for _ in range(data.draw(st.integers(1, 3))):
        bit = data.draw(st.integers(0, 64 * k - 1))
        body[at + bit // 8] ^= 1 << (bit % 8)
    bad = tmp / "f.prog"
    bad.write_bytes(with_crc(bytes(body)))
    out = tmp / "y.npz"
    rc = main(["sim", str(d), "--program", str(bad), "--dram-latency", "1", "--out", str(out)])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out
    if rc == 2:
        lines = cap.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("lego: error: --program: "), lines
        assert not out.exists()
    else:
        assert rc in (0, 1), (rc, cap.err)
        assert out.exists()
        np.load(out)


def test_format2_program_on_another_design(tmp_path_factory, tmp_path, capsys):
    d, other = design(tmp_path_factory), design(tmp_path_factory, ("os",))
    prog = tmp_path / "p.prog"
    program(capsys, d, "dwconv2d:C=3,H=5,W=5,R=3,S=3", prog)
    out = tmp_path / "y.npz"
    refused(capsys, ["sim", other, "--program", prog, "--out", out], "--program", (out,),
            ("compiled for another design",))
    refused(capsys, ["sim", other, "--program", prog, "--engine", "icarus", "--out", out], "--program", (out,),
            ("compiled for another design",))


def _reset_value_program(capsys, d: Path, tmp_path: Path) -> Path:
    """A program whose LD_ADDR is never SET (its first word, SET LD_ADDR=0, turned into SET ST_ADDR=0): it
    relies on the CSR's reset value 0, which the checks (lego.prog.program.check), the timing and the RTL
    assume. The cycle engine's data path used to raise KeyError('LD_ADDR') here (a traceback from lego sim)."""
    data = program(capsys, d, "gemm:M=9,N=7,K=13", tmp_path / "ok.prog")
    assert words(data)[0] == enc_set(CSR["LD_ADDR"], 0)
    bad = tmp_path / "reset.prog"
    bad.write_bytes(set_word(data, 0, enc_set(CSR["ST_ADDR"], 0)))
    return bad


def test_a_csr_left_at_its_reset_value_runs(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    bad = _reset_value_program(capsys, d, tmp_path)
    assert main(["sim", str(d), "--program", str(bad), "--json"]) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and json.loads(cap.out)["match"]


@pytest.mark.rtl
def test_a_csr_left_at_its_reset_value_rtl_equals_engine(tmp_path_factory, tmp_path, capsys):
    d = design(tmp_path_factory)
    bad = _reset_value_program(capsys, d, tmp_path)
    cyc = simulate_program(d, bad, "cycle", seed=4, latency=3)
    rep = simulate_program(d, bad, "icarus", seed=4, latency=3)
    assert cyc.match and rep.match
    assert np.array_equal(rep.outputs["Y"], cyc.outputs["Y"])
    assert rep.cycles == rep.extra["cycles_register"] == cyc.cycles

"""Generated RTL is lint-clean (verilator -Wall with the backend-artifact waivers of lint.vlt only: zero
warnings) and synthesizes with Yosys without latches or combinational loops (`check -assert`).

The waivers of lint.vlt (``lego.emit.files.LINT_VLT``) are narrowed with ``-match`` to the message shapes of
the Amaranth/Yosys backend; a warning that names a signal of the generator is not waived (one exception: the
unused upper bits of the host address ports ld_addr/rd_addr, whose width is that of the deepest bank), so
generator logic that makes one fails test_verilator_lint_wall_clean."""
import re

import pytest

from lego.emit.files import LINT_VLT
from lego.generate import generate
from lego.synth import synth
from lego.toolchain import verilator_lint

# (workload, shape, array, dataflows, bits, opt): linted and synthesized
DESIGNS = [
    ("gemm", "M=5,N=6,K=7", "3x2", ("os", "ws-bcast"), 8, True),
    ("attention", "L=4,D=3", "2x2", ("os",), 8, True),
    ("conv2d", "C=2,K=3,H=5,W=5,R=3,S=3,PAD=1", "2x2", ("is",), 8, True),
    ("gemm", "M=5,N=6,K=7", "3x2", ("os", "ws-bcast"), 8, False),   # --no-opt: private chains, emitted flat
]
# linted only (Yosys takes minutes on the 16x16)
LINT_ONLY = [
    ("gemm", None, "16x16", ("os",), 8, True),                      # LP schedule, emitted hierarchically
    ("gemm", "M=3,N=4,K=5", "1x1", ("is",), 8, True),
    ("gemm", "M=5,N=6,K=7", "3x2", ("ws",), 16, False),
    ("bmm", None, "2x2", ("ws",), 8, True),
    ("dwconv2d", "C=4,H=6,W=6,PAD=1,STRIDE=2", "2x2", ("os",), 8, True),
    ("conv2d", "C=2,K=3,H=7,W=7,STRIDE=2,PAD=1", "2x2", ("ws-bcast",), 8, True),
    ("attention", None, None, ("os",), 8, True),                    # `lego gen --workload attention`
    ("gemm", "M=37,N=23,K=19", "4x8", ("os",), 8, True),            # partial tiles: upper bounds only
    # unsigned and mixed-width inputs (YAML workloads below): ld_data is as wide as the widest bank word
    ("u8.yaml", None, "2x2", ("ws", "os"), 8, True),
    ("u16.yaml", None, "2x2", ("os",), 8, True),
    ("u8i8.yaml", None, "3x2", ("is",), 8, True),
    ("i4i8.yaml", None, "2x2", ("ws", "os"), 8, True),
    ("i4i8.yaml", None, "2x2", ("os",), 8, False),
]
_GEMM_YAML = """name: {name}
iterators: {{i: 5, j: 3, k: 6}}
tensors:
  X: {{index: [i, k], role: input, dtype: {x}}}
  W: {{index: [k, j], role: input, dtype: {w}}}
  Y: {{index: [i, j], role: output, dtype: {y}}}
"""
YAMLS = {"u8.yaml": _GEMM_YAML.format(name="u8", x="uint8", w="uint8", y="int32"),
         "u16.yaml": _GEMM_YAML.format(name="u16", x="uint16", w="uint16", y="int64"),
         "u8i8.yaml": _GEMM_YAML.format(name="u8i8", x="uint8", w="int8", y="int32"),
         "i4i8.yaml": _GEMM_YAML.format(name="i4i8", x="int4", w="int8", y="int32")}

_DIRS = {}


def _id(spec):
    wl, _, arr, dfs, bits, opt = spec
    return f"{wl}-{arr}-{'+'.join(dfs)}-b{bits}" + ("" if opt else "-noopt")


def _design(spec, tmp_path_factory):
    if spec not in _DIRS:
        out = tmp_path_factory.mktemp("q") / "d"
        wl, shape, arr, dfs, bits, opt = spec
        if wl in YAMLS:
            (out.parent / wl).write_text(YAMLS[wl])
            wl = str(out.parent / wl)
        generate(wl, shape, arr, dfs, bits, opt, out)
        _DIRS[spec] = out
    return _DIRS[spec]


_lint = verilator_lint


@pytest.fixture(scope="module", params=DESIGNS, ids=[_id(d) for d in DESIGNS])
def design(request, tmp_path_factory):
    return _design(request.param, tmp_path_factory)


@pytest.mark.parametrize("spec", DESIGNS + LINT_ONLY, ids=[_id(d) for d in DESIGNS + LINT_ONLY])
def test_verilator_lint_wall_clean(spec, tmp_path_factory):
    d = _design(spec, tmp_path_factory)
    assert (d / "lint.vlt").read_text() == LINT_VLT
    rc, warnings, errors, err = _lint(d, "lint.vlt", "-f", "files.f")
    assert not errors, err[-2000:]
    assert not warnings, "\n".join(f"%Warning-{r}: {m}" for r, m in warnings[:20])
    assert rc == 0, err[-2000:]


@pytest.mark.parametrize("wl, width", [("u8.yaml", 8), ("u16.yaml", 16), ("u8i8.yaml", 8), ("i4i8.yaml", 8)])
def test_ld_data_is_the_widest_bank_word(wl, width, tmp_path_factory):
    """An unsigned input is loaded in its own bits (no sign container on the host port)."""
    import json
    spec = next(s for s in LINT_ONLY if s[0] == wl)
    man = json.loads((_design(spec, tmp_path_factory) / "manifest.json").read_text())
    assert {p["name"]: p["width"] for p in man["ports"]}["ld_data"] == width


def test_yosys_no_latches_no_loops(design):
    res = synth(design, "generic")
    assert res["latches"] == 0
    assert not res["comb_loops"]
    assert res["cells"] > 0


def _waivers():
    """[(rule, glob)] of LINT_VLT, each a -match waiver with a comment line just above it."""
    lines = LINT_VLT.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("lint_off"):
            m = re.fullmatch(r'lint_off -rule (\w+) -file "\*" -match "([^"]+)"', line)
            assert m, f"not narrowed with -match: {line}"
            assert lines[i - 1].startswith("//"), f"no reason given for: {line}"
            out.append(m.groups())
    return out


def _glob_matches(glob, msg):
    """Verilator's -match: * and ? wildcards, and (5.04x) the glob has to match a prefix of the message."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.match(rx, msg, re.S) is not None


def test_every_waiver_is_narrow_and_needed(tmp_path_factory):
    """No rule-wide waiver; each one has a reason, and some design needs it (else it should go)."""
    waivers = _waivers()
    used = set()
    for spec in DESIGNS + LINT_ONLY:
        _, warnings, _, _ = _lint(_design(spec, tmp_path_factory), "-f", "files.f")   # without lint.vlt
        for r, m in warnings:
            used |= {i for i, (wr, g) in enumerate(waivers) if wr == r and _glob_matches(g, m)}
    unused = [waivers[i] for i in range(len(waivers)) if i not in used]
    assert not unused, f"waivers that no design needs: {unused}"


BAD_V = """module lego_bad(input [3:0] cnt, input [15:0] w16, input [7:0] a8, input [15:0] b16, input [7:0] u8,
                output hit, output [7:0] y8, output [15:0] s16, output [3:0] lo, output ge0, output [15:0] z16,
                input [7:0] v8, output nz);
  assign hit = cnt == 5'h13;
  assign y8 = w16;
  assign s16 = a8 + b16;
  assign lo = u8[3:0];
  assign ge0 = a8 >= 8'h00;
  assign z16 = a8;
  assign nz = !v8;
endmodule
"""


@pytest.mark.parametrize("rule, message", [
    ("WIDTHEXPAND", "Operator EQ expects 5 bits on the LHS, but LHS's VARREF 'cnt' generates 4 bits."),
    ("WIDTHTRUNC", "Operator ASSIGNW expects 8 bits on the Assign RHS, but Assign RHS's VARREF 'w16' generates "
                   "16 bits."),
    ("WIDTHEXPAND", "Operator ADD expects 16 bits on the LHS, but LHS's VARREF 'a8' generates 8 bits."),
    ("WIDTHEXPAND", "Operator ASSIGNW expects 16 bits on the Assign RHS, but Assign RHS's VARREF 'a8' generates "
                    "8 bits."),
    ("UNUSEDSIGNAL", "Bits of signal are not used: 'w16'[15:8]"),
    ("UNUSEDSIGNAL", "Bits of signal are not used: 'u8'[7:4]"),
    ("UNSIGNED", "Comparison is constant due to unsigned arithmetic"),
])
def test_waivers_keep_real_width_bugs(tmp_path, rule, message):
    """Width mismatches of named signals (a 4-bit counter compared with 19, truncation or extension on an
    assignment, a narrow named operand), unused bits of a named signal and constant comparisons still warn
    with lint.vlt; only the backend's `!x` (LOGNOT) of the same file is waived."""
    (tmp_path / "lego_bad.v").write_text(BAD_V)
    (tmp_path / "lint.vlt").write_text(LINT_VLT)
    rc, warnings, errors, err = _lint(tmp_path, "lint.vlt", "lego_bad.v")
    assert not errors, err
    assert (rule, message) in warnings, err
    assert not any("LOGNOT" in m for _, m in warnings), err
    assert rc != 0

"""The programmable design's Verilog is lint-clean: ``verilator --lint-only -Wall lint.vlt -f files.f`` gives
zero warnings and errors (as tests/lego/emit/test_files.py::test_verilator_lint_wall_clean does for the
fixed-shape designs). lint.vlt is lego's backend waivers (``LINT_VLT``, each narrowed with -match) and one
more, the reserved bits of the command word (``PROG_LINT``); generator logic that makes a warning fails here.
Arrays, dataflow sets and AXI widths vary the DMA lanes, the cyclic banking and the burst arithmetic."""
import re

import pytest

from lego.emit.files import LINT_VLT
from lego.prog.generate import PROG_LINT, generate_prog
from lego.toolchain import verilator_lint

# (array, dataflows, dram_bits[, read bursts outstanding; default lego gen's]), 1 KiB scratchpad and
# accumulator
DESIGNS = [
    ("2x2", ("ws",), 64),
    ("4x4", ("ws", "os"), 128),
    ("3x2", ("os", "is", "ws"), 256),
    ("2x2", ("os", "is", "ws"), 64),
    ("8x8", ("ws",), 64),
    ("2x2", ("ws",), 64, 1),
    ("2x4", ("os",), 256, 3),
    ("2x2", ("ws", "os"), 128, 16),
]
_DIRS = {}


def _id(spec):
    arr, dfs, db, *o = spec
    return f"{arr}-{'+'.join(dfs)}-b{db}" + (f"-o{o[0]}" if o else "")


def _design(spec, tmp_path_factory):
    if spec not in _DIRS:
        arr, dfs, db, *o = spec
        out = tmp_path_factory.mktemp("p") / "d"
        generate_prog("gemm", arr, dfs, 8, 1, 1, db, True, out, outstanding=o[0] if o else None)
        _DIRS[spec] = out
    return _DIRS[spec]


_lint = verilator_lint


@pytest.mark.parametrize("spec", DESIGNS, ids=[_id(d) for d in DESIGNS])
def test_prog_verilator_lint_wall_clean(spec, tmp_path_factory):
    d = _design(spec, tmp_path_factory)
    assert (d / "lint.vlt").read_text() == LINT_VLT + PROG_LINT
    rc, warnings, errors, err = _lint(d, "lint.vlt", "-f", "files.f")
    assert not errors, err[-2000:]
    assert not warnings, f"{len(warnings)} warnings:\n" + "\n".join(f"%Warning-{r}: {m}" for r, m in warnings[:20])
    assert rc == 0, err[-2000:]


def test_prog_waiver_is_narrow_and_needed(tmp_path_factory):
    """The one waiver of PROG_LINT is narrowed with -match, has its reason, and is what the reserved bits
    need: without it, the only warning beyond LINT_VLT's is that one."""
    lines = PROG_LINT.splitlines()
    rules = [ln for ln in lines if ln.startswith("lint_off")]
    assert len(rules) == 1 and lines[lines.index(rules[0]) - 1].startswith("//")
    assert re.fullmatch(r'lint_off -rule UNUSEDSIGNAL -file "\*" -match "[^"*?]+"', rules[0]), rules[0]
    d = _design(DESIGNS[0], tmp_path_factory)
    (d / "base.vlt").write_text(LINT_VLT)
    _, warnings, errors, err = _lint(d, "base.vlt", "-f", "files.f")
    assert not errors, err[-2000:]
    assert warnings == [("UNUSEDSIGNAL", "Bits of signal are not used: 'cmd_data'[49:32]")], warnings

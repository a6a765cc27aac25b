"""Capacity-preserving fused banks (ArchGraph.fused, lego/prog/banks.py; docs/programmable.md): fused modes
whose port counts differ by powers of two share physical banks sized by the tile, so a fused design holds the
same tile box as a single-mode one at the same KiB; other ratios fall back to (most banks) x (deepest bank),
and the manifest says so."""
import json

import pytest

from lego.cli import main
from lego.prog.generate import fit_box

KIB = 1024


@pytest.mark.parametrize("array, spad, acc", [("16x16", 256, 64), ("4x4", 4, 16), ("2x4", 1, 4)])
def test_fused_box_equals_single_mode_box(array, spad, acc):
    R, C = map(int, array.split("x"))
    single = fit_box(R, C, ("ws",), 8, spad * KIB, acc * KIB)
    fused = fit_box(R, C, ("ws", "os", "is"), 8, spad * KIB, acc * KIB)
    assert fused[3] == single[3]
    assert fused[4] <= spad * KIB and fused[5] <= acc * KIB
    fb = fused[2].fused
    assert any(b.grouped for b in fb.values())
    assert not any(b.fallback for b in fb.values())
    for t, b in fb.items():        # every mode's logical banks fit its groups of physical banks
        for md, g in zip(fused[2].modes, b.groups):
            lay = md.nets[t].layout
            assert lay.nbanks * g == b.nbanks and lay.depth <= g * b.depth
    if array == "16x16":
        assert fused[3] == {"M": 80, "N": 80, "K": 816}


def test_fallback_is_recorded_in_the_manifest(tmp_path, capsys):
    """3x3 ws+is: X and W have 3 ports in one mode and 9 in the other (ratio 3)."""
    d = tmp_path / "d"
    assert main(["gen", "--workload", "gemm", "--array", "3x3", "--dataflow", "ws", "--dataflow", "is",
                 "--scratchpad-kib", "1", "--accumulator-kib", "4", "--out", str(d)]) == 0
    capsys.readouterr()
    banks = json.loads((d / "manifest.json").read_text())["prog"]["banks"]
    for t in "XW":
        assert banks[t]["groups"] == {"ws": 1, "is": 1}
        assert "not a power of two" in banks[t]["fallback"]
        assert banks[t]["banks"] == 9
    assert "fallback" not in banks["Y"]
    single = fit_box(3, 3, ("ws",), 8, KIB, 4 * KIB)[3]
    fused = fit_box(3, 3, ("ws", "is"), 8, KIB, 4 * KIB)
    assert fused[2].fused["X"].fallback and fused[3]["K"] < single["K"]     # the fallback costs capacity


def test_single_mode_banks_are_the_layouts():
    w, dfs, arch, box, _, _ = fit_box(4, 4, ("os",), 8, 2 * KIB, 4 * KIB)
    for t, b in arch.fused.items():
        assert not b.grouped and (b.nbanks, b.depth) == arch.banks(t)

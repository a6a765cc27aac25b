"""The hierarchical programmable core (lego/prog/hier.py): FU types are decided from a structural key before
elaborating, and every FU of a type is wired from the representative's port descriptors. Here every FU of small
arrays is elaborated for real: the key partition must equal the partition by elaborated module (statements,
ports, memories up to signal names: ``emit.hier._signature``, which also fails on a module that reads a signal
of the top), and the ports translated from the representative must equal the FU's own. So sharing a module can
never change the hardware. The flat and the hierarchical core elaborate the same delay-register bits
(report.json's emitted_bits); RTL against the cycle engine runs in tests/simulator/test_program*.py, and the
plain Verilog testbench (hand-written AXI4 slave and host) runs a hierarchical design below."""
from collections import defaultdict

import pytest
from amaranth.hdl import Fragment

from lego.cli import main
from lego.emit.hier import _signature
from lego.prim.lower import lower
from lego.prim.passes import PIPELINES
from lego.prog.generate import fit_box
from lego.prog.hier import ProgHierCore
from lego.prog.rtl import ProgTop


def _graph(R, C, dfs, kib=4):
    _, _, arch, _, _, _ = fit_box(R, C, dfs, 8, kib * 1024, kib * 1024)
    pg = lower(arch, 32, force_rmw=True)
    for p in PIPELINES["opt"]:
        pg = p(pg)
    return arch, pg


@pytest.mark.parametrize("R, C, df, kib", [(4, 4, "ws", 1), (5, 3, "ws", 2), (3, 4, "os", 4), (4, 3, "is", 4),
                                            (6, 6, "ws", 4)])
def test_key_partition_equals_elaborated_partition(R, C, df, kib):
    arch, pg = _graph(R, C, (df,), kib)
    core = ProgHierCore(arch, pg, "t")
    assert core.hier
    core._plan()
    core.emitted_bits, core._okc, core.val, core.chains = 0, {}, {}, {}
    by_key, by_sig, ctxs, keys = defaultdict(set), defaultdict(set), {}, {}
    for fu in core.groups:
        ctx = ctxs[fu] = core._build(fu)
        sig = _signature(Fragment.get(ctx.m, None), ctx.ports(), len(ctx.inputs), list(ctx.mems.values()))
        assert not sig.startswith("unique"), fu
        keys[fu] = core.fu_key(fu)
        by_key[keys[fu]].add(fu)
        by_sig[sig].add(fu)
    assert len(core.groups) == R * C
    assert sorted(map(sorted, by_key.values())) == sorted(map(sorted, by_sig.values()))
    assert 1 < len(by_key) <= 9                  # shared, and the types are few
    if df == "ws":
        assert core.fu_banks == {"W"}            # the per-PE W bank moved into the FU
    for members in by_key.values():
        rep = min(members)
        for fu in members:                       # the representative's ports, translated, are the FU's own
            own, mine = ctxs[fu], ctxs[rep]
            assert [core._resolve(d, fu) for _, d in mine.inputs] == [core._resolve(d, fu) for _, d in own.inputs]
            assert [d for _, d in mine.outputs] == [d for _, d in own.outputs]
            assert [p.name for p in mine.ports()] == [p.name for p in own.ports()]


def test_translation_is_not_trivial():
    """The descriptors do move: FUs of one type read control fields, taps and bound checks at depths that
    differ from the representative's (a translation that ignored the FU would fail the test above only
    where they differ)."""
    arch, pg = _graph(4, 4, ("ws",))
    core = ProgHierCore(arch, pg, "t")
    core._plan()
    core.emitted_bits, core._okc, core.val, core.chains = 0, {}, {}, {}
    rep = core._build((1, 1))
    Fragment.get(rep.m, None)
    a = [core._resolve(d, (1, 1)) for _, d in rep.inputs]
    b = [core._resolve(d, (2, 2)) for _, d in rep.inputs]
    assert core.fu_key((1, 1)) == core.fu_key((2, 2))
    kinds = {x[0] for x, y in zip(a, b) if x != y}
    assert {"tap", "ctl", "ok"} <= kinds, kinds


@pytest.mark.parametrize("R, C, dfs", [(4, 4, ("ws",)), (3, 4, ("os",)), (4, 4, ("ws", "os"))])
def test_hier_and_flat_elaborate_the_same_register_bits(R, C, dfs):
    arch, pg = _graph(R, C, dfs)
    bits = []
    for hier in (True, False):
        top = ProgTop(arch, pg, 64)
        top.core.hier = top.core.hier and hier
        Fragment.get(top, None)
        bits.append(top.core.emitted_bits)
        assert bool(top.modules()) == (hier and len(dfs) == 1)
    assert bits[0] == bits[1] > 0


@pytest.mark.parametrize("argv, says", [
    (["--array", "129x4", "--dataflow", "ws"], "--array: 129x4 is out of range (1..128 per side)"),
    (["--array", "4x200", "--dataflow", "os"], "--array: 4x200 is out of range (1..128 per side)"),
    (["--array", "65x4", "--dataflow", "ws", "--dataflow", "os"],
     "--array: 65x4 is out of range for fused dataflows (1..64 per side; a single --dataflow allows 1..128)"),
])
def test_programmable_array_limit(argv, says, tmp_path, capsys):
    """A single-dataflow programmable array goes to 128 per side, a fused one (emitted flat) to 64: exit 2,
    one line naming --array, nothing written."""
    out = tmp_path / "d"
    rc = main(["gen", "--workload", "gemm", *argv, "--scratchpad-kib", "256", "--accumulator-kib", "256",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.splitlines() == [f"lego: error: {says}"], err
    assert not out.exists()

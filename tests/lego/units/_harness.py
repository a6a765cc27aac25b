"""Shared pytest side of the unit benches: run a ``<name>_bench.py`` cocotb bench on a generated top, lint
a unit with the project's lint.vlt only, and the checks common to the row units (LayerNormUnit,
SoftmaxUnit) on what ``_bench.stream_rows`` recorded."""
from __future__ import annotations

import json
from pathlib import Path

from lego.toolchain import run_cocotb
from lego.units.harness import lint

HERE = Path(__file__).parent


def run_bench(name: str, engine: str, src: Path, stim: Path, work: Path) -> dict:
    """Run ``<name>_bench.py`` against ``<name>_top`` in ``src`` under ``engine`` with the stimulus file
    ``stim``; the result JSON it wrote (building in ``work``)."""
    result = work / f"result_{engine}.json"
    ok = run_cocotb(engine=engine, sources=[src], top=f"{name}_top", test_module=f"{name}_bench",
                    test_dir=HERE, build_dir=work / f"build_{engine}",
                    extra_env={f"{name.upper()}_STIM": str(stim), f"{name.upper()}_RESULT": str(result)})
    assert ok, f"cocotb bench failed under {engine}"
    return json.loads(result.read_text())


def assert_lint_clean(src: Path, top: str, workdir: Path) -> None:
    """verilator -Wall with the project's lint.vlt: nothing left (no truncation in our logic)."""
    res = lint(src, top, workdir)
    assert res.returncode == 0, res.stderr
    assert "%Warning" not in res.stderr, res.stderr


def check_rows_exact(design: dict, sim: dict, length: str) -> None:
    """Every row of every unit: out_index 0..n-1 in order and out_data the reference's row."""
    for k, (u, got) in enumerate(zip(design["units"], sim["units"])):
        n = u[length]
        assert len(got["rows"]) == len(u["rows"])
        for i, (row, exp) in enumerate(zip(got["rows"], u["expected"])):
            assert [o[0] for o in row["outs"]] == list(range(n)), f"u{k} row {i}: out_index order"
            assert [o[1] for o in row["outs"]] == exp, f"u{k} ({length}={n}) row {i}: {u['rows'][i][:8]}"


def check_rows_protocol(design: dict, sim: dict, length: str, cycles, first_out: int | None = None) -> None:
    """Per row: outputs in consecutive cycles, ``cycles(n)`` plus the input gaps from first accept to last
    output (``first_out`` cycles from the last accept to the first output where given), rows without gaps
    back to back, and busy high from the cycle after the first accept through the last output only."""
    for k, (u, got) in enumerate(zip(design["units"], sim["units"])):
        n, busy = u[length], got["busy_trace"]
        prev_end = None
        for i, row in enumerate(got["rows"]):
            oc = row["out_cycles"]
            assert oc == list(range(oc[0], oc[0] + n)), f"u{k} row {i}: outputs not consecutive"
            gaps = row["last_accept"] - row["first_accept"] - (n - 1)
            assert gaps >= 0 and (gaps > 0) <= u["gappy"][i]
            if first_out is not None:
                assert oc[0] - row["last_accept"] == first_out, \
                    f"u{k} row {i}: first output {oc[0] - row['last_accept']}"
            span = oc[-1] + 1 - row["first_accept"]
            assert span == cycles(n) + gaps, f"u{k} row {i}: {span} cycles"
            if prev_end is not None and not u["gappy"][i]:
                assert row["first_accept"] == prev_end, f"u{k} row {i}: not back to back"
            prev_end = oc[-1] + 1
            assert all(busy[c] for c in range(row["first_accept"] + 1, oc[-1] + 1)), f"u{k} row {i}"
            assert not busy[row["first_accept"]] and not busy[oc[-1] + 1], f"u{k} row {i}"
        assert not any(busy[-3:])

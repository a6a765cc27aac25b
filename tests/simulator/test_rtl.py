"""The RTL engines' build cache: keyed by the toolchain as well as the Verilog, and self-healing when a
cached build directory is stale (a build made by another checkout's venv referenced files that no
longer exist and every Verilator run failed with make's 'No rule to make target')."""
from pathlib import Path

import pytest

from lego.generate import generate
from lego.toolchain import BuildError, run_cocotb
from simulator import rtl
from simulator.engine import get_engine


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "d"
    generate("gemm", "M=3,N=2,K=3", "2x1", ("os",), 8, True, out)
    return out


def test_key_depends_on_toolchain(design, monkeypatch):
    a = rtl.build_dir_for(design, "verilator")
    monkeypatch.setattr(rtl, "toolchain_id", lambda engine: "/elsewhere/.venv|verilator|2.1.0")
    assert rtl.build_dir_for(design, "verilator") != a
    assert rtl.build_dir_for(design, "verilator").parent == a.parent


@pytest.mark.rtl
def test_stale_cached_build_is_rebuilt(design, tmp_path, monkeypatch):
    monkeypatch.setattr(rtl, "CACHE", tmp_path / "cache")
    eng = get_engine("verilator")
    assert eng.run(design, seed=1).match
    bd = rtl.build_dir_for(design, "verilator")
    deps = list(bd.glob("*.d"))
    assert deps
    for d in deps:  # what a build from a deleted checkout leaves behind
        d.write_text(d.read_text().replace(".venv/", ".venv-gone/"))
    rep = eng.run(design, seed=2)
    assert rep.match and rep.cycles == get_engine("cycle").run(design, seed=2).cycles
    assert not any(".venv-gone/" in d.read_text() for d in bd.glob("*.d"))


@pytest.mark.rtl
def test_build_error_names_the_first_error(tmp_path):
    src = tmp_path / "bad.v"
    src.write_text("module bad(input clk); wire x = ; endmodule\n")
    with pytest.raises(BuildError, match=r"icarus: building bad failed: .*(log: .*build\.log\))"):
        run_cocotb(engine="icarus", sources=[src], top="bad", test_module="nothing", test_dir=tmp_path,
                   build_dir=tmp_path / "b")

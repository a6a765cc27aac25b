"""The layers of docs/ARCHITECTURE.md §5, checked on the source: import-linter's contracts from
pyproject.toml (sw_reference <- lego <- simulator <- accelerators; imports inside functions count), no
circle in the module import graph, and no generated file that reaches into the repository."""
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sw_reference", "lego", "simulator", "accelerators", "cuda_kernels")


def test_lint_imports_contracts_kept():
    r = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_no_import_cycles():
    g = grimp.build_graph(*PACKAGES, cache_dir=None)
    G = nx.DiGraph()
    for m in g.modules:
        G.add_node(m)
        for i in g.find_modules_directly_imported_by(m):
            G.add_edge(m, i)
    cycles = list(nx.simple_cycles(G))
    assert not cycles, cycles[:5]


def test_contract_catches_an_upward_import(tmp_path):
    """The layers contract can fail: an import of simulator inside a function of lego breaks it."""
    for pkg in PACKAGES:
        (tmp_path / pkg).symlink_to(ROOT / pkg)
    bad = tmp_path / "lego_bad"
    bad.mkdir()
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text().replace(
        'root_packages = ["sw_reference", "lego",', 'root_packages = ["sw_reference", "lego", "lego_bad",').replace(
        'layers = ["accelerators", "simulator", "lego", "sw_reference"]',
        'layers = ["accelerators", "simulator", "lego_bad", "lego", "sw_reference"]'))
    (bad / "__init__.py").write_text("")
    (bad / "m.py").write_text("def f():\n    from accelerators import base\n    return base\n")
    r = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=tmp_path,
                       capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "lego_bad.m -> accelerators.base" in r.stdout, r.stdout[-2000:]


def test_generated_files_do_not_reach_into_the_repository(tmp_path):
    from lego.generate import generate
    generate("gemm", "M=3,N=3,K=3", "2x2", ("os", "ws"), 8, True, tmp_path / "d")
    for p in (tmp_path / "d").rglob("*"):
        if p.is_file() and p.suffix in (".py", ".sh", ".json", ".core", ".f"):
            text = p.read_text()
            assert str(ROOT) not in text, p
            assert "sys.path.insert" not in text or p.name == "test_design.py", p

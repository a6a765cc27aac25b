"""The one writer and the one reader of a design directory, for arrays and accelerators alike
(docs/ARCHITECTURE.md §3): ``<top>.v`` and other sources, ``files.f``, ``manifest.json`` (with
``schema_version``), ``report.json``, ``<top>.core``, ``lint.vlt``, ``tb/`` (for an accelerator with
``tb/lego_standalone.py``, what its ``tb/run.py`` shares), written atomically."""
from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..errors import LegoError
from . import fusesoc
from .outdir import dumps, write_atomic

SCHEMA_VERSION = 2          # manifest.json; 1 = before the host protocol was written down (no ld_tensor)
KINDS = ("array", "accelerator", "programmable")
REQUIRED = ("top", "kind", "ports", "tensors", "lego_version", "schema_version")


def write_design(out: Path, *, top: str, kind: str, sources: dict[str, str], manifest: dict, report: dict,
                 tb: dict[str, str], lint: str = "", extra: dict | None = None, force: bool = False,
                 description: str = "") -> dict:
    """Write the directory (everything or nothing). ``sources``: Verilog files in ``files.f`` order;
    ``manifest``: the design's own keys (``ports`` and ``tensors`` at least); ``tb``: files under tb/;
    ``lint``: waivers appended to lego's backend waivers. Returns the manifest as written."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}")
    man = {**manifest, "schema_version": SCHEMA_VERSION, "kind": kind, "top": top, "lego_version": __version__}
    missing = [k for k in REQUIRED if k not in man]
    if missing:
        raise ValueError(f"manifest lacks {missing}")
    from .files import LINT_VLT        # lego.design and the arch graph: not loaded by readers (read_manifest)
    files: dict[str, str | bytes] = dict(sources)
    files["files.f"] = "".join(f"{rel}\n" for rel in sources)
    files["manifest.json"] = dumps(man)
    files["report.json"] = dumps(report)
    files[f"{top}.core"] = fusesoc.core_for(top, __version__, description or f"lego {top}",
                                            man if kind == "array" else None)
    files["lint.vlt"] = LINT_VLT + lint
    if kind == "accelerator":
        files["tb/lego_standalone.py"] = (Path(__file__).parent / "tb_standalone.py").read_text()
    files.update({rel if rel.startswith("tb/") else f"tb/{rel}": text for rel, text in tb.items()})
    files.update(extra or {})
    write_atomic(Path(out), files, force)
    return man


def read_manifest(design_dir: Path) -> dict:
    """``DIR/manifest.json``, checked: a design directory of a schema this lego reads."""
    p = Path(design_dir) / "manifest.json"
    if not Path(design_dir).is_dir():
        raise LegoError(f"DIR: '{design_dir}' is not a lego design directory (no such directory)")
    if not p.is_file():
        raise LegoError(f"DIR: '{design_dir}' is not a lego design directory (no manifest.json)")
    try:
        man = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LegoError(f"{p}: not valid JSON") from None
    if not isinstance(man, dict):
        raise LegoError(f"{p}: not a manifest (a JSON object)")
    v = man.get("schema_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise LegoError(f"{p}: schema_version missing (made by an older lego; regenerate the design)")
    if v != SCHEMA_VERSION:
        newer = "a newer" if v > SCHEMA_VERSION else "an older"
        raise LegoError(f"{p}: schema_version {v} is from {newer} lego (this lego reads {SCHEMA_VERSION}; "
                        f"regenerate the design)")
    if man.get("kind") not in KINDS:
        raise LegoError(f"{p}: kind {man.get('kind')!r} is not one of {', '.join(KINDS)}")
    return man

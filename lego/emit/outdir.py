"""Writing a design directory atomically (build in a temporary sibling, then rename)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import LegoError

MARKER = ".lego"          # a directory made by lego carries this file; others are not overwritten


def check_target(out: Path, force: bool) -> None:
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise LegoError(f"--out: '{out}' exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).exists() and not force:
            raise LegoError(f"--out: '{out}' exists and was not made by lego (use --force to overwrite)")
    parent = out.resolve().parent
    if not parent.exists():
        raise LegoError(f"--out: parent directory '{parent}' does not exist")
    if not os.access(parent, os.W_OK):
        raise LegoError(f"--out: parent directory '{parent}' is not writable")


def write_atomic(out: Path, files: dict[str, str | bytes], force: bool = False) -> None:
    """files: relative path -> content. Everything or nothing appears at ``out``."""
    out = Path(out)
    check_target(out, force)
    parent = out.resolve().parent
    umask = os.umask(0)
    os.umask(umask)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    try:
        for rel, content in sorted(files.items()):
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content)
            if rel.endswith(".sh"):
                p.chmod(0o777 & ~umask)
        (tmp / MARKER).write_text("made by lego gen\n")
        for d in [tmp, *(x for x in tmp.rglob("*") if x.is_dir())]:
            d.chmod(0o777 & ~umask)              # mkdtemp makes 0700; a directory follows the umask
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.rename(out, old / "d")
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"

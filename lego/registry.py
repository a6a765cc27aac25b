"""Plug-in registries: how the CLI finds engines, accelerators and tools without importing them by name.

Three groups of Python entry points, declared in ``pyproject.toml`` (the convention of cocotb's runners
and pytest's plug-ins), so a third-party package adds an engine or an accelerator by declaring one in its
own metadata, without editing lego:

* ``lego.engines``: an :class:`simulator.engine.Engine` class, instantiated with no arguments;
* ``lego.accelerators``: an :class:`accelerators.base.Accelerator` instance;
* ``lego.tools``: a command-line tool object (``lego sim --model``, ``lego explore``).

``register`` adds an entry in-process (tests, notebooks): it wins over an entry point of the same name.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from .errors import LegoError

ENGINES = "lego.engines"
ACCELERATORS = "lego.accelerators"
TOOLS = "lego.tools"
GROUPS = (ENGINES, ACCELERATORS, TOOLS)
FIELDS = {ENGINES: "--engine", ACCELERATORS: "--accelerator", TOOLS: "tool"}

_local: dict[str, dict[str, object]] = {g: {} for g in GROUPS}
_loaded: dict[tuple[str, str], object] = {}


def _points(group: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=group)}


def register(group: str, name: str, obj: object) -> None:
    """Add (or replace) ``name`` in ``group`` for this process."""
    if group not in GROUPS:
        raise ValueError(f"unknown registry group {group!r}")
    _local[group][name] = obj
    _loaded.pop((group, name), None)


def unregister(group: str, name: str) -> None:
    _local[group].pop(name, None)
    _loaded.pop((group, name), None)


def names(group: str) -> list[str]:
    """Registered names of ``group``, sorted."""
    return sorted(set(_points(group)) | set(_local[group]))


def get(group: str, name: str) -> object:
    """The registered object ``name`` of ``group`` (an entry point is loaded once per process)."""
    if name in _local[group]:
        return _local[group][name]
    key = (group, name)
    if key not in _loaded:
        ep = _points(group).get(name)
        if ep is None:
            raise LegoError(f"{FIELDS[group]}: unknown {group.split('.')[1][:-1]} '{name}' "
                            f"(allowed: {', '.join(names(group)) or 'none registered'})")
        _loaded[key] = ep.load()
    return _loaded[key]

"""The one configuration scaffold of every accelerator: a frozen dataclass that mixes in ``Config`` gets
type checking of its fields, YAML in and out with unknown keys and wrong types refused (one line that
names the field), presets as the base of a YAML file (``preset: NAME``), and ``replace``.

    @dataclass(frozen=True)
    class MyConfig(Config):
        lanes: int = 4
        clock_ghz: float = 1.0
        def validate(self): need(self, self.lanes >= 1, "lanes", "must be >= 1")
        @classmethod
        def presets(cls): return {"small": cls(lanes=2), "big": cls(lanes=64)}

Field types are read from the annotations: ``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``,
``tuple[str, ...]`` and nested ``Config`` dataclasses (a mapping in YAML).
"""
from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

from lego.errors import LegoError


def need(cfg: Any, cond: bool, field: str, msg: str) -> None:
    """Raise ``LegoError('<field>: <msg>, got <value>')`` unless ``cond``."""
    if not cond:
        raise LegoError(f"{field}: {msg}, got {getattr(cfg, field.rsplit('.', 1)[-1], None)!r}")


def _check(value: Any, tp: Any, field: str) -> Any:
    """``value`` as type ``tp`` (YAML lists become tuples), or LegoError naming ``field``."""
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise LegoError(f"{field}: must be true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LegoError(f"{field}: must be an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise LegoError(f"{field}: must be a finite number, got {value!r}")
        return float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise LegoError(f"{field}: must be a string, got {value!r}")
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise LegoError(f"{field}: must be a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(v, args[0], f"{field}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise LegoError(f"{field}: must have {len(args)} entries, got {value!r}")
        return tuple(_check(v, a, f"{field}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        return _check(value, next(a for a in args if a is not type(None)), field)
    elif isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        return tp._from_mapping(value, field)
    return value


class Config:
    """Mixin for a frozen dataclass (see the module docstring)."""

    @classmethod
    def presets(cls) -> dict[str, "Config"]:
        return {"default": cls()}

    @classmethod
    def preset(cls, name: str):
        ps = cls.presets()
        if name not in ps:
            raise LegoError(f"preset: unknown {cls.__name__} preset '{name}' (allowed: {', '.join(ps)})")
        return ps[name]

    def validate(self) -> None:
        """Range checks, with ``need``; type checks are done before."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            v = _check(getattr(self, f.name), hints[f.name], f.name)
            object.__setattr__(self, f.name, v)       # lists from YAML become tuples, ints floats
        self.validate()

    def replace(self, **kw: Any):
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        def plain(v):
            if isinstance(v, Config):
                return v.to_dict()
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            return v
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def _from_mapping(cls, d: Any, where: str = "config", base=None):
        if not isinstance(d, dict):
            raise LegoError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(d).__name__}")
        d = dict(d)
        if base is None:
            base = cls.preset(str(d.pop("preset"))) if "preset" in d else cls()
        known = [f.name for f in dataclasses.fields(cls)]
        pre = f"{where}." if where != "config" else ""
        for k in d:
            if k not in known:
                allowed = (["preset"] if where == "config" else []) + known
                raise LegoError(f"{pre}{k}: unknown {cls.__name__} field (allowed: {', '.join(allowed)})")
        hints = typing.get_type_hints(cls)
        kw = {}
        for k, v in d.items():
            sub = hints[k]
            if isinstance(sub, type) and issubclass(sub, Config) and isinstance(v, dict):
                v = sub._from_mapping(v, f"{pre}{k}", getattr(base, k))
            kw[k] = _check(v, sub, f"{pre}{k}")
        return dataclasses.replace(base, **kw)

    @classmethod
    def from_dict(cls, d: Any):
        return cls._from_mapping(d)

    @classmethod
    def from_yaml(cls, path: str | Path):
        import yaml
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise LegoError(f"--config: cannot read '{p}' ({e.strerror})") from None
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise LegoError(f"--config: '{p}' is not valid YAML ({str(e).splitlines()[0]})") from None
        return cls.from_dict(d if d is not None else {})

    def to_yaml_text(self) -> str:
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml_text())

"""Configuration: nested dataclasses are the single source of truth.

Each stage owns its section (``voyager_pipe/<stage>/config.py``); this module composes them
into :class:`PipelineConfig` (everything ``gen`` depends on) and :class:`ConfigFile` (what a
config file may hold: the gen settings plus the ``eval`` section, which never enters a gen run,
so changing an eval option never blocks ``gen --resume``), and provides the shared machinery:

* :func:`load_config` reads a YAML file (``yaml.safe_load`` only), then applies ``--set``
  overrides such as ``render.splat_radius=2``, then typed values from command-line flags
  (:func:`load_file` for the whole file, e.g. the ``eval`` command);
* every value is type-checked against the dataclass annotation and against the bounds declared
  on its field (``option(..., min=, max=, above=)``); unknown keys, NaN/inf numbers and values
  out of bounds are :class:`InputError` naming the field;
* :func:`dump_config` writes the resolved config next to an output (atomically);
* :func:`defaults_yaml` renders every default with its help (``configs/default.yaml`` is
  generated from it, and a test keeps them equal).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin

import yaml

from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.distributed import ParallelConfig
from voyager_pipe.errors import InputError
from voyager_pipe.generate.config import GenerateConfig, WarpConfig
from voyager_pipe.metrics.config import EvalConfig
from voyager_pipe.models.config import VoyagerConfig
from voyager_pipe.options import bounds_text, option
from voyager_pipe.render.config import RenderConfig
from voyager_pipe.world.config import CacheConfig

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 64-bit seeds


@dataclass
class OutputConfig:
    fps: int = option(12, "frames per second of video.mp4 and video_rgbd.mp4", min=1, max=240)
    write_video: bool = option(True, "write video.mp4 (RGB) and video_rgbd.mp4 (RGB | coloured depth)")
    write_ply: bool = option(True, "write the world cache as world.ply")


@dataclass
class PipelineConfig:
    """Everything a ``gen`` run depends on; written as ``config.yaml`` next to every output."""

    seed: int = option(0, "random seed of the run (noise, and the world cache's random thinning)", min=0, max=MAX_SEED)
    device: str = option("auto", "torch device of every command: auto (cuda when available), cpu, cuda, cuda:1, ...")
    depth: DepthConfig = field(default_factory=DepthConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    voyager: VoyagerConfig = field(default_factory=VoyagerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)


@dataclass
class ConfigFile(PipelineConfig):
    """What a config file may hold: the gen settings plus the sections of other commands (``eval``)."""

    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------- machinery
def _check_value(value: Any, annotation: Any, where: str) -> Any:
    """Coerce ``value`` (from YAML) to ``annotation`` or raise InputError naming ``where``."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(value, arg, where)
            except InputError as exc:
                errors.append(str(exc).removeprefix(f"{where}: "))
        null = " or null" if type(None) in args else ""
        raise InputError(f"{where}: {'; '.join(errors)}{null}")
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {_short(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise InputError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        out = [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {_short(value)}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping of {annotation.__name__} fields, got {_short(value)}")
        return _from_dict(annotation, value, where)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected true/false, got {_short(value)}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected an integer, got {_short(value)}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                raise InputError(f"{where}: {_short(value)} is too large") from None
            if not math.isfinite(number):
                raise InputError(f"{where}: expected a finite number, got {value!r}")
            return number
        raise InputError(f"{where}: expected a number, got {_short(value)}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise InputError(f"{where}: expected a string, got {_short(value)}")
    if annotation is type(None):
        if value is None:
            return None
        raise InputError(f"{where}: expected null, got {_short(value)}")
    raise TypeError(f"{where}: unsupported config type {annotation}")  # a bug in a config dataclass


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_bounds(value: Any, meta: Mapping, where: str) -> None:
    """Refuse a number outside the bounds declared on its field (``None`` is never bounded)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low_ok = value > meta["above"] if "above" in meta else value >= meta.get("min", value)
    if not low_ok or value > meta.get("max", value):
        raise InputError(f"{where}: {_short(value)} is out of bounds (must be {bounds_text(meta)})")


def _checked_field(cls_or_cfg: Any, key: str, value: Any, where: str) -> Any:
    hints = typing.get_type_hints(cls_or_cfg if isinstance(cls_or_cfg, type) else type(cls_or_cfg))
    value = _check_value(value, hints[key], where)
    meta = {f.name: f.metadata for f in dataclasses.fields(cls_or_cfg)}[key]
    items = value if isinstance(value, (list, tuple)) else (value,)
    for item in items:
        _check_bounds(item, meta, where)
    return value


def _from_dict(cls: type, data: dict, where: str = "") -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(data) - names)
    if unknown:
        raise InputError(f"{where or 'config'}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _checked_field(cls, k, v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def merge_dict(cfg: Any, data: Any, where: str = "") -> Any:
    """Return a copy of dataclass ``cfg`` with the (possibly nested) mapping ``data`` applied."""
    if not isinstance(data, dict):
        raise InputError(f"{where or 'config'}: expected a mapping, got {_short(data)}")
    names = {f.name for f in dataclasses.fields(cfg)}
    updates = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise InputError(f"{path}: unknown config key; known: {sorted(names)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            updates[key] = merge_dict(current, value, path)
        else:
            updates[key] = _checked_field(cfg, key, value, path)
    return dataclasses.replace(cfg, **updates)


def _nested(dotted: str, value: Any) -> dict:
    """``("render.splat_radius", 2)`` -> ``{"render": {"splat_radius": 2}}``."""
    out: Any = value
    for key in reversed(dotted.split(".")):
        out = {key: out}
    return out


def parse_override(text: str) -> dict:
    """``"render.splat_radius=2"`` -> ``{"render": {"splat_radius": 2}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected key=value, e.g. render.splat_radius=2")
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise InputError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        raise InputError(f"--set {key.strip()}: cannot parse the value ({exc.__class__.__name__})") from None
    return _nested(".".join(k.strip() for k in keys), value)


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """``yaml.safe_load`` of a file; every failure (missing, not a regular file, too large, not UTF-8,
    invalid or absurdly nested YAML, python tags) is one InputError naming the file."""
    from voyager_pipe.io.reading import check_depth, read_text

    text = read_text(path, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise InputError(f"{path}: invalid YAML{where} ({' '.join(str(problem).split())})") from None
    except (RecursionError, ValueError, OverflowError, MemoryError) as exc:
        raise InputError(f"{path}: cannot parse YAML ({exc.__class__.__name__}: nested too deeply or a value out of range)") from None
    check_depth(data, str(path))
    return data


def load_file(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
              values: Mapping[str, Any] | None = None, base: ConfigFile | None = None) -> ConfigFile:
    """Defaults <- YAML file <- ``--set`` overrides <- typed ``values`` from command-line flags
    (dotted keys, e.g. ``{"generate.backend": "warp"}``); all type- and bound-checked."""
    cfg = base if base is not None else ConfigFile()
    if path is not None:
        data = read_yaml(path)
        if data is not None:
            try:
                cfg = merge_dict(cfg, data)
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from None
    for text in overrides:
        cfg = merge_dict(cfg, parse_override(text))
    for dotted, value in (values or {}).items():
        cfg = merge_dict(cfg, _nested(dotted, value))
    return cfg


def gen_config(cfg: ConfigFile | PipelineConfig) -> PipelineConfig:
    """The :class:`PipelineConfig` part of a config (drops the sections of other commands)."""
    return PipelineConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(PipelineConfig)})


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                values: Mapping[str, Any] | None = None, base: PipelineConfig | None = None) -> PipelineConfig:
    """The gen settings of :func:`load_file` (an ``eval`` section in the file is checked, then left out)."""
    full = None
    if base is not None:
        full = ConfigFile(**{f.name: getattr(base, f.name) for f in dataclasses.fields(PipelineConfig)})
    return gen_config(load_file(path, overrides, values, base=full))


def config_to_dict(cfg: Any) -> dict:
    """Plain, YAML-safe dict of a dataclass config (tuples become lists)."""

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def dump_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (re-loadable with :func:`load_config`), atomically."""
    from voyager_pipe.io.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def describe(cfg_cls: type = ConfigFile, prefix: str = "") -> list[tuple[str, Any, str]]:
    """``(dotted key, default, help)`` for every leaf option (docs, ``configs/default.yaml``)."""
    rows = []
    inst = cfg_cls()
    for f in dataclasses.fields(cfg_cls):
        value = getattr(inst, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            rows += describe(type(value), key + ".")
        else:
            help_text = f.metadata.get("help", "")
            bounds = bounds_text(f.metadata)
            rows.append((key, value, f"{help_text} ({bounds})" if bounds else help_text))
    return rows


def defaults_yaml() -> str:
    """Every default of :class:`ConfigFile` as commented YAML: the text of ``configs/default.yaml``."""
    lines = ["# Every setting of voyager-pipe with its default (generated from the code by",
             "# `python -m voyager_pipe.config > configs/default.yaml`; tests keep the two equal).",
             "# Copy the lines you change into your own file: --config FILE, or --set key=value."]
    section = None
    for key, value, help_text in describe():
        parts = key.split(".")
        if len(parts) == 2 and parts[0] != section:
            section = parts[0]
            lines.append(f"{section}:")
        indent = "  " * (len(parts) - 1)
        rendered = yaml.safe_dump({parts[-1]: value}, default_flow_style=True, width=10_000).strip()[1:-1]
        lines.append(f"{indent}# {help_text}")
        lines.append(f"{indent}{rendered}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(defaults_yaml(), end="")

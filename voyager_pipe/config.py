"""Configuration: nested dataclasses are the single source of truth.

Each stage owns its section (``voyager_pipe/<stage>/config.py``); this module composes them
into :class:`PipelineConfig` and provides the machinery shared by all of them:

* :func:`load_config` reads a YAML file (``yaml.safe_load`` only) and applies dotted
  overrides such as ``render.splat_radius=2``;
* every value is type-checked against the dataclass annotation; unknown keys are errors;
* :func:`dump_config` writes the resolved config next to an output.

Every field carries a one-line ``help`` in its metadata (:func:`option`), shown by
``voyager-pipe config`` style listings and in the docs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from voyager_pipe.errors import InputError
from voyager_pipe.options import option


from voyager_pipe.depth.config import DepthConfig
from voyager_pipe.distributed import ParallelConfig
from voyager_pipe.generate.config import GenerateConfig, WarpConfig
from voyager_pipe.metrics.config import EvalConfig
from voyager_pipe.models.config import VoyagerConfig
from voyager_pipe.render.config import RenderConfig
from voyager_pipe.world.config import CacheConfig


@dataclass
class OutputConfig:
    fps: int = option(12, "frames per second of video.mp4")
    write_video: bool = option(True, "write video.mp4 (RGB) and depth_video.mp4")
    write_ply: bool = option(True, "write the world cache as world.ply")


@dataclass
class PipelineConfig:
    """Everything a ``gen`` run depends on; written as ``config.yaml`` next to every output."""

    seed: int = option(0, "random seed of the run")
    device: str = option("auto", "torch device: auto (cuda when available), cpu, cuda, cuda:1, ...")
    depth: DepthConfig = field(default_factory=DepthConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    voyager: VoyagerConfig = field(default_factory=VoyagerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)


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
                errors.append(str(exc))
        raise InputError(f"{where}: {value!r} does not match {annotation}")
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise InputError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        out = [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping of {annotation.__name__} fields, got {value!r}")
        return _from_dict(annotation, value, where)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise InputError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise InputError(f"{where}: expected a string, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
        raise InputError(f"{where}: expected null, got {value!r}")
    raise InputError(f"{where}: unsupported config type {annotation}")


def _from_dict(cls: type, data: dict, where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{where or 'config'}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _check_value(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def merge_dict(cfg: Any, data: dict, where: str = "") -> Any:
    """Return a copy of dataclass ``cfg`` with the (possibly nested) mapping ``data`` applied."""
    if not isinstance(data, dict):
        raise InputError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    updates = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise InputError(f"{path}: unknown config key; known: {sorted(names)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            updates[key] = merge_dict(current, value, path)
        else:
            updates[key] = _check_value(value, hints[key], path)
    return dataclasses.replace(cfg, **updates)


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
    except yaml.YAMLError as exc:
        raise InputError(f"--set {text!r}: cannot parse value ({exc.__class__.__name__})") from None
    out: dict = value
    for k in reversed(keys):
        out = {k: out}
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: PipelineConfig | None = None) -> PipelineConfig:
    """Defaults <- YAML file <- ``--set`` overrides, all type-checked."""
    cfg = base if base is not None else PipelineConfig()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise InputError(f"{path}: cannot read config ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: invalid YAML ({exc})") from None
        if data:
            try:
                cfg = merge_dict(cfg, data)
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from None
    for text in overrides:
        cfg = merge_dict(cfg, parse_override(text))
    return cfg


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
    """Write the resolved config as YAML (re-loadable with :func:`load_config`)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def describe(cfg_cls: type = PipelineConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """``(dotted key, default, help)`` for every leaf option, for docs and ``--help`` listings."""
    rows = []
    inst = cfg_cls()
    for f in dataclasses.fields(cfg_cls):
        value = getattr(inst, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            rows += describe(type(value), key + ".")
        else:
            rows.append((key, value, f.metadata.get("help", "")))
    return rows

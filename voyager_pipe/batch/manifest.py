"""Batch manifests: JSON Lines, one ``gen`` job per line.

A line is an object with the fields below (paths relative to the manifest's folder)::

    {"name": "room", "image": "room.png", "trajectory": "orbit.json", "depth": "room_depth.npy",
     "prompt": "a cosy room", "seed": 3, "config": "configs/cpu-preview.yaml",
     "overrides": {"generate.steps": 4}}

``name`` (the output folder under ``--out``), ``image`` and ``trajectory`` are required. Blank
lines and lines starting with ``#`` are skipped. Every line is checked before any job starts;
an error names the manifest, the line number and the field. Whether the files themselves are
good (a readable image, a valid trajectory) is found out by the job, which then fails alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from voyager_pipe.config import PipelineConfig, load_config, merge_dict
from voyager_pipe.errors import InputError

FIELDS = ("name", "image", "trajectory", "depth", "prompt", "seed", "config", "overrides")
REQUIRED = ("name", "image", "trajectory")
RESERVED_NAMES = ("batch.json",)


@dataclass(frozen=True)
class BatchJob:
    """One ``gen`` run of a batch: its inputs and its fully resolved config."""

    line: int  # 1-based line number in the manifest
    name: str  # output folder under the batch's --out
    image: str
    trajectory: str
    depth: Optional[str]
    config: PipelineConfig


def read_manifest(path: str | Path) -> list[BatchJob]:
    """Parse and check every line of ``path``; raise one InputError naming the first bad line and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read manifest ({exc.strerror})") from None
    jobs: list[BatchJob] = []
    names: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        job = _parse_line(raw, path, number)
        if job.name in names:
            raise InputError(f"{path}:{number}: name: {job.name!r} already used on line {names[job.name]}")
        names[job.name] = number
        jobs.append(job)
    if not jobs:
        raise InputError(f"{path}: manifest has no jobs")
    return jobs


def _parse_line(raw: str, path: Path, number: int) -> BatchJob:
    where = f"{path}:{number}"
    try:
        entry = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise InputError(f"{where}: {unknown[0]}: unknown field; known: {list(FIELDS)}")
    for key in REQUIRED:
        if key not in entry:
            raise InputError(f"{where}: {key}: missing (required: {list(REQUIRED)})")
    for key in ("name", "image", "trajectory", "depth", "prompt", "config"):
        if key in entry and not (isinstance(entry[key], str) and (entry[key] or key == "prompt")):
            if key in ("depth", "config") and entry[key] is None:
                continue
            raise InputError(f"{where}: {key}: expected a non-empty string, got {entry[key]!r}")
    name = entry["name"]
    if Path(name).name != name or name in (".", "..") or name.endswith(".partial") or name in RESERVED_NAMES:
        raise InputError(f"{where}: name: {name!r} must be a plain folder name (no '/', not '..', "
                         f"not ending in '.partial', not {RESERVED_NAMES[0]})")
    seed = entry.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InputError(f"{where}: seed: expected an integer, got {seed!r}")

    base = path.parent
    config = _job_config(entry, base, where)
    depth = entry.get("depth")
    return BatchJob(line=number, name=name, image=str(base / entry["image"]), trajectory=str(base / entry["trajectory"]),
                    depth=str(base / depth) if depth else None, config=config)


def _job_config(entry: dict, base: Path, where: str) -> PipelineConfig:
    """Defaults <- ``config`` YAML <- ``overrides`` <- ``prompt`` / ``seed``, like ``gen --config --set --seed``."""
    overrides = entry.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise InputError(f"{where}: overrides: expected an object of dotted keys, e.g. {{\"generate.steps\": 4}}")
    try:
        config = load_config(base / entry["config"] if entry.get("config") else None)
    except InputError as exc:
        raise InputError(f"{where}: config: {exc}") from None
    for key, value in overrides.items():
        if not all(key.split(".")):
            raise InputError(f"{where}: overrides: {key!r}: empty key part (expected e.g. generate.steps)")
        try:
            config = merge_dict(config, _nested(key, value))
        except InputError as exc:
            raise InputError(f"{where}: overrides: {exc}") from None
    if "prompt" in entry:
        config = merge_dict(config, {"voyager": {"prompt": entry["prompt"]}})
    if entry.get("seed") is not None:
        config = merge_dict(config, {"seed": entry["seed"]})
    return config


def _nested(key: str, value) -> dict:
    """``("generate.steps", 4)`` -> ``{"generate": {"steps": 4}}`` (the value is kept as JSON gave it)."""
    out = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out

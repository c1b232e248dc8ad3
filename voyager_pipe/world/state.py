"""Resume state of a ``gen`` run: data only (safetensors + JSON), saved incrementally.

Layout of ``<out>.partial/state/``::

    state.json                       the commit point, written last and atomically
    geometry_00003.safetensors       points the geometry store gained in save 3 (xyz, rgb, normals, frame_ids)
    background_00003.safetensors     the same for the far layer
    scheduler_00003.safetensors      the scheduler's tensors of save 3 (overlap frames, RNG state)

Each save writes only the rows appended since the previous save (a rewrite of a store, e.g.
by ``max_points`` thinning, writes that store once in full) plus the small scheduler tensors,
then ``state.json`` listing every file that makes up the state. Files not listed there (left
by an interrupted save) are ignored and overwritten. Per-clip I/O is therefore proportional to
what the clip added, not to the run's history.

Nothing is unpickled: tensors come from safetensors, the rest from JSON, and everything is
validated (names, dtypes, shapes, counts, types); a bad state is one :class:`InputError`
line naming the file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from voyager_pipe.errors import InputError
from voyager_pipe.world.points import COLUMNS, PointStore

FORMAT = 1
STATE_FILE = "state.json"
STORES = ("geometry", "background")
_FILE_NAME = re.compile(r"^(geometry|background|scheduler)_\d{5,9}\.safetensors$")
_FRAME_STAT_FIELDS = ("frame_id", "pixels", "invalid", "candidates", "covered", "back_facing", "rejected", "merged",
                      "added", "background_added")
_SCHEDULER_TENSORS = {"carry_rgb": (torch.float32, 3), "carry_depth": (torch.float32, 1), "rng_state": (torch.uint8, None)}


@dataclass
class LoadedState:
    """What :func:`load_state` read: the scheduler fields, its tensors and the cache's parts."""

    header: dict
    scheduler: dict  # JSON fields of the scheduler state
    scheduler_tensors: dict[str, torch.Tensor]
    cache_meta: dict
    stores: dict[str, dict[str, torch.Tensor]]  # store name -> columns
    chunks: dict[str, list[dict]] = field(default_factory=dict)
    sequence: int = 0


class StateWriter:
    """Saves the resume state of one run into ``state_dir`` after each clip (see the module docstring)."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.sequence = 0
        self.chunks: dict[str, list[dict]] = {name: [] for name in STORES}
        self._saved: dict[str, tuple[int, int]] = {}  # store -> (rewrites, rows) already on disk
        self._scheduler_file: Optional[str] = None

    @classmethod
    def resuming(cls, state_dir: Path, loaded: LoadedState, stores: dict[str, PointStore]) -> "StateWriter":
        """A writer that continues the state ``loaded`` (whose rows are in ``stores`` now)."""
        writer = cls(state_dir)
        writer.sequence = loaded.sequence
        writer.chunks = {name: list(loaded.chunks[name]) for name in STORES}
        writer._saved = {name: (stores[name].rewrites, len(stores[name])) for name in STORES}
        writer._scheduler_file = f"scheduler_{loaded.sequence:05d}.safetensors"
        return writer

    def save(self, header: dict, scheduler: dict, scheduler_tensors: dict[str, Optional[torch.Tensor]],
             cache_meta: dict, stores: dict[str, PointStore]) -> None:
        """Write one state: new rows of ``stores``, the scheduler tensors, then ``state.json``."""
        from safetensors.torch import save as save_safetensors

        from voyager_pipe.io.atomic import atomic_write_bytes, atomic_write_text

        self.sequence += 1
        obsolete: list[str] = []
        for name in STORES:
            store = stores[name]
            rewrites, rows = self._saved.get(name, (store.rewrites, 0))
            if store.rewrites != rewrites:  # rows were removed or reordered: write the store in full
                obsolete += [chunk["file"] for chunk in self.chunks[name]]
                self.chunks[name], rows = [], 0
            if len(store) > rows:
                file = f"{name}_{self.sequence:05d}.safetensors"
                tensors = {k: v.detach().to("cpu").contiguous() for k, v in store.rows(rows).items()}
                atomic_write_bytes(self.state_dir / file, save_safetensors(tensors))
                self.chunks[name].append({"file": file, "rows": len(store) - rows})
            self._saved[name] = (store.rewrites, len(store))
        scheduler_file = f"scheduler_{self.sequence:05d}.safetensors"
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in scheduler_tensors.items() if v is not None}
        atomic_write_bytes(self.state_dir / scheduler_file, save_safetensors(tensors))
        if self._scheduler_file is not None:
            obsolete.append(self._scheduler_file)
        self._scheduler_file = scheduler_file
        document = {"format": FORMAT, "sequence": self.sequence, "header": header, "scheduler": scheduler,
                    "scheduler_tensors": scheduler_file, "cache": cache_meta, "chunks": self.chunks}
        atomic_write_text(self.state_dir / STATE_FILE, json.dumps(document, sort_keys=True) + "\n")
        for file in obsolete:  # only after the new state.json no longer lists them
            (self.state_dir / file).unlink(missing_ok=True)


def has_state(state_dir: Path) -> bool:
    return (Path(state_dir) / STATE_FILE).is_file()


# ---------------------------------------------------------------------- loading and validation
def _bad(path: Path, reason: str) -> InputError:
    return InputError(f"{path}: bad resume state ({reason}); delete the .partial folder to start over")


def _require(condition: bool, path: Path, reason: str) -> None:
    if not condition:
        raise _bad(path, reason)


def _read_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(path, f"not readable JSON: {type(exc).__name__}") from None
    _require(isinstance(document, dict), path, "expected a JSON object")
    return document


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise _bad(path, "file missing")
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any parser failure of a user-side file is bad input
        raise _bad(path, f"not a safetensors file: {type(exc).__name__}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _file_of(document_path: Path, name: Any) -> Path:
    _require(isinstance(name, str) and bool(_FILE_NAME.match(name)), document_path, f"bad file name {name!r}")
    return document_path.parent / name


def _read_store(state_path: Path, chunks: Any) -> dict[str, torch.Tensor]:
    _require(isinstance(chunks, list), state_path, "chunks: expected a list")
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in COLUMNS}
    for chunk in chunks:
        _require(isinstance(chunk, dict) and set(chunk) == {"file", "rows"} and _is_int(chunk["rows"])
                 and chunk["rows"] > 0, state_path, "chunks: bad entry")
        path = _file_of(state_path, chunk["file"])
        tensors = _read_tensors(path)
        _require(set(tensors) == set(COLUMNS), path, f"expected tensors {sorted(COLUMNS)}, got {sorted(tensors)}")
        rows = chunk["rows"]
        for name in ("xyz", "rgb", "normals"):
            value = tensors[name]
            _require(value.dtype == torch.float32 and tuple(value.shape) == (rows, 3), path,
                     f"{name}: expected float32 [{rows}, 3], got {value.dtype} {list(value.shape)}")
            _require(bool(value.isfinite().all()), path, f"{name}: non-finite values")
        ids = tensors["frame_ids"]
        _require(ids.dtype == torch.int64 and tuple(ids.shape) == (rows,), path,
                 f"frame_ids: expected int64 [{rows}], got {ids.dtype} {list(ids.shape)}")
        for name in COLUMNS:
            parts[name].append(tensors[name])
    empty = {"xyz": torch.zeros(0, 3), "rgb": torch.zeros(0, 3), "normals": torch.zeros(0, 3),
             "frame_ids": torch.zeros(0, dtype=torch.long)}
    return {name: torch.cat(parts[name]) if parts[name] else empty[name] for name in COLUMNS}


def _check_cache_meta(path: Path, meta: Any) -> dict:
    _require(isinstance(meta, dict) and {"history", "next_frame_id", "thinned", "far_depth"} <= set(meta), path,
             "cache: missing fields")
    _require(_is_int(meta["next_frame_id"]) and meta["next_frame_id"] >= 0, path, "cache.next_frame_id: bad value")
    _require(_is_int(meta["thinned"]) and meta["thinned"] >= 0, path, "cache.thinned: bad value")
    _require(meta["far_depth"] is None or (_check_number(meta["far_depth"]) and meta["far_depth"] > 0), path,
             "cache.far_depth: bad value")
    history = meta["history"]
    _require(isinstance(history, list), path, "cache.history: expected a list")
    for entry in history:
        _require(isinstance(entry, dict) and set(entry) == set(_FRAME_STAT_FIELDS)
                 and all(_is_int(v) for v in entry.values()), path, "cache.history: bad entry")
    return meta


def _check_scheduler(path: Path, scheduler: Any) -> dict:
    _require(isinstance(scheduler, dict) and {"next_clip", "cached_upto", "timings"} <= set(scheduler), path,
             "scheduler: missing fields")
    _require(_is_int(scheduler["next_clip"]) and scheduler["next_clip"] >= 0, path, "scheduler.next_clip: bad value")
    _require(_is_int(scheduler["cached_upto"]) and scheduler["cached_upto"] >= 0, path, "scheduler.cached_upto: bad value")
    timings = scheduler["timings"]
    _require(isinstance(timings, dict) and all(isinstance(k, str) and _check_number(v) for k, v in timings.items()),
             path, "scheduler.timings: bad value")
    return scheduler


def _check_scheduler_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    _require(set(tensors) <= set(_SCHEDULER_TENSORS) and "rng_state" in tensors, path,
             f"unexpected tensors {sorted(tensors)}")
    for name, value in tensors.items():
        dtype, channels = _SCHEDULER_TENSORS[name]
        _require(value.dtype == dtype, path, f"{name}: expected {dtype}, got {value.dtype}")
        if channels is None:
            _require(value.ndim == 1, path, f"{name}: expected a 1-D tensor")
        else:
            _require(value.ndim == 4 and value.shape[1] == channels and bool(value.isfinite().all()), path,
                     f"{name}: expected finite [n, {channels}, H, W], got {list(value.shape)}")
    _require(("carry_rgb" in tensors) == ("carry_depth" in tensors), path, "carry_rgb and carry_depth go together")
    return tensors


def load_state(state_dir: Path) -> LoadedState:
    """Read and validate the state written by :class:`StateWriter` (InputError naming the file if bad)."""
    path = Path(state_dir) / STATE_FILE
    document = _read_json(path)
    _require(document.get("format") == FORMAT, path, f"format {document.get('format')!r}, expected {FORMAT}")
    needed = {"sequence", "header", "scheduler", "scheduler_tensors", "cache", "chunks"}
    _require(needed <= set(document), path, f"missing fields {sorted(needed - set(document))}")
    _require(_is_int(document["sequence"]) and document["sequence"] >= 1, path, "sequence: bad value")
    _require(isinstance(document["header"], dict), path, "header: expected an object")
    chunks = document["chunks"]
    _require(isinstance(chunks, dict) and set(chunks) == set(STORES), path, "chunks: expected geometry and background")
    stores = {name: _read_store(path, chunks[name]) for name in STORES}
    tensor_path = _file_of(path, document["scheduler_tensors"])
    scheduler_tensors = _check_scheduler_tensors(tensor_path, _read_tensors(tensor_path))
    return LoadedState(header=document["header"], scheduler=_check_scheduler(path, document["scheduler"]),
                       scheduler_tensors=scheduler_tensors, cache_meta=_check_cache_meta(path, document["cache"]),
                       stores=stores, chunks={name: list(chunks[name]) for name in STORES},
                       sequence=document["sequence"])

"""The one place input files are opened: limits, and library exceptions turned into :class:`InputError`.

Every reader of a user's file (images, depth maps, trajectories, PLY, configs, weight files,
frame folders) reads through these helpers, so a malformed or hostile file always ends as one
line naming the file (and field), never a traceback, a hang or a huge allocation:

* :func:`reading` wraps the parsing of one file: the exceptions parsers raise on bad data
  (``ValueError``, ``EOFError``, ``RecursionError``, ``OverflowError``, ``ZeroDivisionError``,
  ``MemoryError``, ``UnicodeDecodeError``, ``BadZipFile``, unpickling errors, ...) become an
  InputError naming the file; our own InputErrors pass unchanged;
* :func:`read_text` / :func:`read_json` refuse files over :data:`MAX_TEXT_BYTES`, non-UTF-8
  text and nesting deeper than :data:`MAX_JSON_DEPTH`;
* :func:`check_image_size` / :func:`check_count` enforce the documented limits below;
* :func:`quiet_native_stderr` keeps libpng / libjpeg / OpenEXR from printing their own lines
  (what they said is returned, e.g. to detect a truncated JPEG).

Limits (docs/limits.md lists them with the config bounds):
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

from voyager_pipe.errors import InputError

MAX_IMAGE_SIDE = 16384  #: largest width or height of any image, depth map or requested size (pixels)
MAX_IMAGE_PIXELS = 50_000_000  #: largest width x height (an 8K frame is 33 MP)
MAX_FRAMES = 10_000  #: most frames of a trajectory (14 minutes at 12 fps)
MAX_POINTS = 200_000_000  #: most vertices of a PLY point cloud
MAX_TEXT_BYTES = 64 << 20  #: largest trajectory / config / JSON text file
MAX_JSON_DEPTH = 64  #: deepest nesting of a JSON / YAML document

_PARSER_ERRORS = (ValueError, TypeError, KeyError, IndexError, EOFError, OverflowError, ZeroDivisionError,
                  RecursionError, MemoryError, UnicodeError, zipfile.BadZipFile, struct.error,
                  pickle.UnpicklingError, AttributeError)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, RecursionError):
        text = "nested too deeply"
    elif isinstance(exc, MemoryError):
        text = "too large to load"
    elif len(text) > 120:
        text = text[:117] + "..."
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


@contextlib.contextmanager
def reading(path: str | Path, what: str, also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn every parser failure inside the block into ``InputError("<path>: cannot read <what> (...)")``.

    ``also`` adds exception types a library raises on bad files (e.g. ``RuntimeError`` from
    ``torch.load``). OS errors on the file itself (missing, a folder, no permission) become an
    InputError too; our own InputErrors pass through unchanged. Python warnings raised inside are
    held back and shown only when the block succeeds (a failure stays one line).
    """
    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a {what} file") from None
    except PermissionError:
        raise InputError(f"{path}: cannot read {what} (permission denied)") from None
    except _PARSER_ERRORS + tuple(also) as exc:
        raise InputError(f"{path}: cannot read {what} ({_reason(exc)})") from None


def check_file(path: str | Path, what: str, limit: int | None = None) -> Path:
    """``path`` as a Path when it is a readable file (under ``limit`` bytes), else an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {what} not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a {what} file")
    if not path.is_file():
        raise InputError(f"{path}: is not a regular file ({what})")
    if limit is not None:
        size = path.stat().st_size
        if size > limit:
            raise InputError(f"{path}: {what} is {size / 2**20:.0f} MiB; the limit is {limit / 2**20:.0f} MiB")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot read {what} (permission denied)")
    return path


def read_text(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """UTF-8 text of a file (a BOM is dropped), or an InputError naming the file."""
    path = check_file(path, what, limit)
    with reading(path, what):
        data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None


def check_depth(data: Any, where: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse a parsed document nested deeper than ``limit`` (iterative: no recursion of our own)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if depth > limit:
                raise InputError(f"{where}: nested deeper than {limit} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file (bounded size and depth), or an InputError naming it. ``NaN`` / ``Infinity``
    parse as floats: the readers' checks then name the frame and field that holds them."""
    text = read_text(path, what)
    with reading(path, what):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    check_depth(data, str(path))
    return data


def check_image_size(width: int, height: int, where: str) -> None:
    """Refuse sizes beyond :data:`MAX_IMAGE_SIDE` / :data:`MAX_IMAGE_PIXELS` (before anything is allocated)."""
    if width <= 0 or height <= 0:
        raise InputError(f"{where}: size {width}x{height} must be positive")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise InputError(f"{where}: size {width}x{height} is over the limit ({MAX_IMAGE_SIDE} pixels a side, "
                         f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels)")


def check_count(count: int, limit: int, where: str, what: str) -> None:
    """Refuse ``count`` outside ``1..limit``."""
    if count < 1:
        raise InputError(f"{where}: {what} must be at least 1, got {count}")
    if count > limit:
        raise InputError(f"{where}: {count} {what} is over the limit of {limit}")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[list[str]]:
    """Silence what C libraries (libpng, libjpeg, OpenEXR) print on file descriptor 2 inside the block.

    Yields a list that holds the captured text (one string) after the block, so callers can act on
    it (e.g. libjpeg's "Premature end of JPEG file" means a truncated image).
    """
    captured: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to silence
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read(64 * 1024).decode(errors="replace"))

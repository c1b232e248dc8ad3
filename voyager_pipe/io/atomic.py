"""Atomic writes: a reader never sees a half-written file or output folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name
    (video encoders, PLY writers); it is renamed to ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --------------------------------------------------------------------------- output folders
MARKER = ".voyager-pipe-output"  # written into every output folder: "this folder is ours to replace"
LOCK_SUFFIX = ".lock"
PARTIAL_SUFFIX = ".partial"


def partial_path(path: str | Path) -> Path:
    """``<out>.partial``: where an output folder is built (and kept for ``--resume``)."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


def _is_ours(folder: Path) -> bool:
    """An existing folder this tool may delete: it holds our marker file, or it is empty."""
    return (folder / MARKER).is_file() or (folder.is_dir() and not any(folder.iterdir()))


def check_output_dir(path: str | Path, inputs: Iterable[str | Path | None] = (), overwrite: bool = True,
                     resume: bool = False, option: str = "--out") -> Path:
    """Refuse an output folder before any work (nothing is written here); returns it as a Path.

    Refused with one :class:`InputError` naming the path: an empty name, ``.``/``..`` or any
    folder holding the current directory; a parent that is a file; an existing file; a folder
    that contains one of ``inputs`` (``--overwrite`` would delete them); an existing folder (or
    ``<out>.partial``) not created by this tool (no marker file); an existing output without
    ``overwrite``/``resume``; ``resume`` without an interrupted run.
    """
    from voyager_pipe.errors import InputError

    if path is None or str(path).strip() == "":
        raise InputError(f"{option} '': empty output path")
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise InputError(f"{option} {path}: name a new folder, not '{path.name or path}'")
    resolved = path.resolve()
    if resolved == Path(resolved.anchor) or Path.cwd().resolve().is_relative_to(resolved) \
            or Path.home().resolve() == resolved:
        raise InputError(f"{option} {path}: refusing to use the current, home or root folder (or one above it) as output")
    for parent in resolved.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{option} {path}: parent {parent} is a file, not a folder")
        if parent.exists():
            break
    if len(path.name.encode()) + len(PARTIAL_SUFFIX) + len(LOCK_SUFFIX) > 255:
        raise InputError(f"{option} {path}: file name too long ({len(path.name.encode())} bytes)")
    partial = partial_path(resolved)
    for item in inputs:
        if item is None:
            continue
        inp = Path(item).resolve()
        for folder in (resolved, partial):
            if inp == folder or inp.is_relative_to(folder):
                raise InputError(f"{option} {path}: contains the input {item}; choose another output folder")
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a folder")
    if path.exists() and not _is_ours(path):
        raise InputError(f"{option} {path}: exists and was not written by voyager-pipe (no {MARKER}); "
                         "remove it yourself or choose another output folder")
    if partial.exists() and not (partial.is_dir() and _is_ours(partial)):
        raise InputError(f"{option} {path}: {partial.name} exists and was not written by voyager-pipe; remove it yourself")
    if resume:
        if not partial.is_dir() or not (partial / MARKER).is_file():
            raise InputError(f"{option} {path}: nothing to resume (no interrupted run in {partial.name})")
    elif path.exists() and not overwrite:
        raise InputError(f"{option} {path}: output folder exists; pass --overwrite or choose another {option}")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def output_lock(path: str | Path, option: str = "--out") -> Iterator[Path]:
    """Hold ``<out>.lock`` (the owner's pid inside, an exclusive ``flock`` on it) while a run writes.

    A second run to the same output is refused with one InputError naming the owner's pid.
    A lock left by a killed run is stale (the kernel drops the flock with its process, and its
    pid is gone): it is taken over.
    """
    import fcntl
    import socket

    from voyager_pipe.errors import InputError

    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").split()
            pid = owner[0] if owner else "?"
            raise InputError(f"{option} {path}: another voyager-pipe run (pid {pid}) is writing this output; "
                             f"wait for it or remove {lock.name} if that process is gone") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        try:
            yield lock
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    finally:
        os.close(fd)


def lock_owner(path: str | Path) -> int | None:
    """The pid written in ``<out>.lock`` when that process still runs, else None (no lock or a stale one)."""
    try:
        pid = int(lock_path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _pid_alive(pid) else None


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete the ``.<name>.*.tmp`` files an interrupted atomic write leaves behind."""
    for tmp in folder.rglob(".*.tmp*"):
        if tmp.is_file():
            tmp.unlink()


@contextlib.contextmanager
def output_dir(path: str | Path, keep_partial: bool = False, inputs: Iterable[str | Path | None] = (),
               overwrite: bool = True, resume: bool = False, option: str = "--out") -> Iterator[Path]:
    """Build an output folder as ``<path>.partial`` and rename it to ``path`` on success.

    The one output-folder guard of every command that writes a folder:

    * :func:`check_output_dir` first (never a folder holding the inputs, never one we did not write);
    * :func:`output_lock` for the whole block (a concurrent run to the same output is refused);
    * the partial folder gets the marker file :data:`MARKER`, so the result is recognised as ours;
    * ``resume=True`` keeps an existing partial folder (minus stale temporary files); otherwise
      a previous partial folder of ours is cleared first;
    * on failure the partial folder is removed (or kept, with ``keep_partial=True``, for
      ``--resume``); an existing ``path`` of ours is replaced only when the block succeeds.
    """
    path = check_output_dir(path, inputs, overwrite=overwrite, resume=resume, option=option)
    partial = partial_path(path)
    with output_lock(path, option=option):
        check_output_dir(path, inputs, overwrite=overwrite, resume=resume, option=option)  # again, under the lock
        if resume:
            _remove_stale_temporaries(partial)
        elif partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True, exist_ok=True)
        atomic_write_text(partial / MARKER, "voyager-pipe output folder: this tool may replace it\n")
        try:
            yield partial
        except BaseException:
            if not keep_partial:
                shutil.rmtree(partial, ignore_errors=True)
            raise
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(partial, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, path)

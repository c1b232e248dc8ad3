"""Read and write camera trajectories in every supported format.

Formats (``fmt``):

* ``json``: the project's own versioned JSON (:mod:`voyager_pipe.camera.own_json`).
* ``re10k``: RealEstate10K ``.txt`` (:mod:`voyager_pipe.camera.re10k`); needs ``size=(W, H)``.
* ``transforms``: nerfstudio / instant-ngp ``transforms.json`` (:mod:`voyager_pipe.camera.nerfstudio`).
* ``colmap``: COLMAP text model, ``cameras.txt`` + ``images.txt`` (:mod:`voyager_pipe.camera.colmap`).

Every reader returns float64 CPU :class:`Cameras` in the one internal convention (OpenCV axes, w2c,
K in pixels, pixel centres at integer + 0.5) and validates what it read (see
:mod:`voyager_pipe.camera.validate`). The pixel-centre conventions of all four formats agree with
ours, so no half-pixel shift is applied anywhere; see ``docs/cameras.md`` for the table.
"""

from __future__ import annotations

from pathlib import Path

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.camera.validate import check_size
from voyager_pipe.errors import InputError
from voyager_pipe.io.reading import MAX_FRAMES, check_count, read_json, read_text, reading

FORMATS = ("json", "re10k", "transforms", "colmap")


def _module(fmt: str):
    if fmt == "json":
        from voyager_pipe.camera import own_json as module
    elif fmt == "re10k":
        from voyager_pipe.camera import re10k as module
    elif fmt == "transforms":
        from voyager_pipe.camera import nerfstudio as module
    elif fmt == "colmap":
        from voyager_pipe.camera import colmap as module
    else:
        raise InputError(f"trajectory format {fmt!r}: unknown (expected one of {', '.join(FORMATS)})")
    return module


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its name and content.

    A directory (or a ``cameras.txt`` / ``images.txt`` file) is COLMAP unless it holds a
    ``transforms.json``; a JSON file is ``json`` when it says ``"format": "voyager_pipe.trajectory"``
    and ``transforms`` when its frames carry ``transform_matrix``; another text file is RE10K
    when its data lines have 19 numbers.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "transforms.json").is_file():
            return "transforms"
        return "colmap"
    if path.name in ("cameras.txt", "images.txt"):
        return "colmap"
    head = read_text(path, "trajectory")
    stripped = head.lstrip()
    if stripped.startswith("{"):
        data = read_json(path, "trajectory")
        if isinstance(data, dict) and data.get("format") == "voyager_pipe.trajectory":
            return "json"
        frames = data.get("frames") if isinstance(data, dict) else None
        if isinstance(frames, list) and (not frames or isinstance(frames[0], dict) and "transform_matrix" in frames[0]):
            return "transforms"
        raise InputError(f"{path}: JSON file is neither a voyager_pipe trajectory nor a transforms.json "
                         "(pass the format explicitly if you are sure)")
    lines = [line for line in head.splitlines() if line.strip()]
    if lines and lines[0].startswith("#") and ("Camera list" in lines[0] or "Image list" in lines[0]):
        return "colmap"
    if len(lines) >= 2 and len(lines[1].split()) == 19:
        return "re10k"
    raise InputError(f"{path}: cannot tell the trajectory format (expected one of {', '.join(FORMATS)}); "
                     "pass it explicitly (--from)")


def read_trajectory(path: str | Path, fmt: str | None = None, size: tuple[int, int] | None = None) -> Cameras:
    """Read a trajectory file into :class:`Cameras` (float64, CPU).

    Args:
        path: file (or COLMAP directory).
        fmt: one of :data:`FORMATS`; detected from the file when ``None``.
        size: ``(width, height)``. Required for RE10K (normalised intrinsics, no size in the file).
            For the other formats, when given and different from the file's size, the
            intrinsics are rescaled to it (:meth:`Cameras.resize`).
    """
    fmt = fmt or detect_format(path)
    module = _module(fmt)
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or directory")
    if size is not None:
        check_size(size[0], size[1], f"{path}: size")
    with reading(path, f"{fmt} trajectory"):
        cameras = module.read(path, size=size)
    check_count(len(cameras), MAX_FRAMES, str(path), "frames")
    if size is not None and (cameras.width, cameras.height) != tuple(size):
        cameras = cameras.resize(*size)
    return cameras


def read_folder_cameras(folder: str | Path, num_frames: int) -> Cameras | None:
    """The ``cameras.json`` of a frame folder (None when it has none); its length must be ``num_frames``."""
    from voyager_pipe.io.frames import CAMERAS_FILE

    path = Path(folder) / CAMERAS_FILE
    if not path.is_file():
        return None
    cameras = read_trajectory(path, fmt="json")
    if len(cameras) != num_frames:
        raise InputError(f"{path}: {len(cameras)} cameras for {num_frames} frames")
    return cameras


def write_trajectory(path: str | Path, cameras: Cameras, fmt: str = "json", **options) -> None:
    """Write ``cameras`` to ``path`` in format ``fmt`` (``colmap`` writes a directory).

    ``options`` go to the format's writer (e.g. ``url=`` / ``fps=`` for RE10K).
    """
    _module(fmt).write(path, cameras, **options)

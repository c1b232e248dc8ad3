"""The frame-folder layout written by ``gen`` and ``render`` and read by ``eval``::

    frames/00000.png   8-bit RGB
    depth/00000.npy    float32 z-depth [H, W], 0 where there is no value
    mask/00000.png     8-bit, 255 = covered pixel (render output; optional)
    cameras.json       the project's own trajectory format, written and read by
                       voyager_pipe.camera.trajectory_io (write_trajectory / read_folder_cameras)

Frames are matched by index; every file is written atomically. This module knows files only
(no cameras: ``io`` sits below ``camera`` in the import graph).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import atomic_write_bytes
from voyager_pipe.io.images import encode_png

FRAME_DIGITS = 5
CAMERAS_FILE = "cameras.json"
_INDEX = re.compile(r"^(\d+)$")


def frame_name(index: int, suffix: str) -> str:
    return f"{index:0{FRAME_DIGITS}d}{suffix}"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_frames(out_dir: str | Path, rgb: torch.Tensor | None = None, depth: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None, start: int = 0, workers: int | None = None) -> None:
    """Write frames ``start, start+1, ...`` of a frame folder.

    Args:
        rgb: ``[T, 3, H, W]`` float in [0, 1].
        depth: ``[T, 1, H, W]`` z-depth (0 = no value; NaN/inf are written as 0).
        mask: ``[T, 1, H, W]`` bool.
        workers: threads encoding and writing the files (default: ``torch.get_num_threads()``);
            the files do not depend on it.
    """
    from concurrent.futures import ThreadPoolExecutor

    out_dir = Path(out_dir)
    files: list[tuple[Path, Callable[[], bytes]]] = []  # (path, its bytes when called)
    if rgb is not None:
        rgb_np = (rgb.detach().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # [T, H, W, 3]
        files += [(out_dir / "frames" / frame_name(start + t, ".png"), partial(encode_png, rgb_np[t]))
                  for t in range(rgb_np.shape[0])]
    if depth is not None:
        depth_np = torch.nan_to_num(depth.detach().float(), nan=0.0, posinf=0.0, neginf=0.0).cpu().numpy()  # [T, 1, H, W]
        files += [(out_dir / "depth" / frame_name(start + t, ".npy"), partial(_npy_bytes, depth_np[t, 0]))
                  for t in range(depth_np.shape[0])]
    if mask is not None:
        mask_np = (mask.detach().cpu().numpy()[:, 0] * 255).astype(np.uint8)  # [T, H, W]
        files += [(out_dir / "mask" / frame_name(start + t, ".png"), partial(encode_png, mask_np[t]))
                  for t in range(mask_np.shape[0])]
    for folder in {path.parent for path, _ in files}:
        folder.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or torch.get_num_threads(), len(files)))
    if workers == 1:
        for path, data in files:
            atomic_write_bytes(path, data())
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PNG encoding and file writes release the GIL
        for done in [pool.submit(lambda path, data: atomic_write_bytes(path, data()), path, data) for path, data in files]:
            done.result()  # the first error is raised


@dataclass
class FrameFolder:
    """Contents of a frame folder (see the module docstring)."""

    rgb: torch.Tensor  # [T, 3, H, W]
    depth: torch.Tensor | None  # [T, 1, H, W]
    mask: torch.Tensor | None  # [T, 1, H, W] bool
    path: Path

    def __len__(self) -> int:
        return self.rgb.shape[0]


def _indexed_files(folder: Path, suffix: str) -> dict[int, Path]:
    files = {}
    for p in folder.glob(f"*{suffix}"):
        m = _INDEX.match(p.stem)
        if m:
            files[int(m.group(1))] = p
    return files


def _check_contiguous(folder: Path, indices: list[int]) -> None:
    if indices != list(range(len(indices))):
        missing = sorted(set(range(max(indices) + 1)) - set(indices))
        raise InputError(f"{folder}: frame files must be numbered 0..N-1 without gaps; missing {missing[:5]}")


def read_frame_folder(path: str | Path) -> FrameFolder:
    """Read a frame folder written by ``gen``/``render`` (or a ground-truth folder of the same layout).

    Every frame, depth and mask file is checked (decodable, one size for the whole folder, depth
    ``[H, W]`` numbers); any problem is an InputError naming the file.
    """
    from voyager_pipe.io.depth_files import read_stored_depth
    from voyager_pipe.io.images import read_image, read_mask
    from voyager_pipe.io.reading import MAX_FRAMES, check_count

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: not a folder")
    frames = _indexed_files(path / "frames", ".png")
    if not frames:
        raise InputError(f"{path}: no frames/00000.png ... found (expected the gen/render output layout)")
    check_count(len(frames), MAX_FRAMES, str(path / "frames"), "frames")
    _check_contiguous(path / "frames", sorted(frames))
    T = len(frames)
    first = read_image(frames[0], "frame")  # [3, H, W]
    H, W = first.shape[-2:]
    rgb = torch.empty(T, 3, H, W)  # [T, 3, H, W]
    rgb[0] = first
    for i in range(1, T):
        frame = read_image(frames[i], "frame")  # [3, h, w]
        if frame.shape[-2:] != (H, W):
            raise InputError(f"{frames[i]}: frame of size {frame.shape[-1]}x{frame.shape[-2]}, frame 0 is {W}x{H}")
        rgb[i] = frame

    depth = None
    depth_files = _indexed_files(path / "depth", ".npy")
    if depth_files:
        if sorted(depth_files) != list(range(T)):
            raise InputError(f"{path / 'depth'}: {len(depth_files)} depth files for {T} frames")
        depth = torch.empty(T, 1, H, W)  # [T, 1, H, W]
        for i in range(T):
            array = read_stored_depth(depth_files[i])  # [h, w]
            if array.shape != (H, W):
                raise InputError(f"{depth_files[i]}: depth of shape {array.shape}, frames are {(H, W)}")
            depth[i, 0] = torch.from_numpy(array.astype(np.float32))

    mask = None
    mask_files = _indexed_files(path / "mask", ".png")
    if mask_files:
        if sorted(mask_files) != list(range(T)):
            raise InputError(f"{path / 'mask'}: {len(mask_files)} mask files for {T} frames")
        mask = torch.empty(T, 1, H, W, dtype=torch.bool)  # [T, 1, H, W]
        for i in range(T):
            m = read_mask(mask_files[i])  # [h, w]
            if m.shape != (H, W):
                raise InputError(f"{mask_files[i]}: mask of size {m.shape[1]}x{m.shape[0]}, frames are {W}x{H}")
            mask[i, 0] = torch.from_numpy(m)
    return FrameFolder(rgb=rgb, depth=depth, mask=mask, path=path)

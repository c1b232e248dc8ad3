"""The frame-folder layout written by ``gen`` and ``render`` and read by ``eval``::

    frames/00000.png   8-bit RGB
    depth/00000.npy    float32 z-depth [H, W], 0 where there is no value
    mask/00000.png     8-bit, 255 = covered pixel (render output; optional)
    cameras.json       the project's own trajectory format (voyager_pipe.camera.trajectory_io)

Frames are matched by index; every file is written atomically.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import atomic_write_bytes
from voyager_pipe.io.images import encode_png, read_image, to_uint8

FRAME_DIGITS = 5
_INDEX = re.compile(r"^(\d+)$")


def frame_name(index: int, suffix: str) -> str:
    return f"{index:0{FRAME_DIGITS}d}{suffix}"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_frames(out_dir: str | Path, rgb: torch.Tensor | None = None, depth: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None, start: int = 0, cameras=None) -> None:
    """Write frames ``start, start+1, ...`` of a frame folder.

    Args:
        rgb: ``[T, 3, H, W]`` float in [0, 1].
        depth: ``[T, 1, H, W]`` z-depth (0 = no value; NaN/inf are written as 0).
        mask: ``[T, 1, H, W]`` bool.
        cameras: optional :class:`Cameras` of the WHOLE folder, written as ``cameras.json``.
    """
    out_dir = Path(out_dir)
    if rgb is not None:
        for t in range(rgb.shape[0]):  # one file per frame
            atomic_write_bytes(out_dir / "frames" / frame_name(start + t, ".png"), encode_png(to_uint8(rgb[t])))
    if depth is not None:
        depth_np = torch.nan_to_num(depth.detach().float(), nan=0.0, posinf=0.0, neginf=0.0).cpu().numpy()  # [T, 1, H, W]
        for t in range(depth_np.shape[0]):
            atomic_write_bytes(out_dir / "depth" / frame_name(start + t, ".npy"), _npy_bytes(depth_np[t, 0]))
    if mask is not None:
        mask_np = (mask.detach().cpu().numpy()[:, 0] * 255).astype(np.uint8)  # [T, H, W]
        for t in range(mask_np.shape[0]):
            atomic_write_bytes(out_dir / "mask" / frame_name(start + t, ".png"), encode_png(mask_np[t]))
    if cameras is not None:
        from voyager_pipe.camera.trajectory_io import write_trajectory

        write_trajectory(out_dir / "cameras.json", cameras)


@dataclass
class FrameFolder:
    """Contents of a frame folder (see the module docstring)."""

    rgb: torch.Tensor  # [T, 3, H, W]
    depth: torch.Tensor | None  # [T, 1, H, W]
    mask: torch.Tensor | None  # [T, 1, H, W] bool
    cameras: object | None  # Cameras
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


def read_frame_folder(path: str | Path, load_cameras: bool = True) -> FrameFolder:
    """Read a frame folder written by ``gen``/``render`` (or a ground-truth folder of the same layout)."""
    path = Path(path)
    frames = _indexed_files(path / "frames", ".png")
    if not frames:
        raise InputError(f"{path}: no frames/00000.png ... found (expected the gen/render output layout)")
    _check_contiguous(path / "frames", sorted(frames))
    rgb = torch.stack([read_image(frames[i]) for i in range(len(frames))])  # [T, 3, H, W]
    T, _, H, W = rgb.shape

    depth = None
    depth_files = _indexed_files(path / "depth", ".npy")
    if depth_files:
        if sorted(depth_files) != list(range(T)):
            raise InputError(f"{path / 'depth'}: {len(depth_files)} depth files for {T} frames")
        arrays = [np.load(depth_files[i]) for i in range(T)]
        for i, a in enumerate(arrays):
            if a.shape != (H, W):
                raise InputError(f"{depth_files[i]}: depth of shape {a.shape}, frames are {(H, W)}")
        depth = torch.from_numpy(np.stack(arrays).astype(np.float32)).unsqueeze(1)  # [T, 1, H, W]

    mask = None
    mask_files = _indexed_files(path / "mask", ".png")
    if mask_files:
        import imageio.v3 as iio

        if sorted(mask_files) != list(range(T)):
            raise InputError(f"{path / 'mask'}: {len(mask_files)} mask files for {T} frames")
        mask = torch.from_numpy(np.stack([iio.imread(mask_files[i]) for i in range(T)]) > 127).unsqueeze(1)  # [T, 1, H, W]
        if mask.shape[-2:] != (H, W):
            raise InputError(f"{path / 'mask'}: masks of size {tuple(mask.shape[-2:])}, frames are {(H, W)}")

    cameras = None
    if load_cameras and (path / "cameras.json").is_file():
        from voyager_pipe.camera.trajectory_io import read_trajectory

        cameras = read_trajectory(path / "cameras.json")
        if len(cameras) != T:
            raise InputError(f"{path / 'cameras.json'}: {len(cameras)} cameras for {T} frames")
    return FrameFolder(rgb=rgb, depth=depth, mask=mask, cameras=cameras, path=path)

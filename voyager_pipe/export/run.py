"""Read a ``gen`` output folder for export, refusing incomplete or inconsistent ones.

A run folder (see the README, "Output folder") holds ``frames/``, ``depth/``, ``cameras.json`` and
``world.ply``. :func:`load_run` checks that the parts agree with each other (one camera per frame,
depth maps of the frames' size, ``frame_id`` of every point naming a frame) and raises one
:class:`~voyager_pipe.errors.InputError` line naming the file at fault otherwise. A folder that is
still being written or was interrupted (``<out>.partial``) is refused: finish it with ``gen --resume``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import PARTIAL_SUFFIX, partial_path
from voyager_pipe.io.frames import frame_name

@dataclass
class RunPoints:
    """The world cache of a run as written in ``world.ply`` (numpy, geometry only: no background layer)."""

    xyz: np.ndarray  # [P, 3] float32
    rgb: np.ndarray  # [P, 3] uint8
    normals: np.ndarray  # [P, 3] float32, zero where undefined
    frame_ids: np.ndarray  # [P] int64, the frame each point was unprojected from

    def __len__(self) -> int:
        return self.xyz.shape[0]

    def subsample(self, max_points: int, seed: int = 0) -> "RunPoints":
        """At most ``max_points`` points, drawn uniformly without replacement (seeded); all when 0."""
        if max_points <= 0 or len(self) <= max_points:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size=max_points, replace=False))  # [M]
        return RunPoints(self.xyz[keep], self.rgb[keep], self.normals[keep], self.frame_ids[keep])


@dataclass
class RunFolder:
    """A checked run folder; frames and depth maps are read one at a time (a long run does not fit in memory)."""

    path: Path
    cameras: Cameras  # T cameras, float64
    points: RunPoints | None
    has_depth: bool

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def frame_files(self) -> list[Path]:
        """``frames/00000.png ...`` in frame order."""
        return [self.path / "frames" / frame_name(i, ".png") for i in range(len(self))]

    @property
    def depth_files(self) -> list[Path]:
        return [self.path / "depth" / frame_name(i, ".npy") for i in range(len(self))]

    def rgb(self, t: int) -> torch.Tensor:
        """``[3, H, W]`` float in [0, 1] of frame ``t``."""
        from voyager_pipe.io.images import read_image

        rgb = read_image(self.frame_files[t])  # [3, H, W]
        if rgb.shape[-2:] != (self.cameras.height, self.cameras.width):
            raise InputError(f"{self.frame_files[t]}: {rgb.shape[-1]}x{rgb.shape[-2]} image, "
                             f"cameras.json says {self.cameras.width}x{self.cameras.height}")
        return rgb

    def depth(self, t: int) -> np.ndarray:
        """``[H, W]`` float32 z-depth of frame ``t``; 0 where there is no value (also for NaN, inf, negative)."""
        path = self.depth_files[t]
        depth = np.load(path, allow_pickle=False)
        if depth.shape != (self.cameras.height, self.cameras.width):
            raise InputError(f"{path}: depth of shape {depth.shape}, cameras.json says "
                             f"{self.cameras.height}x{self.cameras.width} (H x W)")
        depth = np.nan_to_num(depth.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)  # [H, W]
        return np.maximum(depth, 0.0)


def check_run_dir(path: str | Path) -> Path:
    """``path`` as a finished run folder, or an InputError naming what is wrong."""
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        raise InputError(f"{path}: incomplete run (a .partial folder is still being written or was interrupted); "
                         "finish it with gen --resume")
    if not path.is_dir():
        partial = partial_path(path)
        if partial.is_dir():
            raise InputError(f"{path}: incomplete run (only {partial.name} exists); finish it with gen --resume")
        raise InputError(f"{path}: run folder not found")
    for needed in ("frames", "cameras.json"):
        if not (path / needed).exists():
            raise InputError(f"{path / needed}: missing (not a gen output folder)")
    return path


def load_points(path: Path, num_frames: int) -> RunPoints:
    """``world.ply`` of a run, checked against its ``num_frames`` frames."""
    from voyager_pipe.world.ply import read_ply

    ply_path = path / "world.ply"
    if not ply_path.is_file():
        raise InputError(f"{ply_path}: missing (the run was made with output.write_ply=false?)")
    data = read_ply(ply_path)
    count = data["xyz"].shape[0]
    if count == 0:
        raise InputError(f"{ply_path}: no points")
    frame_ids = data["extra"].get("frame_id")
    if frame_ids is None:
        raise InputError(f"{ply_path}: no frame_id property (not written by gen)")
    frame_ids = frame_ids.astype(np.int64)  # [P]
    bad = (frame_ids < 0) | (frame_ids >= num_frames)  # [P]
    if bad.any():
        raise InputError(f"{ply_path}: frame_id {int(frame_ids[bad][0])} of point {int(np.argmax(bad))} "
                         f"is not a frame of cameras.json (0..{num_frames - 1})")
    if not np.isfinite(data["xyz"]).all():
        raise InputError(f"{ply_path}: x/y/z contain NaN or inf")
    rgb = data["rgb"] if data["rgb"] is not None else np.full((count, 3), 128, np.uint8)  # [P, 3]
    normals = data["normals"] if data["normals"] is not None else np.zeros((count, 3), np.float32)  # [P, 3]
    normals = np.nan_to_num(normals, nan=0.0, posinf=0.0, neginf=0.0)
    return RunPoints(xyz=data["xyz"], rgb=rgb, normals=normals, frame_ids=frame_ids)


def _numbered(folder: Path, suffix: str) -> list[int]:
    return sorted(int(p.stem) for p in folder.glob(f"*{suffix}") if p.stem.isdigit()) if folder.is_dir() else []


def load_run(path: str | Path, depth: bool = True, points: bool = True) -> RunFolder:
    """Check a run folder and read its cameras (and ``world.ply`` when ``points``).

    Frames must be ``frames/00000.png`` ... one per camera of ``cameras.json``; with ``depth``,
    ``depth/00000.npy`` ... one per frame. Image and depth sizes are checked as frames are read.
    """
    from voyager_pipe.camera.trajectory_io import read_trajectory

    path = check_run_dir(path)
    cameras = read_trajectory(path / "cameras.json", fmt="json").to(dtype=torch.float64)
    T = len(cameras)
    frames = _numbered(path / "frames", ".png")
    if frames != list(range(T)):
        raise InputError(f"{path / 'frames'}: expected {T} frames 00000.png..{frame_name(T - 1, '.png')} "
                         f"(one per camera of cameras.json), found {len(frames)}")
    if depth and _numbered(path / "depth", ".npy") != list(range(T)):
        raise InputError(f"{path / 'depth'}: expected {T} depth maps 00000.npy..{frame_name(T - 1, '.npy')} "
                         "(one per frame; this export needs depth)")
    run = RunFolder(path=path, cameras=cameras, points=load_points(path, T) if points else None, has_depth=depth)
    run.rgb(0)  # the frame size agrees with the cameras
    return run

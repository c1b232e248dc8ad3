"""Reading a ``gen`` output folder for the viewer: cameras, the world point cloud (to a budget),
frame thumbnails and the per-frame RGB | depth | mask panel, and the exports found beside them.

Frames are read lazily by index (one PNG / NPY per request), so the viewer starts in time
independent of the frame size; only the frustum thumbnails are read at start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import InputError
from voyager_pipe.view.budget import downsample_points

THUMBNAIL_WIDTH = 160  # pixels: frustum images
PANEL_HEIGHT = 180  # pixels: each of the three panel tiles


@dataclass
class RunFolder:
    """What the viewer shows of a run folder."""

    path: Path
    cameras: Cameras  # [N] at the frame size
    xyz: np.ndarray  # [P, 3] float32, at most the point budget
    rgb: np.ndarray  # [P, 3] uint8
    total_points: int  # points in world.ply before downsampling
    fps: int = 12
    exports: dict[str, Path] = field(default_factory=dict)  # {"mesh": path, "gaussians": path} when present

    @property
    def num_frames(self) -> int:
        return len(self.cameras)




def _incomplete_hint(path: Path) -> str:
    return (f"{path}: incomplete run (a gen that is still running or was interrupted); "
            f"finish it with `voyager-pipe gen --resume --out {path.with_suffix('') if path.suffix == '.partial' else path}`")


def read_run_folder(path: str | Path, max_points: int = 1_000_000) -> RunFolder:
    """Read a finished ``gen`` (or ``explore`` save) folder; InputError (one line) if it is missing or incomplete."""
    from voyager_pipe.camera.trajectory_io import read_trajectory
    from voyager_pipe.world.ply import read_ply

    path = Path(path)
    if path.suffix == ".partial":
        raise InputError(_incomplete_hint(path))
    if not path.is_dir():
        partial = path.with_name(path.name + ".partial")
        if partial.is_dir():
            raise InputError(_incomplete_hint(partial))
        raise InputError(f"{path}: run folder not found")
    for name in ("cameras.json", "world.ply"):
        if not (path / name).is_file():
            raise InputError(f"{path / name}: missing; {path} is not a finished gen output folder")
    cameras = read_trajectory(path / "cameras.json")
    num_frames = len(list((path / "frames").glob("[0-9]*.png")))
    if num_frames != len(cameras):
        raise InputError(f"{path / 'frames'}: {num_frames} frames for {len(cameras)} cameras in cameras.json (incomplete run?)")
    cloud = read_ply(path / "world.ply")
    xyz = cloud["xyz"]  # [P, 3]
    rgb = cloud["rgb"] if cloud["rgb"] is not None else np.full_like(xyz, 200, dtype=np.uint8)  # [P, 3]
    finite = np.isfinite(xyz).all(axis=1)  # [P]
    if not finite.all():
        xyz, rgb = xyz[finite], rgb[finite]
    total = xyz.shape[0]
    xyz, rgb = downsample_points(xyz, rgb, max_points)
    from voyager_pipe.view.exports import find_exports

    return RunFolder(path=path, cameras=cameras, xyz=np.ascontiguousarray(xyz), rgb=np.ascontiguousarray(rgb),
                     total_points=total, fps=_run_fps(path), exports=find_exports(path))


def _run_fps(path: Path) -> int:
    """The run's video frame rate (config.yaml output.fps), 12 when absent."""
    import yaml

    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
        return max(1, int(config["output"]["fps"]))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return 12


# --------------------------------------------------------------------------- frame images
def resize_to_height(image: np.ndarray, height: int, nearest: bool = False) -> np.ndarray:
    """``[H, W, C]`` or ``[H, W]`` image scaled to ``height`` rows (aspect kept)."""
    import cv2

    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def thumbnail(rgb: np.ndarray, width: int = THUMBNAIL_WIDTH) -> np.ndarray:
    """``[H, W, 3]`` uint8 scaled to ``width`` columns (the frustum image)."""
    return resize_to_height(rgb, max(1, round(rgb.shape[0] * width / rgb.shape[1])))


def frame_panel(rgb: np.ndarray, depth: np.ndarray | None, mask: np.ndarray | None,
                height: int = PANEL_HEIGHT, depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """RGB | colourised depth | mask side by side, ``[height, 3 * w + 4, 3]`` uint8.

    Args:
        rgb: ``[H, W, 3]`` uint8.
        depth: ``[H, W]`` z-depth (0 = no value) or None (a black tile).
        mask: ``[H, W]`` bool (cache coverage) or None (a black tile).
        depth_range: inverse-depth range of the colour map (the run's, so that colours compare across
            frames, as in video_rgbd.mp4); None: this frame's own.
    """
    from voyager_pipe.io.video import colour_depth, inverse_depth_range

    tile_rgb = resize_to_height(rgb, height)  # [h, w, 3]
    if depth is not None:
        lo, hi = depth_range if depth_range is not None else inverse_depth_range([depth])
        tile_depth = resize_to_height(colour_depth(depth, lo, hi), height, nearest=True)  # [h, w, 3]
    else:
        tile_depth = np.zeros_like(tile_rgb)
    if mask is not None:
        tile_mask = resize_to_height(np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2), height, nearest=True)
    else:
        tile_mask = np.zeros_like(tile_rgb)
    gap = np.full((height, 2, 3), 96, np.uint8)  # a grey line between the tiles (a white mask would merge)
    return np.concatenate([tile_rgb, gap, tile_depth, gap, tile_mask], axis=1)  # [h, 3w + 4, 3]


class FrameFiles:
    """Frame ``i`` of a frame folder on demand; tries each folder in turn (``gen --view`` reads the
    ``.partial`` folder while generating and the final one after the rename)."""

    def __init__(self, *folders: str | Path):
        self.folders = [Path(f) for f in folders]
        self._depth_range: tuple[int, tuple[float, float]] | None = None  # (files it was computed from, range)

    def depth_range(self) -> tuple[float, float] | None:
        """The inverse-depth range of the folder's depth files (as the videos use), recomputed when files appear."""
        from voyager_pipe.io.video import inverse_depth_range

        for folder in self.folders:
            files = sorted((folder / "depth").glob("[0-9]*.npy"))
            if files:
                if self._depth_range is None or self._depth_range[0] != len(files):
                    self._depth_range = (len(files), inverse_depth_range(files))
                return self._depth_range[1]
        return None

    def _file(self, sub: str, index: int, suffix: str) -> Path | None:
        from voyager_pipe.io.frames import frame_name

        for folder in self.folders:
            candidate = folder / sub / frame_name(index, suffix)
            if candidate.is_file():
                return candidate
        return None

    def rgb(self, index: int) -> np.ndarray | None:
        """``[H, W, 3]`` uint8 or None."""
        import cv2

        path = self._file("frames", index, ".png")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path else None
        return None if image is None else np.ascontiguousarray(image[..., ::-1])

    def thumbnail(self, index: int, width: int = THUMBNAIL_WIDTH) -> np.ndarray | None:
        rgb = self.rgb(index)
        return None if rgb is None else thumbnail(rgb, width)

    def panel(self, index: int, height: int = PANEL_HEIGHT) -> np.ndarray | None:
        import cv2

        rgb = self.rgb(index)
        if rgb is None:
            return None
        depth_path = self._file("depth", index, ".npy")
        mask_path = self._file("mask", index, ".png")
        depth = np.load(depth_path, allow_pickle=False) if depth_path else None
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127 if mask_path else None
        return frame_panel(rgb, depth, mask, height, self.depth_range() if depth is not None else None)


def run_summary(run: RunFolder) -> str:
    """One line about what is shown."""
    shown = run.xyz.shape[0]
    points = f"{shown:,} points" + (f" (of {run.total_points:,})" if shown < run.total_points else "")
    extras = ", ".join(sorted(run.exports)) or "no exports"
    return f"{run.path}: {run.num_frames} frames, {points}, {extras}"


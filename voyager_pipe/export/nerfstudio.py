"""nerfstudio dataset export: ``transforms.json`` + ``images/`` + ``depth/`` + ``sparse_pc.ply``.

``transforms.json`` is written by the project's writer (:func:`voyager_pipe.camera.nerfstudio.write`:
OpenGL camera-to-world ``transform_matrix``); this module then adds, per frame, the intrinsics
``fl_x fl_y cx cy w h`` and ``depth_file_path``, and at the top level ``ply_file_path``, as nerfstudio's
``nerfstudio-data`` dataparser reads them (``ns-train splatfacto --data PATH``).

Depth maps are 16-bit PNGs in millimetres (the run's depth unit x 1000, rounded; nerfstudio's default
``depth_unit_scale_factor`` is 1e-3); 0 means no depth, and depth beyond 65.535 units is written
as 0 too (counted in the summary). The point cloud is the world cache (subsampled to ``max_points``)
as a binary PLY with xyz, normals and rgb.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voyager_pipe.export.run import RunFolder

DEPTH_PNG_SCALE = 1000.0  # PNG units per depth unit (millimetres for metric depth)
DEPTH_PNG_MAX = 65535
POINTS_FILE = "sparse_pc.ply"
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def depth_to_png16(depth: np.ndarray) -> tuple[np.ndarray, int]:
    """``[H, W]`` z-depth -> (``[H, W]`` uint16 millimetres, count of valid pixels too far to store, set to 0)."""
    millimetres = np.round(depth.astype(np.float64) * DEPTH_PNG_SCALE)  # [H, W]
    too_far = millimetres > DEPTH_PNG_MAX  # [H, W]
    millimetres = np.where(too_far | ~(millimetres > 0), 0, millimetres)
    return millimetres.astype(np.uint16), int(too_far.sum())


@dataclass
class NerfstudioExport:
    path: Path
    frames: int
    points: int
    depth_too_far: int

    def summary(self) -> str:
        far = f", {self.depth_too_far} depth pixels beyond 65.535 written as 0" if self.depth_too_far else ""
        return f"nerfstudio: {self.frames} frames with depth, {self.points} points -> {self.path}/transforms.json{far}"


def export_nerfstudio(run: RunFolder, out: Path, max_points: int = 200_000, seed: int = 0,
                      progress: bool = True, overwrite: bool = True) -> NerfstudioExport:
    """Write the run as a nerfstudio dataset into folder ``out`` (built atomically)."""
    from tqdm import tqdm

    from voyager_pipe.camera import nerfstudio
    from voyager_pipe.export.colmap import copy_frames
    from voyager_pipe.io.atomic import atomic_write_bytes, atomic_write_text, output_dir
    from voyager_pipe.io.images import encode_png
    from voyager_pipe.world.ply import write_ply

    points = run.points.subsample(max_points, seed)
    too_far = 0
    with output_dir(out, inputs=[run.path], overwrite=overwrite) as tmp:
        copy_frames(run, tmp / "images", progress)
        for t in tqdm(range(len(run.cameras)), desc="depth PNGs", unit="frame", disable=None if progress else True):
            png, far = depth_to_png16(run.depth(t))
            too_far += far
            atomic_write_bytes(tmp / "depth" / f"{t:05d}.png", encode_png(png))
        write_ply(tmp / POINTS_FILE, points.xyz, points.rgb, normals=points.normals)

        nerfstudio.write(tmp / "transforms.json", run.cameras, image_pattern="images/{:05d}.png")
        data = json.loads((tmp / "transforms.json").read_text(encoding="utf-8"))
        K = run.cameras.K.numpy()  # [T, 3, 3]
        for t, frame in enumerate(data["frames"]):  # per-frame records
            frame.update(fl_x=float(K[t, 0, 0]), fl_y=float(K[t, 1, 1]), cx=float(K[t, 0, 2]), cy=float(K[t, 1, 2]),
                         w=run.cameras.width, h=run.cameras.height, depth_file_path=f"depth/{t:05d}.png")
        for key in INTRINSIC_KEYS:  # intrinsics live in the frames
            data.pop(key, None)
        data["ply_file_path"] = POINTS_FILE
        atomic_write_text(tmp / "transforms.json", json.dumps(data, indent=2) + "\n")
    return NerfstudioExport(path=Path(out), frames=len(run.cameras), points=len(points), depth_too_far=too_far)

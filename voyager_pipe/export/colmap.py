"""COLMAP dataset export: ``images/`` + ``sparse/0/{cameras,images,points3D}.txt``.

Cameras and images are written by the project's COLMAP writer (:func:`voyager_pipe.camera.colmap.write`:
PINHOLE cameras, world-to-camera quaternion ``QW QX QY QZ`` and ``TX TY TZ``, an empty 2D-points line
per image). ``points3D.txt`` holds the world cache (subsampled to ``max_points``) with colours, error 0
and empty tracks, which 3DGS trainers (original 3DGS, gsplat's ``simple_trainer``, nerfstudio's
``colmap`` dataparser) use as their initial points.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voyager_pipe.export.run import RunFolder, RunPoints

POINTS_HEADER = ("# 3D point list with one line of data per point:\n"
                 "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
                 "# Number of points: {count}, mean track length: 0\n")


def points3d_text(points: RunPoints) -> str:
    """The text of a COLMAP ``points3D.txt`` for ``points`` (ids 1..P, no tracks)."""
    buffer = io.StringIO()
    buffer.write(POINTS_HEADER.format(count=len(points)))
    ids = np.arange(1, len(points) + 1)  # [P]
    flat = np.column_stack([ids, points.xyz.astype(np.float64), points.rgb, np.zeros(len(points))])  # [P, 8]
    np.savetxt(buffer, flat, fmt=["%d", "%.9g", "%.9g", "%.9g", "%d", "%d", "%d", "%g"])
    return buffer.getvalue()


def copy_frames(run: RunFolder, images_dir: Path, progress: bool = True, names: str = "{:05d}.png") -> None:
    """Copy ``frames/*.png`` to ``images_dir`` under ``names.format(i)``."""
    from tqdm import tqdm

    images_dir.mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(tqdm(run.frame_files, desc="copy frames", unit="frame", disable=None if progress else True)):
        shutil.copyfile(source, images_dir / names.format(i))


@dataclass
class ColmapExport:
    path: Path
    images: int
    points: int

    def summary(self) -> str:
        return f"colmap: {self.images} images, {self.points} points3D -> {self.path} (sparse/0, images/)"


def export_colmap(run: RunFolder, out: Path, max_points: int = 200_000, seed: int = 0, progress: bool = True) -> ColmapExport:
    """Write the run as a COLMAP text model with its frames into folder ``out`` (built atomically)."""
    from voyager_pipe.camera import colmap
    from voyager_pipe.io.atomic import atomic_write_text, output_dir

    points = run.points.subsample(max_points, seed)
    with output_dir(out) as tmp:
        copy_frames(run, tmp / "images", progress)
        sparse = tmp / "sparse" / "0"
        colmap.write(sparse, run.cameras, image_pattern="{:05d}.png")
        atomic_write_text(sparse / "points3D.txt", points3d_text(points))
    return ColmapExport(path=Path(out), images=len(run.cameras), points=len(points))

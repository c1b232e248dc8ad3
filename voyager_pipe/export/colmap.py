"""COLMAP dataset export: ``images/`` + ``sparse/0/`` as a text model and the same model in binary.

The text model (``cameras.txt``, ``images.txt``) is written by the project's COLMAP writer
(:func:`voyager_pipe.camera.colmap.write`: PINHOLE cameras, world-to-camera quaternion
``QW QX QY QZ`` and ``TX TY TZ``, an empty 2D-points line per image); ``points3D.txt`` holds the world
cache (subsampled to ``max_points``) with colours, error 0 and empty tracks. The binary files
(``cameras.bin``, ``images.bin``, ``points3D.bin``) hold the same model: readers that prefer them
(COLMAP, the original 3DGS code, gsplat's ``simple_trainer``, whose COLMAP text reader stops at the
first empty line) get the same cameras and points.
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
PINHOLE_MODEL_ID = 1  # COLMAP's model id of PINHOLE (fx fy cx cy)


def points3d_text(points: RunPoints) -> str:
    """The text of a COLMAP ``points3D.txt`` for ``points`` (ids 1..P, no tracks)."""
    buffer = io.StringIO()
    buffer.write(POINTS_HEADER.format(count=len(points)))
    ids = np.arange(1, len(points) + 1)  # [P]
    flat = np.column_stack([ids, points.xyz.astype(np.float64), points.rgb, np.zeros(len(points))])  # [P, 8]
    np.savetxt(buffer, flat, fmt=["%d", "%.9g", "%.9g", "%.9g", "%d", "%d", "%d", "%g"])
    return buffer.getvalue()


def points3d_binary(points: RunPoints) -> bytes:
    """``points3D.bin``: uint64 count, then per point uint64 id, 3 double xyz, 3 uint8 rgb, double error,
    uint64 track length (0)."""
    record = np.dtype([("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("track", "<u8")])
    table = np.zeros(len(points), dtype=record)  # [P] packed records
    table["id"] = np.arange(1, len(points) + 1)
    table["xyz"] = points.xyz
    table["rgb"] = points.rgb
    return np.uint64(len(points)).tobytes() + table.tobytes()


def _data_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]


def text_cameras_images_to_binary(sparse: Path) -> tuple[bytes, bytes]:
    """``(cameras.bin, images.bin)`` holding the text model that :func:`voyager_pipe.camera.colmap.write`
    wrote in ``sparse`` (PINHOLE cameras, no 2D points)."""
    cameras = [line.split() for line in _data_lines(sparse / "cameras.txt") if line.strip()]
    camera_record = np.dtype([("id", "<u4"), ("model", "<i4"), ("width", "<u8"), ("height", "<u8"), ("params", "<f8", 4)])
    camera_table = np.zeros(len(cameras), dtype=camera_record)  # [C]
    assert all(fields[1] == "PINHOLE" for fields in cameras), "the COLMAP writer writes PINHOLE cameras only"
    camera_table["id"] = [int(fields[0]) for fields in cameras]
    camera_table["model"] = PINHOLE_MODEL_ID
    camera_table["width"] = [int(fields[2]) for fields in cameras]
    camera_table["height"] = [int(fields[3]) for fields in cameras]
    camera_table["params"] = [[float(x) for x in fields[4:8]] for fields in cameras]

    lines = _data_lines(sparse / "images.txt")
    images = [lines[k].split() for k in range(0, len(lines), 2)]  # pose lines; the points lines are empty
    pose_record = np.dtype([("id", "<u4"), ("q", "<f8", 4), ("t", "<f8", 3), ("camera", "<u4")])
    parts = [np.uint64(len(images)).tobytes()]
    for fields in images:  # one record per image (variable-length name)
        pose = np.zeros(1, dtype=pose_record)
        pose["id"], pose["q"], pose["t"], pose["camera"] = int(fields[0]), [float(x) for x in fields[1:5]], \
            [float(x) for x in fields[5:8]], int(fields[8])
        parts += [pose.tobytes(), " ".join(fields[9:]).encode() + b"\0", np.uint64(0).tobytes()]
    return np.uint64(len(cameras)).tobytes() + camera_table.tobytes(), b"".join(parts)


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
        return f"colmap: {self.images} images, {self.points} points3D -> {self.path} (images/, sparse/0/ text + binary)"


def export_colmap(run: RunFolder, out: Path, max_points: int = 200_000, seed: int = 0, progress: bool = True,
                  overwrite: bool = True) -> ColmapExport:
    """Write the run as a COLMAP model with its frames into folder ``out`` (built atomically)."""
    from voyager_pipe.camera import colmap
    from voyager_pipe.io.atomic import atomic_write_bytes, atomic_write_text, output_dir

    points = run.points.subsample(max_points, seed)
    with output_dir(out, inputs=[run.path], overwrite=overwrite) as tmp:
        copy_frames(run, tmp / "images", progress)
        sparse = tmp / "sparse" / "0"
        colmap.write(sparse, run.cameras, image_pattern="{:05d}.png")
        atomic_write_text(sparse / "points3D.txt", points3d_text(points))
        cameras_bin, images_bin = text_cameras_images_to_binary(sparse)
        atomic_write_bytes(sparse / "cameras.bin", cameras_bin)
        atomic_write_bytes(sparse / "images.bin", images_bin)
        atomic_write_bytes(sparse / "points3D.bin", points3d_binary(points))
    return ColmapExport(path=Path(out), images=len(run.cameras), points=len(points))

"""COLMAP text models: ``cameras.txt`` + ``images.txt``.

``images.txt`` stores per image ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` (a world-to-camera
rotation as a unit quaternion, scalar first, and translation, OpenCV axes) followed by one line of
2D points (possibly empty). ``cameras.txt`` stores ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...``.
COLMAP puts the centre of the top-left pixel at (0.5, 0.5), as we do, so principal points are used
unchanged. Pinhole parameters are taken from the first parameters of each model (``f cx cy`` or
``fx fy cx cy``); distortion parameters are ignored with a warning. Images are ordered by name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from voyager_pipe.camera._text import fmt_float
from voyager_pipe.io.atomic import atomic_write_text
from voyager_pipe.io.reading import MAX_FRAMES, check_count, read_text
from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.camera.rotations import matrix_to_quaternion, quaternion_to_matrix
from voyager_pipe.camera.validate import check_intrinsics, check_poses, check_size, pinhole_arrays_to_write
from voyager_pipe.errors import InputError

# model -> (number of params, parameters are "f cx cy" (True) or "fx fy cx cy" (False))
MODELS = {
    "SIMPLE_PINHOLE": (3, True), "PINHOLE": (4, False), "SIMPLE_RADIAL": (4, True), "RADIAL": (5, True),
    "OPENCV": (8, False), "OPENCV_FISHEYE": (8, False), "FULL_OPENCV": (12, False), "FOV": (5, False),
    "SIMPLE_RADIAL_FISHEYE": (4, True), "RADIAL_FISHEYE": (5, True), "THIN_PRISM_FISHEYE": (12, False),
}
QUATERNION_TOLERANCE = 1e-3


def model_files(path: str | Path) -> tuple[Path, Path]:
    """``(cameras.txt, images.txt)`` for a model directory, ``sparse/0`` layouts, or either file."""
    path = Path(path)
    if path.is_file():
        directory = path.parent
    else:
        directory = next((d for d in (path, path / "sparse" / "0", path / "sparse", path / "0")
                          if (d / "images.txt").is_file() or (d / "images.bin").is_file()), path)
    cameras_txt, images_txt = directory / "cameras.txt", directory / "images.txt"
    if not images_txt.is_file() and (directory / "images.bin").is_file():
        raise InputError(f"{directory}: binary COLMAP model; convert it to text first "
                         "(colmap model_converter --input_path ... --output_path ... --output_type TXT)")
    for needed in (cameras_txt, images_txt):
        if not needed.is_file():
            raise InputError(f"{needed}: missing (a COLMAP text model needs cameras.txt and images.txt)")
    return cameras_txt, images_txt


def _data_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of every line that is not a comment (empty lines kept)."""
    lines = read_text(path, "COLMAP model").splitlines()
    return [(n, line) for n, line in enumerate(lines, start=1) if not line.startswith("#")]


def _read_cameras(path: Path) -> dict[int, tuple[torch.Tensor, int, int]]:
    cameras = {}
    for number, line in _data_lines(path):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}: line {number}"
        if len(fields) < 4:
            raise InputError(f"{where}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS...")
        model = fields[1]
        if model not in MODELS:
            raise InputError(f"{where}: unknown camera model {model!r} (known: {', '.join(MODELS)})")
        count, single_focal = MODELS[model]
        try:
            camera_id, width, height = int(fields[0]), int(fields[2]), int(fields[3])
            params = [float(x) for x in fields[4:]]
        except ValueError:
            raise InputError(f"{where}: not a number in {line.strip()[:60]!r}") from None
        if len(params) != count:
            raise InputError(f"{where}: model {model} needs {count} parameters, got {len(params)}")
        check_size(width, height, where)
        if single_focal:
            fx = fy = params[0]
            cx, cy, extra = params[1], params[2], params[3:]
        else:
            fx, fy, cx, cy, extra = params[0], params[1], params[2], params[3], params[4:]
        if any(x != 0 for x in extra) or "FISHEYE" in model:
            warnings.warn(f"{where}: {model} distortion is ignored (pinhole cameras only)", stacklevel=3)
        K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)
        cameras[camera_id] = (K, width, height)
    return cameras


def _check_points_line(numbered_line: tuple[int, str], source: str) -> None:
    """The line after an image line holds its 2D points (``X Y POINT3D_ID`` triples, possibly none).

    A file without those lines would pair image lines up and silently drop every other image."""
    number, line = numbered_line
    fields = line.split()
    try:
        [float(x) for x in fields]
    except ValueError:
        fields = None
    if fields is None or len(fields) % 3:
        raise InputError(f"{source}: line {number}: expected the POINTS2D line (X Y POINT3D_ID ..., may be empty) "
                         "after each image line; got another image line? (COLMAP writes two lines per image)")


def read(path: str | Path, size: tuple[int, int] | None = None) -> Cameras:
    """Read a COLMAP text model (directory, ``cameras.txt`` or ``images.txt``)."""
    cameras_txt, images_txt = model_files(path)
    intrinsics = _read_cameras(cameras_txt)
    source = str(images_txt)
    lines = _data_lines(images_txt)
    check_count(max(len(lines) // 2, 1), MAX_FRAMES, source, "images")
    records = []
    for k in range(0, len(lines), 2):  # pose line, then a (possibly empty) points line
        number, line = lines[k]
        fields = line.split()
        if not fields:
            raise InputError(f"{source}: line {number}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, got an empty line")
        if len(fields) < 10:
            raise InputError(f"{source}: line {number}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
        try:
            values = [float(x) for x in fields[1:8]]
            camera_id = int(fields[8])
        except ValueError:
            raise InputError(f"{source}: line {number}: not a number in {line.strip()[:60]!r}") from None
        if camera_id not in intrinsics:
            raise InputError(f"{source}: line {number}: camera {camera_id} is not in {cameras_txt} (missing intrinsics)")
        if k + 1 < len(lines):
            _check_points_line(lines[k + 1], source)
        records.append((" ".join(fields[9:]), number, values, camera_id))
    if not records:
        raise InputError(f"{source}: empty trajectory (no images)")
    records.sort(key=lambda r: r[0])

    qt = torch.from_numpy(np.asarray([r[2] for r in records], dtype=np.float64))  # [N, 7]
    line_numbers = [r[1] for r in records]
    norms = qt[:, :4].norm(dim=-1)  # [N]
    bad = ~torch.isfinite(qt).all(dim=-1) | ((norms - 1).abs() > QUATERNION_TOLERANCE)  # [N]
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise InputError(f"{source}: line {line_numbers[i]} (frame {i}): quaternion is not finite and unit "
                         f"(norm {float(norms[i]):.6g})")
    w2c = torch.eye(4, dtype=torch.float64).repeat(qt.shape[0], 1, 1)  # [N, 4, 4]
    w2c[:, :3, :3] = quaternion_to_matrix(qt[:, :4] / norms[:, None])  # [N, 3, 3] (norm off by rounding only)
    w2c[:, :3, 3] = qt[:, 4:]
    K = torch.stack([intrinsics[r[3]][0] for r in records])  # [N, 3, 3]
    sizes = sorted({intrinsics[r[3]][1:] for r in records})
    if len(sizes) != 1:
        raise InputError(f"{cameras_txt}: images use cameras of different sizes {sizes} (one size per trajectory)")
    check_poses(w2c, source)
    check_intrinsics(K, str(cameras_txt))
    return Cameras(K=K, w2c=w2c, width=sizes[0][0], height=sizes[0][1])


def write(path: str | Path, cameras: Cameras, image_pattern: str = "{:05d}.png") -> None:
    """Write a COLMAP text model into directory ``path`` (``cameras.txt``, ``images.txt``, empty ``points3D.txt``).

    One PINHOLE camera per distinct intrinsics; image ``i`` is named ``image_pattern.format(i)``.
    """
    path = Path(path)
    if path.name in ("cameras.txt", "images.txt", "points3D.txt"):
        path = path.parent
    K, w2c = pinhole_arrays_to_write(cameras, path, "COLMAP PINHOLE")  # [N, 3, 3], [N, 4, 4]
    n = len(cameras)
    params = torch.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]], dim=-1)  # [N, 4]
    unique, camera_index = torch.unique(params, dim=0, return_inverse=True)  # [C, 4], [N]
    quats = matrix_to_quaternion(w2c[:, :3, :3])  # [N, 4]

    camera_lines = ["# Camera list with one line of data per camera:",
                    "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]", f"# Number of cameras: {unique.shape[0]}"]
    camera_lines += [f"{c + 1} PINHOLE {cameras.width} {cameras.height} " + " ".join(fmt_float(x) for x in row)
                     for c, row in enumerate(unique.tolist())]
    image_lines = ["# Image list with two lines of data per image:",
                   "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
                   "#   POINTS2D[] as (X, Y, POINT3D_ID)", f"# Number of images: {n}, mean observations per image: 0"]
    for i in range(n):  # text formatting per image
        numbers = " ".join(fmt_float(x) for x in quats[i].tolist() + w2c[i, :3, 3].tolist())
        image_lines += [f"{i + 1} {numbers} {int(camera_index[i]) + 1} {image_pattern.format(i)}", ""]
    points_lines = ["# 3D point list with one line of data per point:",
                    "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
                    "# Number of points: 0, mean track length: 0"]
    atomic_write_text(path / "cameras.txt", "\n".join(camera_lines) + "\n")
    atomic_write_text(path / "images.txt", "\n".join(image_lines) + "\n")
    atomic_write_text(path / "points3D.txt", "\n".join(points_lines) + "\n")

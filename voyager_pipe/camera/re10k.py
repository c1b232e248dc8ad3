"""RealEstate10K camera files (``<clip id>.txt``).

Layout: the first line is the video URL; every further line is one frame with 19 numbers::

    timestamp_us  fx fy cx cy  0 0  r11 r12 r13 t1  r21 r22 r23 t2  r31 r32 r33 t3

``fx fy cx cy`` are normalised by the image width (fx, cx) and height (fy, cy); the 12 numbers
are a row-major 3x4 world-to-camera matrix in OpenCV axes. The normalised principal point
0.5 maps to ``W / 2``, the centre under our integer + 0.5 pixel-centre convention, so the
conversion is only ``fx_px = fx * W`` etc. The file has no image size: ``size=(W, H)`` is required.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from voyager_pipe.camera._text import fmt_float
from voyager_pipe.io.atomic import atomic_write_text
from voyager_pipe.io.reading import MAX_FRAMES, check_count, read_text
from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.camera.validate import check_intrinsics, check_poses, check_size, pinhole_arrays_to_write
from voyager_pipe.errors import InputError

FIELDS_PER_LINE = 19


def read(path: str | Path, size: tuple[int, int] | None = None) -> Cameras:
    """Read a RealEstate10K file; ``size=(width, height)`` gives the pixel scale of the intrinsics."""
    path = Path(path)
    if size is None:
        raise InputError(f"{path}: RealEstate10K files store normalised intrinsics and no image size: "
                         "pass the size (--size WxH)")
    width, height = check_size(size[0], size[1], f"{path}: size")
    lines = read_text(path, "RealEstate10K trajectory").splitlines()
    check_count(max(sum(1 for line in lines[1:] if line.strip()), 1), MAX_FRAMES, str(path), "frames")
    rows = []
    for number, line in enumerate(lines[1:], start=2):  # line 1 is the URL
        if not line.strip():
            continue
        fields = line.split()
        frame = len(rows)
        if len(fields) != FIELDS_PER_LINE:
            raise InputError(f"{path}: line {number} (frame {frame}): expected {FIELDS_PER_LINE} numbers, got {len(fields)}")
        try:
            rows.append([float(x) for x in fields])
        except ValueError:
            raise InputError(f"{path}: line {number} (frame {frame}): not a number in {line.strip()[:60]!r}") from None
    if not rows:
        raise InputError(f"{path}: empty trajectory (no frame lines after the URL line)")
    data = torch.from_numpy(np.asarray(rows, dtype=np.float64))  # [N, 19]
    n = data.shape[0]

    K = torch.zeros(n, 3, 3, dtype=torch.float64)  # [N, 3, 3]
    K[:, 0, 0] = data[:, 1] * width
    K[:, 1, 1] = data[:, 2] * height
    K[:, 0, 2] = data[:, 3] * width
    K[:, 1, 2] = data[:, 4] * height
    K[:, 2, 2] = 1
    w2c = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)  # [N, 4, 4]
    w2c[:, :3, :] = data[:, 7:].reshape(n, 3, 4)
    check_poses(w2c, str(path))
    check_intrinsics(K, str(path))
    return Cameras(K=K, w2c=w2c, width=width, height=height)


def write(path: str | Path, cameras: Cameras, url: str = "unknown", fps: float = 30.0,
          timestamps: list[int] | None = None) -> None:
    """Write ``cameras`` as a RealEstate10K file.

    Args:
        url: text of the first line (RE10K stores the YouTube URL there).
        fps: frame rate for the microsecond timestamps ``round(i * 1e6 / fps)`` when ``timestamps`` is None.
        timestamps: explicit per-frame timestamps (integers).
    """
    K, w2c = pinhole_arrays_to_write(cameras, path, "RealEstate10K")  # [N, 3, 3], [N, 4, 4]
    n = len(cameras)
    if timestamps is None:
        timestamps = [round(i * 1e6 / fps) for i in range(n)]
    if len(timestamps) != n:
        raise InputError(f"{path}: {len(timestamps)} timestamps for {n} frames")
    W, H = cameras.width, cameras.height
    intr = torch.stack([K[:, 0, 0] / W, K[:, 1, 1] / H, K[:, 0, 2] / W, K[:, 1, 2] / H], dim=-1)  # [N, 4]
    extr = w2c[:, :3, :].reshape(n, 12)  # [N, 12]
    lines = [url.strip() or "unknown"]
    for i in range(n):  # text formatting per frame line
        numbers = [fmt_float(x) for x in intr[i].tolist()] + ["0", "0"] + [fmt_float(x) for x in extr[i].tolist()]
        lines.append(f"{int(timestamps[i])} " + " ".join(numbers))
    atomic_write_text(path, "\n".join(lines) + "\n")

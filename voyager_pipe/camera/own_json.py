"""The project's own trajectory JSON (``cameras.json``), version 1.

Layout::

    {"format": "voyager_pipe.trajectory", "version": 1,
     "convention": "opencv",            # camera axes: "opencv" (x right, y down, z forward) or "opengl"
     "matrix": "w2c",                   # direction of the per-frame 4x4: "w2c" or "c2w"
     "width": W, "height": H,           # image size the intrinsics refer to (pixels)
     "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],   # shared intrinsics in pixels ...
     # ... or "fov_x_deg": 60.0 (optional "fov_y_deg"), principal point at the image centre
     "frames": [{"w2c": [[...4x4...]]}, ...]}      # a frame may carry its own "K" or "fov_x_deg"

The writer always writes ``opencv`` / ``w2c`` with every float as its ``repr`` (shortest exact text), so a
write-read round trip gives bit-identical float64 tensors. The reader accepts all four combinations of
``convention`` and ``matrix``. Pixel centres are at integer + 0.5 (see ``voyager_pipe.camera.cameras``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from voyager_pipe.camera._text import fmt_float
from voyager_pipe.io.atomic import atomic_write_text
from voyager_pipe.io.reading import MAX_FRAMES, check_count, read_json
from voyager_pipe.camera.cameras import Cameras, _CV_TO_GL, intrinsics_from_fov, rigid_inverse
from voyager_pipe.camera.validate import as_matrix_array, check_intrinsics, check_poses, check_size
from voyager_pipe.errors import InputError

FORMAT_NAME = "voyager_pipe.trajectory"
VERSION = 1
CONVENTIONS = ("opencv", "opengl")
MATRIX_DIRECTIONS = ("w2c", "c2w")


def _intrinsics(entry: dict, width: int, height: int, where: str) -> torch.Tensor | None:
    """``K`` [3, 3] from an entry's ``K`` or ``fov_x_deg`` (``None`` when it has neither)."""
    if "K" in entry:
        return torch.from_numpy(as_matrix_array(entry["K"], (3, 3), f"{where}.K"))
    if "fov_x_deg" in entry:
        fov_x, fov_y = entry["fov_x_deg"], entry.get("fov_y_deg")
        for name, value in (("fov_x_deg", fov_x), ("fov_y_deg", fov_y)):
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not 0 < value < 180):
                raise InputError(f"{where}.{name}: expected degrees in (0, 180), got {value!r}")
        return intrinsics_from_fov(float(fov_x), width, height, None if fov_y is None else float(fov_y))
    return None


def read(path: str | Path, size: tuple[int, int] | None = None) -> Cameras:
    """Read an own-format trajectory file (``size`` is unused: the file carries its size)."""
    return from_dict(read_json(path, "trajectory"), str(path))


def from_dict(data: dict, source: str) -> Cameras:
    """Parse the own format from an already-loaded dict (``source`` names it in errors)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise InputError(f"{source}: not a voyager_pipe trajectory (\"format\" must be {FORMAT_NAME!r})")
    if data.get("version") != VERSION:
        raise InputError(f"{source}: unsupported trajectory version {data.get('version')!r} (this reader knows {VERSION})")
    convention = data.get("convention")
    if convention not in CONVENTIONS:
        raise InputError(f"{source}: unknown convention {convention!r} (expected one of {', '.join(CONVENTIONS)})")
    matrix = data.get("matrix")
    if matrix not in MATRIX_DIRECTIONS:
        raise InputError(f"{source}: unknown matrix direction {matrix!r} (expected one of {', '.join(MATRIX_DIRECTIONS)})")
    if "width" not in data or "height" not in data:
        raise InputError(f"{source}: missing image size (\"width\" and \"height\")")
    width, height = check_size(data["width"], data["height"], source)
    frames = data.get("frames")
    if not isinstance(frames, list):
        raise InputError(f"{source}: \"frames\" must be a list")
    if not frames:
        raise InputError(f"{source}: empty trajectory (no frames)")
    check_count(len(frames), MAX_FRAMES, source, "frames")

    shared_K = _intrinsics(data, width, height, source)
    Ks, poses = [], []
    for i, frame in enumerate(frames):
        where = f"{source}: frame {i}"
        if not isinstance(frame, dict) or matrix not in frame:
            raise InputError(f"{where}: missing \"{matrix}\" matrix")
        poses.append(torch.from_numpy(as_matrix_array(frame[matrix], (4, 4), f"{where}.{matrix}")))
        K = _intrinsics(frame, width, height, where)
        if K is None:
            K = shared_K
        if K is None:
            raise InputError(f"{where}: missing intrinsics (give \"K\" or \"fov_x_deg\" per frame or at the top level)")
        Ks.append(K)
    pose = torch.stack(poses)  # [N, 4, 4]
    K = torch.stack(Ks)  # [N, 3, 3]
    check_poses(pose, source)
    check_intrinsics(K, source)

    c2w_or_w2c_cv = pose if convention == "opencv" else None
    if convention == "opengl":
        # Axis flip on the camera side: c2w_cv = c2w_gl @ F, w2c_cv = F @ w2c_gl (F = diag(1,-1,-1,1)).
        flip = _CV_TO_GL.to(pose)
        c2w_or_w2c_cv = pose @ flip if matrix == "c2w" else flip @ pose  # [N, 4, 4]
    w2c = c2w_or_w2c_cv if matrix == "w2c" else rigid_inverse(c2w_or_w2c_cv)  # [N, 4, 4]
    return Cameras(K=K, w2c=w2c, width=width, height=height)


def _matrix_text(m: torch.Tensor) -> str:
    return "[" + ", ".join("[" + ", ".join(fmt_float(x) for x in row) + "]" for row in m.tolist()) + "]"


def to_text(cameras: Cameras) -> str:
    """The own-format JSON text for ``cameras`` (opencv / w2c, exact floats, shared K when all equal)."""
    K = cameras.K.detach().cpu().to(torch.float64)  # [N, 3, 3]
    w2c = cameras.w2c.detach().cpu().to(torch.float64)  # [N, 4, 4]
    if len(cameras) == 0:
        raise ValueError("trajectory: cannot write an empty trajectory")
    shared = bool((K == K[:1]).all())
    lines = ["{", f'  "format": "{FORMAT_NAME}",', f'  "version": {VERSION},', '  "convention": "opencv",',
             '  "matrix": "w2c",', f'  "width": {cameras.width},', f'  "height": {cameras.height},']
    if shared:
        lines.append(f'  "K": {_matrix_text(K[0])},')
    lines.append('  "frames": [')
    for i in range(len(cameras)):  # one line per frame (text formatting, not numeric work)
        per_frame_K = "" if shared else f', "K": {_matrix_text(K[i])}'
        comma = "," if i + 1 < len(cameras) else ""
        lines.append(f'    {{"w2c": {_matrix_text(w2c[i])}{per_frame_K}}}{comma}')
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def write(path: str | Path, cameras: Cameras) -> None:
    """Write ``cameras`` to ``path`` in the own format (atomically)."""
    atomic_write_text(path, to_text(cameras))

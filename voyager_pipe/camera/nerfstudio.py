"""nerfstudio / instant-ngp ``transforms.json``.

Each frame's ``transform_matrix`` is a camera-to-world 4x4 in OpenGL camera axes (x right, y up,
z backward); the world frame is kept as it is. Intrinsics ``fl_x fl_y cx cy w h`` in pixels sit at the
top level and may be overridden per frame; ``camera_angle_x`` (NeRF synthetic files) is accepted when
``fl_x`` is absent. nerfstudio puts pixel centres at integer + 0.5 like us, so ``cx``, ``cy`` are used
unchanged. Missing ``cx``/``cy`` default to the image centre and a missing ``fl_y`` to ``fl_x``, as in
instant-ngp. Fisheye and equirectangular models are rejected; distortion coefficients of the
OPENCV model are ignored with a warning.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import torch

from voyager_pipe.io.atomic import atomic_write_text
from voyager_pipe.io.reading import MAX_FRAMES, check_count, read_json
from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.camera.validate import as_matrix_array, check_intrinsics, check_poses, check_size
from voyager_pipe.errors import InputError

PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def _number(entry: dict, key: str, where: str):
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}.{key}: expected a finite number, got {value!r}")
    return float(value)


#: Widest field of view a pinhole camera can have here (radians): 179 degrees.
MAX_FOV = math.radians(179.0)


def _angle(entry: dict, key: str, where: str) -> float:
    """A field-of-view angle in radians, strictly between 0 and :data:`MAX_FOV`."""
    value = _number(entry, key, where)
    if not 0 < value <= MAX_FOV:
        raise InputError(f"{where}.{key}: field of view {value!r} rad is not in (0, {MAX_FOV:.4f}] (0 to 179 degrees)")
    return value


def read(path: str | Path, size: tuple[int, int] | None = None) -> Cameras:
    """Read a ``transforms.json`` (or a directory holding one). ``size`` supplies w/h when the file has none."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    data = read_json(path, "transforms.json trajectory")
    source = str(path)
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, list):
        raise InputError(f"{source}: missing \"frames\" list")
    if not frames:
        raise InputError(f"{source}: empty trajectory (no frames)")
    check_count(len(frames), MAX_FRAMES, source, "frames")

    Ks, poses, sizes = [], [], set()
    for i, frame in enumerate(frames):
        where = f"{source}: frame {i}"
        if not isinstance(frame, dict) or "transform_matrix" not in frame:
            raise InputError(f"{where}: missing \"transform_matrix\"")
        poses.append(torch.from_numpy(as_matrix_array(frame["transform_matrix"], (4, 4), f"{where}.transform_matrix")))
        entry = {**data, **frame}  # per-frame values override the shared ones
        model = entry.get("camera_model", "OPENCV")
        if model not in PINHOLE_MODELS:
            raise InputError(f"{where}: camera_model {model!r} is not a pinhole model (supported: {', '.join(PINHOLE_MODELS)})")
        if any(entry.get(k, 0) not in (0, 0.0, None) for k in DISTORTION_KEYS):
            warnings.warn(f"{where}: lens distortion coefficients are ignored (pinhole cameras only)", stacklevel=2)
        if "w" in entry and "h" in entry:
            w, h = check_size(entry["w"], entry["h"], where)
        elif size is not None:
            w, h = check_size(size[0], size[1], f"{where}: size")
        else:
            raise InputError(f"{where}: missing image size (\"w\", \"h\"); pass the size (--size WxH)")
        sizes.add((w, h))
        if "fl_x" in entry:
            fx = _number(entry, "fl_x", where)
        elif "camera_angle_x" in entry:
            fx = 0.5 * w / math.tan(0.5 * _angle(entry, "camera_angle_x", where))
        else:
            raise InputError(f"{where}: missing intrinsics (\"fl_x\" or \"camera_angle_x\")")
        if "fl_y" in entry:
            fy = _number(entry, "fl_y", where)
        elif "camera_angle_y" in entry:
            fy = 0.5 * h / math.tan(0.5 * _angle(entry, "camera_angle_y", where))
        else:
            fy = fx
        cx = _number(entry, "cx", where) if "cx" in entry else w / 2
        cy = _number(entry, "cy", where) if "cy" in entry else h / 2
        Ks.append(torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64))
    if len(sizes) != 1:
        raise InputError(f"{source}: frames have different image sizes {sorted(sizes)} (one size per trajectory)")
    c2w_gl = torch.stack(poses)  # [N, 4, 4]
    K = torch.stack(Ks)  # [N, 3, 3]
    check_poses(c2w_gl, source)
    check_intrinsics(K, source)
    (width, height), = sizes
    return Cameras.from_opengl_c2w(c2w_gl, K, width, height)


def write(path: str | Path, cameras: Cameras, image_pattern: str = "images/frame_{:05d}.png") -> None:
    """Write ``cameras`` as a nerfstudio ``transforms.json`` (a directory path gets ``transforms.json`` inside).

    Shared intrinsics go to the top level, otherwise into every frame; ``file_path`` follows ``image_pattern``.
    """
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path / "transforms.json"
    K = cameras.K.detach().cpu().to(torch.float64)  # [N, 3, 3]
    if len(cameras) == 0:
        raise InputError(f"{path}: cannot write an empty trajectory")
    if bool((K[:, 0, 1] != 0).any()):
        raise InputError(f"{path}: transforms.json cannot store skewed intrinsics (K[0][1] != 0)")
    c2w_gl = cameras.to(dtype=torch.float64).to_opengl_c2w().cpu()  # [N, 4, 4]

    def intrinsics(k: torch.Tensor) -> dict:
        return {"fl_x": float(k[0, 0]), "fl_y": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2])}

    data: dict = {"camera_model": "OPENCV", "w": cameras.width, "h": cameras.height}
    shared = bool((K == K[:1]).all())
    if shared:
        data.update(intrinsics(K[0]))
    frames = []
    for i in range(len(cameras)):  # per-frame records
        frame = {"file_path": image_pattern.format(i), "transform_matrix": c2w_gl[i].tolist()}
        if not shared:
            frame.update(intrinsics(K[i]))
        frames.append(frame)
    data["frames"] = frames
    # json writes floats with repr, so the text reads back to the same float64 values.
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


__all__ = ["read", "write"]

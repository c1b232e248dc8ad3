"""Every kind of bad trajectory input gives its own InputError naming the file and the frame."""

from __future__ import annotations

import json
import math

import pytest

from voyager_pipe.camera.trajectory_io import read_trajectory
from voyager_pipe.errors import InputError

EYE = [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
K = [[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]


def own(tmp_path, frames, **top):
    doc = {"format": "voyager_pipe.trajectory", "version": 1, "convention": "opencv", "matrix": "w2c",
           "width": 64, "height": 48, "K": K, "frames": frames}
    doc.update(top)
    doc = {k: v for k, v in doc.items() if v is not None}
    path = tmp_path / "traj.json"
    path.write_text(json.dumps(doc))  # json writes NaN / Infinity literals, which json.loads accepts
    return path


def with_entry(r, c, value):
    m = [row[:] for row in EYE]
    m[r][c] = value
    return m


@pytest.mark.parametrize("frames, top, pattern", [
    ([{"w2c": EYE}, {"w2c": with_entry(0, 3, math.nan)}], {}, r"traj\.json: frame 1: .*NaN or inf"),
    ([{"w2c": with_entry(1, 3, math.inf)}], {}, r"frame 0: .*NaN or inf"),
    ([{"w2c": EYE}, {"w2c": EYE}, {"w2c": with_entry(0, 1, 0.1)}], {}, r"frame 2: rotation is not orthonormal"),
    ([{"w2c": with_entry(2, 2, -1.0)}], {}, r"frame 0: rotation has determinant -1"),
    ([], {}, r"traj\.json: empty trajectory"),
    ([{"w2c": [row for row in EYE[:3]]}], {}, r"frame 0\.w2c: expected a 4x4 matrix, got shape \(3, 4\)"),
    ([{"w2c": with_entry(3, 0, 1.0)}], {}, r"frame 0: last matrix row"),
    ([{"w2c": EYE}], {"K": None}, r"frame 0: missing intrinsics"),
    ([{"w2c": EYE}], {"convention": "blender"}, r"unknown convention 'blender'"),
    ([{"w2c": EYE}], {"matrix": "view"}, r"unknown matrix direction 'view'"),
    ([{"w2c": EYE}], {"version": 7}, r"unsupported trajectory version 7"),
    ([{"w2c": EYE}], {"width": None}, r"missing image size"),
    ([{"w2c": EYE}], {"K": [[-5.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]}, r"frame 0: focal lengths must be positive"),
    ([{"w2c": EYE}], {"K": None, "fov_x_deg": 200}, r"fov_x_deg: expected degrees in \(0, 180\)"),
    ([{"c2w": EYE}], {}, r"frame 0: missing \"w2c\" matrix"),
])
def test_own_json_errors(tmp_path, frames, top, pattern):
    path = own(tmp_path, frames, **top)
    with pytest.raises(InputError, match=pattern):
        read_trajectory(path)


def test_errors_name_the_file(tmp_path):
    path = own(tmp_path, [{"w2c": with_entry(0, 1, 0.1)}])
    with pytest.raises(InputError) as info:
        read_trajectory(path)
    assert str(path) in str(info.value)


def test_nothing_is_silently_fixed_near_the_tolerance(tmp_path):
    ok = own(tmp_path, [{"w2c": with_entry(0, 1, 1e-6)}])  # within tolerance: accepted unchanged
    assert read_trajectory(ok).w2c[0, 0, 1].item() == 1e-6
    bad = own(tmp_path, [{"w2c": with_entry(0, 1, 1e-3)}])
    with pytest.raises(InputError, match="not orthonormal"):
        read_trajectory(bad)


def test_re10k_errors(tmp_path):
    path = tmp_path / "clip.txt"
    good = "1000 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 2"
    path.write_text("https://x\n" + good + "\n")
    with pytest.raises(InputError, match=r"clip\.txt: .*pass the size"):
        read_trajectory(path)
    path.write_text("https://x\n" + good + "\n" + good.rsplit(" ", 1)[0] + "\n")
    with pytest.raises(InputError, match=r"line 3 \(frame 1\): expected 19 numbers, got 18"):
        read_trajectory(path, fmt="re10k", size=(64, 48))
    path.write_text("https://x\n" + good.replace(" 2", " abc") + "\n")
    with pytest.raises(InputError, match=r"frame 0\): not a number"):
        read_trajectory(path, fmt="re10k", size=(64, 48))
    path.write_text("https://x\n")
    with pytest.raises(InputError, match="empty trajectory"):
        read_trajectory(path, fmt="re10k", size=(64, 48))
    path.write_text("https://x\n" + good.replace("0 0 1 2", "0 0 -1 2") + "\n")  # mirrored z: det -1
    with pytest.raises(InputError, match=r"frame 0: rotation has determinant"):
        read_trajectory(path, fmt="re10k", size=(64, 48))


def test_transforms_errors(tmp_path):
    path = tmp_path / "transforms.json"
    frame = {"transform_matrix": EYE}
    path.write_text(json.dumps({"w": 64, "h": 48, "frames": [frame]}))
    with pytest.raises(InputError, match=r"frame 0: missing intrinsics"):
        read_trajectory(path)
    path.write_text(json.dumps({"fl_x": 50, "frames": [frame]}))
    with pytest.raises(InputError, match=r"frame 0: missing image size"):
        read_trajectory(path)
    path.write_text(json.dumps({"fl_x": 50, "w": 64, "h": 48, "camera_model": "OPENCV_FISHEYE", "frames": [frame]}))
    with pytest.raises(InputError, match="not a pinhole model"):
        read_trajectory(path)
    path.write_text(json.dumps({"fl_x": 50, "frames": [dict(frame, w=64, h=48), dict(frame, w=32, h=24)]}))
    with pytest.raises(InputError, match="different image sizes"):
        read_trajectory(path)


def test_colmap_errors(tmp_path):
    (tmp_path / "cameras.txt").write_text("1 WEIRD_MODEL 64 48 50 32 24\n")
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n")
    with pytest.raises(InputError, match=r"cameras\.txt: line 1: unknown camera model 'WEIRD_MODEL'"):
        read_trajectory(tmp_path, fmt="colmap")
    (tmp_path / "cameras.txt").write_text("1 PINHOLE 64 48 50 50 32\n")
    with pytest.raises(InputError, match="needs 4 parameters, got 3"):
        read_trajectory(tmp_path, fmt="colmap")
    (tmp_path / "cameras.txt").write_text("1 PINHOLE 64 48 50 50 32 24\n")
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 0 2 a.png\n\n")
    with pytest.raises(InputError, match=r"camera 2 is not in .*missing intrinsics"):
        read_trajectory(tmp_path, fmt="colmap")
    (tmp_path / "images.txt").write_text("1 2 0 0 0 0 0 0 1 a.png\n\n")
    with pytest.raises(InputError, match=r"frame 0\): quaternion is not finite and unit"):
        read_trajectory(tmp_path, fmt="colmap")
    (tmp_path / "images.txt").unlink()
    (tmp_path / "images.bin").write_bytes(b"\0")
    with pytest.raises(InputError, match="binary COLMAP model"):
        read_trajectory(tmp_path, fmt="colmap")


def test_detection_and_format_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_trajectory(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="neither a voyager_pipe trajectory nor a transforms.json"):
        read_trajectory(tmp_path / "x.json")
    (tmp_path / "x.txt").write_text("just some words\n")
    with pytest.raises(InputError, match="cannot tell the trajectory format"):
        read_trajectory(tmp_path / "x.txt")
    with pytest.raises(InputError, match="unknown"):
        read_trajectory(tmp_path / "x.txt", fmt="obj")

"""Trajectory readers/writers: hand-made files with hand-derived projections, round trips, real RE10K files."""

from __future__ import annotations

import json
import math

import pytest
import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.camera.rotations import axis_angle_matrix
from voyager_pipe.camera.trajectory_io import detect_format, read_trajectory, write_trajectory
from voyager_pipe.cli import main

D = torch.float64


def project(cameras: Cameras, points: torch.Tensor) -> torch.Tensor:
    homo = torch.cat([points, torch.ones(points.shape[0], 1, dtype=D)], dim=1)  # [P, 4]
    pix = cameras.K @ (cameras.w2c @ homo.T)[:, :3]  # [N, 3, P]
    return (pix[:, :2] / pix[:, 2:]).transpose(1, 2)  # [N, P, 2]


def sample_cameras(n: int = 4, per_frame_K: bool = False) -> Cameras:
    g = torch.Generator().manual_seed(7)
    angles = torch.rand(n, generator=g, dtype=D) * 2 - 1
    R = axis_angle_matrix("y", angles) @ axis_angle_matrix("x", 0.3 * angles)
    w2c = torch.eye(4, dtype=D).repeat(n, 1, 1)
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = torch.randn(n, 3, generator=g, dtype=D)
    K = intrinsics_from_fov(55.0, 64, 48).repeat(n, 1, 1)
    if per_frame_K:
        K[:, 0, 0] += torch.arange(n, dtype=D) / 3
        K[:, 1, 2] += 0.25
    return Cameras(K=K, w2c=w2c, width=64, height=48)


@pytest.mark.parametrize("per_frame_K", [False, True])
def test_own_json_round_trip_is_exact(tmp_path, per_frame_K):
    cams = sample_cameras(per_frame_K=per_frame_K)
    write_trajectory(tmp_path / "c.json", cams)
    data = json.loads((tmp_path / "c.json").read_text())
    assert (data["convention"], data["matrix"], data["version"]) == ("opencv", "w2c", 1)
    assert ("K" in data) != per_frame_K
    back = read_trajectory(tmp_path / "c.json")
    assert detect_format(tmp_path / "c.json") == "json"
    assert torch.equal(back.w2c, cams.w2c) and torch.equal(back.K, cams.K)
    assert (back.width, back.height) == (64, 48) and back.w2c.dtype == D


def test_own_json_fov_and_opengl_c2w_entries(tmp_path):
    # A camera at world (0, 0, 5) in OpenGL axes with identity rotation looks along world -z.
    c2w_gl = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 5], [0, 0, 0, 1]]
    doc = {"format": "voyager_pipe.trajectory", "version": 1, "convention": "opengl", "matrix": "c2w",
           "width": 200, "height": 100, "fov_x_deg": 90.0, "frames": [{"c2w": c2w_gl}, {"c2w": c2w_gl, "K": [[50, 0, 100], [0, 50, 50], [0, 0, 1]]}]}
    (tmp_path / "t.json").write_text(json.dumps(doc))
    cams = read_trajectory(tmp_path / "t.json")
    assert cams.K[0, 0, 0].item() == pytest.approx(100.0)  # fov 90 over 200 px
    uv = project(cams, torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.0, 1.0, 0]], dtype=D))
    assert torch.allclose(uv[0], torch.tensor([[100.0, 50], [120, 50], [100, 30]], dtype=D))  # world +y is image up
    assert uv[1, 1].tolist() == pytest.approx([110, 50])


def test_re10k_hand_made_line_projects_to_known_pixel(tmp_path):
    # fx = 0.5 * 200 = 100 px, fy = 1.0 * 100 = 100 px, centre (100, 50); w2c translation (0, 0, 2).
    line = "1000 0.5 1.0 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 2"
    (tmp_path / "clip.txt").write_text("https://www.youtube.com/watch?v=x\n" + line + "\n")
    assert detect_format(tmp_path / "clip.txt") == "re10k"
    cams = read_trajectory(tmp_path / "clip.txt", size=(200, 100))
    uv = project(cams, torch.tensor([[1.0, 0.5, 3.0]], dtype=D))
    assert uv[0, 0].tolist() == pytest.approx([120.0, 60.0])  # (100*1/5 + 100, 100*0.5/5 + 50)


def test_re10k_round_trip(tmp_path):
    cams = sample_cameras(per_frame_K=True)
    write_trajectory(tmp_path / "a.txt", cams, "re10k", url="https://example.org/v")
    text = (tmp_path / "a.txt").read_text().splitlines()
    assert text[0] == "https://example.org/v" and len(text) == 5 and len(text[1].split()) == 19
    back = read_trajectory(tmp_path / "a.txt", size=(64, 48))
    assert torch.equal(back.w2c, cams.w2c)
    assert torch.allclose(back.K, cams.K, rtol=1e-15, atol=1e-12)


def test_transforms_hand_made_file(tmp_path):
    doc = {"camera_model": "OPENCV", "fl_x": 100.0, "fl_y": 100.0, "cx": 100.0, "cy": 50.0, "w": 200, "h": 100,
           "frames": [{"file_path": "a.png", "transform_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 5], [0, 0, 0, 1]]},
                      {"file_path": "b.png", "fl_x": 200.0, "fl_y": 200.0,
                       "transform_matrix": [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 5], [0, 0, 0, 1]]}]}
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    assert detect_format(tmp_path / "transforms.json") == "transforms"
    cams = read_trajectory(tmp_path / "transforms.json")
    uv = project(cams, torch.tensor([[1.0, 1.0, 0.0]], dtype=D))[:, 0]
    # frame 0: x right -> u = 100 + 100/5; y up -> v = 50 - 100/5. frame 1 sits at x = 1, focal 200.
    assert uv[0].tolist() == pytest.approx([120.0, 30.0])
    assert uv[1].tolist() == pytest.approx([100.0, 10.0])


@pytest.mark.parametrize("per_frame_K", [False, True])
def test_transforms_round_trip(tmp_path, per_frame_K):
    cams = sample_cameras(per_frame_K=per_frame_K)
    write_trajectory(tmp_path / "transforms.json", cams, "transforms")
    data = json.loads((tmp_path / "transforms.json").read_text())
    assert ("fl_x" in data) != per_frame_K and data["w"] == 64
    back = read_trajectory(tmp_path / "transforms.json")
    assert torch.allclose(back.w2c, cams.w2c, atol=1e-14) and torch.equal(back.K, cams.K)


def test_colmap_hand_made_model(tmp_path):
    q = math.sqrt(0.5)  # 90 degrees about z: world x -> camera y
    (tmp_path / "cameras.txt").write_text("# Camera list with one line of data per camera:\n"
                                          "1 SIMPLE_PINHOLE 200 100 100 100 50\n")
    (tmp_path / "images.txt").write_text("# Image list with two lines of data per image:\n"
                                         f"2 {q} 0 0 {q} 0 0 1 1 b.png\n\n"
                                         f"1 1 0 0 0 0 0 1 1 a.png\n10.0 20.0 -1\n")
    for path in (tmp_path, tmp_path / "cameras.txt", tmp_path / "images.txt"):
        assert detect_format(path) == "colmap"
        cams = read_trajectory(path)
        uv = project(cams, torch.tensor([[1.0, 0.0, 4.0]], dtype=D))[:, 0]
        # sorted by name: a.png (identity) then b.png (rotated); camera z = 4 + 1 = 5
        assert uv[0].tolist() == pytest.approx([120.0, 50.0])
        assert uv[1].tolist() == pytest.approx([100.0, 70.0])


def test_colmap_round_trip(tmp_path):
    cams = sample_cameras(per_frame_K=True)
    write_trajectory(tmp_path / "model", cams, "colmap")
    back = read_trajectory(tmp_path / "model")
    assert torch.allclose(back.w2c, cams.w2c, atol=1e-14) and torch.equal(back.K, cams.K)


def test_size_rescales_other_formats(tmp_path):
    cams = sample_cameras()
    write_trajectory(tmp_path / "c.json", cams)
    half = read_trajectory(tmp_path / "c.json", size=(32, 24))
    assert half.K[0, 0, 2].item() == pytest.approx(16.0) and half.K[0, 0, 0].item() == pytest.approx(cams.K[0, 0, 0].item() / 2)


def test_real_re10k_files_parse(shared_dir):
    files = sorted((shared_dir / "data" / "re10k_poses").glob("*.txt"))
    assert files
    for path in files:
        assert detect_format(path) == "re10k"
        cams = read_trajectory(path, size=(640, 360))
        R = cams.w2c[:, :3, :3]
        assert len(cams) >= 2
        assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=D).expand_as(R), atol=1e-5)
        assert torch.allclose(torch.linalg.det(R), torch.ones(len(cams), dtype=D), atol=1e-5)
        fov_x = torch.rad2deg(2 * torch.atan(320 / cams.K[:, 0, 0]))
        assert bool(((fov_x > 30) & (fov_x < 120)).all())  # plausible lenses
        assert torch.allclose(cams.K[:, :2, 2], torch.tensor([320.0, 180.0], dtype=D).expand(len(cams), 2), atol=20)
        # Square pixels: the normalised focals differ by the 16:9 aspect ratio.
        assert torch.allclose(cams.K[:, 0, 0], cams.K[:, 1, 1], rtol=1e-3)
        steps = (cams.centers[1:] - cams.centers[:-1]).norm(dim=-1)
        assert bool((steps < 1.0).all())  # consecutive frames of a smooth video path


def test_cli_re10k_json_re10k_keeps_matrices(shared_dir, tmp_path, capsys):
    src = sorted((shared_dir / "data" / "re10k_poses").glob("*.txt"))[0]
    assert main(["traj", "convert", str(src), str(tmp_path / "c.json"), "--size", "640x360"]) == 0
    assert main(["traj", "convert", str(tmp_path / "c.json"), str(tmp_path / "back.txt"), "--to", "re10k"]) == 0
    original = [line.split() for line in src.read_text().splitlines()[1:] if line.strip()]
    back = [line.split() for line in (tmp_path / "back.txt").read_text().splitlines()[1:] if line.strip()]
    assert len(back) == len(original)
    for a, b in zip(original, back):
        assert [float(x) for x in a[7:]] == [float(x) for x in b[7:]]  # w2c numbers identical
        assert [float(x) for x in a[1:5]] == pytest.approx([float(x) for x in b[1:5]], rel=1e-14)


def test_cli_make_show_and_errors(tmp_path, capsys):
    out = tmp_path / "orbit.json"
    assert main(["traj", "make", "orbit", "--frames", "9", "--depth", "3", "--angle", "45", "--out", str(out),
                 "--size", "64x48"]) == 0
    cams = read_trajectory(out)
    assert len(cams) == 9 and (cams.width, cams.height) == (64, 48)
    assert main(["traj", "show", str(out), "--png", str(tmp_path / "p.png")]) == 0
    text = capsys.readouterr().out
    assert "frames       9" in text and "45.00 deg" in text
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # RE10K without --size: exit 2 with a one-line message naming the file.
    write_trajectory(tmp_path / "r.txt", cams, "re10k")
    assert main(["traj", "show", str(tmp_path / "r.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "r.txt" in err and "--size" in err and len(err.splitlines()) == 1
    assert main(["traj", "make", "keyframes", "--frames", "5", "--keys", str(out), "--out", str(tmp_path / "k.json")]) == 0
    assert len(read_trajectory(tmp_path / "k.json")) == 5

"""`voyager-pipe render` end to end on a small PLY and trajectory written by the tests."""

from __future__ import annotations

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.camera.trajectory_io import write_trajectory
from voyager_pipe.cli import main
from voyager_pipe.io.frames import read_frame_folder
from voyager_pipe.world.ply import write_ply

K = torch.tensor([[10.0, 0.0, 8.0], [0.0, 10.0, 6.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _inputs(tmp_path):
    # point A projects to pixel (row 3, col 5) at depth 2 in camera 0; camera 1 moved 1 m back
    xyz = np.array([[(5.5 - 8) / 10 * 2, (3.5 - 6) / 10 * 2, 2.0], [0.0, 0.0, -3.0]], np.float32)
    rgb = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    write_ply(tmp_path / "cloud.ply", xyz, rgb)
    w2c = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    w2c[1, 2, 3] = 1.0  # camera 1 one metre behind camera 0
    write_trajectory(tmp_path / "traj.json", Cameras(K=K, w2c=w2c, width=16, height=12))
    return tmp_path / "cloud.ply", tmp_path / "traj.json"


def test_render_command_writes_frame_folder(tmp_path):
    ply, traj = _inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["render", "--points", str(ply), "--traj", str(traj), "--out", str(out), "--batch", "1"]) == 0
    folder = read_frame_folder(out)
    assert folder.rgb.shape == (2, 3, 12, 16)
    assert folder.depth[0, 0, 3, 5] == 2.0 and folder.mask[0].sum() == 1 and folder.mask[0, 0, 3, 5]
    assert torch.allclose(folder.rgb[0, :, 3, 5], torch.tensor([1.0, 0.0, 0.0]))
    # camera 1: depth 3, projected at u = 8 + 10 * (-0.5 / 3), v = 6 + 10 * (-0.5 / 3)
    assert folder.depth[1, 0, 4, 6] == 3.0 and folder.mask[1].sum() == 1
    from voyager_pipe.camera.trajectory_io import read_folder_cameras

    cameras = read_folder_cameras(out, len(folder))
    assert torch.allclose(cameras.w2c[0], torch.eye(4, dtype=torch.float64)) and cameras.w2c[1, 2, 3] == 1.0
    assert (out / "config.yaml").is_file()


def test_render_command_size_and_set(tmp_path):
    ply, traj = _inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["render", "--points", str(ply), "--traj", str(traj), "--out", str(out), "--size", "32x24",
                 "--set", "render.splat_radius=1", "--set", "device=cpu"]) == 0
    folder = read_frame_folder(out)
    assert folder.rgb.shape == (2, 3, 24, 32)
    assert folder.mask[0].sum() == 9  # 3x3 splat around pixel (7, 11)
    assert folder.mask[0, 0, 6:9, 10:13].all()


def test_render_command_bad_input(tmp_path, capsys):
    _, traj = _inputs(tmp_path)
    code = main(["render", "--points", str(tmp_path / "missing.ply"), "--traj", str(traj), "--out", str(tmp_path / "o")])
    assert code == 2 and "missing.ply" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

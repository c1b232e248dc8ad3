"""`voyager-pipe view`: the viser server in-process on a free port, checked through viser's server-side scene API."""

from __future__ import annotations

import math
import socket
import time
import urllib.request

import numpy as np
import pytest
import torch

viser = pytest.importorskip("viser")

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov  # noqa: E402
from voyager_pipe.camera.rotations import axis_angle_matrix  # noqa: E402
from voyager_pipe.errors import InputError  # noqa: E402
from voyager_pipe.view.run_folder import frame_panel, read_run_folder  # noqa: E402
from voyager_pipe.view.viewer import GAUSSIANS, MESH, POINTS, WorldViewer, frustum_name  # noqa: E402

W, H, N, P = 40, 30, 6, 5000


def _cameras() -> Cameras:
    """A path that turns and climbs, so that every axis of the pose conversion matters."""
    angles = torch.linspace(0, 0.6, N, dtype=torch.float64)  # [N]
    R = axis_angle_matrix("y", angles) @ axis_angle_matrix("x", 0.3 * angles)  # [N, 3, 3] camera-to-world rotation
    centres = torch.stack([0.2 * angles, -0.1 * angles, 0.5 * angles], dim=1)  # [N, 3]
    c2w = torch.eye(4, dtype=torch.float64).repeat(N, 1, 1)  # [N, 4, 4]
    c2w[:, :3, :3], c2w[:, :3, 3] = R, centres
    return Cameras.from_c2w(c2w, intrinsics_from_fov(60, W, H), W, H)


def make_run(root, points: int = P):
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.io.frames import write_frames
    from voyager_pipe.world.ply import write_ply

    rng = np.random.default_rng(1)
    cams = _cameras()
    rgb = torch.rand(N, 3, H, W, generator=torch.Generator().manual_seed(0))  # [N, 3, H, W]
    depth = 2 + torch.rand(N, 1, H, W, generator=torch.Generator().manual_seed(1))  # [N, 1, H, W]
    write_frames(root, rgb, depth, mask=depth > 2.5)
    write_trajectory(root / "cameras.json", cams)
    xyz = rng.normal(size=(points, 3)).astype(np.float32) + np.array([0, 0, 4], np.float32)  # [P, 3]
    write_ply(root / "world.ply", xyz, rng.integers(0, 256, size=(points, 3), dtype=np.uint8))
    return cams, xyz


@pytest.fixture
def run_dir(tmp_path):
    root = tmp_path / "run"
    make_run(root)
    return root


@pytest.fixture
def viewer():
    v = WorldViewer(port=0)
    yield v
    v.close()


def test_page_is_served_and_scene_holds_points_and_one_frustum_per_frame(run_dir, viewer):
    viewer.show_run(read_run_folder(run_dir))
    with urllib.request.urlopen(viewer.url, timeout=10) as response:
        assert response.status == 200
        assert b"<html" in response.read(4096).lower()
    points = viewer.server.scene.get_handle_by_name(POINTS)
    assert points is not None and points.points.shape == (P, 3)
    for i in range(N):
        assert viewer.server.scene.get_handle_by_name(frustum_name(i)) is not None
    assert viewer.server.scene.get_handle_by_name(frustum_name(N)) is None


def test_point_budget_keeps_a_subset_of_the_file(run_dir):
    cams, xyz = _cameras(), make_run(run_dir.parent / "big", points=3000)[1]
    run = read_run_folder(run_dir.parent / "big", max_points=1000)
    assert run.xyz.shape == (1000, 3) and run.total_points == 3000
    # every shown point is one of the file's points (a subset, not a resampling)
    file_rows = {tuple(r) for r in xyz.tolist()}
    assert all(tuple(r) in file_rows for r in run.xyz.tolist())
    v = WorldViewer(port=0, max_points=1000)
    try:
        v.show_run(run)
        assert v.server.scene.get_handle_by_name(POINTS).points.shape == (1000, 3)
    finally:
        v.close()


def _expected_pose(cams: Cameras, k: int):
    """Camera centre and camera-to-world rotation of frame k, by hand from w2c = [R | t]: c = -R^T t, rotation R^T."""
    R = cams.w2c[k, :3, :3].numpy()
    t = cams.w2c[k, :3, 3].numpy()
    return -R.T @ t, R.T


def test_timeline_moves_the_view_camera_to_the_trajectory_pose(run_dir, viewer):
    cams = _cameras()
    viewer.show_run(read_run_folder(run_dir))
    for k in (3, 0, N - 1):
        viewer.gui_frame.value = k  # what dragging the slider does
        centre, rotation = _expected_pose(cams, k)
        assert viewer.frame_index == k
        np.testing.assert_allclose(viewer.view_position, centre, atol=1e-6)
        np.testing.assert_allclose(viser.transforms.SO3(viewer.view_wxyz).as_matrix(), rotation, atol=1e-6)
        # the pose new browsers get (and "reset view"): position, look-at along +z, up = -y
        initial = viewer.server.initial_camera
        np.testing.assert_allclose(initial.position, centre, atol=1e-6)
        look = (initial.look_at - initial.position) / np.linalg.norm(initial.look_at - initial.position)
        np.testing.assert_allclose(look, rotation[:, 2], atol=1e-6)
        np.testing.assert_allclose(initial.up, -rotation[:, 1], atol=1e-6)
        # the frustum of frame k sits at the same pose
        frustum = viewer.server.scene.get_handle_by_name(frustum_name(k))
        np.testing.assert_allclose(frustum.position, centre, atol=1e-6)
        np.testing.assert_allclose(viser.transforms.SO3(frustum.wxyz).as_matrix(), rotation, atol=1e-6)
    assert viewer.gui_panel.image.shape[0] > 8  # the frame's panel was loaded


def test_frustum_field_of_view_is_vertical(run_dir, viewer):
    viewer.show_run(read_run_folder(run_dir))
    fy = float(_cameras().K[0, 1, 1])
    frustum = viewer.server.scene.get_handle_by_name(frustum_name(0))
    assert frustum.fov == pytest.approx(2 * math.atan(H / 2 / fy), abs=1e-9)
    assert frustum.aspect == pytest.approx(W / H)


def test_play_advances_the_timeline(run_dir, viewer):
    viewer.show_run(read_run_folder(run_dir))
    viewer.gui_fps.value = 60
    viewer.gui_play.value = True
    deadline = time.monotonic() + 5
    while viewer.frame_index < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    viewer.gui_play.value = False
    assert viewer.frame_index >= 2


def test_visibility_toggles_and_point_size(run_dir, viewer):
    viewer.show_run(read_run_folder(run_dir))
    viewer.gui_show_points.value = False
    assert viewer.server.scene.get_handle_by_name(POINTS).visible is False
    viewer.gui_point_size.value = viewer.gui_point_size.max
    assert viewer.server.scene.get_handle_by_name(POINTS).point_size == pytest.approx(viewer.gui_point_size.max)


def test_panel_is_rgb_depth_mask_with_the_project_colour_map():
    from voyager_pipe.io.video import colour_depth, inverse_depth_range

    rgb = np.random.default_rng(0).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    depth = np.linspace(1, 5, 30 * 40, dtype=np.float32).reshape(30, 40)
    mask = depth > 3
    panel = frame_panel(rgb, depth, mask, height=30)
    assert panel.shape == (30, 3 * 40 + 4, 3)
    np.testing.assert_array_equal(panel[:, :40], rgb)
    np.testing.assert_array_equal(panel[:, 42:82], colour_depth(depth, *inverse_depth_range([depth])))
    fixed = frame_panel(rgb, depth, mask, height=30, depth_range=(0.0, 1.0))  # the run's range, not the frame's
    np.testing.assert_array_equal(fixed[:, 42:82], colour_depth(depth, 0.0, 1.0))
    np.testing.assert_array_equal(panel[:, 84:, 0] == 255, mask)


def test_exports_in_the_run_folder_are_shown(run_dir, viewer):
    import trimesh

    from voyager_pipe.view.exports import find_exports, load_gaussians
    from voyager_pipe.world.ply import write_ply

    trimesh.creation.box(extents=(1, 1, 1)).export(run_dir / "mesh.ply")
    count = 10
    scales = np.log(np.array([0.1, 0.2, 0.3], np.float32))
    extra = {f"f_dc_{i}": np.zeros(count, np.float32) for i in range(3)}
    extra |= {f"f_rest_{i}": np.zeros(count, np.float32) for i in range(45)}
    extra |= {"opacity": np.full(count, 2.0, np.float32)}
    extra |= {f"scale_{i}": np.full(count, scales[i], np.float32) for i in range(3)}
    extra |= {"rot_0": np.ones(count, np.float32), "rot_1": np.zeros(count, np.float32),
              "rot_2": np.zeros(count, np.float32), "rot_3": np.zeros(count, np.float32)}
    write_ply(run_dir / "export" / "gaussians.ply", np.zeros((count, 3), np.float32), np.zeros((count, 3), np.uint8),
              extra=extra)
    found = find_exports(run_dir)
    assert found == {"mesh": run_dir / "mesh.ply", "gaussians": run_dir / "export" / "gaussians.ply"}
    splats = load_gaussians(found["gaussians"])
    np.testing.assert_allclose(splats["covariances"][0], np.diag([0.01, 0.04, 0.09]), atol=1e-6)
    np.testing.assert_allclose(splats["opacities"][:, 0], 1 / (1 + math.exp(-2.0)), atol=1e-6)
    np.testing.assert_allclose(splats["rgbs"], 0.5, atol=1e-6)
    viewer.show_run(read_run_folder(run_dir))
    assert viewer.server.scene.get_handle_by_name(MESH) is not None
    assert viewer.server.scene.get_handle_by_name(GAUSSIANS) is not None
    assert viewer.gui_show_mesh.visible and viewer.gui_show_gaussians.visible


def test_missing_and_incomplete_run_folders_are_one_line_input_errors(run_dir, tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_run_folder(tmp_path / "nothing")
    partial = tmp_path / "cut.partial"
    partial.mkdir()
    with pytest.raises(InputError, match="incomplete run"):
        read_run_folder(tmp_path / "cut")
    with pytest.raises(InputError, match="incomplete run"):
        read_run_folder(partial)
    (run_dir / "frames" / "00005.png").unlink()
    with pytest.raises(InputError, match="5 frames for 6 cameras"):
        read_run_folder(run_dir)
    (run_dir / "world.ply").unlink()
    with pytest.raises(InputError, match="world.ply: missing"):
        read_run_folder(run_dir)


def test_port_in_use_is_an_input_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"--port {port}: .* in use"):
            WorldViewer(port=port)


def test_cli_view_errors_exit_2(tmp_path, capsys):
    from voyager_pipe.cli import main

    assert main(["view", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "run folder not found" in err

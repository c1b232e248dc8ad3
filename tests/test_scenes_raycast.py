"""Synthetic scenes: ray-cast ground truth against hand-derived depth / texels, and the folder layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("open3d")

from voyager_pipe.camera.cameras import Cameras  # noqa: E402
from voyager_pipe.scenes import (Scene, make_scene, quad, render_ground_truth, scene_trajectory,  # noqa: E402
                                 texture_lookup, write_scene_folder)


def _plane_scene(texture: np.ndarray, z: float = 2.0, half: float = 2.0) -> Scene:
    # plane z = const spanning x, y in [-half, half]; tile 2 * half -> uv = ((x + half) / 2 half, (y + half) / 2 half)
    plane = quad("plane", [-half, -half, z], [2 * half, 0, 0], [0, 2 * half, 0], texture, tile=2 * half)
    return Scene("room", 0, [plane], np.zeros(3), np.zeros(3))


def _camera(W=32, H=24, f=16.0, center=(0.0, 0.0, 0.0)) -> Cameras:
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=torch.float64)
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, 3] = -torch.tensor(center, dtype=torch.float64)
    return Cameras(K=K, w2c=w2c, width=W, height=H)


def test_plane_at_known_depth_gives_that_depth_everywhere():
    scene = _plane_scene(np.full((8, 8, 3), 0.5, dtype=np.float32), half=10.0)
    _, depth = render_ground_truth(scene, _camera(center=(0.0, 0.0, -1.0)))  # camera 1 behind the origin
    assert depth.shape == (1, 1, 24, 32)
    torch.testing.assert_close(depth, torch.full_like(depth, 3.0), atol=1e-5, rtol=0)  # z-depth, not ray length


def test_texture_lookup_hits_the_expected_texel():
    S = 16
    rows, cols = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    texture = np.stack([rows / S, cols / S, np.full((S, S), 0.5)], -1).astype(np.float32)  # texel (r, c) -> (r/S, c/S)
    scene = _plane_scene(texture)
    W, H, f = 32, 24, 16.0
    rgb, _ = render_ground_truth(scene, _camera(W, H, f), filter="nearest", lighting=False)
    # pixel (i, j): centre (j + .5, i + .5) -> x = (j + .5 - W/2) / f * 2 -> u = (x + 2) / 4 -> col = floor(u * S)
    j = np.arange(W)
    i = np.arange(H)
    x = (j + 0.5 - W / 2) / f * 2.0
    y = (i + 0.5 - H / 2) / f * 2.0
    col = np.floor((x + 2) / 4 * S).astype(int)
    row = np.floor((y + 2) / 4 * S).astype(int)
    expected_r = np.repeat((row / S)[:, None], W, 1)
    expected_g = np.repeat((col / S)[None, :], H, 0)
    np.testing.assert_allclose(rgb[0, 0].numpy(), expected_r, atol=1e-6)
    np.testing.assert_allclose(rgb[0, 1].numpy(), expected_g, atol=1e-6)


def test_bilinear_texture_lookup_by_hand():
    tex = np.zeros((1, 4, 4, 3), dtype=np.float32)
    tex[0, 1, 1] = 1.0
    tex[0, 1, 2] = 0.5
    # texel (1, 1) centre at uv = (1.5/4, 1.5/4); halfway to (1, 2) at u = 2/4; wrap: u + 1 is the same
    uv = np.array([[1.5 / 4, 1.5 / 4], [2.0 / 4, 1.5 / 4], [1 + 1.5 / 4, 1.5 / 4 - 2]])
    out = texture_lookup(tex, np.zeros(3, dtype=np.int64), uv, "bilinear")
    np.testing.assert_allclose(out[:, 0], [1.0, 0.75, 1.0], atol=1e-6)


def test_scene_is_seeded_and_trajectories_start_at_identity():
    a, b, c = make_scene("room", 3), make_scene("room", 3), make_scene("room", 4)
    assert len(a.meshes) == len(b.meshes)
    np.testing.assert_array_equal(a.meshes[0].texture, b.meshes[0].texture)
    assert not np.array_equal(a.meshes[0].texture, c.meshes[0].texture)
    for name in ("forward", "orbit", "loop", "long", "pan"):
        cams = scene_trajectory(a, name, 6, 32, 24)
        torch.testing.assert_close(cams.w2c[0], torch.eye(4, dtype=torch.float64))
        centers = cams.centers.numpy()
        assert np.all(centers >= a.free_min - 1e-9) and np.all(centers <= a.free_max + 1e-9), name
    loop = scene_trajectory(a, "loop", 7, 32, 24)
    torch.testing.assert_close(loop.w2c[-1], loop.w2c[0], atol=1e-9, rtol=0)


def test_ground_truth_depth_agrees_with_geometry_reprojection():
    """Unproject frame 0 with its ray-cast depth, project into frame 1: the z there matches frame 1's depth."""
    from voyager_pipe.geometry import project, unproject

    scene = make_scene("room", 0, texture_size=32)
    cams = scene_trajectory(scene, "orbit", 11, 48, 36)[:2]  # 2.5 degrees apart
    _, depth = render_ground_truth(scene, cams)
    assert (depth > 0).all()  # closed room: every ray hits
    pts = unproject(depth[:1].double(), cams.K[:1], cams.w2c[:1]).reshape(-1, 3)  # [HW, 3]
    uv, z = project(pts, cams.K[1:], cams.w2c[1:])
    inside = (uv[0, :, 0] >= 0.5) & (uv[0, :, 0] < 47.5) & (uv[0, :, 1] >= 0.5) & (uv[0, :, 1] < 35.5)
    # on planar surfaces 1/z is affine in the image, so bilinear interpolation of 1/depth between pixel
    # centres is exact: sample frame 1 at the projected positions (pixel centres at +0.5)
    grid = torch.stack([2 * uv[0, :, 0] / 48 - 1, 2 * uv[0, :, 1] / 36 - 1], -1).view(1, -1, 1, 2)
    inv = torch.nn.functional.grid_sample(1 / depth[1:].double(), grid, align_corners=False)[0, 0, :, 0]
    rel = (z[0] * inv - 1).abs()[inside]
    assert inside.float().mean() > 0.7
    assert (rel < 1e-3).float().mean() > 0.85  # all but pixels next to depth edges (occlusions, wall corners)
    # a half-pixel error in the ray convention would break this on slanted surfaces
    shifted = torch.nn.functional.grid_sample(1 / depth[1:].double(), grid + 1 / 48, align_corners=False)[0, 0, :, 0]
    assert ((z[0] * shifted - 1).abs()[inside] < 1e-3).float().mean() < 0.5


def test_scene_folder_layout(tmp_path):
    from voyager_pipe.io.frames import read_frame_folder
    from voyager_pipe.io.images import read_image

    scene = make_scene("outdoor", 1, texture_size=32)
    cams = scene_trajectory(scene, "forward", 3, 40, 30)
    out = write_scene_folder(tmp_path / "s", scene, cams)
    folder = read_frame_folder(out)
    assert folder.rgb.shape == (3, 3, 30, 40) and folder.depth.shape == (3, 1, 30, 40)
    from voyager_pipe.camera.trajectory_io import read_folder_cameras

    torch.testing.assert_close(read_folder_cameras(out, len(folder)).w2c, cams.w2c)
    torch.testing.assert_close(read_image(out / "image.png"), folder.rgb[0])
    np.testing.assert_array_equal(np.load(out / "depth.npy"), folder.depth[0, 0].numpy())
    sky = folder.depth == 0
    assert sky.any() and (~sky).any()  # outdoor: sky has no depth
    torch.testing.assert_close(folder.mask, ~sky)

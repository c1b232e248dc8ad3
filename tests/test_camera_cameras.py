"""Cameras type, pixel-centre convention and rotation helpers, against hand-derived values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov, pixel_centers, rigid_inverse
from voyager_pipe.camera.rotations import (axis_angle_matrix, look_at_c2w, matrix_to_quaternion, quaternion_to_matrix,
                                           rotation_angle_deg, slerp)

D = torch.float64


def project(cameras: Cameras, points: torch.Tensor) -> torch.Tensor:
    """Plain pinhole projection written out in the test: uv [N, P, 2]."""
    homo = torch.cat([points, torch.ones(points.shape[0], 1, dtype=D)], dim=1)  # [P, 4]
    cam = (cameras.w2c @ homo.T)[:, :3]  # [N, 3, P]
    pix = cameras.K @ cam  # [N, 3, P]
    return (pix[:, :2] / pix[:, 2:]).transpose(1, 2)  # [N, P, 2]


def random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=D)
    return quaternion_to_matrix(q / q.norm(dim=-1, keepdim=True))


def test_pixel_centers_are_integer_plus_half():
    uv = pixel_centers(2, 3, dtype=D)
    assert uv.shape == (2, 3, 2)
    assert uv[0, 0].tolist() == [0.5, 0.5]
    assert uv[1, 2].tolist() == [2.5, 1.5]
    # A point projected to a pixel centre falls in that pixel: floor(v), floor(u) is (row, col).
    assert (torch.floor(uv[..., 1]) == torch.arange(2, dtype=D)[:, None]).all()
    assert (torch.floor(uv[..., 0]) == torch.arange(3, dtype=D)[None, :]).all()
    # Centred principal point of intrinsics_from_fov is the mean of all pixel centres.
    K = intrinsics_from_fov(60.0, 3, 2)
    assert torch.allclose(uv.reshape(-1, 2).mean(0), K[:2, 2].to(D))


def test_intrinsics_from_fov_hand_values():
    K = intrinsics_from_fov(90.0, 200, 100)
    # tan(45 deg) = 1: the image edge at u = 0 is 45 deg off-axis, so fx = W / 2.
    assert torch.allclose(K, torch.tensor([[100.0, 0, 100], [0, 100, 50], [0, 0, 1]], dtype=D))


def test_projection_of_known_point_hand_derived():
    # Camera centre at (0, 0, -2) looking along +z: w2c translation (0, 0, 2).
    w2c = torch.eye(4, dtype=D)
    w2c[2, 3] = 2.0
    K = torch.tensor([[100.0, 0, 32], [0, 100, 24], [0, 0, 1]], dtype=D)
    cams = Cameras(K=K, w2c=w2c, width=64, height=48)
    uv = project(cams, torch.tensor([[1.0, 0.5, 3.0]], dtype=D))
    # camera coords (1, 0.5, 5): u = 100 * 1 / 5 + 32 = 52, v = 100 * 0.5 / 5 + 24 = 34
    assert uv[0, 0].tolist() == pytest.approx([52.0, 34.0])
    assert cams.centers[0].tolist() == pytest.approx([0.0, 0.0, -2.0])


def test_c2w_centres_and_rigid_inverse():
    R = random_rotations(5)
    w2c = torch.eye(4, dtype=D).repeat(5, 1, 1)
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = torch.arange(15, dtype=D).reshape(5, 3)
    cams = Cameras(K=intrinsics_from_fov(50, 32, 24), w2c=w2c, width=32, height=24)
    assert torch.allclose(cams.c2w, torch.linalg.inv(w2c), atol=1e-12)
    # The centre maps to the camera origin.
    homo = torch.cat([cams.centers, torch.ones(5, 1, dtype=D)], dim=1)[..., None]  # [5, 4, 1]
    assert torch.allclose((w2c @ homo)[:, :3, 0], torch.zeros(5, 3, dtype=D), atol=1e-12)
    assert torch.allclose(rigid_inverse(rigid_inverse(w2c)), w2c, atol=1e-12)


def test_indexing_len_cat_and_resize():
    cams = Cameras(K=intrinsics_from_fov(60, 64, 48), w2c=torch.eye(4, dtype=D).repeat(4, 1, 1), width=64, height=48)
    assert len(cams) == 4 and len(cams[1]) == 1 and len(cams[1:3]) == 2 and len(cams[-1]) == 1
    assert len(Cameras.cat([cams, cams[:2]])) == 6
    small = cams.resize(32, 24)
    # Continuous pixel coordinates scale linearly: the centre stays the centre.
    assert small.K[0, 0, 2].item() == 16.0 and small.K[0, 1, 2].item() == 12.0
    assert small.K[0, 0, 0].item() == pytest.approx(cams.K[0, 0, 0].item() / 2)
    assert cams.to(dtype=torch.float32).K.dtype == torch.float32


def test_opencv_opengl_round_trip_and_axes():
    R = random_rotations(6, seed=1)
    w2c = torch.eye(4, dtype=D).repeat(6, 1, 1)
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = torch.randn(6, 3, dtype=D, generator=torch.Generator().manual_seed(2))
    cams = Cameras(K=intrinsics_from_fov(60, 64, 48), w2c=w2c, width=64, height=48)
    gl = cams.to_opengl_c2w()
    # OpenGL camera looks along its -z, OpenCV along +z: same world direction, opposite axes.
    assert torch.allclose(gl[:, :3, 2], -cams.c2w[:, :3, 2])
    assert torch.allclose(gl[:, :3, 1], -cams.c2w[:, :3, 1])
    assert torch.allclose(gl[:, :3, 0], cams.c2w[:, :3, 0])
    back = Cameras.from_opengl_c2w(gl, cams.K, 64, 48)
    assert torch.allclose(back.w2c, w2c, atol=1e-12)


def test_quaternions_match_scipy():
    Rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    R = random_rotations(50, seed=3)
    q = matrix_to_quaternion(R)  # (w, x, y, z)
    ref = Rotation.from_matrix(R.numpy()).as_quat()  # (x, y, z, w)
    ref = np.concatenate([ref[:, 3:], ref[:, :3]], axis=1)
    ref = ref * np.sign(ref[:, :1])
    assert np.allclose(q.numpy(), ref, atol=1e-12)
    assert torch.allclose(quaternion_to_matrix(q), R, atol=1e-12)
    # 180-degree rotations (trace -1) take the non-w branches.
    flips = axis_angle_matrix("x", torch.tensor([math.pi, math.pi / 2], dtype=D))
    assert torch.allclose(quaternion_to_matrix(matrix_to_quaternion(flips)), flips, atol=1e-12)


def test_axis_angle_slerp_and_angles_hand_values():
    Ry = axis_angle_matrix("y", torch.tensor([math.pi / 2], dtype=D))[0]
    # Ry(90) turns +z into +x.
    assert torch.allclose(Ry @ torch.tensor([0.0, 0, 1], dtype=D), torch.tensor([1.0, 0, 0], dtype=D), atol=1e-15)
    q0 = matrix_to_quaternion(torch.eye(3, dtype=D)[None])
    q1 = matrix_to_quaternion(Ry[None])
    mid = quaternion_to_matrix(slerp(q0, q1, torch.tensor([0.5], dtype=D)))
    assert rotation_angle_deg(mid).item() == pytest.approx(45.0)
    assert torch.allclose(mid[0] @ torch.tensor([0.0, 0, 1], dtype=D),
                          torch.tensor([math.sqrt(0.5), 0, math.sqrt(0.5)], dtype=D), atol=1e-12)


def test_look_at_points_the_optical_axis_at_the_target():
    centers = torch.tensor([[0.0, 0, 0], [1.0, -1.0, 0.0]], dtype=D)
    targets = torch.tensor([[0.0, 0, 1], [0.0, 0.0, 3.0]], dtype=D)
    c2w = look_at_c2w(centers, targets, torch.tensor([0.0, -1.0, 0.0], dtype=D))
    assert torch.allclose(c2w[0], torch.eye(4, dtype=D), atol=1e-15)
    cams = Cameras.from_c2w(c2w, intrinsics_from_fov(60, 64, 48), 64, 48)
    uv = project(cams, targets[1:2])
    assert torch.allclose(uv[1, 0], torch.tensor([32.0, 24.0], dtype=D), atol=1e-9)
    assert torch.allclose(torch.linalg.det(c2w[:, :3, :3]), torch.ones(2, dtype=D))

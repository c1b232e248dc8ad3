"""unproject / project: hand-derived values and round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from voyager_pipe.geometry import project, unproject


def _pose(seed: int) -> torch.Tensor:
    """A random rigid w2c [4, 4] (rotation from scipy, an independent construction)."""
    rng = np.random.default_rng(seed)
    w2c = np.eye(4)
    w2c[:3, :3] = Rotation.from_rotvec(rng.normal(size=3) * 0.3).as_matrix()
    w2c[:3, 3] = rng.normal(size=3) * 0.5
    return torch.from_numpy(w2c)


K = torch.tensor([[100.0, 0.0, 32.0], [0.0, 80.0, 24.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_project_hand_derived():
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, 3] = torch.tensor([0.0, 0.0, 1.0])  # world origin sits 1 m in front of the camera
    points = torch.tensor([[0.1, -0.2, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)  # [2, 3]
    uv, z = project(points, K, w2c)
    # camera coords: (0.1, -0.2, 2) -> u = 100*0.05 + 32 = 37, v = 80*(-0.1) + 24 = 16
    assert torch.allclose(uv[0, 0], torch.tensor([37.0, 16.0], dtype=torch.float64))
    assert torch.allclose(uv[0, 1], torch.tensor([32.0, 24.0], dtype=torch.float64))
    assert torch.allclose(z[0], torch.tensor([2.0, 1.0], dtype=torch.float64))


def test_unproject_pixel_centres_hand_derived():
    depth = torch.full((1, 1, 48, 64), 2.0, dtype=torch.float64)
    points = unproject(depth, K, torch.eye(4, dtype=torch.float64))  # [1, 48, 64, 3]
    # pixel (row 10, col 5): centre (5.5, 10.5) -> x = (5.5 - 32)/100*2, y = (10.5 - 24)/80*2
    assert torch.allclose(points[0, 10, 5], torch.tensor([-0.53, -0.3375, 2.0], dtype=torch.float64))


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_project_unproject(seed):
    gen = torch.Generator().manual_seed(seed)
    depth = 1.0 + 4.0 * torch.rand(2, 1, 12, 16, generator=gen, dtype=torch.float64)  # [2, 1, 12, 16]
    w2c = torch.stack([_pose(seed), _pose(seed + 10)])  # [2, 4, 4]
    points = unproject(depth, K, w2c)  # [2, 12, 16, 3]
    uv, z = project(points.reshape(2, -1, 3), K, w2c)  # [2, P, 2], [2, P]
    v, u = np.meshgrid(np.arange(12) + 0.5, np.arange(16) + 0.5, indexing="ij")
    expected = torch.from_numpy(np.stack([u, v], -1).reshape(-1, 2))  # [P, 2]
    assert torch.allclose(uv, expected.expand(2, -1, 2), atol=1e-9)
    assert torch.allclose(z, depth.reshape(2, -1), atol=1e-9)


def test_project_shared_points_into_several_cameras():
    points = torch.randn(5, 3, dtype=torch.float64) + torch.tensor([0, 0, 5.0], dtype=torch.float64)
    w2c = torch.stack([_pose(3), _pose(4)])  # [2, 4, 4]
    uv, z = project(points, K, w2c)
    for n in range(2):  # each camera separately, with plain numpy
        cam = (w2c[n, :3, :3].numpy() @ points.numpy().T).T + w2c[n, :3, 3].numpy()
        pix = (K.numpy() @ cam.T).T
        assert np.allclose(uv[n].numpy(), pix[:, :2] / pix[:, 2:], atol=1e-9)
        assert np.allclose(z[n].numpy(), cam[:, 2])


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        unproject(torch.ones(1, 4, 4), K, torch.eye(4))
    with pytest.raises(ValueError):
        project(torch.ones(4, 2), K, torch.eye(4))

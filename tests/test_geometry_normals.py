"""point_map_normals against analytic normals of planes and spheres."""

from __future__ import annotations

import torch

from voyager_pipe.geometry import point_map_normals, unproject

K = torch.tensor([[40.0, 0.0, 16.0], [0.0, 40.0, 16.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
EYE = torch.eye(4, dtype=torch.float64)


def _rays(H=32, W=32):
    return unproject(torch.ones(1, 1, H, W, dtype=torch.float64), K, EYE)  # [1, H, W, 3], z = 1


def test_tilted_plane():
    # plane n.x = d with n = (0.3, -0.2, -1) normalised; camera at the origin, plane in front
    n = torch.tensor([0.3, -0.2, -1.0], dtype=torch.float64)
    n = n / n.norm()
    rays = _rays()  # [1, H, W, 3]
    t = -3.0 / (rays @ n)  # [1, H, W]: n . (t ray) = -3
    points = rays * t[..., None]  # [1, H, W, 3]
    normals = point_map_normals(points, torch.ones(1, 32, 32, dtype=torch.bool), torch.zeros(1, 3, dtype=torch.float64))
    # towards the camera: n (the plane is at n.x = -3 < 0, the origin on the side n points to)
    assert torch.allclose(normals, n.expand_as(normals), atol=1e-9)


def test_sphere_normals_and_edges():
    # sphere of radius 1 at (0, 0, 4): analytic outward normal (p - c); invalid where the ray misses
    rays = _rays()  # [1, H, W, 3]
    c = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    a = (rays * rays).sum(-1)
    b = -2 * (rays @ c)
    disc = b * b - 4 * a * (c @ c - 1.0)
    valid = disc > 0
    t = (-b - disc.clamp_min(0).sqrt()) / (2 * a)
    points = rays * t[..., None]  # [1, H, W, 3]
    normals = point_map_normals(points, valid, torch.zeros(1, 3, dtype=torch.float64))
    expected = points - c
    interior = valid.clone()
    interior[:, 1:-1, 1:-1] &= valid[:, :-2, 1:-1] & valid[:, 2:, 1:-1] & valid[:, 1:-1, :-2] & valid[:, 1:-1, 2:]
    cos = (normals * expected).sum(-1)[interior]
    assert cos.min() > 0.99  # one-sided differences: small discretisation error only
    assert (normals[~valid] == 0).all()
    assert torch.allclose(normals[valid].norm(dim=-1), torch.ones(int(valid.sum()), dtype=torch.float64))


def test_depth_edge_does_not_bend_normals():
    # two fronto-parallel planes (z=2 left half, z=5 right half): every normal is (0, 0, -1)
    depth = torch.full((1, 1, 32, 32), 2.0, dtype=torch.float64)
    depth[..., 16:] = 5.0
    points = unproject(depth, K, EYE)
    normals = point_map_normals(points, torch.ones(1, 32, 32, dtype=torch.bool), torch.zeros(1, 3, dtype=torch.float64))
    assert torch.allclose(normals, torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).expand_as(normals), atol=1e-9)


def test_isolated_pixel_has_no_normal():
    points = _rays(4, 4) * 2.0
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    valid[0, 1, 1] = True
    normals = point_map_normals(points, valid, torch.zeros(1, 3, dtype=torch.float64))
    assert (normals == 0).all()

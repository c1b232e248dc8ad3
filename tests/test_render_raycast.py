"""Independent ground truth: Open3D ray casting of meshes vs our render of points sampled on them.

A pixel of the point renderer holds the nearest point whose projection falls inside the pixel
square, so the truth for a pixel is the range of surface depths over its footprint: rays are
cast through a 7x7 grid spanning the pixel square grown by a quarter pixel on each side (so
that thin slivers of a surface at grazing angles or silhouettes inside the square are not
missed), built from our pixel-centre convention rather than Open3D's ``create_rays_pinhole``;
``t_hit`` is z-depth because the ray directions have unit camera-z.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

o3d = pytest.importorskip("open3d")

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov  # noqa: E402
from voyager_pipe.render import RenderConfig, TorchPointRenderer  # noqa: E402

W, H, SUB, TOL = 64, 48, 7, 0.01


def _meshes():
    wall = o3d.geometry.TriangleMesh.create_box(6.0, 4.0, 0.01).translate((-3.0, -2.0, 6.0))  # a plane (thin box)
    floor = o3d.geometry.TriangleMesh.create_box(8.0, 0.01, 6.0).translate((-4.0, 1.2, 1.5))  # ground plane
    box = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0).translate((-1.4, -0.6, 3.0))
    box.rotate(o3d.geometry.get_rotation_matrix_from_xyz((0.3, 0.6, 0.0)), center=(-0.9, -0.1, 3.5))
    sphere = o3d.geometry.TriangleMesh.create_sphere(0.7, resolution=40).translate((0.9, -0.3, 3.0))
    return [wall, floor, box, sphere]


def _camera() -> Cameras:
    w2c = np.eye(4)
    w2c[:3, :3] = o3d.geometry.get_rotation_matrix_from_xyz((0.05, -0.08, 0.02))
    w2c[:3, 3] = (0.1, -0.05, 0.2)
    return Cameras(K=intrinsics_from_fov(65.0, W, H), w2c=torch.from_numpy(w2c), width=W, height=H)


def _ray_cast_depth(meshes, cams: Cameras) -> np.ndarray:
    """``[H, W, SUB*SUB]`` z-depth of the surfaces at sub-pixel positions (inf = miss)."""
    scene = o3d.t.geometry.RaycastingScene()
    for mesh in meshes:
        scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    offsets = np.linspace(-0.25, 1.25, SUB)  # pixel square [0, 1) grown by 1/4 pixel
    oy, ox = np.meshgrid(offsets, offsets, indexing="ij")
    v = np.arange(H)[:, None, None] + oy.reshape(1, 1, -1)  # [H, 1, S]
    u = np.arange(W)[None, :, None] + ox.reshape(1, 1, -1)  # [1, W, S]
    u, v = np.broadcast_arrays(u, v)
    pix = np.stack([u, v, np.ones_like(u)], -1)  # [H, W, S, 3]
    K = cams.K[0].numpy()
    w2c = cams.w2c[0].numpy()
    d_cam = pix @ np.linalg.inv(K).T  # camera z = 1
    d_world = d_cam @ w2c[:3, :3]  # R^T d
    origin = -w2c[:3, :3].T @ w2c[:3, 3]
    rays = np.concatenate([np.broadcast_to(origin, d_world.shape), d_world], -1).astype(np.float32)
    hits = scene.cast_rays(o3d.core.Tensor(rays))
    return hits["t_hit"].numpy()  # [H, W, S]


def test_depth_matches_ray_casting():
    meshes = _meshes()
    cams = _camera()
    truth = _ray_cast_depth(meshes, cams)  # [H, W, S]
    o3d.utility.random.seed(0)
    clouds = [m.sample_points_uniformly(n) for m, n in zip(meshes, (40000, 40000, 15000, 15000))]
    points = torch.from_numpy(np.concatenate([np.asarray(c.points) for c in clouds])).float()
    out = TorchPointRenderer(RenderConfig()).render(points, torch.rand(points.shape), cams)
    depth = out.depth[0, 0].numpy()
    covered = out.mask[0, 0].numpy()
    all_hit = np.isfinite(truth).all(-1)
    any_hit = np.isfinite(truth).any(-1)
    near = np.where(np.isfinite(truth), truth, np.inf).min(-1)
    far = np.where(np.isfinite(truth), truth, -np.inf).max(-1)

    assert all_hit.mean() > 0.5 and (~any_hit).sum() > 50  # the scene has surfaces and background
    # 1. depth agrees with the surfaces inside the pixel on >= 99% of covered pixels
    inside = covered & all_hit
    agree = (depth >= near * (1 - TOL)) & (depth <= far * (1 + TOL))
    assert agree[inside].mean() >= 0.99
    # 2. no covered pixel is in front of the nearest true surface by more than the tolerance
    assert (depth[covered & any_hit] >= near[covered & any_hit] * (1 - TOL)).all()
    # 3. dense samples leave no holes on surfaces, and nothing appears where no surface is
    assert covered[all_hit].mean() >= 0.99
    assert (covered & ~any_hit).sum() <= 0.01 * covered.sum()

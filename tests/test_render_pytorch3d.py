"""Parity of the PyTorch3D backend with the torch backend (skipped where pytorch3d is missing)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("pytorch3d.renderer")

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov  # noqa: E402
from voyager_pipe.render import RenderConfig, get_renderer  # noqa: E402


@pytest.mark.parametrize("width,height", [(32, 24), (24, 32)])
def test_parity_with_torch_backend(width, height):
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(4000, 3, generator=gen) * torch.tensor([4.0, 3.0, 3.0]) + torch.tensor([-2.0, -1.5, 1.0])
    colors = torch.rand(points.shape, generator=gen)
    w2c = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    w2c[1, :3, 3] = torch.tensor([0.2, -0.1, 0.3])
    K = intrinsics_from_fov(60.0, width, height)
    K[0, 2] += 1.3  # off-centre principal point
    cams = Cameras(K=K, w2c=w2c, width=width, height=height)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ours = get_renderer(RenderConfig(backend="torch"), device).render(points.to(device), colors.to(device), cams)
    theirs = get_renderer(RenderConfig(backend="pytorch3d"), device).render(points.to(device), colors.to(device), cams)
    assert torch.equal(ours.mask, theirs.mask)
    assert (ours.index == theirs.index).float().mean() > 0.999  # exact ties may break differently
    assert torch.allclose(ours.depth, theirs.depth, rtol=1e-5)

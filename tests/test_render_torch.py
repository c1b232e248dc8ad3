"""Torch point renderer: hand-derived cases and an independent NumPy z-buffer reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import InputError
from voyager_pipe.geometry import unproject
from voyager_pipe.render import RENDERERS, RenderConfig, RenderOutput, TorchPointRenderer, get_renderer

K = torch.tensor([[10.0, 0.0, 8.0], [0.0, 10.0, 6.0], [0.0, 0.0, 1.0]], dtype=torch.float64)  # 16 x 12 image


def _cams(n=1, w2c=None, width=16, height=12):
    w2c = torch.eye(4, dtype=torch.float64).expand(n, 4, 4).clone() if w2c is None else w2c
    return Cameras(K=K, w2c=w2c, width=width, height=height)


def _point_at(u, v, z):
    """World point (identity camera) projecting to continuous pixel (u, v) at depth z."""
    return [(u - 8.0) / 10.0 * z, (v - 6.0) / 10.0 * z, z]


def _render(points, colors=None, cams=None, normals=None, **cfg):
    points = torch.tensor(points, dtype=torch.float32)
    colors = torch.rand(points.shape) if colors is None else colors
    return TorchPointRenderer(RenderConfig(backend="torch", **cfg)).render(points, colors, cams or _cams(), normals)


def test_point_lands_on_known_pixel_with_known_depth():
    out = _render([_point_at(5.9, 3.2, 2.5)])
    assert isinstance(out, RenderOutput)
    assert out.rgb.shape == (1, 3, 12, 16) and out.depth.shape == (1, 1, 12, 16)
    assert out.mask.shape == (1, 1, 12, 16) and out.index.shape == (1, 12, 16)
    assert out.mask.sum() == 1 and out.mask[0, 0, 3, 5]
    assert out.depth[0, 0, 3, 5] == pytest.approx(2.5, rel=1e-6)
    assert out.index[0, 3, 5] == 0 and (out.index == -1).sum() == 12 * 16 - 1
    assert out.depth.dtype == torch.float32 and out.mask.dtype == torch.bool


def test_pixel_edges_follow_the_half_pixel_convention():
    # u = 6.0 is the left edge of column 6; u = 5.999 is still column 5
    out = _render([_point_at(6.0, 2.0, 1.0), _point_at(5.999, 4.999, 1.0)])
    assert out.index[0, 2, 6] == 0 and out.index[0, 4, 5] == 1


def test_nearer_point_wins_in_any_order():
    for points, winner in (([_point_at(3.5, 3.5, 2.0), _point_at(3.5, 3.5, 1.0)], 1),
                           ([_point_at(3.5, 3.5, 1.0), _point_at(3.5, 3.5, 2.0)], 0)):
        colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        out = _render(points, colors)
        assert out.index[0, 3, 3] == winner
        assert out.depth[0, 0, 3, 3] == pytest.approx(1.0)
        assert torch.equal(out.rgb[0, :, 3, 3], colors[winner])


def test_equal_depth_tie_goes_to_smaller_index():
    out = _render([_point_at(3.2, 3.2, 1.0), _point_at(3.7, 3.7, 1.0), _point_at(3.5, 3.5, 1.0)])
    assert out.index[0, 3, 3] == 0


def test_culling_behind_near_and_outside():
    out = _render([_point_at(3.5, 3.5, -1.0), [0.0, 0.0, 0.0], _point_at(3.5, 3.5, 5e-4),
                   _point_at(-0.1, 3.5, 1.0), _point_at(16.0, 3.5, 1.0), _point_at(3.5, 12.01, 1.0)])
    assert not out.mask.any() and (out.index == -1).all() and (out.depth == 0).all() and (out.rgb == 0).all()


def test_normals_are_gathered():
    normals = torch.tensor([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    out = _render([_point_at(1.5, 1.5, 1.0), _point_at(9.5, 7.5, 1.0)], normals=normals)
    assert torch.equal(out.normals[0, :, 1, 1], normals[0]) and torch.equal(out.normals[0, :, 7, 9], normals[1])
    assert (out.normals[0, :, 0, 0] == 0).all()
    assert _render([_point_at(1.5, 1.5, 1.0)]).normals is None


def test_empty_cloud():
    out = TorchPointRenderer().render(torch.zeros(0, 3), torch.zeros(0, 3), _cams(2))
    assert out.rgb.shape == (2, 3, 12, 16) and not out.mask.any()


# ------------------------------------------------------------------ NumPy reference
def _numpy_zbuffer(points, cams, radius=0, near=1e-3):
    """Independent reference: per camera, every footprint pixel of every point, lexsort by
    (pixel, depth, index) and keep the first entry per pixel."""
    N, H, W = len(cams), cams.height, cams.width
    index = -np.ones((N, H, W), np.int64)
    depth = np.zeros((N, H, W), np.float32)
    pts = points.numpy().astype(np.float64)
    for n in range(N):
        cam = pts @ cams.w2c[n, :3, :3].numpy().T + cams.w2c[n, :3, 3].numpy()
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            pix = cam @ cams.K[n].numpy().T
            col = np.floor(pix[:, 0] / z)
            row = np.floor(pix[:, 1] / z)
        ok = z > near
        ids = np.nonzero(ok)[0]
        rows, cols, idx = [], [], []
        for dr in range(-radius, radius + 1):
            for dc in range(-radius, radius + 1):
                rr, cc = row[ids] + dr, col[ids] + dc
                inside = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
                rows.append(rr[inside]); cols.append(cc[inside]); idx.append(ids[inside])
        rows, cols, idx = (np.concatenate(a) for a in (rows, cols, idx))
        flat = (rows * W + cols).astype(np.int64)
        zz = z[idx].astype(np.float32)
        order = np.lexsort((idx, zz, flat))
        flat, idx, zz = flat[order], idx[order], zz[order]
        first = np.ones(len(flat), bool)
        first[1:] = flat[1:] != flat[:-1]
        index[n].reshape(-1)[flat[first]] = idx[first]
        depth[n].reshape(-1)[flat[first]] = zz[first]
    return index, depth


def _scene(seed, P=3000):
    gen = torch.Generator().manual_seed(seed)
    points = torch.rand(P, 3, generator=gen) * torch.tensor([6.0, 5.0, 4.0]) + torch.tensor([-3.0, -2.5, -0.5])
    points[:, 2] = points[:, 2].round(decimals=1)  # many exact depth ties: exercises the tie-break
    w2c = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    w2c[1, :3, 3] = torch.tensor([0.3, -0.2, 0.5])
    c, s = np.cos(0.3), np.sin(0.3)
    w2c[2, :3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    w2c[2, :3, 3] = torch.tensor([0.0, 0.0, 1.0])
    return points, _cams(3, w2c)


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_matches_numpy_reference(radius):
    points, cams = _scene(radius)
    index, depth = _numpy_zbuffer(points, cams, radius)
    out = TorchPointRenderer(RenderConfig(splat_radius=radius)).render(points.double(), torch.rand(points.shape), cams)
    assert np.array_equal(out.index.numpy(), index)
    assert np.array_equal(out.depth[:, 0].numpy(), depth)


def test_batched_equals_one_camera_at_a_time():
    points, cams = _scene(7)
    colors = torch.rand(points.shape)
    r = TorchPointRenderer()
    batch = r.render(points, colors, cams)
    for n in range(3):
        single = r.render(points, colors, cams[n])
        assert torch.equal(single.index[0], batch.index[n]) and torch.equal(single.rgb[0], batch.rgb[n])


def test_render_scale_upsamples_without_blending():
    points, cams = _scene(8)
    colors = torch.rand(points.shape)
    half = TorchPointRenderer(RenderConfig(render_scale=0.5)).render(points, colors, cams)
    low = TorchPointRenderer().render(points, colors, cams.resize(8, 6))
    assert half.rgb.shape == (3, 3, 12, 16)
    # nearest: each 2x2 block repeats one low-resolution pixel
    assert torch.equal(half.index, low.index.repeat_interleave(2, 1).repeat_interleave(2, 2))
    # every depth is the exact depth of its winning point in that camera (never blended)
    hit = half.index >= 0
    cam = torch.einsum("nij,nhwj->nhwi", cams.w2c[:, :3, :3].float(), points[half.index.clamp_min(0)]) + cams.w2c[:, None, None, :3, 3].float()
    assert torch.allclose(half.depth[:, 0][hit], cam[..., 2][hit], rtol=1e-5)


def test_round_trip_unproject_then_render():
    gen = torch.Generator().manual_seed(3)
    depth = 1.0 + 3.0 * torch.rand(1, 1, 12, 16, generator=gen)  # [1, 1, 12, 16]
    depth[0, 0, 2:4, 5:9] = 0  # holes stay holes
    rgb = torch.rand(1, 3, 12, 16, generator=gen)
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, 3] = torch.tensor([0.2, -0.1, 0.3])
    cams = _cams(1, w2c[None])
    points = unproject(depth, cams.K.float(), cams.w2c.float())  # [1, 12, 16, 3]
    valid = depth[0, 0] > 0
    out = TorchPointRenderer().render(points[0][valid], rgb[0].permute(1, 2, 0)[valid], cams)
    assert torch.equal(out.mask[0, 0], valid)
    assert torch.allclose(out.depth[0, 0][valid], depth[0, 0][valid], rtol=1e-5)
    assert torch.equal(out.rgb[0][:, valid], rgb[0][:, valid])


def test_registry_and_errors():
    assert set(RENDERERS) == {"torch", "pytorch3d", "auto"}
    assert get_renderer(RenderConfig(backend="auto"), device="cpu").name == "torch"
    assert get_renderer().name in ("torch", "pytorch3d")
    with pytest.raises(InputError):
        get_renderer(RenderConfig(backend="opengl"))  # type: ignore[arg-type]
    with pytest.raises(InputError):
        get_renderer(RenderConfig(backend="torch", render_scale=1.5))
    with pytest.raises(ValueError):
        TorchPointRenderer().render(torch.zeros(3, 3), torch.zeros(2, 3), _cams())


def test_pytorch3d_backend_missing_is_a_clear_error():
    pytest.importorskip("voyager_pipe")  # always present; the branch below depends on pytorch3d
    from voyager_pipe.errors import MissingDependencyError
    from voyager_pipe.render import pytorch3d_available

    if pytorch3d_available():
        pytest.skip("pytorch3d is installed")
    with pytest.raises(MissingDependencyError, match="pytorch3d"):
        get_renderer(RenderConfig(backend="pytorch3d"))

"""Condition renders of the world cache: the released recipe (half resolution, linear upsampling,
sky as a far layer), sampling-aware gap closing, and the preview's depth-tested splatting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.render import zbuffer
from voyager_pipe.render.base import RenderOutput, gather_output
from voyager_pipe.render.condition import PREVIEW_CONDITION, RELEASED_CONDITION, ConditionRender
from voyager_pipe.render.gaps import close_gaps, extend_frontier
from voyager_pipe.world import CacheConfig, WorldCache
from voyager_pipe.world.ply import read_ply

W, H = 64, 48


def _cameras(z_offsets, x_offsets=None, yaw_deg=None) -> Cameras:
    """Cameras at ``(x, 0, z)`` looking along +z (optionally turned by ``yaw_deg`` about y)."""
    n = len(z_offsets)
    w2c = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)  # [N, 4, 4]
    for i in range(n):
        a = math.radians(yaw_deg[i]) if yaw_deg else 0.0
        R = torch.tensor([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]], dtype=torch.float64)
        centre = torch.tensor([x_offsets[i] if x_offsets else 0.0, 0.0, z_offsets[i]], dtype=torch.float64)
        w2c[i, :3, :3] = R
        w2c[i, :3, 3] = -R @ centre
    K = intrinsics_from_fov(60.0, W, H).expand(n, 3, 3).clone()
    return Cameras(K=K, w2c=w2c, width=W, height=H)


def _plane_frame(depth_value=2.0, ramp=False):
    """A frontal plane filling the first camera: rgb [1, 3, H, W] (textured or a linear ramp), depth [1, 1, H, W]."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    if ramp:
        rgb = torch.stack([u / W, v / H, 0.5 + 0 * u])[None]  # [1, 3, H, W] linear in the image
    else:
        rgb = torch.stack([(torch.sin(u * 0.9) + 1) / 2, (torch.cos(v * 0.7) + 1) / 2, ((u + v) % 7) / 7])[None]
    return rgb, torch.full((1, 1, H, W), depth_value)


def _interior(mask: torch.Tensor, margin: int = 3) -> torch.Tensor:
    return mask[..., margin:-margin, margin:-margin]


# ---------------------------------------------------------------- issue 12 item 9: released condition
def test_condition_of_a_moved_camera_has_no_interior_holes_and_equals_half_resolution_zbuffer_upsampled():
    cams = _cameras([0.0, 0.15])  # the second camera moved 15 cm towards the plane: one-pixel gaps at full size
    rgb, depth = _plane_frame()
    cache = WorldCache(CacheConfig(gap_tolerance=0.0))
    cache.update(rgb, depth, cams[0])
    full = cache.render(cams[1], ConditionRender())  # plain full-resolution z-buffer
    assert not bool(_interior(full.mask).all())  # the moire of holes the released recipe avoids
    cond = cache.render(cams[1], RELEASED_CONDITION)
    assert bool(_interior(cond.mask).all())

    # independent reference: z-buffer at half size, gather, F.interpolate (linear RGB/depth, nearest mask)
    half = cams[1].to(dtype=torch.float32).resize(W // 2, H // 2)
    index, zdepth = zbuffer(cache.points, half)  # [1, h, w] x2
    low = gather_output(index, zdepth, cache.colors, None)
    ref_rgb = F.interpolate(low.rgb, size=(H, W), mode="bilinear", align_corners=False)
    ref_depth = F.interpolate(low.depth, size=(H, W), mode="bilinear", align_corners=False)
    ref_mask = F.interpolate(low.mask.float(), size=(H, W), mode="nearest") > 0.5
    torch.testing.assert_close(cond.rgb, ref_rgb, rtol=0, atol=1e-6)
    torch.testing.assert_close(cond.depth, ref_depth, rtol=0, atol=1e-5)
    assert torch.equal(cond.mask, ref_mask)


def test_sky_of_infinite_depth_is_rendered_known_in_the_condition_but_not_in_world_ply(tmp_path):
    cams = _cameras([0.0, 0.0], yaw_deg=[0.0, 4.0])  # the second camera turns a little
    rgb, depth = _plane_frame(3.0)
    depth[..., : H // 2, :] = float("inf")  # the upper half is sky
    cache = WorldCache()
    stats = cache.update(rgb, depth, cams[0])
    assert stats.added == len(cache) == (H // 2) * W
    assert len(cache.background) == (H // 2) * W and cache.far_depth == pytest.approx(3.0 + 1e4)
    cond = cache.render(cams[1], RELEASED_CONDITION)
    sky = cond.mask[..., 2: H // 2 - 2, 2:-8]  # the sky area seen by both cameras
    assert bool(sky.all())  # marked known ...
    assert float(cond.depth[..., 2: H // 2 - 2, 2:-8].min()) > 0.9 * 1e4  # ... at the far layer's depth
    # the sky colour rotates with the camera: it equals the input's sky shifted by the turn
    shift = round(math.tan(math.radians(4.0)) * float(cams.K[0, 0, 0]))
    torch.testing.assert_close(cache.render(cams[1]).rgb[0, :, 4:12, 10:40], rgb[0, :, 4:12, 10 + shift:40 + shift],
                               atol=0.15, rtol=0)
    cache.save(tmp_path / "world.ply")
    ply = read_ply(tmp_path / "world.ply")
    assert ply["xyz"].shape[0] == (H // 2) * W and float(abs(ply["xyz"][:, 2]).max()) < 10


def test_far_layer_can_be_switched_off():
    cams = _cameras([0.0])
    rgb, depth = _plane_frame(3.0)
    depth[..., : H // 2, :] = 0.0
    cache = WorldCache(CacheConfig(background=False))
    cache.update(rgb, depth, cams[0])
    mask = cache.render(cams[0]).mask  # [1, 1, H, W]
    # nothing in the sky half but the plane's one-pixel frontier (its last samples' footprints)
    assert len(cache.background) == 0 and not bool(mask[..., : H // 2 - 1, :].any())
    assert bool(mask[..., H // 2 - 1, :].all())


# ---------------------------------------------------------------- gap closing with depth agreement
def _render(depth: torch.Tensor) -> RenderOutput:
    mask = depth > 0
    n = depth.shape[0]
    return RenderOutput(rgb=depth.expand(-1, 3, -1, -1) / 10, depth=depth, mask=mask,
                        index=torch.where(mask[:, 0], 0, -1), normals=torch.zeros(n, 3, *depth.shape[-2:]))


def test_gap_closing_fills_gaps_of_one_surface_but_never_across_a_depth_edge():
    depth = torch.full((1, 1, 12, 12), 2.0)
    depth[..., 5, 3] = 0  # a pinhole in a surface
    depth[..., 8, 2:4] = 0  # a two-pixel gap
    depth[..., :, 7] = 0  # an empty column between a foreground (left, 2.0) and a background (right, 5.0)
    depth[..., :, 8:] = 5.0
    closed, filled = close_gaps(_render(depth), rel_tol=0.03)
    assert bool(filled[0, 0, 5, 3]) and float(closed.depth[0, 0, 5, 3]) == pytest.approx(2.0)
    assert bool(filled[0, 0, 8, 2]) and bool(filled[0, 0, 8, 3])
    assert not bool(filled[0, 0, :, 7].any())  # the silhouette does not grow
    assert torch.equal(closed.depth[depth > 0], depth[depth > 0])  # covered pixels unchanged


def test_frontier_extends_one_pixel_into_empty_space_only():
    depth = torch.zeros(1, 1, 8, 10)
    depth[..., :, :4] = 2.0  # a surface on the left, nothing known to its right
    depth[..., 2:6, 4:6] = 1.0  # a foreground patch in front of it, reaching into the unknown
    out, added = extend_frontier(_render(depth))
    expected = torch.zeros(8, 10, dtype=torch.bool)
    expected[:, 4] = True  # the surface's next pixel ...
    expected[2:6, 4:6] = False  # ... except where the patch is rendered (never overwritten)
    expected[2:6, 6] = True  # the patch's own next pixel
    expected[1, 4:6] = expected[6, 4:6] = True  # above and below the patch
    assert torch.equal(added[0, 0], expected)
    assert float(out.depth[0, 0, 0, 4]) == 2.0 and float(out.depth[0, 0, 3, 6]) == 1.0
    # (1, 4) touches the surface (2.0, left) and the patch (1.0, below): the nearer wins, unless
    # a frame's own depth says which one it sees
    assert float(out.depth[0, 0, 1, 4]) == 1.0
    chosen, _ = extend_frontier(_render(depth), prefer=torch.full((1, 1, 8, 10), 2.1))
    assert float(chosen.depth[0, 0, 1, 4]) == 2.0
    assert torch.equal(out.depth[depth > 0], depth[depth > 0])


def test_a_turned_view_adds_exactly_the_columns_no_earlier_sample_reaches():
    # Turning by 2 degrees shifts the image border by f / cos^2(30 deg) * 0.0349 rad = 2.58 px
    # (f = 32 / tan 30 deg = 55.4 px): frame 0's last sample lands at 2.08 px from camera 1's
    # border and stands for the surface up to half a pixel beyond (1.58 px), so exactly the
    # columns centred at 0.5 and 1.5 px are new. (Without the frontier and the border margin,
    # twice as many columns count as unseen.)
    from voyager_pipe.geometry import pixel_rays

    cams = _cameras([0.0, 0.0], yaw_deg=[0.0, 2.0])
    rgb, depth = _plane_frame(2.0)
    origin, directions = pixel_rays(cams.K[1:2], cams.w2c[1:2], H, W)  # [1, 3], [1, H, W, 3]
    points = origin[:, None, None] + directions * ((2.0 - origin[0, 2]) / directions[..., 2:3])  # [1, H, W, 3] on the plane z = 2
    seen_depth = (points @ cams.w2c[1, :3, :3].T + cams.w2c[1, :3, 3])[..., 2:3].permute(0, 3, 1, 2).float()  # [1, 1, H, W]
    cache = WorldCache()
    cache.update(rgb, depth, cams[0])
    assert cache.update(rgb, seen_depth, cams[1]).added == 2 * H
    assert bool(cache.render(cams[1]).mask.all())


def test_visibility_closes_gaps_only_where_the_new_depth_agrees():
    cams = _cameras([0.0, 0.15])
    rgb, depth = _plane_frame(2.0)
    # the second frame sees the same plane (its depth from the moved camera: 2 - 0.15)
    same = WorldCache()
    same.update(rgb, depth, cams[0])
    paper = WorldCache(CacheConfig(gap_tolerance=0.0))
    paper.update(rgb, depth, cams[0])
    again = torch.full((1, 1, H, W), 2.0 - 0.15)
    gaps_added = paper.update(rgb, again, cams[1]).added
    assert gaps_added > 0.05 * H * W  # without gap closing the pinholes are re-added
    assert same.update(rgb, again, cams[1]).added < 0.2 * gaps_added
    # a surface far behind the plane, seen through the gaps, is still added
    behind = WorldCache()
    behind.update(rgb, depth, cams[0])
    far = torch.full((1, 1, H, W), 6.0)
    assert behind.update(rgb, far, cams[1]).added >= gaps_added
    # rendered back from its own camera, every valid pixel of each frame is shown
    for cache in (same, behind):
        assert bool(cache.render(cams[1]).mask.all())


# ---------------------------------------------------------------- preview resampling
def test_preview_splatting_interpolates_within_a_surface_and_keeps_depth_edges_sharp():
    cams = _cameras([0.0, 0.1], x_offsets=[0.0, 0.03], yaw_deg=[0.0, 1.5])
    rgb, depth = _plane_frame(2.0, ramp=True)
    cache = WorldCache()
    cache.update(rgb, depth, cams[0])
    # exact colour of the ramp seen by camera 1: project its pixel rays onto the plane z = 2
    from voyager_pipe.geometry import pixel_rays, project

    origin, directions = pixel_rays(cams.K[1:2], cams.w2c[1:2], H, W)  # [1, 3], [1, H, W, 3]
    points = origin[:, None, None] + directions * ((2.0 - origin[0, 2]) / directions[..., 2:3])  # [1, H, W, 3]
    uv, _ = project(points.reshape(-1, 3), cams.K[0], cams.w2c[0])  # [1, HW, 2] in camera 0
    exact = torch.stack([uv[0, :, 0] - 0.5, uv[0, :, 1] - 0.5], 0).reshape(2, H, W)  # pixel-centre coordinates
    exact = torch.cat([exact[:1] / W, exact[1:] / H, torch.full((1, H, W), 0.5, dtype=exact.dtype)]).float()
    inside = _interior(torch.ones(1, 1, H, W, dtype=torch.bool), 4)
    nearest = cache.render(cams[1], ConditionRender())
    preview = cache.render(cams[1], PREVIEW_CONDITION)
    err_nearest = (_interior(nearest.rgb, 4) - _interior(exact[None], 4)).abs().amax()
    err_preview = (_interior(preview.rgb, 4) - _interior(exact[None], 4)).abs().amax()
    assert bool(inside.all()) and float(err_preview) < 0.25 * float(err_nearest)

    # depth edge: a small foreground square in front of the plane keeps its colours out of the background
    fg = WorldCache()
    rgb2, depth2 = _plane_frame(4.0, ramp=True)  # blue is 0.5 everywhere on the background
    rgb2[..., 16:32, 24:40] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    depth2[..., 16:32, 24:40] = 1.0
    fg.update(rgb2, depth2, cams[0])
    near2 = fg.render(cams[1], ConditionRender(close_gaps=True))
    prev2 = fg.render(cams[1], PREVIEW_CONDITION)
    background = prev2.depth > 2.0  # [1, 1, H, W]
    assert torch.equal(background, near2.depth > 2.0)  # the silhouette stays where the z-buffer puts it
    leaked = prev2.rgb[:, 2:3] < 0.5 - 1e-5  # any weight of the foreground lowers blue
    assert not bool((leaked & background).any())
    assert bool((prev2.rgb[:, 2:3] < 1e-5)[~background].float().mean() > 0.9)

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


# ---------------------------------------------------------------- splatting kernel (render/splat.py)
def _grid_cloud(shift, depth_value=2.0, size=(24, 20), colour=None):
    """One point per pixel of a frontal camera, projecting ``shift = (dx, dy)`` pixels from every centre.

    Returns (points [P, 3], colours [P, 3], camera, u [P], v [P]) with ``(u, v)`` the points'
    projections in pixel-centre coordinates (centre of pixel (i, j) at (j, i)).
    """
    w, h = size
    K = torch.tensor([[40.0, 0, w / 2], [0, 40.0, h / 2], [0, 0, 1]], dtype=torch.float64)
    cam = Cameras(K=K[None], w2c=torch.eye(4, dtype=torch.float64)[None], width=w, height=h)
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    u, v = (u + shift[0]).reshape(-1), (v + shift[1]).reshape(-1)  # [P] pixel-centre coordinates
    z = torch.full_like(u, depth_value) if not callable(depth_value) else depth_value(u, v)  # [P]
    points = torch.stack([(u + 0.5 - w / 2) / 40.0 * z, (v + 0.5 - h / 2) / 40.0 * z, z], 1)  # [P, 3]
    colours = colour(u, v) if colour else torch.zeros(len(u), 3, dtype=torch.float64)
    return points.float(), colours.float(), cam.to(dtype=torch.float32), u, v


def _front(points, colours, cam):
    index, depth = zbuffer(points, cam)  # [1, h, w] x2
    return gather_output(index, depth, colours, None)


@pytest.mark.parametrize("shift", [(0.3, -0.2), (-0.45, 0.4)])
def test_splat_reproduces_linear_and_quadratic_colour_ramps_at_sub_pixel_shifts(shift):
    from voyager_pipe.render.splat import splat_resample

    q = 0.002  # curvature of the quadratic channel (per pixel^2)

    def ramp(u, v):  # [P] x2 -> [P, 3]: linear, quadratic in u, quadratic in v
        return torch.stack([0.1 + 0.02 * u + 0.01 * v, 0.05 + q * (u - 11) ** 2, 0.2 + q * (v - 9) ** 2], 1)

    points, colours, cam, _, _ = _grid_cloud(shift, colour=ramp)
    h, w = cam.height, cam.width
    front = _front(points, colours, cam)
    assert bool(front.mask.all())
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    exact = ramp(u.reshape(-1), v.reshape(-1)).T.reshape(3, h, w).float()  # the ramps at the pixel centres
    inner = (slice(None), slice(3, h - 3), slice(3, w - 3))
    cubic = splat_resample(points, colours, cam, front)
    tent = splat_resample(points, colours, cam, front, cubic=False)
    # the cubic (Keys, a = -0.5) reproduces polynomials up to degree 2 per axis: exact up to float32
    torch.testing.assert_close(cubic.rgb[0][inner], exact[inner], atol=2e-5, rtol=0)
    # the tent (bilinear) is exact on the linear channel; on q (x - c)^2 it is off by q f (1 - f), f the
    # fractional position of the pixel centre between its two neighbouring samples (f = 1 - frac(shift))
    torch.testing.assert_close(tent.rgb[0][0][inner[1:]], exact[0][inner[1:]], atol=2e-5, rtol=0)
    fx, fy = 1 - (shift[0] % 1), 1 - (shift[1] % 1)
    torch.testing.assert_close(tent.rgb[0][1][inner[1:]] - exact[1][inner[1:]],
                               torch.full((h - 6, w - 6), q * fx * (1 - fx)), atol=2e-5, rtol=0)
    torch.testing.assert_close(tent.rgb[0][2][inner[1:]] - exact[2][inner[1:]],
                               torch.full((h - 6, w - 6), q * fy * (1 - fy)), atol=2e-5, rtol=0)
    # depth of the frontal plane is its constant depth in both
    torch.testing.assert_close(cubic.depth[0][:, 3:-3, 3:-3], torch.full((1, h - 6, w - 6), 2.0), atol=1e-5, rtol=0)


def test_splat_keeps_foreground_colours_out_of_the_background_at_a_depth_edge():
    from voyager_pipe.render.splat import one_surface_windows, splat_resample

    square = lambda u, v: (u > 7.6) & (u < 15.6) & (v > 6.6) & (v < 13.6)  # noqa: E731 foreground footprint
    red = lambda u, v: torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64).expand(len(u), 3)  # noqa: E731
    green_ramp = lambda u, v: torch.stack([0 * u, 0.1 + 0.03 * u, 1 + 0 * u], 1)  # noqa: E731
    fg_points, fg_colours, cam, u, v = _grid_cloud((0.35, 0.25), 1.0, colour=red)
    inside = square(u, v)  # [P] keep the square's points only
    # the background plane continues behind the square, as a cache seen from two views holds it
    bg_points, bg_colours, _, _, _ = _grid_cloud((0.35, 0.25), 3.0, colour=green_ramp)
    points, colours = torch.cat([fg_points[inside], bg_points]), torch.cat([fg_colours[inside], bg_colours])
    front = _front(points, colours, cam)
    out = splat_resample(points, colours, cam, front)
    h, w = cam.height, cam.width
    background = front.depth[0, 0] > 2  # [h, w]
    assert 0 < int((~background).sum()) < h * w - 100
    assert torch.equal(out.mask, front.mask) and torch.equal(out.depth[0, 0] > 2, background)
    rgb = out.rgb[0]  # [3, h, w]
    # no weight of a foreground point reaches a background pixel: red stays 0, blue 1, green the exact ramp
    assert float(rgb[0][background].abs().max()) < 1e-6 and float((rgb[2][background] - 1).abs().max()) < 1e-6
    ramp = (0.1 + 0.03 * torch.arange(w, dtype=torch.float32)).expand(h, w)  # green at the pixel centres
    near = torch.zeros(h, w, dtype=torch.bool)
    near[2:-2, 2:-2] = True  # the cubic of a pixel in the outer two rings misses samples beyond the image
    torch.testing.assert_close(rgb[1][background & near], ramp[background & near], atol=2e-5, rtol=0)
    tent_pixels = background & near & ~one_surface_windows(front.depth[0, 0], front.mask[0, 0])  # [h, w]
    assert int(tent_pixels.sum()) > 20  # the check covers the tent's pixels next to the edge, not only the cubic's
    # and foreground pixels hold exactly the foreground colour (no background weight either)
    fg = rgb[:, ~background]  # [3, F]
    torch.testing.assert_close(fg, torch.tensor([1.0, 0.5, 0.0])[:, None].expand_as(fg), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.depth[0, 0][~background], torch.ones(int((~background).sum())), atol=1e-5, rtol=0)


def test_one_surface_windows_and_neighbour_correlation_by_hand():
    from voyager_pipe.render.splat import neighbour_correlation, one_surface_windows

    depth = torch.full((12, 12), 2.0)
    mask = torch.ones(12, 12, dtype=torch.bool)
    mask[5, 5] = False  # a hole
    depth[:, 10:] = 2.05  # a step of 2.5% (agrees at rel_tol 0.03) ...
    depth[9:, :] = 2.5  # ... and one of 25% (does not)
    one = one_surface_windows(depth, mask, rel_tol=0.03)  # windows (r + dy, c + dx), dy, dx in -2..2
    expected = torch.ones(12, 12, dtype=torch.bool)
    expected[3:8, 3:8] = False  # windows holding the hole: r - 2 <= 5 <= r + 2
    expected[7:11, :] = False  # windows across the step between rows 8 and 9: r - 2 <= 8 < 9 <= r + 2
    assert torch.equal(one, expected)

    # windows 3 or more pixels from the border: every pixel of the window has its right and lower neighbour
    checker = ((torch.arange(14)[:, None] + torch.arange(14)[None]) % 2).float()  # [14, 14] values 0/1
    rho = neighbour_correlation(torch.stack([checker, checker, 1 - checker]))
    # every step is 1 per channel; var = p (1 - p) with p = 13/25 -> rho = 1 - 1 / (2 * 0.2496) = -1.003
    torch.testing.assert_close(rho[3:-3, 3:-3], torch.full((8, 8), -1.0032), atol=1e-3, rtol=0)
    ramp = (0.02 * torch.arange(14.0))[None].expand(14, 14)  # slope s along x: E diff^2 = s^2 / 2, var = 2 s^2
    rho = neighbour_correlation(torch.stack([ramp, ramp, ramp]))
    torch.testing.assert_close(rho[3:-3, 3:-3], torch.full((8, 8), 0.875), atol=1e-3, rtol=0)
    assert torch.equal(neighbour_correlation(torch.full((3, 8, 8), 0.4)), torch.ones(8, 8))  # flat colour


def test_splat_on_a_magnified_surface_stays_within_the_tents_bound():
    from voyager_pipe.render.splat import splat_resample

    # samples every other pixel (the surface seen twice as close as it was sampled), gaps closed
    slope = 0.02  # colour change per pixel along x
    points, colours, cam, u, v = _grid_cloud((0.3, 0.2), colour=lambda u, v: torch.stack(
        [0.1 + slope * u, 0.3 + 0 * u, 0.5 + 0 * u], 1))
    keep = ((u - 0.3).round() % 2 == 0) & ((v - 0.2).round() % 2 == 0)
    points, colours = points[keep], colours[keep]
    closed, filled = close_gaps(_front(points, colours, cam), 0.03)
    assert bool(closed.mask[..., 3:-3, 3:-3].all()) and float(filled.float().mean()) > 0.6
    out = splat_resample(points, colours, cam, closed)
    exact = (0.1 + slope * torch.arange(cam.width, dtype=torch.float32)).expand(cam.height, cam.width)
    err = (out.rgb[0, 0] - exact)[3:-3, 3:-3].abs()
    # every weight comes from samples less than 1 px away along x (tent), or from the pixel's own sample
    # dominating the cubic: the mean is within slope * 1 px of the pixel's value
    assert float(err.max()) <= slope + 1e-5
    torch.testing.assert_close(out.depth[0, 0, 3:-3, 3:-3], torch.full((cam.height - 6, cam.width - 6), 2.0),
                               atol=1e-5, rtol=0)

"""WorldCache: the paper's visibility + normal pruning checked on scenes with exact depth.

Ground truth comes from Open3D ray casting of small meshes (an independent path from the
cache's unprojection and the point renderer), with rays through our pixel centres.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.scenes.raycast import camera_rays
from voyager_pipe.errors import InputError
from voyager_pipe.world import CacheConfig, WorldCache

o3d = pytest.importorskip("open3d")

H = W = 48
K = intrinsics_from_fov(60.0, W, H)  # [3, 3] float64


def look_at(eye, target, up=(0.0, 1.0, 0.0)) -> torch.Tensor:
    """OpenCV w2c [4, 4] of a camera at ``eye`` looking at ``target`` (world y up -> image up)."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(-up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([x, y, z])
    w2c[:3, 3] = -w2c[:3, :3] @ eye
    return torch.from_numpy(w2c)


def cameras_at(poses: list[tuple]) -> Cameras:
    return Cameras(K=K, w2c=torch.stack([look_at(*p) for p in poses]), width=W, height=H)


def colored_mesh(meshes) -> "o3d.geometry.TriangleMesh":
    mesh = o3d.geometry.TriangleMesh()
    for m in meshes:
        mesh += m
    return mesh


def raycast(mesh, cameras: Cameras):
    """Exact (rgb [T,3,H,W], z-depth [T,1,H,W], 0 = miss) by Open3D ray casting through pixel centres."""
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    rgb, depth = [], []
    tri = np.arange(len(mesh.triangles))
    face_colors = np.stack([(tri * 37 % 255), (tri * 91 % 255), (tri * 53 % 255)], 1) / 255.0  # [F, 3]
    for k in range(len(cameras)):  # one Open3D call per camera (test helper, not per pixel)
        origins, directions, cos_z = camera_rays(cameras, k)  # [HW, 3], [HW, 3], [HW]
        rays = np.concatenate([origins, directions], -1).reshape(H, W, 6).astype(np.float32)  # [H, W, 6]
        hit = scene.cast_rays(o3d.core.Tensor(rays))
        t = hit["t_hit"].numpy()  # [H, W] ray length
        ids = hit["primitive_ids"].numpy().astype(np.int64)  # [H, W]
        ok = np.isfinite(t)
        z = np.where(ok, t * cos_z.reshape(H, W), 0.0)  # [H, W] z-depth
        color = np.where(ok[..., None], face_colors[np.where(ok, ids, 0)], 0.0)  # [H, W, 3]
        depth.append(torch.from_numpy(z).float()[None])
        rgb.append(torch.from_numpy(color).float().permute(2, 0, 1))
    return torch.stack(rgb), torch.stack(depth)  # [T, 3, H, W], [T, 1, H, W]


def room_mesh():
    room = o3d.geometry.TriangleMesh.create_box(8.0, 4.0, 8.0).translate((-4.0, -2.0, -4.0))
    box = o3d.geometry.TriangleMesh.create_box(1.0, 1.5, 1.0).translate((-0.5, -2.0, -2.5))
    box2 = o3d.geometry.TriangleMesh.create_box(0.8, 0.8, 0.8).translate((1.5, -2.0, 1.0))
    return colored_mesh([room, box, box2])


def wall_mesh(thickness: float = 0.02):
    return o3d.geometry.TriangleMesh.create_box(2.0, 2.0, thickness).translate((-1.0, -1.0, -thickness / 2))


def arc_poses(n: int, span_deg: float = 60.0, radius: float = 1.0):
    """``n`` cameras on a circle of ``radius`` looking outwards, turning by ``span_deg`` in total."""
    angles = np.radians(np.linspace(0.0, span_deg, n))
    return [((radius * np.sin(a), 0.0, radius * np.cos(a)), (3 * np.sin(a), -0.5, 3 * np.cos(a))) for a in angles]


@pytest.fixture(scope="module")
def room():
    mesh = room_mesh()
    cams = cameras_at(arc_poses(6))
    rgb, depth = raycast(mesh, cams)
    return mesh, cams, rgb, depth


def test_first_update_renders_back_its_frame_exactly(room):
    _, cams, rgb, depth = room
    cache = WorldCache()
    stats = cache.update(rgb[:1], depth[:1], cams[0])
    valid = depth[0, 0] > 0  # [H, W]
    assert stats.added == int(valid.sum()) == len(cache)
    out = cache.render(cams[0])
    assert bool(out.mask[0, 0][valid].all())
    torch.testing.assert_close(out.depth[0, 0][valid], depth[0, 0][valid], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.rgb[0][:, valid], rgb[0][:, valid])
    assert out.normals is not None and out.normals.shape == (1, 3, H, W)


def test_same_frame_twice_adds_nothing(room):
    _, cams, rgb, depth = room
    cache = WorldCache()
    cache.update(rgb[:1], depth[:1], cams[0])
    before = len(cache)
    stats = cache.update(rgb[:1], depth[:1], cams[0])
    assert stats.added == 0 and len(cache) == before
    assert stats.frames[0].rejected == stats.frames[0].candidates > 0


@pytest.mark.parametrize("gap_tolerance", [0.0, 0.03])  # 0: the paper's exact rule (every uncovered pixel is added)
def test_every_valid_pixel_of_an_updated_frame_is_rendered(room, gap_tolerance):
    _, cams, rgb, depth = room
    cache = WorldCache(CacheConfig(gap_tolerance=gap_tolerance))
    cache.update(rgb[:3], depth[:3], cams[:3])
    out = cache.render(cams[1:3])
    valid = depth[1:3] > 0  # [2, 1, H, W]
    assert bool(out.mask[valid].all())
    # Pixels not added show older points of the same surfaces: depth agrees to a pixel's footprint.
    rel = (out.depth[valid] - depth[1:3][valid]).abs() / depth[1:3][valid]
    assert float(rel.quantile(0.95)) < 0.02
    same_color = (out.rgb - rgb[1:3]).abs().amax(1, keepdim=True)[valid] < 1e-6  # [V]
    assert float(same_color.float().mean()) > 0.9


def test_points_lie_on_the_true_surfaces(room):
    mesh, cams, rgb, depth = room
    cache = WorldCache()
    cache.update(rgb, depth, cams)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    distance = scene.compute_distance(o3d.core.Tensor(cache.points.numpy())).numpy()  # [P]
    assert distance.max() < 1e-4
    assert set(cache.frame_ids.unique().tolist()) <= set(range(6))
    # Pruning really prunes on an orbit with overlap.
    assert len(cache) < 0.8 * int((depth > 0).sum())
    assert cache.stats()["added_per_update"] == [f.added for f in cache.history]


def test_back_of_a_thin_wall_is_added_by_the_normal_rule():
    mesh = wall_mesh()
    cams = cameras_at([((0, 0, 3.0), (0, 0, 0)), ((0, 0, -3.0), (0, 0, 0))])
    rgb, depth = raycast(mesh, cams)
    cache = WorldCache()
    cache.update(rgb[:1], depth[:1], cams[0])
    stats = cache.update(rgb[1:], depth[1:], cams[1])
    frame = stats.frames[0]
    assert frame.candidates > 0.2 * H * W
    assert frame.covered > 0.95 * frame.candidates  # rule (a) alone would add almost nothing ...
    assert frame.back_facing >= 0.95 * frame.candidates  # ... rule (b) adds the back side
    back = cache.points[cache.frame_ids == 1]  # [A, 3]
    torch.testing.assert_close(back[:, 2], torch.full_like(back[:, 2], -0.01), atol=1e-4, rtol=0)
    assert bool((cache.normals[cache.frame_ids == 1][:, 2] < -0.99).all())  # normals face the back camera

    # With the normal test switched off (180 degrees never exceeded) the back side is rejected.
    strict = WorldCache(CacheConfig(normal_angle_deg=180.0))
    strict.update(rgb[:1], depth[:1], cams[0])
    assert strict.update(rgb[1:], depth[1:], cams[1]).added < 0.05 * frame.candidates


def test_nearby_view_of_a_seen_surface_adds_nothing():
    mesh = wall_mesh()
    # Second camera: a small step sideways, still seeing only parts of the wall seen before.
    cams = cameras_at([((0, 0, 2.0), (0, 0, 0)), ((0.05, 0.0, 2.02), (0.05, 0, 0))])
    rgb, depth = raycast(mesh, cams)
    cache = WorldCache()
    cache.update(rgb[:1], depth[:1], cams[0])
    frame = cache.update(rgb[1:], depth[1:], cams[1]).frames[0]
    assert frame.back_facing == 0
    assert frame.added <= 0.05 * frame.candidates


def test_sky_far_and_invalid_depth_never_enter(room):
    _, cams, rgb, depth = room
    d = depth[:1].clone()  # [1, 1, H, W]
    d[0, 0, :4] = 0.0
    d[0, 0, 4:8] = float("nan")
    d[0, 0, 8:12] = float("inf")
    d[0, 0, 12:16] = 1e6
    mask = torch.ones_like(d, dtype=torch.bool)
    mask[0, 0, :, :5] = False
    cache = WorldCache(CacheConfig(max_depth=100.0))
    stats = cache.update(rgb[:1], d, cams[0], valid_mask=mask)
    expected = (H - 16) * (W - 5) - int((depth[0, 0, 16:, 5:] <= 0).sum())
    assert stats.added == expected == len(cache)
    assert bool(cache.points.isfinite().all())
    assert cache.stats()["rejected_invalid_fraction"] == pytest.approx(1 - expected / (H * W))


def test_voxel_merge_keeps_one_point_per_voxel(room):
    _, cams, rgb, depth = room
    size = 0.25
    cache = WorldCache(CacheConfig(voxel_size=size))
    stats = cache.update(rgb[:2], depth[:2], cams[:2])
    cells = np.floor(cache.points.numpy().astype(np.float64) / size)  # [P, 3]
    assert len(np.unique(cells, axis=0)) == len(cache)
    assert sum(f.merged for f in stats.frames) > 0
    # Every occupied voxel of the first frame's points is represented.
    first = torch.from_numpy(np.floor(cache.points[cache.frame_ids == 0].numpy() / size))
    assert len(first) > 10


def test_max_points_thins_and_keeps_the_first_frame(room):
    _, cams, rgb, depth = room
    first_count = int((depth[0] > 0).sum())
    cache = WorldCache(CacheConfig(max_points=first_count + 100))
    stats = cache.update(rgb[:4], depth[:4], cams[:4])
    assert len(cache) == first_count + 100
    assert int((cache.frame_ids == 0).sum()) == first_count
    assert stats.thinned > 0


def test_save_and_load_round_trip(room, tmp_path):
    _, cams, rgb, depth = room
    cache = WorldCache()
    cache.update(rgb[:2], depth[:2], cams[:2])
    cache.save(tmp_path / "world.ply")
    loaded = WorldCache.load(tmp_path / "world.ply")
    torch.testing.assert_close(loaded.points, cache.points, rtol=0, atol=0)
    torch.testing.assert_close(loaded.normals, cache.normals, rtol=0, atol=0)
    assert torch.equal(loaded.frame_ids, cache.frame_ids)
    assert (loaded.colors - cache.colors).abs().max() <= 0.5 / 255 + 1e-6
    # A loaded cache continues the frame counter and prunes against the loaded points.
    assert loaded.update(rgb[1:2], depth[1:2], cams[1]).added == 0


def test_bad_inputs_raise_clear_programming_errors(room):
    """Shape / dtype mismatches are the caller's bug (ValueError), never the user's InputError (exit 2)."""
    _, cams, rgb, depth = room
    cache = WorldCache()
    cases = [
        ("depth", lambda: cache.update(rgb[:1], depth[:1, :, :-1], cams[0])),
        ("rgb", lambda: cache.update((rgb[:1] * 255).to(torch.uint8), depth[:1], cams[0])),
        ("depth", lambda: cache.update(rgb[:1], depth[:1].to(torch.int32), cams[0])),
        ("no valid pixel", lambda: cache.update(rgb[:1], torch.zeros_like(depth[:1]), cams[0])),
        ("no valid pixel", lambda: cache.update(rgb[:1], torch.full_like(depth[:1], float("nan")), cams[0])),
        ("cameras", lambda: cache.update(rgb[:2], depth[:2], cams[0])),
        ("valid_mask", lambda: cache.update(rgb[:1], depth[:1], cams[0], valid_mask=torch.ones(1, 1, H, W))),
    ]
    for match, call in cases:
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert not isinstance(info.value, InputError)
    assert len(cache) == 0 and len(cache.background) == 0


def test_normals_of_added_points_match_the_whole_frame_estimate(room):
    from voyager_pipe.geometry import point_map_normals, unproject

    _, cams, rgb, depth = room
    cache = WorldCache()
    cache.update(rgb[:2], depth[:2], cams[:2])
    cam = cams[1].to(dtype=torch.float32)
    full = point_map_normals(unproject(depth[1:2], cam.K, cam.w2c), depth[1:2, 0] > 0, cam.centers)[0]  # [H, W, 3]
    mine = cache.normals[cache.frame_ids == 1]  # [A, 3]
    assert 0 < len(mine) < int((depth[1] > 0).sum())  # only part of the frame was added (a crop)
    # Each added normal is one of the full-frame normals at the same point.
    points = cache.points[cache.frame_ids == 1]  # [A, 3]
    full_points = unproject(depth[1:2], cam.K, cam.w2c)[0]  # [H, W, 3]
    nearest = torch.cdist(points, full_points.reshape(-1, 3)).argmin(dim=1)  # [A]
    torch.testing.assert_close(mine, full.reshape(-1, 3)[nearest], atol=1e-4, rtol=0)


def test_renders_cull_blocks_out_of_view_without_changing_a_pixel(room, monkeypatch):
    from voyager_pipe.render.condition import PREVIEW_CONDITION
    from voyager_pipe.world.points import PointStore

    _, cams, rgb, depth = room
    cache = WorldCache()
    cache.update(rgb, depth, cams)  # six frames turning by 60 degrees in all
    store = cache.geometry
    assert len(store._block_starts) >= len(set(cache.frame_ids.tolist()))  # blocks never mix frames
    # a camera turned away from everything sees no block; the first camera not the last frames' blocks
    behind = cams[0].w2c.clone()
    behind[:, :3, :3] = behind[:, :3, :3] @ torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=behind.dtype))
    assert store.rows_in_view(cams.K[:1], behind, cams.width, cams.height).numel() == 0
    rows = store.rows_in_view(cams.K[:1], cams.w2c[:1], cams.width, cams.height)
    assert rows is not None and 0 < rows.numel() < len(store)
    culled = [cache.render(cams[k]) for k in range(len(cams))] + [cache.render(cams, PREVIEW_CONDITION)]
    monkeypatch.setattr(PointStore, "rows_in_view", lambda self, *a, **k: None)  # every point, every time
    full = [cache.render(cams[k]) for k in range(len(cams))] + [cache.render(cams, PREVIEW_CONDITION)]
    for a, b in zip(culled, full):
        for name in ("rgb", "depth", "mask", "index", "normals"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_bench_cache_prints_the_loop_figures(capsys):
    from voyager_pipe.cli import main

    assert main(["bench", "--cache", "--size", "64x48", "--frames", "5", "--only", "4", "--threads", "1"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("4. loop") and line.endswith("rendered back from its own camera: 0 (goal 0)")


def test_point_blocks_follow_frames_and_are_cut_at_block_rows():
    from voyager_pipe.world.points import BLOCK_ROWS, PointStore

    store = PointStore()
    for frame, count in ((0, 10), (1, 2 * BLOCK_ROWS + 5), (2, 3)):
        xyz = torch.arange(3 * count, dtype=torch.float32).reshape(count, 3)
        store.append(xyz, torch.zeros(count, 3), torch.zeros(count, 3), torch.full((count,), frame))
    b = BLOCK_ROWS
    assert store._block_starts == [0, 10, 10 + b, 10 + 2 * b, 15 + 2 * b]
    # bounds of the second block: rows 10 .. 10 + b - 1 of the ramp
    assert store._block_bounds[1, 0].tolist() == [0.0, 1.0, 2.0]
    assert store._block_bounds[1, 1].tolist() == [3.0 * (b - 1), 3.0 * (b - 1) + 1, 3.0 * (b - 1) + 2]
    store.select(torch.arange(5, len(store)))  # a rewrite rebuilds the blocks from the frame ids
    assert store._block_starts == [0, 5, 5 + b, 5 + 2 * b, 10 + 2 * b]

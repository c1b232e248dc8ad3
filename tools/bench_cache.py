#!/usr/bin/env python3
"""Benchmark of the world cache on a synthetic room with exact depth (Open3D ray casting).

Prints, for a 49-frame orbit and an out-and-back loop:
  * points kept by the pruned cache vs adding every valid pixel of every frame
    (paper: about 36% fewer; target >= 30% fewer);
  * points added on the way back of the loop vs the way out (target: <= 2%);
  * median time of one ``update`` vs one render of the same size (target <= 2x).

Usage: python3 tools/bench_cache.py [--size 128] [--frames 49] [--fill-holes 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from voyager_pipe.camera.cameras import Cameras, intrinsics_from_fov
from voyager_pipe.scenes.raycast import camera_rays
from voyager_pipe.world import CacheConfig, WorldCache


def look_at(eye, target, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """OpenCV w2c [4, 4] of a camera at ``eye`` looking at ``target`` (world y up)."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(-up, z)
    x /= np.linalg.norm(x)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([x, np.cross(z, x), z])
    w2c[:3, 3] = -w2c[:3, :3] @ eye
    return w2c


def room_mesh():
    """A 10 x 4 x 10 room with a few boxes (Open3D legacy mesh)."""
    import open3d as o3d

    parts = [
        o3d.geometry.TriangleMesh.create_box(10.0, 4.0, 10.0).translate((-5.0, -2.0, -5.0)),
        o3d.geometry.TriangleMesh.create_box(1.0, 1.5, 1.0).translate((-0.5, -2.0, -0.5)),
        o3d.geometry.TriangleMesh.create_box(0.8, 2.5, 0.8).translate((2.0, -2.0, 1.0)),
        o3d.geometry.TriangleMesh.create_box(1.5, 0.6, 0.8).translate((-3.0, -2.0, 2.0)),
        o3d.geometry.TriangleMesh.create_box(0.6, 0.6, 0.6).translate((1.0, -2.0, -3.0)),
    ]
    mesh = o3d.geometry.TriangleMesh()
    for part in parts:
        mesh += part
    return mesh


def raycast(mesh, cameras: Cameras):
    """Exact (rgb [T,3,H,W], z-depth [T,1,H,W]) through our pixel centres; colour = checker x face."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    H, W = cameras.height, cameras.width
    rays_per_camera = [camera_rays(cameras, k) for k in range(len(cameras))]  # (origins, directions, cos_z)
    rays = np.stack([np.concatenate(r[:2], -1) for r in rays_per_camera]).reshape(-1, H, W, 6).astype(np.float32)
    cos_z = np.stack([r[2] for r in rays_per_camera]).reshape(-1, H, W)  # [T, H, W]
    hit = scene.cast_rays(o3d.core.Tensor(rays))
    t = hit["t_hit"].numpy()  # [T, H, W] ray length
    ok = np.isfinite(t)
    z = np.where(ok, t * cos_z, 0.0)  # [T, H, W] z-depth
    points = np.where(ok[..., None], rays[..., :3] + rays[..., 3:] * np.where(ok, t, 0)[..., None], 0)  # [T, H, W, 3]
    checker = (np.floor(points * 2).sum(-1) % 2)[..., None]  # [T, H, W, 1]
    ids = np.where(ok, hit["primitive_ids"].numpy().astype(np.int64), 0) // 2  # [T, H, W] face of a box
    base = np.stack([(ids * 37 % 200), (ids * 91 % 200), (ids * 53 % 200)], -1) / 255.0  # [T, H, W, 3]
    rgb = np.where(ok[..., None], base + 0.2 * checker, 0.0)  # [T, H, W, 3]
    return (torch.from_numpy(rgb).float().permute(0, 3, 1, 2),  # [T, 3, H, W]
            torch.from_numpy(z).float()[:, None])  # [T, 1, H, W]


def orbit_cameras(frames: int, size: int) -> Cameras:
    """Object-centric orbit: 90 degrees around the central box at radius 3, looking at it."""
    angles = np.radians(np.linspace(0.0, 90.0, frames))
    w2c = [look_at((3 * np.sin(a), 0.2, 3 * np.cos(a)), (0, -1.0, 0)) for a in angles]
    return Cameras(K=intrinsics_from_fov(60.0, size, size), w2c=torch.from_numpy(np.stack(w2c)), width=size, height=size)


def loop_cameras(frames: int, size: int) -> tuple[Cameras, int]:
    """Out along a curve (moving forward, turning left), then back to the start along the same
    curve shifted 10 cm up and sideways (an out-and-back walk, not a replay of the same poses)."""
    half = frames // 2
    s = np.linspace(0.0, 1.0, half + 1)
    out_eye = np.stack([-1.5 * s ** 2, 0.0 * s, 3.0 - 2.5 * s], -1)  # [half+1, 3]
    bump = np.sin(np.pi * s[::-1][1:])[:, None] * np.array([0.1, -0.1, 0.0])  # [half, 3] 0 at both ends
    back_eye = out_eye[::-1][1:] + bump  # [half, 3]
    yaw = np.concatenate([np.radians(40.0) * s, np.radians(40.0) * s[::-1][1:]])  # [frames]
    eyes = np.concatenate([out_eye, back_eye])  # [2 half + 1, 3]
    w2c = [look_at(e, e + np.array([-np.sin(y), -0.15, -np.cos(y)])) for e, y in zip(eyes, yaw)]
    cams = Cameras(K=intrinsics_from_fov(60.0, size, size), w2c=torch.from_numpy(np.stack(w2c)), width=size, height=size)
    return cams, half + 1


def run_sequence(cfg: CacheConfig, rgb, depth, cams, device) -> tuple[WorldCache, list[int], list[float]]:
    cache = WorldCache(cfg, device=device)
    added, seconds = [], []
    for t in range(len(cams)):
        start = time.perf_counter()
        stats = cache.update(rgb[t:t + 1], depth[t:t + 1], cams[t], )
        if device != "cpu":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        added.append(stats.added)
    return cache, added, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image width = height")
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--fill-holes", type=int, default=None, help="cache.fill_holes (default: the config default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cfg = CacheConfig() if args.fill_holes is None else CacheConfig(fill_holes=args.fill_holes)
    mesh = room_mesh()
    print(f"world cache benchmark: {args.size}x{args.size}, {args.frames} frames, fill_holes={cfg.fill_holes}, device={args.device}")

    # 1. Orbit: pruned cache vs adding every pixel.
    cams = orbit_cameras(args.frames, args.size)
    rgb, depth = raycast(mesh, cams)
    every = int((depth > 0).sum())
    cache, _, update_seconds = run_sequence(cfg, rgb, depth, cams, args.device)
    stats = cache.stats()
    print(f"orbit ({args.frames} frames): pruned {len(cache):,} points vs all pixels {every:,} "
          f"-> {100 * (1 - len(cache) / every):.1f}% fewer (target >= 30%, paper ~36%)")
    print(f"  candidates with a cached point visible {100 * stats['covered_fraction']:.1f}%, "
          f"re-added as back-facing {100 * stats['readmitted_back_facing_fraction']:.2f}%, "
          f"rejected {100 * stats['rejected_fraction']:.1f}%")

    # 2. Timing: one update vs one render of the same size, on the full orbit cache.
    cam = cams[args.frames // 2].to(args.device, torch.float32)
    render_seconds = []
    for _ in range(15):
        start = time.perf_counter()
        cache.render(cam)
        if args.device != "cpu":
            torch.cuda.synchronize()
        render_seconds.append(time.perf_counter() - start)
    update_median = statistics.median(update_seconds[1:])
    render_median = statistics.median(render_seconds)
    print(f"median update {1e3 * update_median:.2f} ms vs render {1e3 * render_median:.2f} ms "
          f"({len(cache):,} points) -> {update_median / render_median:.2f}x (target <= 2x)")

    # 3. Out-and-back loop: the way back should add (almost) nothing.
    cams, turn = loop_cameras(args.frames, args.size)
    rgb, depth = raycast(mesh, cams)
    cache, added, _ = run_sequence(cfg, rgb, depth, cams, args.device)
    out_points, back_points = sum(added[:turn]), sum(added[turn:])
    print(f"loop ({len(cams)} frames, turn at {turn}): out {out_points:,} points, back {back_points:,} "
          f"-> return adds {100 * back_points / max(out_points, 1):.2f}% (target <= 2%)")


if __name__ == "__main__":
    main()

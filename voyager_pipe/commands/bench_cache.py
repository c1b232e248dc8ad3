#!/usr/bin/env python3
"""Quality of the world cache and of the weight-free ``warp`` preview on synthetic scenes with
exact ground truth (Open3D ray casting, :mod:`voyager_pipe.scenes`). Prints each figure next
to its goal (issue 19):

1. resampling: PSNR of the preview's render of the first frame's (exact) points vs the
   nearest-pixel z-buffer of the same points, on the pixels both know (goal: >= +2 dB), and
   on pixels next to depth edges (must not drop: no blur across edges);
2. disocclusions: share of the points the preview adds on a room orbit that lie within 2 cm
   of the true surfaces (goal: >= 95%);
3. sky: all-pixel PSNR of the preview along a street walk (goal: >= 20 dB);
4. loop: points the way back of an out-and-back walk re-adds (goal: <= 2%), with every valid
   pixel of each frame rendered back from its own camera (goal: 0 missing);
5. pruning: points kept on the orbit vs every valid pixel (paper ~36% fewer, goal >= 30%), and
   the median cost of one update vs one render.

Usage: voyager-pipe bench --cache [--size 512x384] [--frames 49] [--threads 2] [--only 1 2 ...]
(or python3 tools/bench_cache.py with the same options)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB, peak 1) over ``mask`` [N, 1, H, W] of images [N, 3, H, W]."""
    sel = mask.expand_as(a)
    mse = float(((a - b)[sel] ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def room_frames(trajectory: str, args):
    """``(cameras, rgb [T, 3, H, W], depth [T, 1, H, W])``: exact frames of the room scene along ``trajectory``."""
    from voyager_pipe.scenes import make_scene, render_ground_truth, scene_trajectory

    scene = make_scene("room", seed=0)
    cams = scene_trajectory(scene, trajectory, frames=args.frames, width=args.width, height=args.height)
    return (cams, *render_ground_truth(scene, cams))


def run_preview(scene_kind: str, trajectory: str, frames: int, width: int, height: int, config):
    """The warp preview along a scene trajectory from the exact first frame: (cameras, gt, outputs, cache)."""
    from voyager_pipe.generate.config import GenerateConfig
    from voyager_pipe.generate.scheduler import ClipScheduler
    from voyager_pipe.generate.warp import WarpGenerator
    from voyager_pipe.scenes import make_scene, render_ground_truth, scene_trajectory
    from voyager_pipe.world import WorldCache

    scene = make_scene(scene_kind, seed=0)
    cams = scene_trajectory(scene, trajectory, frames=frames, width=width, height=height)
    gt_rgb, gt_depth = render_ground_truth(scene, cams)  # [T, 3, H, W], [T, 1, H, W] (0 = sky)
    cache = WorldCache(config.cache)
    cache.update(gt_rgb[:1], gt_depth[:1], cams[:1], frame_ids=[0])
    scheduler = ClipScheduler(WarpGenerator.from_config(config.warp), GenerateConfig(backend="warp", clip_len=frames, steps=2, progress=False))
    results = list(scheduler.run(cams, cache, gt_rgb[0], gt_depth[0], torch.Generator().manual_seed(0)))
    rgb = torch.cat([r.rgb for r in results])  # [T, 3, H, W]
    return scene, cams, gt_rgb, gt_depth, rgb, cache


def resampling(args, config) -> None:
    from voyager_pipe.render.condition import PREVIEW_CONDITION, ConditionRender
    from voyager_pipe.world import WorldCache

    cams, gt_rgb, gt_depth = room_frames("orbit", args)  # [T, 3, H, W], [T, 1, H, W]
    cache = WorldCache(config.cache)
    cache.update(gt_rgb[:1], gt_depth[:1], cams[:1])
    nearest = cache.render(cams[1:], ConditionRender(close_gaps=False))
    preview = cache.render(cams[1:], PREVIEW_CONDITION)
    known = nearest.mask & preview.mask & (gt_depth[1:] > 0)  # [T-1, 1, H, W]
    d = gt_depth[1:]
    edge = torch.nn.functional.max_pool2d(d, 3, 1, 1) > 1.1 * -torch.nn.functional.max_pool2d(-d, 3, 1, 1)  # [T-1, 1, H, W]
    p_near, p_prev = psnr(nearest.rgb, gt_rgb[1:], known), psnr(preview.rgb, gt_rgb[1:], known)
    e_near, e_prev = psnr(nearest.rgb, gt_rgb[1:], known & edge), psnr(preview.rgb, gt_rgb[1:], known & edge)
    print(f"1. resampling (room orbit, frame 0's exact points): nearest z-buffer {p_near:.2f} dB, preview {p_prev:.2f} dB "
          f"-> {p_prev - p_near:+.2f} dB (goal >= +2 dB); at depth edges {e_near:.2f} -> {e_prev:.2f} dB "
          f"({e_prev - e_near:+.2f} dB, goal: no drop)")


def disocclusions(args, config) -> None:
    from voyager_pipe.scenes import SceneRaycaster

    scene, cams, gt_rgb, gt_depth, rgb, cache = run_preview("room", "orbit", args.frames, args.width, args.height, config)
    raycaster = SceneRaycaster(scene)
    import open3d as o3d

    later = cache.frame_ids > 0  # [P]
    points = cache.points[later].numpy().astype(np.float32)  # [A, 3]
    distance = raycaster.raycasting.compute_distance(o3d.core.Tensor(points)).numpy()  # [A]
    all_points = raycaster.raycasting.compute_distance(o3d.core.Tensor(cache.points.numpy())).numpy()  # [P]
    known = gt_depth[1:] > 0
    print(f"2. disocclusions (room orbit): {100 * float((distance < 0.02).mean()):.1f}% of the {len(points):,} points "
          f"the preview added lie within 2 cm of the true surfaces (goal >= 95%); all cached points "
          f"{100 * float((all_points < 0.02).mean()):.1f}%; frames PSNR {psnr(rgb[1:], gt_rgb[1:], known):.2f} dB")


def sky(args, config) -> None:
    _, cams, gt_rgb, gt_depth, rgb, cache = run_preview("outdoor", "forward", args.frames, args.width, args.height, config)
    everything = torch.ones_like(gt_depth[1:], dtype=torch.bool)
    sky_px = gt_depth[1:] <= 0
    print(f"3. sky (street walk): all-pixel PSNR {psnr(rgb[1:], gt_rgb[1:], everything):.2f} dB (goal >= 20 dB); "
          f"sky pixels {psnr(rgb[1:], gt_rgb[1:], sky_px):.2f} dB; far layer {len(cache.background):,} points, "
          f"world.ply {len(cache):,} points (none of the far layer)")


def loop(args, config) -> None:
    from voyager_pipe.world import WorldCache

    cams, rgb, depth = room_frames("outback", args)
    turn = (args.frames + 1) // 2
    cache = WorldCache(config.cache)
    added, missing = [], 0
    for t in range(len(cams)):
        added.append(cache.update(rgb[t:t + 1], depth[t:t + 1], cams[t]).added)
        back = cache.render(cams[t])
        missing += int(((depth[t] > 0) & ~back.mask[0]).sum())
    out_points, back_points = sum(added[:turn]), sum(added[turn:])
    print(f"4. loop (room out-and-back, {len(cams)} frames, turn at {turn}): out {out_points:,} points, back "
          f"{back_points:,} -> {100 * back_points / max(out_points, 1):.2f}% re-added (goal <= 2%); valid pixels "
          f"missing when each frame is rendered back from its own camera: {missing} (goal 0)")


def pruning(args, config) -> None:
    from voyager_pipe.world import WorldCache

    cams, rgb, depth = room_frames("orbit", args)
    cache = WorldCache(config.cache)
    update_seconds, render_seconds = [], []
    for t in range(len(cams)):
        start = time.perf_counter()
        cache.update(rgb[t:t + 1], depth[t:t + 1], cams[t])
        update_seconds.append(time.perf_counter() - start)
    for _ in range(9):
        start = time.perf_counter()
        cache.render(cams[len(cams) // 2])
        render_seconds.append(time.perf_counter() - start)
    every = int((depth > 0).sum())
    u, r = statistics.median(update_seconds[1:]), statistics.median(render_seconds)
    print(f"5. pruning (room orbit): {len(cache):,} points vs {every:,} valid pixels -> "
          f"{100 * (1 - len(cache) / every):.1f}% fewer (goal >= 30%, paper ~36%); median update {1e3 * u:.1f} ms "
          f"vs render {1e3 * r:.1f} ms -> {u / r:.2f}x")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=49, help="frames per trajectory (world-cache figures; default 49)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (world-cache figures; default 2)")
    parser.add_argument("--only", type=int, nargs="+", default=[1, 2, 3, 4, 5], metavar="K",
                        help="which world-cache figures (1 resampling, 2 disocclusions, 3 sky, 4 loop, 5 pruning)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="512x384", help="WIDTHxHEIGHT (the issue's figures: 512x384)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from voyager_pipe.config import load_config

    return run(args, load_config(None, []))


def run(args, config) -> int:
    """Print the figures ``args.only`` (``args.size``: WxH or None = 512x384, ``frames``, ``threads``) with
    ``config``'s ``cache`` and ``warp`` sections."""
    from voyager_pipe.commands._common import parse_size


    torch.set_num_threads(args.threads)
    args.width, args.height = parse_size(args.size) or (512, 384)
    print(f"world cache / preview benchmark: {args.width}x{args.height}, {args.frames} frames, {args.threads} threads")
    steps = {1: resampling, 2: disocclusions, 3: sky, 4: loop, 5: pruning}
    for k in args.only:
        steps[k](args, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

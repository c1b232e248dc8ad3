"""Benchmark `gen` with the warp backend: seconds per frame by stage, and flatness over length.

    python tools/bench_gen.py [--size 512x512] [--frames 49 500] [--clip-len 49] [--steps 50] [--repeat 3]

Runs the full pipeline (synthetic room, ground-truth depth of frame 0; the `orbit` scene
trajectory for runs of at most one clip, the `long` tour for longer ones) and prints s/frame
split by stage (render, cache update, generator, I/O) for each length (issue 19 goal: <= 0.35
s/frame at 512x512 on 2 cores for a 49-frame orbit), plus the cost of the clip around frame 50
and of the last clip (goal: frame 500 <= 1.2x frame 50). ``--repeat N`` runs each length N times and
prints the median of every figure (timings on a shared machine are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    import torch

    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.commands._common import parse_size
    from voyager_pipe.config import load_config
    from voyager_pipe.io.images import write_image
    from voyager_pipe.pipeline import WorldPipeline
    from voyager_pipe.scenes import make_scene, render_ground_truth, scene_trajectory

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--frames", type=int, nargs="+", default=[49, 500])
    parser.add_argument("--clip-len", type=int, default=49)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per length; medians are printed")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    width, height = parse_size(args.size)
    scene = make_scene("room", seed=0)
    cfg = load_config(None, [f"generate.clip_len={args.clip_len}", f"generate.steps={args.steps}",
                             "generate.backend=warp", "generate.progress=false", "device=cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for frames in args.frames:
            trajectory = "orbit" if frames <= args.clip_len else "long"
            cams = scene_trajectory(scene, trajectory, frames=frames, width=width, height=height)
            rgb, depth = render_ground_truth(scene, cams[:1])  # [1, 3, H, W], [1, 1, H, W]
            write_image(tmp / "image.png", rgb[0])
            np.save(tmp / "depth.npy", depth[0, 0].numpy())
            write_trajectory(tmp / "traj.json", cams)
            runs = [_run(WorldPipeline(cfg), tmp, frames) for _ in range(max(args.repeat, 1))]
            per = {k: statistics.median(t.get(k, 0.0) / frames for t, _, _ in runs)
                   for k in ("render", "cache_update", "generator", "io", "total")}
            print(f"{frames} frames ({trajectory}) at {width}x{height}: {per['total']:.3f} s/frame total (goal <= 0.35) | render {per['render']:.3f} | "
                  f"cache update {per['cache_update']:.3f} | generator {per['generator']:.3f} | I/O {per['io']:.3f} | "
                  f"{runs[0][1]} points" + (f" (median of {len(runs)} runs)" if len(runs) > 1 else ""))
            stride = args.clip_len - (args.clip_len // 2 + (1 if args.clip_len % 2 else 0))
            clip_times = runs[0][2]
            if len(clip_times) > 2:
                near50 = min(range(len(clip_times)), key=lambda i: abs(clip_times[i][0] * stride - 50))
                index = clip_times[near50][0]
                at50 = statistics.median(run[2][near50][1] for run in runs)
                last = statistics.median(run[2][-1][1] for run in runs)
                print(f"  per-clip cost: clip {index} (~frame {index * stride}) {at50:.2f} s, "
                      f"last clip {clip_times[-1][0]} {last:.2f} s, ratio {last / at50:.2f} (goal <= 1.2)")
    return 0


def _run(pipeline, tmp: Path, frames: int) -> tuple[dict, int, list[tuple[int, float]]]:
    """One ``gen`` run on the inputs in ``tmp``: (timings, cache points, [(clip index, seconds)])."""
    clip_times: list[tuple[int, float]] = []
    last = [time.perf_counter()]

    def on_clip(result, *_):
        now = time.perf_counter()
        clip_times.append((result.plan.index, now - last[0]))
        last[0] = now

    out = pipeline(tmp / "image.png", tmp / "traj.json", tmp / f"out{frames}", depth=tmp / "depth.npy",
                   overwrite=True, on_clip=on_clip)
    return out.timings, out.num_points, clip_times


if __name__ == "__main__":
    raise SystemExit(main())

"""Start time of the viewer for a large world (target: < 5 s for 1M points on a laptop-class CPU).

    python tools/bench_view.py [--points 1000000] [--frames 49] [--size 512x384] [--keep DIR]

Writes a synthetic run folder (random coloured points, frames, depth, masks, cameras), then measures
1. in this process: read the folder (world.ply, cameras, thumbnails) and build the viser scene,
   stage by stage;
2. the command as a user runs it: ``python -m voyager_pipe view RUN --port 0`` from process start
   until it prints the URL (imports included).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_run(root: Path, points: int, frames: int, width: int, height: int) -> None:
    from voyager_pipe.camera.presets import make_preset
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.io.frames import write_frames
    from voyager_pipe.world.ply import write_ply

    rng = np.random.default_rng(0)
    cams = make_preset("forward", frames=frames, width=width, height=height)
    gen = torch.Generator().manual_seed(0)
    for start in range(0, frames, 8):  # a few frames at a time: bounded memory
        n = min(8, frames - start)
        rgb = torch.rand(n, 3, height, width, generator=gen)  # [n, 3, H, W]
        depth = 1 + 4 * torch.rand(n, 1, height, width, generator=gen)  # [n, 1, H, W]
        write_frames(root, rgb, depth, mask=depth > 2, start=start)
    write_trajectory(root / "cameras.json", cams)
    xyz = rng.normal(size=(points, 3)).astype(np.float32) + np.array([0, 0, 4], np.float32)  # [P, 3]
    write_ply(root / "world.ply", xyz, rng.integers(0, 256, size=(points, 3), dtype=np.uint8))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--size", default="512x384")
    parser.add_argument("--keep", metavar="DIR", help="write the synthetic run here (default: a temporary folder)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_view_")) / "run"
    if not (root / "world.ply").is_file():
        make_run(root, args.points, args.frames, width, height)

    from voyager_pipe.view.run_folder import read_run_folder
    from voyager_pipe.view.viewer import WorldViewer

    t0 = time.perf_counter()
    run = read_run_folder(root, max_points=args.points)
    t1 = time.perf_counter()
    viewer = WorldViewer(port=0, max_points=args.points)
    t2 = time.perf_counter()
    viewer.show_run(run)
    t3 = time.perf_counter()
    viewer.close()
    print(f"in-process: read folder {t1 - t0:.2f} s, start server {t2 - t1:.2f} s, build scene incl. frame images "
          f"({run.xyz.shape[0]:,} points, {run.num_frames} frusta with images) {t3 - t2:.2f} s, total {t3 - t0:.2f} s")

    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "voyager_pipe", "view", str(root), "--port", "0",
                                "--max-points", str(args.points)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={"PYTHONPATH": str(ROOT), **_env()})
    url_line = ""
    for line in process.stdout:
        if line.startswith("viewer:"):
            url_line = line.strip()
            break
    ready = time.perf_counter() - start
    process.terminate()
    process.wait(timeout=10)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command's CPU time (idle after the URL)
    print(f"command: `voyager-pipe view` printed its URL after {ready:.2f} s (process start, imports included; "
          f"{usage.ru_utime + usage.ru_stime:.2f} s CPU; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs): {url_line}")
    print(f"target < 5 s for 1M points: {'met' if ready < 5 else 'NOT met'} ({args.points:,} points, "
          f"{args.frames} frames {width}x{height})")
    return 0


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


if __name__ == "__main__":
    raise SystemExit(main())

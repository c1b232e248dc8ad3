"""Build examples/: a small synthetic room (image, depth, trajectories, ground truth).

    python tools/make_example.py [--out examples] [--size 256x192] [--frames 25]

Writes image.png (8-bit RGB), depth.npy (float32 z-depth, the sidecar `gen` finds), trajectories
traj_<name>.json (own JSON, frame 0 = the image's camera), traj_short.json and gt_short/ (ground-truth frame folder
by Open3D ray casting, for `voyager-pipe eval`). Deterministic (scene seed 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from voyager_pipe.camera.trajectory_io import write_trajectory
    from voyager_pipe.commands._common import parse_size
    from voyager_pipe.io.frames import write_frames
    from voyager_pipe.io.images import write_image
    from voyager_pipe.scenes import make_scene, render_ground_truth, scene_trajectory

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "examples"))
    parser.add_argument("--size", default="192x144")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--trajectories", nargs="+", default=["forward", "orbit", "pan"])
    parser.add_argument("--gt-frames", type=int, default=9, help="frames of the short forward trajectory with ground truth")
    args = parser.parse_args(argv)
    width, height = parse_size(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = make_scene("room", seed=0)
    for name in args.trajectories:
        cams = scene_trajectory(scene, name, frames=args.frames, width=width, height=height)
        write_trajectory(out / f"traj_{name}.json", cams)
    # a short forward walk with ground truth (kept small: the committed examples stay < 2 MB)
    short = scene_trajectory(scene, "forward", frames=args.gt_frames, width=width, height=height)
    write_trajectory(out / "traj_short.json", short)
    rgb, depth = render_ground_truth(scene, short)  # [T, 3, H, W], [T, 1, H, W]
    write_frames(out / "gt_short", rgb, depth)
    write_trajectory(out / "gt_short" / "cameras.json", short)
    # every scene trajectory starts at the same camera: the image is their frame 0
    write_image(out / "image.png", rgb[0])
    np.save(out / "depth.npy", depth[0, 0].numpy().astype(np.float32))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

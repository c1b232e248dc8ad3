"""Build examples/: a small synthetic room (image, depth, trajectories, ground truth).

    python tools/make_example.py [--out examples] [--size 256x192] [--frames 25]

Writes image.png (8-bit RGB), depth.npy (float32 z-depth, the sidecar `gen` finds), trajectories
traj_<name>.json (own JSON, frame 0 = the image's camera) and gt_<name>/ (ground-truth frame folder
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
    parser.add_argument("--size", default="256x192")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--trajectories", nargs="+", default=["forward", "orbit", "pan"])
    parser.add_argument("--gt", nargs="*", default=["forward"], help="trajectories that get a ground-truth folder")
    args = parser.parse_args(argv)
    width, height = parse_size(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = make_scene("room", seed=0)
    first = None
    for name in args.trajectories:
        cams = scene_trajectory(scene, name, frames=args.frames, width=width, height=height)
        write_trajectory(out / f"traj_{name}.json", cams)
        if name in args.gt or first is None:
            rgb, depth = render_ground_truth(scene, cams if name in args.gt else cams[:1])  # [T, 3, H, W], [T, 1, H, W]
            if first is None:
                first = (rgb[0], depth[0])
            if name in args.gt:
                write_frames(out / f"gt_{name}", rgb, depth, cameras=cams)
    # every scene trajectory starts at the same camera: the image is its frame 0
    write_image(out / "image.png", first[0])
    np.save(out / "depth.npy", first[1][0].numpy().astype(np.float32))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

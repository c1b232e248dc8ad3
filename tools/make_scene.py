#!/usr/bin/env python3
"""Make synthetic scene folders with exact ground truth (image, depth, trajectory, GT frames + depths).

    python tools/make_scene.py --kind room --seed 0 --traj orbit --frames 24 --size 256x192 --out scenes/room
    python tools/make_scene.py --kind outdoor --traj forward,loop,long --frames 49 --out scenes/outdoor

One trajectory writes OUT itself; several write OUT/<trajectory>/ each. Layout: see
voyager_pipe/scenes/folder.py and docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from voyager_pipe.commands._common import parse_size
    from voyager_pipe.errors import InputError
    from voyager_pipe.scenes import SCENE_KINDS, SCENE_TRAJECTORIES, make_scene, scene_trajectory, write_scene_folder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=SCENE_KINDS, default="room")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--traj", default="orbit", help=f"comma-separated, from {', '.join(SCENE_TRAJECTORIES)}")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="256x192", help="WIDTHxHEIGHT")
    parser.add_argument("--fov", type=float, default=60.0, help="horizontal field of view, degrees")
    parser.add_argument("--supersample", type=int, default=2, help="colour rays per pixel = supersample^2")
    parser.add_argument("--texture-size", type=int, default=128)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        width, height = parse_size(args.size)
        names = [t.strip() for t in args.traj.split(",") if t.strip()]
        unknown = [t for t in names if t not in SCENE_TRAJECTORIES]
        if unknown or not names:
            raise InputError(f"--traj {args.traj!r}: unknown trajectory {unknown}; expected {', '.join(SCENE_TRAJECTORIES)}")
        if args.frames < 2:
            raise InputError("--frames: at least 2")
        scene = make_scene(args.kind, args.seed, texture_size=args.texture_size)
        for name in names:
            out = args.out if len(names) == 1 else args.out / name
            cams = scene_trajectory(scene, name, args.frames, width, height, fov_deg=args.fov)
            write_scene_folder(out, scene, cams, supersample=args.supersample, progress=True,
                               extra={"trajectory": name, "fov_deg": args.fov})
            print(f"wrote {out} ({args.kind}, seed {args.seed}, {name}, {args.frames} frames, {width}x{height})")
    except InputError as exc:
        print(f"make_scene: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`voyager-pipe traj make|convert|show`: camera trajectories."""

from __future__ import annotations

import sys
from pathlib import Path

from voyager_pipe.commands._common import bounded_int, finite_float, parse_size
from voyager_pipe.errors import InputError

FORMATS = ("json", "re10k", "transforms", "colmap")
MAX_FRAMES = 10_000  # = voyager_pipe.io.reading.MAX_FRAMES (not imported here so --help stays instant)
# Kept in sync with voyager_pipe.camera.presets.PRESETS (not imported here so --help stays instant).
PRESET_NAMES = ("forward", "backward", "left", "right", "up", "down", "turn_left", "turn_right", "pan", "orbit",
                "spiral", "zoom_in", "zoom_out", "dolly_zoom", "keyframes")


def register(subparsers) -> None:
    parser = subparsers.add_parser("traj", help="make, convert and inspect camera trajectories",
                                   description="Make, convert and inspect camera trajectories.")
    verbs = parser.add_subparsers(dest="traj_command", metavar="VERB")
    parser.set_defaults(func=lambda args: _no_verb(parser))

    make = verbs.add_parser("make", help="write a preset camera path",
                            description="Write a preset camera path. Every preset starts at the identity pose "
                                        "(the input image's camera); directions are the first camera's "
                                        "(x right, y down, z forward).")
    make.add_argument("preset", choices=PRESET_NAMES, metavar="PRESET", help=f"one of: {', '.join(PRESET_NAMES)}")
    make.add_argument("--frames", type=bounded_int(1, MAX_FRAMES), required=True, help=f"number of frames (1..{MAX_FRAMES})")
    make.add_argument("--out", required=True, help="output file (format from --to or the file name)")
    make.add_argument("--to", choices=FORMATS, help="output format (default: from the file name, else json)")
    make.add_argument("--size", default="640x360", help="image size WxH (default 640x360)")
    make.add_argument("--fov", type=finite_float, default=60.0, help="horizontal field of view in degrees (default 60)")
    make.add_argument("--distance", type=finite_float, help="total translation in scene units (default 0.5 * depth)")
    make.add_argument("--speed", type=finite_float, help="translation per frame (overrides --distance)")
    make.add_argument("--angle", type=finite_float, help="rotation / orbit angle in degrees (default 30)")
    make.add_argument("--depth", type=finite_float, help="look-at distance, e.g. the median scene depth (default 2.0)")
    make.add_argument("--radius", type=finite_float, help="spiral radius (default 0.1 * depth)")
    make.add_argument("--turns", type=finite_float, help="spiral loops (default 1)")
    make.add_argument("--zoom", type=finite_float, help="zoom_in / zoom_out focal factor (default 1.5)")
    make.add_argument("--direction", choices=("left", "right", "up", "down"), help="pan direction (default left)")
    make.add_argument("--ease", action="store_true", help="smooth start and stop instead of constant speed")
    make.add_argument("--keys", help="keyframes preset: trajectory file with the key cameras")
    make.add_argument("--keys-from", choices=FORMATS, help="format of --keys (default: detected)")
    make.set_defaults(func=run_make)

    convert = verbs.add_parser("convert", help="convert a trajectory between formats",
                               description="Convert a trajectory between formats (json, re10k, transforms, colmap).")
    convert.add_argument("input", metavar="IN", help="input file (COLMAP: directory or cameras.txt / images.txt)")
    convert.add_argument("output", metavar="OUT", help="output file (COLMAP: a directory)")
    convert.add_argument("--to", choices=FORMATS, help="output format (default: from the file name)")
    convert.add_argument("--from", dest="from_format", choices=FORMATS, help="input format (default: detected)")
    convert.add_argument("--size", help="image size WxH (required for RealEstate10K input; rescales K otherwise)")
    convert.set_defaults(func=run_convert)

    show = verbs.add_parser("show", help="print a summary of a trajectory and optionally plot it",
                            description="Print frames, size, intrinsics, path length and rotation range; "
                                        "--png draws a top-down plot of the path with camera frusta.")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--png", help="write a top-down plot to this PNG")
    show.add_argument("--from", dest="from_format", choices=FORMATS, help="input format (default: detected)")
    show.add_argument("--size", help="image size WxH (required for RealEstate10K input)")
    show.set_defaults(func=run_show)


def _no_verb(parser) -> int:
    parser.print_help(sys.stderr)
    print("voyager-pipe traj: error: no verb given (choose one of make, convert, show)", file=sys.stderr)
    return 2


def format_for_output(path: str, explicit: str | None) -> str:
    """Output format from ``--to`` or the file name (transforms.json, *.json, *.txt, directory -> colmap)."""
    if explicit:
        return explicit
    p = Path(path)
    if p.name == "transforms.json":
        return "transforms"
    if p.suffix.lower() == ".json":
        return "json"
    if p.suffix.lower() == ".txt":
        return "re10k"
    if p.suffix == "" or p.is_dir():
        return "colmap"
    raise InputError(f"{path}: cannot tell the output format from the name; pass --to json|re10k|transforms|colmap")


def run_make(args) -> int:
    from voyager_pipe.camera.interpolate import interpolate_cameras
    from voyager_pipe.camera.presets import make_preset
    from voyager_pipe.camera.summary import format_summary, summarize
    from voyager_pipe.camera.trajectory_io import read_trajectory, write_trajectory
    from voyager_pipe.camera.validate import check_intrinsics, check_poses

    size = parse_size(args.size)
    if args.preset == "keyframes":
        if not args.keys:
            raise InputError("--keys: the keyframes preset needs a trajectory file with the key cameras")
        keys = read_trajectory(args.keys, fmt=args.keys_from, size=size if args.size else None)
        cameras = interpolate_cameras(keys, args.frames)
    else:
        params = {k: getattr(args, k) for k in ("distance", "speed", "angle", "depth", "radius", "turns", "zoom",
                                                 "direction")}
        params["ease"] = args.ease
        if not 0 < args.fov < 180:
            raise InputError(f"--fov {args.fov}: must be in (0, 180) degrees")
        cameras = make_preset(args.preset, args.frames, size[0], size[1], fov=args.fov, **params)
    check_poses(cameras.w2c, f"preset {args.preset}")  # e.g. absurd distances overflowing to inf
    check_intrinsics(cameras.K, f"preset {args.preset}")
    fmt = format_for_output(args.out, args.to)
    write_trajectory(args.out, cameras, fmt)
    print(format_summary(summarize(cameras), f"{args.out} ({fmt}, preset {args.preset})"))
    return 0


def run_convert(args) -> int:
    from voyager_pipe.camera.trajectory_io import read_trajectory, write_trajectory

    cameras = read_trajectory(args.input, fmt=args.from_format, size=parse_size(args.size))
    fmt = format_for_output(args.output, args.to)
    write_trajectory(args.output, cameras, fmt)
    print(f"wrote {args.output} ({fmt}, {len(cameras)} frames, {cameras.width}x{cameras.height})")
    return 0


def run_show(args) -> int:
    from voyager_pipe.camera.summary import format_summary, plot_top_down, summarize
    from voyager_pipe.camera.trajectory_io import read_trajectory

    cameras = read_trajectory(args.file, fmt=args.from_format, size=parse_size(args.size))
    print(format_summary(summarize(cameras), args.file))
    if args.png:
        plot_top_down(cameras, args.png)
        print(f"wrote {args.png}")
    return 0


__all__ = ["register"]

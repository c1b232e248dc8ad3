"""`voyager-pipe gen`: one image + a camera trajectory -> RGB-D video, frames and world point cloud."""

from __future__ import annotations

from voyager_pipe.commands._common import add_config_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gen", help="generate a world-consistent RGB-D video along a camera trajectory from one image",
        description="Generate a world-consistent RGB-D video and a point cloud from one image and a camera "
                    "trajectory. Depth: --depth FILE, a sidecar next to the image, or a learned model (--depth-model).")
    parser.add_argument("--image", required=True, metavar="IMG", help="input image (8-bit RGB PNG/JPEG)")
    parser.add_argument("--traj", required=True, metavar="TRAJ",
                        help="camera trajectory (own JSON, RealEstate10K txt, transforms.json, COLMAP); frame 0 is the input image's camera")
    parser.add_argument("--depth", metavar="FILE", help="depth of the image: .npy float, 16-bit PNG (see depth.png_scale), EXR, PFM")
    parser.add_argument("--depth-model", metavar="PATH", help="local learned depth model (sets depth.model)")
    parser.add_argument("--backend", choices=["auto", "warp", "voyager"], help="clip generator (sets generate.backend)")
    parser.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    parser.add_argument("--seed", type=int, help="random seed (sets seed)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run of the same --out after its last finished clip")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_config_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from voyager_pipe.config import load_config
    from voyager_pipe.distributed import init_from_env
    from voyager_pipe.pipeline import WorldPipeline

    overrides = list(args.overrides)
    if args.backend:
        overrides.append(f"generate.backend={args.backend}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.depth_model:
        overrides.append(f"depth.model={args.depth_model}")
    if args.no_progress:
        overrides.append("generate.progress=false")
    config = load_config(args.config, overrides)
    init_from_env(config.parallel)  # torchrun: join the process group (docs/distributed.md)
    pipeline = WorldPipeline(config)
    output = pipeline(args.image, args.traj, args.out, depth=args.depth, resume=args.resume, overwrite=args.overwrite)
    print(f"voyager-pipe gen: {output.summary()}")
    return 0

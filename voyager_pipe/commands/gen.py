"""`voyager-pipe gen`: one image + a camera trajectory -> RGB-D video, frames and world point cloud."""

from __future__ import annotations

from voyager_pipe.commands._common import add_config_args


# command-line flag (args attribute) -> the config key it sets
GEN_FLAGS = {"backend": "generate.backend", "seed": "seed", "depth_model": "depth.model", "progress": "generate.progress"}


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
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                        help="hide progress bars (sets generate.progress=false)")
    parser.add_argument("--export", metavar="FORMATS",
                        help="after the run, export it (comma-separated: mesh,gaussians,colmap,nerfstudio) into OUT/export/ "
                             "with the defaults of `voyager-pipe export`")
    parser.add_argument("--view", action="store_true",
                        help="watch the world grow in the browser viewer (needs viser); it keeps serving after the run until Ctrl+C")
    parser.add_argument("--view-port", type=int, default=8080, metavar="PORT", help="port of the --view viewer (default 8080)")
    add_config_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from voyager_pipe.commands._common import config_from_args
    from voyager_pipe.distributed import init_from_env
    from voyager_pipe.export import export_formats_into_run, parse_formats
    from voyager_pipe.pipeline import WorldPipeline

    config = config_from_args(args, GEN_FLAGS)
    main_rank = init_from_env(config.parallel).rank == 0  # torchrun: join the process group (docs/distributed.md)
    export_formats = parse_formats(args.export) if args.export else []  # checked before the run
    pipeline = WorldPipeline(config)
    live = _start_view(args) if args.view and main_rank else None  # before the run: a port in use fails early
    output = pipeline(args.image, args.traj, args.out, depth=args.depth, resume=args.resume, overwrite=args.overwrite,
                      on_clip=live)
    if not main_rank:  # torchrun: rank 0 reports, exports and serves the viewer
        return 0
    print(f"voyager-pipe gen: {output.summary()}")
    if export_formats:
        export_formats_into_run(output.out_dir, export_formats, progress=args.progress is not False)
    if live is not None:
        live.finished(output.summary())
        live.viewer.serve_forever()
    return 0


def _start_view(args):
    from voyager_pipe.view.live import start_live_view

    return start_live_view(args.out, port=args.view_port)

"""`voyager-pipe render`: render a point cloud (PLY) along a camera trajectory into a frame folder.

Users preview the RGB-D guidance a point cloud gives along a path; tests use it on real clouds.
Writes ``frames/`` (RGB PNG), ``depth/`` (float32 ``.npy`` z-depth, 0 = empty), ``mask/``
(0/255 PNG), ``cameras.json`` (the trajectory actually rendered) and ``config.yaml``.
"""

from __future__ import annotations

from voyager_pipe.commands._common import add_config_args, bounded_int, parse_size


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "render", help="render a point cloud (PLY) along a trajectory into frames/, depth/, mask/",
        description="Render a coloured point cloud along a camera trajectory with the nearest-point "
                    "z-buffer used for the guidance of `gen` (render.* options apply).")
    parser.add_argument("--points", required=True, metavar="PLY", help="point cloud: PLY with x y z [+ red green blue] [+ nx ny nz]")
    parser.add_argument("--traj", required=True, metavar="TRAJ",
                        help="trajectory file: own JSON, RealEstate10K .txt, transforms.json or a COLMAP model")
    parser.add_argument("--traj-format", choices=("json", "re10k", "transforms", "colmap"),
                        help="format of --traj (default: detected)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced when the render succeeds)")
    parser.add_argument("--size", metavar="WxH", help="image size (required for RealEstate10K; rescales K otherwise)")
    parser.add_argument("--batch", type=bounded_int(1, 1024), default=8, help="cameras rendered together (1..1024, default 8)")
    add_config_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from voyager_pipe.camera.trajectory_io import read_trajectory, write_trajectory
    from voyager_pipe.config import dump_config, load_config
    from voyager_pipe.device import resolve_device
    from voyager_pipe.errors import InputError
    from voyager_pipe.io.atomic import output_dir
    from voyager_pipe.io.frames import CAMERAS_FILE, write_frames
    from voyager_pipe.render import get_renderer
    from voyager_pipe.world.ply import read_ply

    # 1. check inputs
    cfg = load_config(args.config, args.overrides)
    size = parse_size(args.size)
    if args.batch < 1:
        raise InputError(f"--batch {args.batch}: must be >= 1")
    device = resolve_device(cfg.device)
    cloud = read_ply(args.points)
    if len(cloud["xyz"]) == 0:
        raise InputError(f"{args.points}: the point cloud is empty")
    cameras = read_trajectory(args.traj, fmt=args.traj_format, size=size)
    if len(cameras) == 0:
        raise InputError(f"{args.traj}: the trajectory has no cameras")

    # 2. prepare tensors (missing colours render mid-grey)
    points = torch.from_numpy(np.ascontiguousarray(cloud["xyz"], dtype=np.float32)).to(device)  # [P, 3]
    if cloud["rgb"] is not None:
        colors = torch.from_numpy(np.ascontiguousarray(cloud["rgb"])).to(device).float() / 255.0  # [P, 3]
    else:
        colors = torch.full_like(points, 0.5)  # [P, 3]
    renderer = get_renderer(cfg.render, device)

    # 3. render batch by batch and write the frame folder atomically
    coverage = []
    with output_dir(args.out, inputs=[args.points, args.traj, args.config]) as tmp:
        for start in tqdm(range(0, len(cameras), args.batch), desc="render", unit="batch", disable=None):
            batch = cameras[start:start + args.batch]
            out = renderer.render(points, colors, batch)
            write_frames(tmp, rgb=out.rgb, depth=out.depth, mask=out.mask, start=start)
            coverage.append(out.mask.float().mean(dim=(1, 2, 3)).cpu())  # [n]
        write_trajectory(tmp / CAMERAS_FILE, cameras)
        dump_config(cfg, tmp / "config.yaml")
    cover = torch.cat(coverage)  # [T]
    print(f"rendered {len(cameras)} frames of {cameras.width}x{cameras.height} from {len(points)} points "
          f"with the {renderer.name} renderer -> {args.out} (coverage mean {cover.mean():.1%}, min {cover.min():.1%})")
    return 0

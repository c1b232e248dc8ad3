"""`voyager-pipe view`: a browser viewer (viser) of a finished run folder."""

from __future__ import annotations


def add_viewer_args(parser, default_port: int = 8080) -> None:
    """``--port``, ``--host``, ``--max-points`` (shared by view and explore)."""
    parser.add_argument("--port", type=int, default=default_port, help=f"port to serve on (default {default_port}; 0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; reach it from elsewhere with ssh -L)")
    parser.add_argument("--max-points", type=int, default=1_000_000, metavar="N",
                        help="point budget of the displayed cloud (uniform random subset; default 1000000)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "view", help="look at a run in the browser: point cloud, camera frusta, timeline",
        description="Serve a browser viewer (viser) of a gen output folder: the world point cloud, the trajectory as "
                    "camera frusta with their frames, a timeline that moves the view along the trajectory and shows "
                    "RGB | depth | mask, and a mesh / Gaussians found in the folder. Needs `pip install viser`.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished gen output folder")
    add_viewer_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    import time

    from voyager_pipe.view.run_folder import read_run_folder
    from voyager_pipe.view.viewer import WorldViewer

    start = time.perf_counter()
    run_folder = read_run_folder(args.run_dir, max_points=args.max_points)
    viewer = WorldViewer(host=args.host, port=args.port, max_points=args.max_points, title=f"voyager-pipe view {args.run_dir}")
    viewer.show_run(run_folder, wait=False)  # frame images keep loading in the background
    print(viewer.access_hint())
    print(f"  {run_folder.num_frames} frames, {min(run_folder.total_points, args.max_points):,} of "
          f"{run_folder.total_points:,} points, ready in {time.perf_counter() - start:.1f} s; Ctrl+C to stop", flush=True)
    viewer.serve_forever()
    return 0

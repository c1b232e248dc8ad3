"""`voyager-pipe explore`: walk through a generated world; each action generates one segment."""

from __future__ import annotations

from voyager_pipe.commands._common import add_config_args


def register(subparsers) -> None:
    from voyager_pipe.commands.view import add_viewer_args
    from voyager_pipe.explore.actions import ACTIONS

    parser = subparsers.add_parser(
        "explore", help="walk through a world from one image: move/turn, and each step generates new frames",
        description="Explore interactively from one image: in the browser viewer (buttons, W/S/A/D, Q/E, arrow keys) or "
                    "headless with --actions. Each action appends one segment (one clip stride of new cameras) generated "
                    f"with the world cache, as gen does. Actions: {', '.join(ACTIONS)}.")
    parser.add_argument("--image", metavar="IMG", help="input image (8-bit RGB); camera 0 is the identity pose")
    parser.add_argument("--depth", metavar="FILE", help="depth of the image (as for gen)")
    parser.add_argument("--depth-model", metavar="PATH", help="local learned depth model (sets depth.model)")
    parser.add_argument("--backend", choices=["auto", "warp", "voyager"], help="clip generator (sets generate.backend)")
    parser.add_argument("--out", metavar="RUN", help="run folder written by save / at the end (default: the --resume folder)")
    parser.add_argument("--resume", metavar="RUN", help="continue a session saved by explore")
    parser.add_argument("--actions", metavar="LIST",
                        help='run these actions without a browser, save, exit: e.g. "forward:3,turn_left:2,forward"')
    parser.add_argument("--step", type=float, help="translation per segment in scene units (default 0.25)")
    parser.add_argument("--turn", type=float, help="rotation per turn/look segment in degrees (default 15)")
    parser.add_argument("--fov", type=float, default=60.0, help="horizontal field of view of camera 0 in degrees (default 60)")
    parser.add_argument("--seed", type=int, help="random seed (sets seed)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_viewer_args(parser)
    add_config_args(parser)
    parser.set_defaults(func=run)


def _settings(args, saved=None):
    from dataclasses import replace

    from voyager_pipe.errors import InputError
    from voyager_pipe.explore.session import ExploreSettings

    settings = saved or ExploreSettings()
    if args.step is not None:
        if not args.step > 0:
            raise InputError(f"--step: must be > 0, got {args.step}")
        settings = replace(settings, step=args.step)
    if args.turn is not None:
        if not 0 < args.turn <= 180:
            raise InputError(f"--turn: must be in (0, 180], got {args.turn}")
        settings = replace(settings, turn_deg=args.turn)
    return settings


def run(args) -> int:
    from pathlib import Path

    from voyager_pipe.config import load_config
    from voyager_pipe.errors import InputError
    from voyager_pipe.explore.actions import parse_actions
    from voyager_pipe.explore.session import ExploreSession

    if bool(args.image) == bool(args.resume):
        raise InputError("explore: give --image (a new session) or --resume RUN (a saved one), not both or neither")
    out = Path(args.out or args.resume or "")
    if not args.out and not args.resume:
        raise InputError("--out: required for a new session")
    actions = parse_actions(args.actions) if args.actions is not None else None
    from voyager_pipe.io.atomic import check_output_dir

    in_place = bool(args.resume) and out.resolve() == Path(args.resume).resolve()
    check_output_dir(out, inputs=[args.image, args.depth], overwrite=args.overwrite or in_place)
    overrides = list(args.overrides)
    for flag, key in ((args.backend, "generate.backend"), (args.seed, "seed"), (args.depth_model, "depth.model")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    if args.no_progress:
        overrides.append("generate.progress=false")

    viewer = None
    if actions is None:  # the browser session: the port first, so that a port in use fails before any work
        from voyager_pipe.view.viewer import WorldViewer

        viewer = WorldViewer(host=args.host, port=args.port, max_points=args.max_points, title=f"voyager-pipe explore {out}")
    if args.resume:
        config = load_config(Path(args.resume) / "config.yaml", overrides) if (Path(args.resume) / "config.yaml").is_file() else None
        session = ExploreSession.resume(args.resume, config=config)
        session.settings = _settings(args, session.settings)
    else:
        config = load_config(args.config, overrides)
        session = ExploreSession.start(config, args.image, args.depth, settings=_settings(args), fov_deg=args.fov)

    if actions is not None:
        session.run(actions, on_segment=lambda result: print(
            f"voyager-pipe explore: {result.action}: frames {result.new_from}..{result.stop - 1} in "
            f"{result.seconds:.1f} s, +{result.added_points} points ({len(session.cache)})", flush=True))
        session.save(out)
        print(f"voyager-pipe explore: {session.segments} segments, {session.num_frames} frames, "
              f"{len(session.cache)} points -> {out}")
        return 0

    from voyager_pipe.explore.controls import ExploreControls

    ExploreControls(viewer, session, out)
    print(viewer.access_hint())
    print(f"  explore: W/S A/D Q/E and arrow keys or the buttons; 'save' writes {out}; Ctrl+C to stop "
          "(unsaved segments are lost)", flush=True)
    viewer.serve_forever()
    return 0

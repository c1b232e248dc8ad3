"""`voyager-pipe bench`: gen + eval over a fixed set of synthetic scenes x trajectories, one table.

    voyager-pipe bench [--quick] [--work DIR] [--size 256x192] [--cases NAME,...] [--set KEY=VALUE ...]
    voyager-pipe bench --cache [--size 512x384] [--frames 49] [--only 1 2 3 4 5]

``--set`` / ``--config`` / ``--backend`` set the config of every ``gen`` run (and ``eval.*`` the evaluation). See docs/evaluation.md.
"""

from __future__ import annotations

from voyager_pipe.commands._common import add_config_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark: gen + eval over synthetic scenes with exact ground truth (prints one table)",
        description="Run gen + eval over a fixed suite of synthetic scenes x trajectories (orbit, forward, loop back "
                    "to start, long 241 frames) and print PSNR/SSIM/LPIPS (masked and not), depth AbsRel, "
                    "return-to-start PSNR, seconds per frame and world-cache points.")
    parser.add_argument("--work", default="bench_out", metavar="DIR", help="work folder: scenes, gen outputs, bench.json (default: bench_out)")
    parser.add_argument("--quick", action="store_true", help="3 short cases at 128x96 (a smoke run)")
    parser.add_argument("--size", default=None, metavar="WxH", help="frame size (default 256x192; --quick: 128x96)")
    parser.add_argument("--cases", default=None, metavar="LIST", help="only the cases whose names contain one of these comma-separated words")
    parser.add_argument("--backend", choices=["auto", "warp", "voyager"], help="clip generator passed to gen")
    parser.add_argument("--lpips-weights", default=None, metavar="PTH", help="ImageNet AlexNet weights for LPIPS")
    parser.add_argument("--cache", action="store_true",
                        help="instead of the table: the world cache / warp preview figures, each next to its goal "
                             "(resampling, disocclusions, sky, loop, pruning; --size default 512x384; the cache.* "
                             "and warp.* settings apply)")
    from voyager_pipe.commands.bench_cache import add_arguments

    add_arguments(parser)
    add_config_args(parser)
    parser.set_defaults(func=run)


# command-line flag (args attribute) -> the config key it sets (every gen run of the suite gets it)
BENCH_FLAGS = {"backend": "generate.backend", "lpips_weights": "eval.lpips_weights"}


def run(args) -> int:
    from voyager_pipe.commands._common import config_from_args, parse_size
    from voyager_pipe.commands.bench_suite import QUICK_SUITE, SUITE, pipeline_gen_runner, run_suite
    from voyager_pipe.errors import InputError

    config = config_from_args(args, BENCH_FLAGS, whole_file=True, fixed={"generate.progress": False})  # a bad --set is one line here, before any work
    if args.cache:
        from voyager_pipe.commands import bench_cache

        return bench_cache.run(args, config)
    cases = QUICK_SUITE if args.quick else SUITE
    if args.cases:
        words = [w.strip() for w in args.cases.split(",") if w.strip()]
        cases = tuple(c for c in cases if any(w in c.name for w in words))
        if not cases:
            raise InputError(f"--cases {args.cases!r}: matches none of {', '.join(c.name for c in (QUICK_SUITE if args.quick else SUITE))}")
    width, height = parse_size(args.size) or ((128, 96) if args.quick else (256, 192))
    from voyager_pipe.config import gen_config

    rows = run_suite(cases, args.work, pipeline_gen_runner(gen_config(config)), width, height, config.eval)
    return 1 if any("error" in r for r in rows) else 0

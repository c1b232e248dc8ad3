"""`voyager-pipe bench`: gen + eval over a fixed set of synthetic scenes x trajectories, one table.

    voyager-pipe bench [--quick] [--work DIR] [--size 256x192] [--cases NAME,...] [--set KEY=VALUE ...]

``--set`` / ``--config`` / ``--backend`` are passed on to every ``gen`` run. See docs/evaluation.md.
"""

from __future__ import annotations


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
    parser.add_argument("--config", metavar="YAML", help="config file passed to every gen run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to every gen run (repeatable)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from voyager_pipe.commands._common import parse_size
    from voyager_pipe.errors import InputError
    from voyager_pipe.metrics.benchmark import QUICK_SUITE, SUITE, cli_gen_runner, run_suite
    from voyager_pipe.metrics.config import EvalConfig

    cases = QUICK_SUITE if args.quick else SUITE
    if args.cases:
        words = [w.strip() for w in args.cases.split(",") if w.strip()]
        cases = tuple(c for c in cases if any(w in c.name for w in words))
        if not cases:
            raise InputError(f"--cases {args.cases!r}: matches none of {', '.join(c.name for c in (QUICK_SUITE if args.quick else SUITE))}")
    width, height = parse_size(args.size) or ((128, 96) if args.quick else (256, 192))
    gen_args = []
    if args.backend:
        gen_args += ["--backend", args.backend]
    if args.config:
        gen_args += ["--config", args.config]
    for text in args.overrides:
        gen_args += ["--set", text]
    rows = run_suite(cases, args.work, cli_gen_runner(gen_args), width, height, EvalConfig(lpips_weights=args.lpips_weights))
    return 1 if any("error" in r for r in rows) else 0

"""``voyager-pipe`` entry point.

Each subcommand lives in ``voyager_pipe/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a function
``run(args) -> int``. Heavy imports happen inside ``run`` so that ``--help`` is instant.

Exit codes: 0 success, 2 bad input (one line naming the file/field), 3 not built yet,
1 anything else (a bug: the traceback is shown with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from voyager_pipe import __version__
from voyager_pipe.errors import InputError, NotBuiltError

# Order is the order of `voyager-pipe --help`.
COMMANDS = ("gen", "render", "eval", "traj", "convert", "bench", "export", "batch", "view", "explore")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voyager-pipe",
        description="Turn one image and a camera trajectory into a world-consistent RGB-D video and a 3D point cloud.",
    )
    parser.add_argument("--version", action="version", version=f"voyager-pipe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"voyager_pipe.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"voyager-pipe {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except NotBuiltError as exc:
        print(f"voyager-pipe {args.command}: not built yet: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"voyager-pipe {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly, full trace with --debug
        if args.debug:
            traceback.print_exc()
        print(f"voyager-pipe {args.command}: internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

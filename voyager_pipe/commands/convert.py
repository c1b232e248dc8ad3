"""`voyager-pipe convert` (not built yet: the owning issue fills this in)."""

from __future__ import annotations

from voyager_pipe.errors import NotBuiltError


def register(subparsers) -> None:
    parser = subparsers.add_parser("convert", help="(not built yet)")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("`voyager-pipe convert` is not implemented yet")

"""`voyager-pipe eval` (not built yet: the owning issue fills this in)."""

from __future__ import annotations

from voyager_pipe.errors import NotBuiltError


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="(not built yet)")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("`voyager-pipe eval` is not implemented yet")

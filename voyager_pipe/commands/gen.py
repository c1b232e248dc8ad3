"""`voyager-pipe gen` (not built yet: the owning issue fills this in)."""

from __future__ import annotations

from voyager_pipe.errors import NotBuiltError


def register(subparsers) -> None:
    parser = subparsers.add_parser("gen", help="(not built yet)")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise NotBuiltError("`voyager-pipe gen` is not implemented yet")

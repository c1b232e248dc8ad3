"""``voyager-pipe`` entry point.

Each subcommand lives in ``voyager_pipe/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a function
``run(args) -> int``. Heavy imports happen inside ``run`` so that ``--help`` is instant.

Exit codes (one line on stderr for every non-zero code except 1 with ``--debug``):

* 0 success;
* 2 bad input (:class:`InputError`: one line naming the file/field), bad arguments, no command;
* 2 environment errors too (:class:`OSError`: disk full, permission denied, read-only file
  system, name too long, ...): one line with the reason and the path being read or written;
* 3 not built yet (:class:`NotBuiltError`);
* 130 interrupted (Ctrl-C);
* 1 anything else (a bug: the traceback is shown with ``--debug``).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import traceback

from voyager_pipe import __version__
from voyager_pipe.errors import InputError, NotBuiltError

# Order is the order of `voyager-pipe --help`.
COMMANDS = ("gen", "render", "eval", "traj", "convert", "bench", "export", "batch", "view", "explore")

PROG = "voyager-pipe"


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (``prog: error: ...``), exit 2, no usage block."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog=PROG,
        description="Turn one image and a camera trajectory into a world-consistent RGB-D video and a 3D point cloud.",
    )
    parser.add_argument("--version", action="version", version=f"voyager-pipe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"voyager_pipe.commands.{name}").register(subparsers)
    return parser


def environment_error_line(exc: OSError) -> str:
    """``OSError`` -> ``"<reason>: <path>"`` (disk full, permission denied, read-only, name too long, ...)."""
    reason = exc.strerror or os.strerror(exc.errno) if exc.errno else (exc.strerror or exc.__class__.__name__)
    hints = {errno.ENOSPC: " (free some space or choose another --out)", errno.EROFS: " (choose a writable --out)",
             errno.EACCES: " (check the permissions)", errno.EPERM: " (check the permissions)"}
    paths = [p for p in (exc.filename, getattr(exc, "filename2", None)) if p]
    where = " -> ".join(str(p) for p in paths) if paths else "(no path given by the system)"
    return f"{where}: {reason}{hints.get(exc.errno, '')}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        print(f"{PROG}: error: no command given (choose one of {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    name = f"{PROG} {args.command}"
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except NotBuiltError as exc:
        print(f"{name}: not built yet: {_one_line(exc)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the environment (disk, permissions), not the program: exit 2 naming the path
        if args.debug:
            traceback.print_exc()
        print(f"{name}: error: {environment_error_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so plainly, full trace with --debug
        if args.debug:
            traceback.print_exc()
        print(f"{name}: internal error: {exc.__class__.__name__}: {_one_line(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    raise SystemExit(main())

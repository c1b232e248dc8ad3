"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

from voyager_pipe.errors import InputError


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """``--config YAML`` and repeated ``--set key=value`` (see voyager_pipe.config)."""
    parser.add_argument("--config", metavar="YAML", help="config file (YAML); see configs/ for examples")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set render.splat_radius=2 (repeatable)")


def config_from_args(args: argparse.Namespace, flags: dict[str, str] | None = None, whole_file: bool = False,
                     fixed: dict | None = None):
    """The one way command-line flags reach the config: ``--config`` <- ``--set`` <- flags.

    ``flags`` maps an ``args`` attribute to the dotted config key it sets (e.g.
    ``{"backend": "generate.backend"}``); flags left at ``None`` set nothing. Returns the
    :class:`~voyager_pipe.config.PipelineConfig`, or the whole :class:`~voyager_pipe.config.ConfigFile`
    (with the ``eval`` section) when ``whole_file``. ``fixed`` values (dotted keys) are set by the
    command itself, after everything else.
    """
    from voyager_pipe.config import load_config, load_file

    values = {dotted: getattr(args, attr) for attr, dotted in (flags or {}).items() if getattr(args, attr) is not None}
    values.update(fixed or {})
    loader = load_file if whole_file else load_config
    return loader(getattr(args, "config", None), getattr(args, "overrides", ()), values)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"640x360"`` -> ``(640, 360)`` (width, height)."""
    if text is None:
        return None
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x360") from None
    if w <= 0 or h <= 0:
        raise InputError(f"--size {text!r}: width and height must be positive")
    from voyager_pipe.io.reading import check_image_size

    check_image_size(w, h, f"--size {text}")
    return w, h


def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` / ``inf`` are refused as one usage line)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def bounded_int(low: int, high: int):
    """argparse type: an integer in ``low..high`` (documented limits; one usage line otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{high}")
        return value

    parse.__name__ = "integer"
    return parse
